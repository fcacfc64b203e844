"""Soft Actor-Critic with automatic temperature.

Papers: T. Haarnoja, A. Zhou, P. Abbeel, S. Levine (2018). Soft Actor-Critic: Off-Policy Maximum Entropy
Deep RL with a Stochastic Actor. ICML 2018, arXiv:1801.01290.  T. Haarnoja et al. (2018). Soft Actor-Critic
Algorithms and Applications. arXiv:1812.05905 (the automatic temperature; Table 1 hyperparameters).

Update (v2 paper numbering), per gradient step on a minibatch from the replay buffer:
    y = r + gamma (1 - terminated) (min_j Q'_j(s', a') - alpha log pi(a'|s')),  a' ~ pi(.|s')      (3, 5)
    J_Q = E[ 1/2 (Q_j(s, a) - y)^2 ]  for both critics j = 1, 2                                     (5)
    J_pi = E[ alpha log pi(a|s) - min_j Q_j(s, a) ],  a = tanh(u), u ~ N(mu(s), sigma(s)) (reparameterised) (7)
    J_alpha = E[ -alpha (log pi(a|s) + H_target) ],  H_target = -dim(A)                            (18)
    theta'_j <- tau theta_j + (1 - tau) theta'_j                                                    (Alg. 1)

The original version (v1 paper, ``configs/sac-v1.yaml``) keeps alpha fixed and adds a state-value network V
with a target copy V'; the critics then regress on V' instead of the soft target above:
    J_V = E[ 1/2 (V(s) - (min_j Q_j(s, a) - alpha log pi(a|s)))^2 ],  a ~ pi(.|s)                  (v1 eq. 5)
    y = r + gamma (1 - terminated) V'(s'),  J_Q = E[ 1/2 (Q_j(s, a) - y)^2 ]                        (v1 eqs. 7, 8)
    psi' <- tau psi + (1 - tau) psi'  (V's target; the critics have none)                            (v1 Alg. 1)

Implementation details:
 1. [paper] Adam 3e-4 for all networks, gamma 0.99, buffer 1e6, minibatch 256, 2x256 ReLU networks,
    tau 0.005, one gradient step per env step, target update every step, target entropy -dim(A) (v2 Table 1).
 2. [paper] Twin Q with the minimum in the target and the policy loss; no V network (v2); v1's V network
    and fixed alpha behind ``value_network`` / ``auto_alpha``.
 3. [paper] tanh-squashed Gaussian policy with the change-of-variables log-prob correction (v1 App. C).
 4. [reference code] log-std clamped to [-20, 2]; alpha learned as log(alpha), initialised to alpha = 1.
 5. [reference code] Uniform random actions for the first steps (v1 code: 1,000; 10,000 for HalfCheetah/Ant).
 6. [paper] Scored by deterministic evaluation (tanh of the mean action), as the papers report.
 7. [ablation] ``log_prob_epsilon`` (default 0, the exact correction): SB3's log(1 - tanh(u)^2 + 1e-6) instead.
 8. [ours] Actions live in [-1, 1] for the networks and the buffer and are rescaled to the env's bounds;
    truncated transitions bootstrap; 10 evaluation episodes every 5,000 steps (the TD3 paper's protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from replications.core.algorithm import Update
from replications.core.checkpoint import Checkpointer
from replications.core.config import late_field
from replications.core.logging import RunLogger
from replications.core.networks import frozen_copy, mlp, params_frozen, tanh_gaussian_log_prob
from replications.core.offpolicy import OffPolicySchedule, off_policy_setup, run_off_policy
from replications.core.replay import ReplayBuffer
from replications.core.targets import bellman_target, polyak_update, soft_bellman_target

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


@dataclass(frozen=True)
class SACConfig:
    learning_rate: float
    gamma: float
    buffer_size: int
    hidden_sizes: tuple[int, ...]
    batch_size: int
    tau: float
    gradient_steps: int
    """Gradient steps per env step (the update-to-data ratio)."""
    target_entropy_per_dim: float
    """H_target = target_entropy_per_dim * dim(A) (-1: the paper's -dim(A))."""
    auto_alpha: bool
    init_alpha: float
    warmup_steps: int
    eval_every: int
    eval_episodes: int
    value_network: bool = False
    """v1: a state-value network V (with target V') between the critics and their targets."""
    log_prob_epsilon: float = late_field(0.0)
    """0: the exact tanh correction; > 0: log(1 - tanh(u)^2 + epsilon), SB3's form at 1e-6 (an ablation)."""


class SquashedGaussianActor(nn.Module):
    """pi(a|s): a = tanh(u), u ~ N(mu(s), diag(sigma(s))^2), both heads from one MLP."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], log_prob_epsilon: float = 0.0):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 2 * act_dim], "relu", out_gain=1.0, orthogonal=False)
        self.log_prob_epsilon = log_prob_epsilon

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised a = tanh(mu + sigma eps) and log pi(a|s)."""
        mean, log_std = self(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(u), tanh_gaussian_log_prob(u, mean, log_std, self.log_prob_epsilon)


def q_network(obs_dim: int, act_dim: int, hidden: tuple[int, ...]) -> nn.Module:
    return mlp([obs_dim + act_dim, *hidden, 1], "relu", out_gain=1.0, orthogonal=False)


def v_network(obs_dim: int, hidden: tuple[int, ...]) -> nn.Module:
    return mlp([obs_dim, *hidden, 1], "relu", out_gain=1.0, orthogonal=False)


def q_value(q: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return q(torch.cat([obs, actions], dim=-1)).squeeze(-1)


def critic_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """J_Q, eq. (5), summed over the twin critics."""
    return 0.5 * ((q1 - target).pow(2).mean() + (q2 - target).pow(2).mean())


def actor_loss(log_prob: torch.Tensor, q_min: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """J_pi, eq. (7)."""
    return (alpha * log_prob - q_min).mean()


def value_loss(v: torch.Tensor, q_min: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """J_V, v1 eq. (5): V(s) regresses on min_j Q_j(s, a) - alpha log pi(a|s), a ~ pi (no gradient into Q, pi)."""
    return 0.5 * (v - (q_min - alpha * log_prob).detach()).pow(2).mean()


def alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J_alpha, eq. (18), on log(alpha)."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


def make_update(
    cfg: SACConfig,
    actor: SquashedGaussianActor,
    q1: nn.Module,
    q2: nn.Module,
    act_dim: int,
    v: nn.Module | None = None,
):
    """One gradient step of SAC v2, or of v1 when ``v`` (the state-value network) is given."""
    # v2 keeps target critics; v1 keeps a target V instead (its critics have none)
    sources = {"v_target": v} if v is not None else {"q1_target": q1, "q2_target": q2}
    targets = {name: frozen_copy(net) for name, net in sources.items()}
    critic_params = [*q1.parameters(), *q2.parameters(), *(v.parameters() if v is not None else [])]
    critic_opt = torch.optim.Adam(critic_params, lr=cfg.learning_rate)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.learning_rate)
    device = next(actor.parameters()).device
    log_alpha = torch.tensor(float(np.log(cfg.init_alpha)), device=device, requires_grad=cfg.auto_alpha)
    alpha_opt = torch.optim.Adam([log_alpha], lr=cfg.learning_rate)
    target_entropy = cfg.target_entropy_per_dim * act_dim

    def update(batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        obs, actions, next_obs = batch["obs"], batch["actions"], batch["next_obs"]
        alpha = log_alpha.detach().exp()
        with torch.no_grad():
            if v is not None:  # v1
                next_v = targets["v_target"](next_obs).squeeze(-1)
                y = bellman_target(batch["rewards"], batch["terminated"], next_v, cfg.gamma)
            else:
                next_actions, next_log_prob = actor.sample(next_obs)
                next_q = torch.min(
                    q_value(targets["q1_target"], next_obs, next_actions),
                    q_value(targets["q2_target"], next_obs, next_actions),
                )
                y = soft_bellman_target(batch["rewards"], batch["terminated"], next_q, next_log_prob, alpha, cfg.gamma)
        q_loss = critic_loss(q_value(q1, obs, actions), q_value(q2, obs, actions), y)
        new_actions, log_prob = actor.sample(obs)
        if v is not None:  # v1: V regresses on the critics before their step, as in v1's joint update
            with torch.no_grad():
                q_now = torch.min(q_value(q1, obs, new_actions), q_value(q2, obs, new_actions))
            q_loss = q_loss + value_loss(v(obs).squeeze(-1), q_now, log_prob, alpha)
        critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        critic_opt.step()

        with params_frozen(q1, q2):  # the actor's loss trains the actor only
            q_min = torch.min(q_value(q1, obs, new_actions), q_value(q2, obs, new_actions))
        pi_loss = actor_loss(log_prob, q_min, alpha)
        actor_opt.zero_grad(set_to_none=True)
        pi_loss.backward()
        actor_opt.step()

        a_loss = alpha_loss(log_alpha, log_prob, target_entropy)
        if cfg.auto_alpha:
            alpha_opt.zero_grad(set_to_none=True)
            a_loss.backward()
            alpha_opt.step()
        for name, target in targets.items():
            polyak_update(target, sources[name], cfg.tau)
        return {  # tensors: read only when logged (no host synchronisation per step)
            "critic_loss": q_loss.detach(),
            "actor_loss": pi_loss.detach(),
            "alpha": alpha,
            "entropy": -log_prob.detach().mean(),
        }

    return Update(
        update,
        {  # what a checkpoint saves
            "actor": actor,
            "q1": q1,
            "q2": q2,
            "critic_opt": critic_opt,
            "actor_opt": actor_opt,
            "log_alpha": log_alpha,
            "alpha_opt": alpha_opt,
            **({"v": v} if v is not None else {}),
            **targets,
        },
    )


def train(env_id: str, cfg: SACConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    env, eval_env, obs_dim, act_dim, device = off_policy_setup(env_id, seed)
    actor = SquashedGaussianActor(obs_dim, act_dim, cfg.hidden_sizes, cfg.log_prob_epsilon).to(device)
    q1, q2 = (q_network(obs_dim, act_dim, cfg.hidden_sizes).to(device) for _ in range(2))
    v = v_network(obs_dim, cfg.hidden_sizes).to(device) if cfg.value_network else None
    update = make_update(cfg, actor, q1, q2, act_dim, v)

    def policy_action(obs: np.ndarray, deterministic: bool) -> np.ndarray:
        with torch.no_grad():
            o = torch.from_numpy(obs)[None].to(device)
            a = torch.tanh(actor(o)[0]) if deterministic else actor.sample(o)[0]
        return a[0].cpu().numpy()

    schedule = OffPolicySchedule.from_config(cfg, total_steps)
    steps = run_off_policy(
        env,
        eval_env,
        explore=lambda o: policy_action(o, False),
        exploit=lambda o: policy_action(o, True),
        update=update,
        buffer=ReplayBuffer(min(cfg.buffer_size, total_steps), obs_dim, act_dim, device),
        schedule=schedule,
        logger=logger,
        rng=np.random.default_rng(seed),
        seed=seed,
        checkpointer=Checkpointer(logger.run_dir),
    )
    torch.save({"actor": actor.state_dict(), "q1": q1.state_dict(), "q2": q2.state_dict()}, logger.run_dir / "model.pt")
    env.close()
    eval_env.close()
    return {"steps": steps}
