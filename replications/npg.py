"""Natural Policy Gradient, in the practical form of Rajeswaran et al. (2017).

Papers: S. Kakade (2001). A Natural Policy Gradient. NIPS 14.  A. Rajeswaran, K. Lowrey, E. Todorov,
S. Kakade (2017). Towards Generalization and Simplicity in Continuous Control. NIPS 2017, arXiv:1703.02660.
Settings: the authors' code (aravindr93/mjrl ``NPG`` and its Hopper example config), ``configs/npg.yaml``.

Update:
    g = grad_theta E[ pi_theta(a|s) / pi_old(a|s) * A(s, a) ]  at theta_old    (the vanilla policy gradient)
    x = F^-1 g                      (Kakade 2001: the natural gradient; k CG steps, F = KL Hessian + damping)
    theta <- theta_old + sqrt(delta_n / (g^T x)) x                (Rajeswaran et al. 2017, normalised step)
With g^T x = x^T F x this is the step whose quadratic KL estimate is delta_n / 2 (mjrl calls delta_n
"twice the desired KL"): the shared KL-scaled step with delta = delta_n / 2, taken in full (no line search;
that, and nothing else, is where TRPO differs).

Implementation details:
 1. [paper code] Normalised step size 0.05 (Hopper example), 10 CG iterations, damping 1e-4, Fisher on all samples.
 2. [paper code] 10,000 env steps per iteration; gamma 0.995, GAE lambda 0.97; advantages whitened (eps 1e-6).
 3. [paper code] Policy: 32-32 tanh MLP, Gaussian with state-independent log-std initialised to -0.5.
 4. [paper code] Value function: 128-128 ReLU MLP, Adam 1e-3, 2 epochs of minibatch 64, fitted after the
    policy step. No observation or reward normalisation.
 5. [ours] CG starts from x0 = 0 (mjrl started from x0 = g); value targets are the TD(lambda) returns with
    time-limit bootstrapping instead of mjrl's Monte-Carlo returns with time-step input features; orthogonal
    initialisation (mjrl: PyTorch default init with the last policy layer scaled by 0.01).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from replications.core.advantages import standardize
from replications.core.algorithm import Update
from replications.core.envs import Normalization
from replications.core.logging import RunLogger
from replications.core.natural_gradient import (
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    flat_params,
    kl_scaled_step,
    policy_dist_params,
    policy_mean_kl,
    policy_surrogate,
    set_flat_params,
)
from replications.core.networks import Policy
from replications.core.onpolicy import Networks, networks, stats_row, train_on_policy
from replications.core.rollout import Batch
from replications.core.seed_parallel import (
    SeedParallel,
    fit_value_function_seed_parallel,
    train_on_policy_seed_parallel,
)
from replications.core.value import fit_value_function


@dataclass(frozen=True)
class NPGConfig:
    horizon: int
    """Env steps per iteration."""
    normalized_step_size: float
    """delta_n: the step's quadratic KL estimate is delta_n / 2."""
    cg_iters: int
    cg_damping: float
    gamma: float
    gae_lambda: float
    hidden_sizes: tuple[int, ...]
    activation: Literal["tanh", "relu"]
    init_log_std: float
    value_hidden_sizes: tuple[int, ...]
    value_activation: Literal["tanh", "relu"]
    value_learning_rate: float
    value_epochs: int
    value_minibatch_size: int
    orthogonal_init: bool
    normalize_observations: bool
    normalize_rewards: bool

    def normalization(self) -> Normalization:  # no clip values: the paper code normalises nothing
        return Normalization(self.normalize_observations, self.normalize_rewards)

    def networks(self) -> Networks:
        return networks(self, self.value_hidden_sizes, self.value_activation)

    def evaluation(self) -> None:  # scored by its training episodes
        return None


def npg_step(
    cfg: NPGConfig,
    params: Sequence[torch.Tensor],
    surrogate: Callable[[], torch.Tensor],
    mean_kl: Callable[[], torch.Tensor],
    batched: bool = False,
) -> torch.Tensor:
    """theta <- theta_old + sqrt(delta_n / g^T x) x with x = F^-1 g; returns the step taken. With
    ``batched``, the callables return one value per seed and the step is (K, n)."""
    g = flat_grad(surrogate().sum(), params, batched=batched)
    fvp = fisher_vector_product(mean_kl, params, cfg.cg_damping, batched)
    x = conjugate_gradient(fvp, g, cfg.cg_iters)
    step = kl_scaled_step(x, g, cfg.normalized_step_size / 2)  # = sqrt(delta_n / g^T x) x
    set_flat_params(params, flat_params(params, batched) + step)
    return step


def _after_step(surrogate, mean_kl, adv: torch.Tensor, step: torch.Tensor) -> dict[str, Any]:  # noqa: ANN001
    with torch.no_grad():
        return {
            "kl": mean_kl(),
            "surrogate_gain": surrogate() - adv.mean(-1),  # the surrogate is mean(A) at theta_old
            "step_norm": step.norm(dim=-1),
        }


def make_update(cfg: NPGConfig, policy: Policy, value_fn: nn.Module, generator: torch.Generator):
    params = list(policy.parameters())
    value_opt = torch.optim.Adam(value_fn.parameters(), lr=cfg.value_learning_rate)

    def update(batch: Batch, iteration: int, n_iterations: int) -> dict[str, Any]:
        obs, actions = batch.obs, batch.actions
        adv = standardize(batch.advantages, 1e-6, unbiased=False)
        with torch.no_grad():
            old = policy_dist_params(policy, value_fn, obs)

        def surrogate() -> torch.Tensor:
            return policy_surrogate(policy, value_fn, obs, actions, batch.log_probs, adv)

        def mean_kl() -> torch.Tensor:
            return policy_mean_kl(policy, value_fn, old, obs)

        step = npg_step(cfg, params, surrogate, mean_kl)
        stats = _after_step(surrogate, mean_kl, adv, step)
        stats["value_loss"] = fit_value_function(
            value_fn, value_opt, obs, batch.returns, cfg.value_epochs, cfg.value_minibatch_size, generator
        )
        return stats_row(stats)

    return Update(update, {"value_adam": value_opt})


def make_seed_parallel_update(cfg: NPGConfig, model: SeedParallel):
    """The same update for K seeds at once (vmapped per-seed functions, per-seed CG and step size)."""
    params = model.parameters("policy")
    value_opt = torch.optim.Adam(model.parameters("value_fn"), lr=cfg.value_learning_rate)
    surrogate_k, dist_params, mean_kl_k = (
        model.vmap(policy_surrogate),
        model.vmap(policy_dist_params),
        model.vmap(policy_mean_kl),
    )

    def update(data: dict[str, torch.Tensor], iteration: int, n_iterations: int) -> list[dict[str, Any]]:
        obs, actions = data["obs"], data["actions"]
        adv = standardize(data["advantages"], 1e-6, unbiased=False)
        with torch.no_grad():
            old = dist_params(obs)

        def surrogate() -> torch.Tensor:
            return surrogate_k(obs, actions, data["log_probs"], adv)

        def mean_kl() -> torch.Tensor:
            return mean_kl_k(old, obs)

        step = npg_step(cfg, params, surrogate, mean_kl, batched=True)
        stats = _after_step(surrogate, mean_kl, adv, step)
        stats["value_loss"] = fit_value_function_seed_parallel(
            model, value_opt, obs, data["returns"], cfg.value_epochs, cfg.value_minibatch_size
        )
        return [stats_row(stats, k) for k in range(model.n_seeds)]

    return Update(update, {"value_adam": value_opt})


def train(env_id: str, cfg: NPGConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    """Train one seed through the shared on-policy driver; episodes and statistics go to ``logger``."""
    return train_on_policy(env_id, cfg, seed, total_steps, logger, make_update)


def train_seed_parallel(
    env_id: str, cfg: NPGConfig, seeds: list[int], total_steps: int, loggers: list[RunLogger]
) -> list[dict[str, Any]]:
    """Train len(seeds) seeds in this process with batched networks (core/seed_parallel.py)."""
    return train_on_policy_seed_parallel(env_id, cfg, seeds, total_steps, loggers, make_seed_parallel_update)
