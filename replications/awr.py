"""Advantage-Weighted Regression.

Paper: X. B. Peng, A. Kumar, G. Zhang, S. Levine (2019). Advantage-Weighted Regression: Simple and Scalable
Off-Policy Reinforcement Learning. arXiv:1910.00177. Settings: the authors' code (xbpeng/awr
``awr_agent.py`` defaults and ``awr_configs.py``), ``configs/awr.yaml``.

Each iteration (Algorithm 1), after adding ``samples_per_iter`` new steps to a FIFO buffer D of recent ones:
    R^lambda_t = r_t + gamma [(1 - lambda) V(s_{t+1}) + lambda R^lambda_{t+1}]            (TD(lambda) targets)
    V <- argmin E_D[ 1/2 (R^lambda - V(s))^2 ]                     (critic_steps SGD steps on minibatches)
    A = R^lambda - V(s),  w = min(exp(A_hat / beta), w_max),  A_hat = (A - mean A) / std A   (code: normalised A)
    pi <- argmax E_D[ w log pi(a|s) ]  - c_bound * E[ action-bound violation of the mean^2 ]  (actor_steps steps)

Implementation details:
 1. [paper] Weights exp(A / beta) clipped at w_max = 20; TD(lambda) value targets; a FIFO buffer of the
    most recent 50k samples; 2048 new samples per iteration.
 2. [reference code] Advantages normalised over the buffer, temperature 1.0 (the paper's beta 0.05 is for
    unnormalised advantages; the author's explanation is quoted in ``../shared`` papers.md section 6a).
 3. [reference code] SGD with momentum 0.9 for both networks: actor step size per env (1e-4 Hopper, 5e-5
    HalfCheetah/Ant, 2.5e-5 Walker2d, 1e-5 Humanoid), critic 0.01; minibatch 256; 1000 actor and 200
    critic steps per iteration; gamma 0.99, lambda 0.95.
 4. [reference code] Networks 128-64 ReLU; Gaussian policy with a fixed (not learned) std: 0.4 (0.2 Ant).
 5. [reference code] Observations normalised by running statistics of the first 300k samples, then frozen.
 6. [reference code] Action-bound loss, weight 10, on the policy mean leaving the action bounds.
 7. [reference code] Scored by deterministic test episodes (the mean action), 32 of them.
 8. [reference code] The critic predicts V (1 - gamma) (its value normaliser, scale 1 / (1 - gamma)); it is
    fitted first, then the TD(lambda) targets and the advantages are recomputed with the updated critic;
    minibatches are consecutive slices of a permutation, reshuffled after each pass.
 9. [ours] PyTorch default init (the code: Xavier, policy output U(+-0.01)); actions in env units (the code
    normalises them by the bounds: the same for the [-1, 1] MuJoCo tasks); truncation bootstraps from
    V(final observation); the loop is the shared on-policy driver (its GAE is unused).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import gymnasium as gym
import torch

from replications.core.advantages import standardize, td_lambda_returns
from replications.core.algorithm import Update
from replications.core.envs import Normalization, check_env_id
from replications.core.logging import RunLogger
from replications.core.networks import GaussianPolicy
from replications.core.onpolicy import Evaluation, Networks, networks, train_on_policy
from replications.core.replay import RecentSamples
from replications.core.rollout import Batch
from replications.core.seeds import SeedNets, one_seed
from replications.core.value import value_regression_loss


@dataclass(frozen=True)
class AWRConfig:
    horizon: int
    """samples_per_iter: new env steps per iteration."""
    buffer_size: int
    gamma: float
    gae_lambda: float
    """lambda of the TD(lambda) value targets."""
    actor_learning_rate: float
    critic_learning_rate: float
    momentum: float
    minibatch_size: int
    actor_steps: int
    critic_steps: int
    temperature: float
    """beta (on normalised advantages when normalize_advantages)."""
    weight_clip: float
    normalize_advantages: bool
    action_bound_weight: float
    hidden_sizes: tuple[int, ...]
    activation: Literal["tanh", "relu"]
    value_hidden_sizes: tuple[int, ...]
    value_activation: Literal["tanh", "relu"]
    init_log_std: float
    """log of the fixed action std."""
    orthogonal_init: bool
    normalize_observations: bool
    clip_observations: float
    normalizer_samples: int
    normalize_rewards: bool
    eval_every: int
    eval_episodes: int

    def normalization(self) -> Normalization:  # observations only, frozen after normalizer_samples
        return Normalization(
            self.normalize_observations,
            self.normalize_rewards,
            clip_observations=self.clip_observations,
            obs_update_limit=self.normalizer_samples,
        )

    def networks(self) -> Networks:
        return networks(self, self.value_hidden_sizes, self.value_activation)

    def evaluation(self) -> Evaluation:
        return Evaluation(self.eval_every, self.eval_episodes)


def awr_weights(adv: torch.Tensor, temperature: float, weight_clip: float) -> torch.Tensor:
    """w = min(exp(A / beta), w_max)."""
    return torch.exp(adv / temperature).clamp(max=weight_clip)


def actor_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """-E[w log pi(a|s)]: weighted maximum likelihood of the buffer's actions."""
    return -(weights * log_probs).mean()


def action_bound_loss(mean: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """1/2 mean over states of the squared distance of the policy mean outside [low, high], summed over dims
    (reference code)."""
    return 0.5 * ((mean - high).clamp(min=0).pow(2) + (low - mean).clamp(min=0).pow(2)).sum(-1).mean()


def make_update(cfg: AWRConfig, nets: SeedNets, action_bounds: tuple[Any, Any] | None = None) -> Update:
    """``update(batch, iteration, n_iterations) -> [stats]`` for the on-policy driver (one seed);
    ``action_bounds`` (low, high) for the action-bound loss of a continuous policy."""
    policy, value_fn, generator = one_seed(nets).parts()
    if isinstance(policy, GaussianPolicy):
        policy.log_std.requires_grad_(False)  # fixed exploration std (reference code: trainable=False)
    actor_params = [p for p in policy.parameters() if p.requires_grad]
    actor_opt = torch.optim.SGD(actor_params, lr=cfg.actor_learning_rate, momentum=cfg.momentum)
    critic_opt = torch.optim.SGD(value_fn.parameters(), lr=cfg.critic_learning_rate, momentum=cfg.momentum)
    samples = RecentSamples(cfg.buffer_size)
    bounds = None if action_bounds is None else tuple(torch.as_tensor(b, dtype=torch.float32) for b in action_bounds)

    value_scale = 1.0 / (1.0 - cfg.gamma)  # the critic predicts V / value_scale (reference code's value normaliser)

    def values_of(obs: torch.Tensor) -> torch.Tensor:
        return value_scale * value_fn(obs)

    def minibatches(n: int, steps: int):  # noqa: ANN202
        """The reference code's sampler: consecutive slices of a permutation, reshuffled after each pass."""
        per_pass = -(-n // cfg.minibatch_size)
        for b in range(steps):
            if b % per_pass == 0:
                perm = torch.randperm(n, generator=generator)
            yield perm[(b * cfg.minibatch_size + torch.arange(cfg.minibatch_size)) % n]

    def td_lambda_targets() -> tuple[torch.Tensor, torch.Tensor]:
        """(V(s), R^lambda) over the whole buffer with the current critic."""
        with torch.no_grad():
            values = values_of(obs_all()).double().numpy()
        returns = td_lambda_returns(
            samples.rewards, values, samples.next_values(values_of), samples.terminated, samples.dones,
            cfg.gamma, cfg.gae_lambda,
        )  # fmt: skip
        return torch.from_numpy(values).float(), torch.from_numpy(returns).float()

    def obs_all() -> torch.Tensor:
        return torch.from_numpy(samples.obs)

    def update(batch: Batch, iteration: int, n_iterations: int) -> list[dict[str, Any]]:
        samples.add(batch)
        obs, actions = obs_all(), torch.from_numpy(samples.actions)
        _, targets = td_lambda_targets()
        critic_total = torch.zeros(())
        for idx in minibatches(len(samples), cfg.critic_steps):
            loss = value_regression_loss(value_fn, obs[idx], targets[idx] / value_scale)
            critic_opt.zero_grad(set_to_none=True)
            loss.backward()
            critic_opt.step()
            critic_total += loss.detach()
        values, targets = td_lambda_targets()  # again, with the updated critic (as the reference code)
        adv = targets - values
        if cfg.normalize_advantages:
            adv = standardize(adv, 1e-5, unbiased=False)
        weights = awr_weights(adv, cfg.temperature, cfg.weight_clip)
        actor_total = torch.zeros(())
        for idx in minibatches(len(samples), cfg.actor_steps):
            log_probs = policy.log_prob_entropy(obs[idx], actions[idx])[0]
            loss = actor_loss(log_probs, weights[idx])
            if bounds is not None and isinstance(policy, GaussianPolicy):  # bounds: a Box, so a Gaussian
                loss = loss + cfg.action_bound_weight * action_bound_loss(policy.mean(obs[idx]), *bounds)
            actor_opt.zero_grad(set_to_none=True)
            loss.backward()
            actor_opt.step()
            actor_total += loss.detach()
        return nets.rows(
            {
                "critic_loss": critic_total / max(cfg.critic_steps, 1),
                "actor_loss": actor_total / max(cfg.actor_steps, 1),
                "mean_weight": weights.mean(),
                "clipped_fraction": (weights >= cfg.weight_clip).float().mean(),
                "buffer": len(samples),
            }
        )

    # saved in checkpoints (the buffer too: it is part of the algorithm's state)
    return Update(update, {"actor_sgd": actor_opt, "critic_sgd": critic_opt, "samples": samples})


def train(env_id: str, cfg: AWRConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    """Train one seed through the shared on-policy driver (which also runs the evaluation episodes)."""
    space = gym.make(check_env_id(env_id)).action_space
    bounds = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None
    return train_on_policy(env_id, cfg, seed, total_steps, logger, partial(make_update, action_bounds=bounds))
