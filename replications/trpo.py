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
from torch import nn

from replications.core.logging import RunLogger
from replications.core.natural_gradient import (
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    kl_scaled_step,
    surrogate_objective,
)
from replications.core.networks import Policy
from replications.core.onpolicy import train_on_policy
from replications.core.rollout import Batch
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


def make_update(cfg: TRPOConfig, policy: Policy, value_fn: nn.Module, generator: torch.Generator):
    params = list(policy.parameters())
    value_opt = torch.optim.Adam(value_fn.parameters(), lr=cfg.value_learning_rate, eps=cfg.value_adam_eps)

    def update(batch: Batch, iteration: int, n_iterations: int) -> dict[str, Any]:
        obs, actions, adv = batch.obs, batch.actions, batch.advantages
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        with torch.no_grad():
            old = policy.dist_params(obs)
        sub = slice(None, None, cfg.fisher_subsample)
        old_sub = tuple(t[sub] for t in old)

        def surrogate() -> torch.Tensor:
            return surrogate_objective(policy.log_prob_entropy(obs, actions)[0], batch.log_probs, adv)

        def mean_kl() -> torch.Tensor:
            return policy.kl_from(old, obs).mean()

        g = flat_grad(surrogate(), params)
        fvp = fisher_vector_product(lambda: policy.kl_from(old_sub, obs[sub]).mean(), params, cfg.cg_damping)
        x = conjugate_gradient(fvp, g, cfg.cg_iters)
        step = kl_scaled_step(x, fvp(x), cfg.max_kl)
        search = backtracking_line_search(
            params, step, surrogate, mean_kl, cfg.max_kl, cfg.line_search_shrink, cfg.line_search_max_backtracks
        )
        v_loss = fit_value_function(
            value_fn, value_opt, obs, batch.returns, cfg.value_epochs, cfg.value_minibatch_size, generator
        )
        return {
            "surrogate_gain": search.improvement,
            "kl": search.kl,
            "step_fraction": search.fraction,
            "accepted": int(search.accepted),
            "value_loss": v_loss,
        }

    update.optimizers = {"value_adam": value_opt}  # type: ignore[attr-defined]  # saved in checkpoints
    return update


def train(env_id: str, cfg: TRPOConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    """Train one seed through the shared on-policy driver; episodes and statistics go to ``logger``."""
    return train_on_policy(env_id, cfg, seed, total_steps, logger, make_update)
