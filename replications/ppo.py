"""Proximal Policy Optimization with the clipped surrogate objective.

Paper: J. Schulman, F. Wolski, P. Dhariwal, A. Radford, O. Klimov (2017). Proximal Policy Optimization
Algorithms. arXiv:1707.06347. Hyperparameters: Table 3 and Section 6.1 (``configs/ppo.yaml``).

Update equations (paper numbering):
    r_t(theta) = pi_theta(a_t | s_t) / pi_theta_old(a_t | s_t)                                  (6)
    L^CLIP(theta) = E_t[ min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t) ]                        (7)
    A_t = delta_t + (gamma lambda) delta_{t+1} + ...,  delta_t = r_t + gamma V(s_{t+1}) - V(s_t) (11, 12)
    minimise  -L^CLIP + c1 L^VF - c2 S[pi_theta]   (c2 = 0: no entropy bonus, Section 6.1)         (9)
for K epochs of minibatch Adam over each batch of T env steps.

Implementation details (Huang et al. 2022 list the reference code's; ``../shared`` papers.md section 3c):
 1. [paper] Horizon 2048, Adam 3e-4, 10 epochs, minibatch 64, gamma 0.99, lambda 0.95, eps 0.2 (Table 3).
 2. [paper] Separate policy and value MLPs, 64-64 tanh; Gaussian policy with state-independent log-std.
 3. [paper] Score: mean raw return of the last 100 training episodes (Section 6.1).
 4. [reference code] Orthogonal init: gain sqrt(2) hidden, 0.01 policy output, 1.0 value output, zero bias.
 5. [reference code] log-std initialised to 0.
 6. [reference code] Observations normalised by a running mean/std and clipped to [-10, 10].
 7. [reference code] Rewards divided by the running std of the discounted return, clipped to [-10, 10].
 8. [reference code] Advantages normalised per minibatch (mean 0, std 1).
 9. [reference code] Value loss clipped like the policy: 0.5 max((V - R)^2, (V_old + clip(V - V_old) - R)^2).
10. [reference code] One Adam (eps 1e-5) over both networks on  pg_loss + 0.5 * value_loss.
11. [reference code] Global gradient-norm clipping at 0.5.
12. [reference code] Learning rate annealed linearly from 3e-4 to 0 over training.
13. [reference code] Actions sampled unclipped, clipped to the bounds only when sent to the env.
14. [ours] Time-limit truncation bootstraps from V(final observation); termination does not.
15. [ours] One env (as the paper); the suite's one-env Normalize wrapper (core/envs.py) does 6-7 with
    baselines' running mean/variance update; acting uses a NumPy snapshot of the policy; 1 torch thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from replications.core.algorithm import Update
from replications.core.envs import Normalization
from replications.core.logging import RunLogger
from replications.core.networks import Policy
from replications.core.onpolicy import Networks, networks, set_learning_rate, train_on_policy
from replications.core.rollout import Batch
from replications.core.seeds import SeedNets, batch_tensors


@dataclass(frozen=True)
class PPOConfig:
    horizon: int
    """T: env steps collected per iteration."""
    learning_rate: float
    """Adam step size (initial value when annealed)."""
    epochs: int
    """K: passes over each batch."""
    minibatch_size: int
    gamma: float
    gae_lambda: float
    clip_range: float
    """epsilon of the clipped surrogate (also the value-clipping range)."""
    hidden_sizes: tuple[int, ...]
    activation: Literal["tanh", "relu"]
    init_log_std: float
    entropy_coef: float
    """c2 in eq. (9)."""
    value_coef: float
    """c1 in eq. (9), multiplying 0.5 * squared error."""
    clip_value_loss: bool
    normalize_advantages: bool
    anneal_learning_rate: bool
    adam_eps: float
    max_grad_norm: float
    orthogonal_init: bool
    normalize_observations: bool
    clip_observations: float
    normalize_rewards: bool
    clip_rewards: float

    def normalization(self) -> Normalization:
        return Normalization(
            self.normalize_observations, self.normalize_rewards, self.gamma, self.clip_observations, self.clip_rewards
        )

    def networks(self) -> Networks:  # the value MLP with the policy's sizes and activation (the config has no other)
        return networks(self, self.hidden_sizes, self.activation)

    def evaluation(self) -> None:  # scored by its training episodes
        return None


def clipped_surrogate_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_range: float
) -> torch.Tensor:
    """-L^CLIP, eq. (7): the negated mean of min(r A, clip(r, 1-eps, 1+eps) A)."""
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    return -torch.min(ratio * advantages, clipped * advantages).mean()


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip_range: float | None
) -> torch.Tensor:
    """L^VF: 0.5 (V - R)^2, or the reference code's clipped form 0.5 max((V - R)^2, (V_clip - R)^2)."""
    squared = (values - returns).pow(2)
    if clip_range is not None:
        clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
        squared = torch.max(squared, (clipped - returns).pow(2))
    return 0.5 * squared.mean()


def ppo_loss(policy: Policy, value_fn: nn.Module, mb: dict[str, torch.Tensor], cfg: PPOConfig):
    """Eq. (9) on one minibatch: (loss, detached [policy loss, value loss, entropy, approx KL]).

    A pure function of the networks and the minibatch, so ``SeedNets.fn`` can batch it over seeds."""
    adv = mb["advantages"]
    if cfg.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    log_probs, entropy = policy.log_prob_entropy(mb["obs"], mb["actions"])
    pg_loss = clipped_surrogate_loss(log_probs, mb["log_probs"], adv, cfg.clip_range)
    vf_clip = cfg.clip_range if cfg.clip_value_loss else None
    v_loss = value_loss(value_fn(mb["obs"]), mb["values"], mb["returns"], vf_clip)
    entropy_mean = entropy.mean()
    loss = pg_loss + cfg.value_coef * v_loss - cfg.entropy_coef * entropy_mean
    approx_kl = (mb["log_probs"] - log_probs).mean()
    return loss, torch.stack([pg_loss, v_loss, entropy_mean, approx_kl]).detach()


def _learning_rate(cfg: PPOConfig, iteration: int, n_iterations: int) -> float:
    return cfg.learning_rate * (1.0 - iteration / n_iterations if cfg.anneal_learning_rate else 1.0)


def make_update(cfg: PPOConfig, nets: SeedNets) -> Update:
    """``update(batch, iteration, n_iterations) -> [stats]``: K epochs of minibatch Adam steps on eq. (9), the
    gradient norm clipped (per seed). One seed or K at once (core/seeds.py): Adam is elementwise, so each
    seed's slice of stacked parameters sees exactly its own Adam."""
    params = nets.parameters()
    optimizer = torch.optim.Adam(params, lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
    loss_fn = nets.fn(ppo_loss, cfg=cfg)

    def update(batch: Batch, iteration: int, n_iterations: int) -> list[dict[str, Any]]:
        lr = _learning_rate(cfg, iteration, n_iterations)
        set_learning_rate(optimizer, lr)
        totals, n_updates = nets.zeros(4), 0
        for mb in nets.minibatches(batch_tensors(batch), cfg.epochs, cfg.minibatch_size):
            loss, stats = loss_fn(mb)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()  # seeds share no parameter: the gradient of the sum is each seed's own
            nets.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            totals += stats
            n_updates += 1
        pg, vf, ent, kl = (totals / n_updates).unbind(-1)
        return nets.rows({"lr": lr, "policy_loss": pg, "value_loss": vf, "entropy": ent, "approx_kl": kl})

    return Update(update, {"adam": optimizer})


def train(env_id: str, cfg: PPOConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    """Train one seed through the shared on-policy driver; episodes and statistics go to ``logger``."""
    return train_on_policy(env_id, cfg, seed, total_steps, logger, make_update)
