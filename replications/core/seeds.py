"""The networks an on-policy update trains: one seed's, or K seeds' batched, behind one interface.

Each on-policy algorithm writes its update once, against ``SeedNets``: it asks for its parameters, turns its
per-seed functions (a loss of the policy and the value function on a batch) into callables with ``fn``,
draws minibatches with ``minibatches``, and returns one statistics row per seed with ``rows``.

- ``OneSeed``: a single run's own modules; every call is the plain PyTorch call on them (``fn`` calls the
  function, ``minibatches`` indexes the batch), so a single run computes what it would without this layer.
- ``SeedParallel``: K seeds in one process. Each seed is built exactly as a single run builds it
  (``onpolicy.build_seed``: same env, same initial weights, same RNG streams) and keeps its own env with its
  own normalisation statistics, its own rollout collector and NumPy generator, its own torch generator
  (minibatch shuffles), its own data and its own optimiser state. What is shared is the arithmetic: the K
  seeds' parameters are stacked along a leading seed dimension (``torch.func.stack_module_state``) and each
  per-seed function is ``vmap``-ed over them, so each minibatch costs one batched forward/backward instead of
  K. After each update each seed's modules receive their slice of the stacked parameters (``sync``, used for
  acting). Seed k of a K-seed run computes the same numbers as a single run of seed k up to float rounding
  (batched matrix products round differently from unbatched ones); tests/test_seed_parallel.py checks it.
  Checkpoints are per single run: a killed seed-parallel group starts over.

Shapes: one seed's batch tensors are (T, ...) and its statistics scalars; K seeds' are (K, T, ...) and (K,);
stacked parameters (K, *shape); minibatch indices (K, B).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from replications.core.networks import Policy
from replications.core.rollout import Batch

BATCH_TENSORS = ("obs", "actions", "log_probs", "values", "advantages", "returns")
Part = str | None
"""Which network a per-seed function takes: None for ``f(policy, value_fn, ...)``, 'policy' for
``f(policy, ...)``, 'value_fn' for ``f(value_fn, ...)``."""


def batch_tensors(batch: Batch) -> dict[str, torch.Tensor]:
    """The tensors an update trains on, by name (each (T, ...), or (K, T, ...) for a stacked batch)."""
    return {name: getattr(batch, name) for name in BATCH_TENSORS}


def minibatch_indices(n: int, epochs: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """``epochs`` shuffled passes over range(n) in minibatches of ``size`` (a last partial one is kept)."""
    for _ in range(epochs):
        yield from torch.randperm(n, generator=generator).split(size)


def stats_row(stats: dict[str, Any], k: int | None = None) -> dict[str, Any]:
    """A statistics dict as plain numbers for the logger: tensors as Python scalars (entry ``k`` of (K,)
    tensors for seed k of a seed-parallel run)."""
    return {name: (v if k is None else v[k]).item() if isinstance(v, torch.Tensor) else v for name, v in stats.items()}


class SeedNets(Protocol):
    """What an on-policy update trains: the interface ``OneSeed`` and ``SeedParallel`` share."""

    n_seeds: int

    def parameters(self, part: Part = None) -> list[torch.Tensor]:
        """All trainable parameters (policy's, then value function's), or those of one part."""
        ...

    def fn(self, f: Callable[..., Any], part: Part = None, **kwargs: Any) -> Callable[..., Any]:
        """A per-seed function of the networks (see ``Part``) as a callable of its other arguments (each with
        a leading seed dimension for K seeds); ``kwargs`` are passed unbatched."""
        ...

    def minibatches(self, data: dict[str, torch.Tensor], epochs: int, size: int) -> Iterator[dict[str, torch.Tensor]]:
        """``epochs`` shuffled passes over the batch in minibatches of ``size``, from each seed's generator."""
        ...

    def every(self, t: torch.Tensor, n: int) -> torch.Tensor:
        """Every n-th sample of a batch tensor."""
        ...

    def clip_grad_norm_(self, params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
        """Gradient-norm clipping of each seed on its own; returns the norm(s) before clipping."""
        ...

    def zeros(self, *shape: int) -> torch.Tensor:
        """A zero accumulator of ``shape`` per seed."""
        ...

    def rows(self, stats: dict[str, Any]) -> list[dict[str, Any]]:
        """One logger row per seed from a dict of statistics (scalars, or (K,) tensors)."""
        ...


class OneSeed:
    """A single run's policy, value function and torch generator."""

    n_seeds = 1

    def __init__(self, policy: Policy, value_fn: nn.Module, generator: torch.Generator):
        self.policy, self.value_fn, self.generator = policy, value_fn, generator

    def parts(self) -> tuple[Policy, nn.Module, torch.Generator]:
        return self.policy, self.value_fn, self.generator

    def parameters(self, part: Part = None) -> list[torch.Tensor]:
        modules = [self.policy, self.value_fn] if part is None else [getattr(self, part)]
        return [p for m in modules for p in m.parameters()]

    def fn(self, f: Callable[..., Any], part: Part = None, **kwargs: Any) -> Callable[..., Any]:
        nets = (self.policy, self.value_fn) if part is None else (getattr(self, part),)
        return lambda *args: f(*nets, *args, **kwargs)

    def minibatches(self, data: dict[str, torch.Tensor], epochs: int, size: int) -> Iterator[dict[str, torch.Tensor]]:
        n = next(iter(data.values())).shape[0]
        for idx in minibatch_indices(n, epochs, size, self.generator):
            yield {name: t[idx] for name, t in data.items()}

    def every(self, t: torch.Tensor, n: int) -> torch.Tensor:
        return t[::n]

    def clip_grad_norm_(self, params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
        return nn.utils.clip_grad_norm_(params, max_norm, foreach=True)

    def zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(shape)

    def rows(self, stats: dict[str, Any]) -> list[dict[str, Any]]:
        return [stats_row(stats)]


def one_seed(nets: SeedNets) -> OneSeed:
    """The networks of an algorithm written for one run at a time (AWR and Q-Prop: replay data and control
    flow of their own per run); they do not train seed-parallel."""
    if not isinstance(nets, OneSeed):
        raise ValueError("this algorithm trains one seed per process (no seed-parallel training)")
    return nets


class _Pair(nn.Module):
    """Policy and value function as one module, so ``functional_call`` can swap both parameter sets."""

    def __init__(self, policy: Policy, value_fn: nn.Module):
        super().__init__()
        self.policy, self.value_fn = policy, value_fn

    def forward(self, fn: Callable[..., Any], part: Part, *args: Any, **kwargs: Any) -> Any:
        nets = (self.policy, self.value_fn) if part is None else (getattr(self, part),)
        return fn(*nets, *args, **kwargs)


class SeedParallel:
    """K seeds' (policy, value function) pairs as stacked parameters, plus their generators."""

    def __init__(self, policies: list[Policy], value_fns: list[nn.Module], generators: list[torch.Generator]):
        self.pairs = [_Pair(p, v) for p, v in zip(policies, value_fns, strict=True)]
        self.params, _ = stack_module_state(self.pairs)  # name -> (K, ...) leaf tensors
        self.template = copy.deepcopy(self.pairs[0]).to("meta")
        self.generators = generators
        self.n_seeds = len(self.pairs)

    def parameters(self, part: Part = None) -> list[torch.Tensor]:
        return [p for name, p in self.params.items() if part is None or name.startswith(f"{part}.")]

    def fn(self, f: Callable[..., Any], part: Part = None, **kwargs: Any) -> Callable[..., Any]:
        def one_seed(params: dict[str, torch.Tensor], *args: Any) -> Any:
            return functional_call(self.template, params, (f, part, *args), kwargs)

        batched = vmap(one_seed)
        return lambda *args: batched(self.params, *args)

    def minibatches(self, data: dict[str, torch.Tensor], epochs: int, size: int) -> Iterator[dict[str, torch.Tensor]]:
        n = next(iter(data.values())).shape[1]
        streams = [minibatch_indices(n, epochs, size, g) for g in self.generators]  # each seed's own shuffles
        for per_seed in zip(*streams, strict=True):
            yield gather_seeds(data, torch.stack(per_seed))

    def every(self, t: torch.Tensor, n: int) -> torch.Tensor:
        return t[:, ::n]

    def clip_grad_norm_(self, params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
        return clip_grad_norm_per_seed_(params, max_norm)

    def zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(self.n_seeds, *shape)

    def rows(self, stats: dict[str, Any]) -> list[dict[str, Any]]:
        return [stats_row(stats, k) for k in range(self.n_seeds)]

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


def stack_batches(batches: list[Batch]) -> Batch:
    """K seeds' batches as one (K, T, ...) batch (advantages and returns included; no per-episode extras)."""

    def tensor(name: str) -> torch.Tensor:
        return torch.stack([getattr(b, name) for b in batches])

    def array(name: str) -> np.ndarray:
        return np.stack([getattr(b, name) for b in batches])

    return Batch(
        obs=tensor("obs"),
        actions=tensor("actions"),
        log_probs=tensor("log_probs"),
        values=tensor("values"),
        rewards=array("rewards"),
        next_values=array("next_values"),
        terminated=array("terminated"),
        dones=array("dones"),
        advantages=tensor("advantages"),
        returns=tensor("returns"),
    )
