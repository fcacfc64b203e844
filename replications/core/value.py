"""Fitting a state-value function by minibatch regression (TRPO, NPG, and any on-policy method that trains
its critic apart from its policy)."""

from __future__ import annotations

import torch
from torch import nn


def value_regression_loss(value_fn: nn.Module, obs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0.5 mean (V(s) - target)^2."""
    return 0.5 * (value_fn(obs) - targets).pow(2).mean()


def fit_value_function(
    value_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    minibatch_size: int,
    generator: torch.Generator,
) -> float:
    """``epochs`` passes of shuffled minibatches minimising 0.5 (V(s) - target)^2; returns the mean loss.

    Shapes: obs (T, obs_dim), targets (T,). A last partial minibatch is kept."""
    total, count = torch.zeros(()), 0
    for _ in range(epochs):
        for idx in torch.randperm(obs.shape[0], generator=generator).split(minibatch_size):
            loss = value_regression_loss(value_fn, obs[idx], targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            count += 1
    return float(total) / max(count, 1)
