"""Trust Region Policy Optimization.

Paper: J. Schulman, S. Levine, P. Moritz, M. I. Jordan, P. Abbeel (2015). Trust Region Policy Optimization.
ICML 2015, arXiv:1502.05477. 1M-step benchmark settings: OpenAI Baselines ``trpo_mpi`` MuJoCo defaults
(``configs/trpo.yaml``; the paper's own runs used 50k-1M simulator steps per iteration).

Update (paper numbering):
    maximise  L(theta) = E[ pi_theta(a|s) / pi_old(a|s) * A(s, a) ]                          (14)
    subject to  mean KL(pi_old(.|s) || pi_theta(.|s)) <= delta                              (12)
    g = grad L at theta_old;  x = F^-1 g by k conjugate-gradient steps (F: Fisher = KL Hessian)   (App. C)
    full step s = sqrt(2 delta / x^T F x) x;  theta = theta_old + beta^j s for the first j with
    L improved and KL <= delta (backtracking line search, App. C)
The value function is fitted by regression on the TD(lambda) returns after the policy step.

Implementation details:
 1. [paper] delta = 0.01 (Section 8.1); 10 CG iterations (App. C.1); Fisher on a subsample of the batch
    (10% in the paper; every 5th sample in the reference code).
 2. [paper] Gaussian policy, MLP mean, state-independent log-std (App. D).
 3. [reference code] 1024 steps per iteration, 32-32 tanh policy and value MLPs, CG damping 0.1,
    gamma 0.99, GAE lambda 0.98, value: 5 epochs of Adam 1e-3, minibatch 64 (baselines trpo_mpi defaults).
 4. [reference code] Advantages standardised over the batch; observations normalised by a running
    mean/std, clipped to [-5, 5]; rewards not normalised; orthogonal init; log-std initialised to 0.
 5. [reference code] Line search halves the step up to 10 times.
 6. [paper] A step is accepted only if the surrogate improves and the mean KL is <= delta (the reference
    code allowed 1.5 delta; listed in the config's deviations).
 7. [ours] Time-limit truncation bootstraps from V(final observation); observation statistics update at
    every env step (the reference code updated them once per batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from replications.core.advantages import standardize
from replications.core.algorithm import Update
from replications.core.config import late_field
from replications.core.envs import Normalization
from replications.core.logging import RunLogger
from replications.core.natural_gradient import (
    LineSearchResult,
    policy_dist_params,
    policy_mean_kl,
    policy_surrogate,
    trust_region_step,
)
from replications.core.onpolicy import Networks, networks, train_on_policy
from replications.core.rollout import Batch
from replications.core.seeds import SeedNets
from replications.core.value import fit_value_function


@dataclass(frozen=True)
class TRPOConfig:
    horizon: int
    """Env steps per iteration."""
    max_kl: float
    """delta: the trust region on the mean KL."""
    cg_iters: int
    cg_damping: float
    fisher_subsample: int
    """Fisher-vector products use every n-th sample of the batch."""
    line_search_shrink: float
    line_search_max_backtracks: int
    gamma: float
    gae_lambda: float
    hidden_sizes: tuple[int, ...]
    activation: Literal["tanh", "relu"]
    init_log_std: float
    value_hidden_sizes: tuple[int, ...]
    value_learning_rate: float
    value_epochs: int
    value_minibatch_size: int
    value_adam_eps: float
    normalize_advantages: bool
    orthogonal_init: bool
    normalize_observations: bool
    clip_observations: float
    normalize_rewards: bool
    clip_rewards: float
    value_activation: Literal["tanh", "relu"] | None = late_field(None)
    """The value MLP's activation; None: the policy's (baselines' value_network='copy'). Set for our TRPO at
    NPG's settings (mjrl's ReLU baseline)."""

    def normalization(self) -> Normalization:
        return Normalization(
            self.normalize_observations, self.normalize_rewards, self.gamma, self.clip_observations, self.clip_rewards
        )

    def networks(self) -> Networks:
        return networks(self, self.value_hidden_sizes, self.value_activation or self.activation)

    def evaluation(self) -> None:  # scored by its training episodes
        return None


def trpo_step(cfg: TRPOConfig, params, surrogate, mean_kl, fisher_kl) -> LineSearchResult:  # noqa: ANN001
    """One policy step with this config's trust region, CG and line-search settings."""
    return trust_region_step(
        params,
        surrogate,
        mean_kl,
        fisher_kl,
        cfg.max_kl,
        cfg.cg_iters,
        cfg.cg_damping,
        cfg.line_search_shrink,
        cfg.line_search_max_backtracks,
    )


def make_update(cfg: TRPOConfig, nets: SeedNets) -> Update:
    """``update(batch, iteration, n_iterations) -> [stats]``: the trust-region policy step, then the value
    regression. One seed or K at once (core/seeds.py; per-seed CG and line search)."""
    params = nets.parameters("policy")
    value_opt = torch.optim.Adam(nets.parameters("value_fn"), lr=cfg.value_learning_rate, eps=cfg.value_adam_eps)
    surrogate, dist_params, mean_kl = (
        nets.fn(policy_surrogate, "policy"),
        nets.fn(policy_dist_params, "policy"),
        nets.fn(policy_mean_kl, "policy"),
    )

    def update(batch: Batch, iteration: int, n_iterations: int) -> list[dict[str, Any]]:
        obs, actions, adv = batch.obs, batch.actions, batch.advantages
        if cfg.normalize_advantages:
            adv = standardize(adv, 1e-8)
        with torch.no_grad():
            old = dist_params(obs)
        n = cfg.fisher_subsample
        old_sub, obs_sub = tuple(nets.every(t, n) for t in old), nets.every(obs, n)
        search = trpo_step(
            cfg,
            params,
            lambda: surrogate(obs, actions, batch.log_probs, adv),
            lambda: mean_kl(old, obs),
            lambda: mean_kl(old_sub, obs_sub),
        )
        v_loss = fit_value_function(nets, value_opt, obs, batch.returns, cfg.value_epochs, cfg.value_minibatch_size)
        return nets.rows(
            {
                "surrogate_gain": search.improvement,
                "kl": search.kl,
                "step_fraction": search.fraction,
                "accepted": search.accepted.long(),
                "value_loss": v_loss,
            }
        )

    return Update(update, {"value_adam": value_opt})


def train(env_id: str, cfg: TRPOConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    """Train one seed through the shared on-policy driver; episodes and statistics go to ``logger``."""
    return train_on_policy(env_id, cfg, seed, total_steps, logger, make_update)
