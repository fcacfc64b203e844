"""Deep Deterministic Policy Gradient.

Paper: T. P. Lillicrap, J. J. Hunt, A. Pritzel, N. Heess, T. Erez, Y. Tassa, D. Silver, D. Wierstra (2016).
Continuous control with deep reinforcement learning. ICLR 2016, arXiv:1509.02971. Hyperparameters:
Supplementary Section 7 (``configs/ddpg.yaml``). Reference numbers on gym: none ran this paper's exact settings.
The TD3 paper's "DDPG" column (Fujimoto et al. 2018, Tables 1 and 2) is OpenAI Baselines' DDPG (the paper's rates,
L2, tau, batch and OU noise, plus observation normalisation and a 64-64 LayerNorm network), not the TD3
repository's DDPG.py; the reports show it as context, labelled so, and judge ours against SB3.

Update (Algorithm 1), per gradient step on a minibatch from the replay buffer:
    y = r + gamma (1 - terminated) Q'(s', mu'(s'))                                     (target networks)
    L = mean (y - Q(s, a))^2     (+ L2 weight decay 1e-2 on Q's parameters, Section 7)
    grad_theta J = mean grad_a Q(s, a)|_{a = mu(s)} grad_theta mu(s)       (6): minimise -mean Q(s, mu(s))
    theta' <- tau theta + (1 - tau) theta'   for both target networks
Exploration: a = clip(mu(s) + N_t, -1, 1), N an Ornstein-Uhlenbeck process reset at each episode start.

Implementation details:
 1. [paper] Adam, actor 1e-4, critic 1e-3 with L2 weight decay 1e-2; gamma 0.99; tau 0.001; minibatch 64;
    replay buffer 1e6; OU noise theta 0.15, sigma 0.2 (Section 7).
 2. [paper] 400-300 ReLU networks, tanh actor output; the action enters Q at its second hidden layer
    ([ablation] ``action_layer=1``: at the input, as SB3's critic).
 3. [paper] Final layers initialised U[-3e-3, 3e-3], the others U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
    (PyTorch's default Linear init is exactly that).
 4. [paper] Batch normalisation on the low-dimensional inputs and layers: NOT used here, so that the SB3
    cross-check runs at equal settings (SB3's DDPG has none); listed in ``deviations``.
 5. [reference code] Uniform random actions for the first 1,000 steps (10,000 on HalfCheetah and Ant), then
    one gradient step per env step (the TD3 paper's protocol for its DDPG runs); the weight decay also
    applies to Q's biases (torch Adam's weight_decay, as the TD3 repository's DDPG.py does).
 6. [paper] Scored by deterministic evaluation (no noise): 10 episodes every 5,000 steps (TD3's protocol).
 7. [ours] Actions live in [-1, 1] and are rescaled to the env's bounds; truncation bootstraps; networks
    on ``RLREPRO_DEVICE`` (default cpu), the update returning tensors (no host synchronisation per step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from replications.core.algorithm import Update
from replications.core.checkpoint import Checkpointer
from replications.core.config import late_field
from replications.core.logging import RunLogger
from replications.core.networks import frozen_copy, params_frozen
from replications.core.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from replications.core.offpolicy import OffPolicySchedule, off_policy_setup, run_off_policy
from replications.core.replay import ReplayBuffer
from replications.core.targets import bellman_target, polyak_update


@dataclass(frozen=True)
class DDPGConfig:
    actor_learning_rate: float
    critic_learning_rate: float
    critic_weight_decay: float
    gamma: float
    tau: float
    batch_size: int
    buffer_size: int
    hidden_sizes: tuple[int, ...]
    final_layer_init: float
    """Final layers' weights and biases ~ U[-w, w]."""
    noise: Literal["ou", "gaussian"]
    noise_theta: float
    noise_sigma: float
    warmup_steps: int
    gradient_steps: int
    eval_every: int
    eval_episodes: int
    action_layer: int = late_field(2)
    """Where the critic takes the action: 2, the second hidden layer (the paper); 1, the input (SB3's; an ablation)."""


def _uniform_final(layer: nn.Linear, w: float) -> nn.Linear:
    nn.init.uniform_(layer.weight, -w, w)
    nn.init.uniform_(layer.bias, -w, w)
    return layer


class Actor(nn.Module):
    """mu(s) in [-1, 1]^d."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], final_init: float):
        super().__init__()
        sizes = [obs_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, _uniform_final(nn.Linear(sizes[-1], act_dim), final_init), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class Critic(nn.Module):
    """Q(s, a) with the action entering at the second hidden layer (paper, Section 7), or with
    ``action_layer=1`` at the input (SB3's critic)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], final_init: float, action_layer: int = 2):
        super().__init__()
        if action_layer not in (1, 2):
            raise ValueError(f"action_layer must be 1 (the input) or 2 (the second hidden layer), got {action_layer}")
        self.action_first = action_layer == 1
        self.first = nn.Linear(obs_dim + (act_dim if self.action_first else 0), hidden[0])
        sizes = [hidden[0] + (0 if self.action_first else act_dim), *hidden[1:]]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.rest = nn.Sequential(*layers, _uniform_final(nn.Linear(sizes[-1], 1), final_init))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.action_first:
            return self.rest(torch.relu(self.first(torch.cat([obs, actions], dim=-1)))).squeeze(-1)
        h = torch.relu(self.first(obs))
        return self.rest(torch.cat([h, actions], dim=-1)).squeeze(-1)


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L = mean (y - Q(s, a))^2  (Algorithm 1; the L2 term is the optimiser's weight decay)."""
    return (q - target).pow(2).mean()


def actor_loss(q_of_mu: torch.Tensor) -> torch.Tensor:
    """-mean Q(s, mu(s)): its gradient is the deterministic policy gradient (6) with the sign flipped."""
    return -q_of_mu.mean()


def make_update(cfg: DDPGConfig, actor: Actor, critic: Critic):
    actor_target, critic_target = frozen_copy(actor), frozen_copy(critic)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_learning_rate)
    critic_opt = torch.optim.Adam(
        critic.parameters(), lr=cfg.critic_learning_rate, weight_decay=cfg.critic_weight_decay
    )

    def update(batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        obs, actions, next_obs = batch["obs"], batch["actions"], batch["next_obs"]
        with torch.no_grad():
            y = bellman_target(
                batch["rewards"], batch["terminated"], critic_target(next_obs, actor_target(next_obs)), cfg.gamma
            )
        q = critic(obs, actions)
        q_loss = critic_loss(q, y)
        critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        critic_opt.step()

        with params_frozen(critic):  # the actor's loss trains the actor only
            pi_loss = actor_loss(critic(obs, actor(obs)))
        actor_opt.zero_grad(set_to_none=True)
        pi_loss.backward()
        actor_opt.step()

        polyak_update(actor_target, actor, cfg.tau)
        polyak_update(critic_target, critic, cfg.tau)
        return {"critic_loss": q_loss.detach(), "actor_loss": pi_loss.detach(), "q_mean": q.detach().mean()}

    return Update(
        update,
        {  # what a checkpoint saves
            "actor": actor,
            "critic": critic,
            "actor_target": actor_target,
            "critic_target": critic_target,
            "actor_opt": actor_opt,
            "critic_opt": critic_opt,
        },
    )


def train(env_id: str, cfg: DDPGConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    env, eval_env, obs_dim, act_dim, device = off_policy_setup(env_id, seed)
    actor = Actor(obs_dim, act_dim, cfg.hidden_sizes, cfg.final_layer_init).to(device)
    critic = Critic(obs_dim, act_dim, cfg.hidden_sizes, cfg.final_layer_init, cfg.action_layer).to(device)
    update = make_update(cfg, actor, critic)
    noise_rng = np.random.default_rng([seed, 1])  # its own stream: checkpoints restore it with the noise
    noise: OrnsteinUhlenbeckNoise | GaussianNoise
    if cfg.noise == "ou":
        noise = OrnsteinUhlenbeckNoise(act_dim, noise_rng, theta=cfg.noise_theta, sigma=cfg.noise_sigma)
    else:
        noise = GaussianNoise(act_dim, noise_rng, sigma=cfg.noise_sigma)

    def act(obs: np.ndarray, explore: bool) -> np.ndarray:
        with torch.no_grad():
            a = actor(torch.from_numpy(obs)[None].to(device))[0].cpu().numpy()
        return np.clip(a + noise(), -1.0, 1.0) if explore else a

    schedule = OffPolicySchedule.from_config(cfg, total_steps)
    steps = run_off_policy(
        env,
        eval_env,
        explore=lambda o: act(o, True),
        exploit=lambda o: act(o, False),
        update=update.with_state(noise=noise),  # the noise process resumes too
        buffer=ReplayBuffer(min(cfg.buffer_size, total_steps), obs_dim, act_dim, device),
        schedule=schedule,
        logger=logger,
        rng=np.random.default_rng(seed),
        seed=seed,
        on_episode_start=noise.reset,
        checkpointer=Checkpointer(logger.run_dir),
    )
    torch.save({"actor": actor.state_dict(), "critic": critic.state_dict()}, logger.run_dir / "model.pt")
    env.close()
    eval_env.close()
    return {"steps": steps}
