"""Fitting a state-value function by minibatch regression (TRPO, NPG, and any on-policy method that trains
its critic apart from its policy)."""

from __future__ import annotations

import torch
from torch import nn

from replications.core.seeds import SeedNets


def value_regression_loss(value_fn: nn.Module, obs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0.5 mean (V(s) - target)^2."""
    return 0.5 * (value_fn(obs) - targets).pow(2).mean()


def fit_value_function(
    nets: SeedNets,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    minibatch_size: int,
) -> torch.Tensor:
    """``epochs`` passes of shuffled minibatches minimising 0.5 (V(s) - target)^2; returns the mean loss
    (per seed). ``optimizer`` holds the value function's parameters.

    Shapes: obs (T, obs_dim), targets (T,) (a leading seed dimension for K seeds). A last partial minibatch
    is kept."""
    loss_fn = nets.fn(value_regression_loss, part="value_fn")
    total, count = nets.zeros(), 0
    for mb in nets.minibatches({"obs": obs, "targets": targets}, epochs, minibatch_size):
        loss = loss_fn(mb["obs"], mb["targets"])
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # seeds share no parameter: the gradient of the sum is each seed's own
        optimizer.step()
        total += loss.detach()
        count += 1
    return total / max(count, 1)
