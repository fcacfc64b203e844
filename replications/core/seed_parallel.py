"""Seed-parallel on-policy training: K seeds in one process, their networks batched.

Each seed is built exactly as a single run builds it (``onpolicy.build_seed``: same env, same initial
weights, same RNG streams) and keeps its own env with its own normalisation statistics, its own rollout
collector and NumPy generator, its own torch generator (minibatch shuffles), its own data and its own
optimiser state. What is shared is the arithmetic: the K seeds' parameters are stacked along a leading seed
dimension (``torch.func.stack_module_state``) and the algorithm's per-seed loss, written once for a single
seed, is ``vmap``-ed over them, so each minibatch costs one batched forward/backward instead of K.

Every iteration the K envs step through their rollouts (each seed acting with a snapshot of its own
weights), then one batched update runs, then each seed's modules receive their slice of the stacked
parameters. Seed k of a K-seed run computes the same numbers as a single run of seed k up to float rounding
(batched matrix products round differently from unbatched ones); tests/test_seed_parallel.py checks it.
Checkpoints are per single run: a killed seed-parallel group starts over.

Shapes: stacked parameters (K, *shape); batch tensors (K, T, ...); minibatch indices (K, B).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from replications.core.algorithm import Update
from replications.core.logging import RunLogger
from replications.core.networks import Policy
from replications.core.onpolicy import (
    BATCH_TENSORS,
    add_advantages,
    batch_tensors,
    build_seed,
    finish_seed,
    minibatch_indices,
)
from replications.core.rollout import RolloutCollector
from replications.core.value import value_regression_loss


class _Pair(nn.Module):
    """Policy and value function as one module, so ``functional_call`` can swap both parameter sets."""

    def __init__(self, policy: Policy, value_fn: nn.Module):
        super().__init__()
        self.policy, self.value_fn = policy, value_fn

    def forward(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(self.policy, self.value_fn, *args, **kwargs)


class SeedParallel:
    """K seeds' (policy, value function) pairs as stacked parameters, plus their generators."""

    def __init__(self, policies: list[Policy], value_fns: list[nn.Module], generators: list[torch.Generator]):
        self.pairs = [_Pair(p, v) for p, v in zip(policies, value_fns, strict=True)]
        self.params, _ = stack_module_state(self.pairs)  # name -> (K, ...) leaf tensors
        self.template = copy.deepcopy(self.pairs[0]).to("meta")
        self.generators = generators
        self.n_seeds = len(self.pairs)

    def parameters(self, part: str | None = None) -> list[torch.Tensor]:
        """All stacked parameters, or those of ``part`` ('policy' or 'value_fn'), in their modules' order."""
        return [p for name, p in self.params.items() if part is None or name.startswith(f"{part}.")]

    def vmap(self, fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
        """``fn(policy, value_fn, *args, **kwargs)`` for one seed -> the same for all seeds at once; every
        positional argument gets a leading seed dimension."""

        def one_seed(params: dict[str, torch.Tensor], *args: Any) -> Any:
            return functional_call(self.template, params, (fn, *args), kwargs)

        batched = vmap(one_seed)
        return lambda *args: batched(self.params, *args)

    def minibatch_indices(self, n: int, epochs: int, size: int) -> Iterator[torch.Tensor]:
        """(K, B) indices: each seed's own shuffles from its own generator (as its single run draws them)."""
        streams = [minibatch_indices(n, epochs, size, g) for g in self.generators]
        for per_seed in zip(*streams, strict=True):
            yield torch.stack(per_seed)

    @torch.no_grad()
    def sync(self) -> None:
        """Copy each seed's slice of the stacked parameters into its own modules (used for acting)."""
        for k, pair in enumerate(self.pairs):
            for name, p in pair.named_parameters():
                p.copy_(self.params[name][k])


def gather_seeds(data: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Row ``idx[k]`` of seed k's data for every tensor: (K, T, ...) x (K, B) -> (K, B, ...)."""
    seeds = torch.arange(idx.shape[0])[:, None]
    return {name: t[seeds, idx] for name, t in data.items()}


@torch.no_grad()
def clip_grad_norm_per_seed_(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``nn.utils.clip_grad_norm_`` applied to each seed's slice on its own; returns the K norms."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    norms = torch.stack([g.pow(2).flatten(1).sum(1) for g in grads]).sum(0).sqrt()
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        if p.grad is not None:
            p.grad.mul_(coef.view(-1, *[1] * (p.dim() - 1)))
    return norms


def fit_value_function_seed_parallel(
    model: SeedParallel,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    minibatch_size: int,
) -> torch.Tensor:
    """``value.fit_value_function`` for K seeds at once (obs (K, T, d), targets (K, T)); returns (K,) mean
    losses. ``optimizer`` holds the stacked value-function parameters."""
    loss_fn = model.vmap(lambda _policy, value_fn, o, t: value_regression_loss(value_fn, o, t))
    total, count = torch.zeros(model.n_seeds), 0
    for idx in model.minibatch_indices(obs.shape[1], epochs, minibatch_size):
        mb = gather_seeds({"obs": obs, "targets": targets}, idx)
        loss = loss_fn(mb["obs"], mb["targets"])
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        total += loss.detach()
        count += 1
    return total / max(count, 1)


def train_on_policy_seed_parallel(
    env_id: str,
    cfg: Any,
    seeds: list[int],
    total_steps: int,
    loggers: list[RunLogger],
    make_update: Callable[[Any, SeedParallel], Update],
) -> list[dict[str, Any]]:
    """``onpolicy.train_on_policy`` for len(seeds) seeds at once; returns each seed's facts.

    ``make_update(cfg, model)`` returns ``update(data (K, T, ...), iteration, n_iterations) -> [stats]``."""
    built = [build_seed(env_id, cfg, seed) for seed in seeds]
    envs = [b[0] for b in built]
    model = SeedParallel([b[1] for b in built], [b[2] for b in built], [b[3] for b in built])
    collectors = [
        RolloutCollector(env, policy, value_fn, cfg.horizon, gen, seed, logger.episode)
        for (env, policy, value_fn, gen), seed, logger in zip(built, seeds, loggers, strict=True)
    ]
    update = make_update(cfg, model)
    n_iterations = math.ceil(total_steps / cfg.horizon)
    for iteration in range(n_iterations):
        batches = [batch_tensors(add_advantages(c.collect(), cfg.gamma, cfg.gae_lambda)) for c in collectors]
        data = {name: torch.stack([b[name] for b in batches]) for name in BATCH_TENSORS}
        stats = update(data, iteration, n_iterations)
        model.sync()
        for collector, logger, seed_stats in zip(collectors, loggers, stats, strict=True):
            logger.iteration(collector.step_count, **seed_stats)
    return [
        finish_seed(env, pair.policy, pair.value_fn, logger, collector.step_count)
        for env, pair, logger, collector in zip(envs, model.pairs, loggers, collectors, strict=True)
    ]
