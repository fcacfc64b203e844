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

from replications.core.advantages import standardize
from replications.core.algorithm import Update
from replications.core.envs import Normalization
from replications.core.logging import RunLogger
from replications.core.natural_gradient import (
    add_to_params,
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    kl_scaled_step,
    policy_dist_params,
    policy_mean_kl,
    policy_surrogate,
)
from replications.core.onpolicy import Networks, networks, train_on_policy
from replications.core.rollout import Batch
from replications.core.seeds import SeedNets
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
) -> torch.Tensor:
    """theta <- theta_old + sqrt(delta_n / g^T x) x with x = F^-1 g; returns the step taken ((K, n) when the
    callables return one value per seed)."""
    g = flat_grad(surrogate(), params)
    fvp = fisher_vector_product(mean_kl, params, cfg.cg_damping)
    x = conjugate_gradient(fvp, g, cfg.cg_iters)
    step = kl_scaled_step(x, g, cfg.normalized_step_size / 2)  # = sqrt(delta_n / g^T x) x
    add_to_params(params, step)
    return step


def make_update(cfg: NPGConfig, nets: SeedNets) -> Update:
    """``update(batch, iteration, n_iterations) -> [stats]``: the natural-gradient step, then the value
    regression. One seed or K at once (core/seeds.py; per-seed CG and step size)."""
    params = nets.parameters("policy")
    value_opt = torch.optim.Adam(nets.parameters("value_fn"), lr=cfg.value_learning_rate)
    surrogate_fn, dist_params, mean_kl_fn = (
        nets.fn(policy_surrogate, "policy"),
        nets.fn(policy_dist_params, "policy"),
        nets.fn(policy_mean_kl, "policy"),
    )

    def update(batch: Batch, iteration: int, n_iterations: int) -> list[dict[str, Any]]:
        obs, actions = batch.obs, batch.actions
        adv = standardize(batch.advantages, 1e-6, unbiased=False)
        with torch.no_grad():
            old = dist_params(obs)

        def surrogate() -> torch.Tensor:
            return surrogate_fn(obs, actions, batch.log_probs, adv)

        def mean_kl() -> torch.Tensor:
            return mean_kl_fn(old, obs)

        step = npg_step(cfg, params, surrogate, mean_kl)
        with torch.no_grad():
            stats = {
                "kl": mean_kl(),
                "surrogate_gain": surrogate() - adv.mean(-1),  # the surrogate is mean(A) at theta_old
                "step_norm": step.norm(dim=-1),
            }
        stats["value_loss"] = fit_value_function(
            nets, value_opt, obs, batch.returns, cfg.value_epochs, cfg.value_minibatch_size
        )
        return nets.rows(stats)

    return Update(update, {"value_adam": value_opt})


def train(env_id: str, cfg: NPGConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    """Train one seed through the shared on-policy driver; episodes and statistics go to ``logger``."""
    return train_on_policy(env_id, cfg, seed, total_steps, logger, make_update)
