"""On-policy rollout collection from one env (used by PPO, TRPO, NPG, Q-Prop).

Shapes of a ``Batch`` of horizon T: obs (T, obs_dim) float32; actions (T, act_dim) float32 or (T,) int64;
log_probs, values, rewards, next_values, terminated, dones, advantages, returns: (T,).

Acting uses a NumPy snapshot of the policy taken at the start of each batch (``policy.numpy_actor``) and an
explicit NumPy generator seeded from the run seed; log-probabilities and values of the whole batch are then
computed by the torch networks in one pass.

Semantics: the action stored is the one sampled (unclipped); the env receives it clipped to the action
bounds. On truncation (time limit), ``next_values[t]`` is V of the final observation, so the advantage
bootstraps; on termination it is 0. The env is reset after either, and the collector keeps the current
observation across calls so consecutive batches continue the same episodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from replications.core.networks import Policy


@dataclass
class Batch:
    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: np.ndarray
    next_values: np.ndarray
    terminated: np.ndarray
    dones: np.ndarray
    advantages: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    """A_t, set by ``onpolicy.add_advantages`` (empty until then)."""
    returns: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    """The value targets, set with the advantages."""
    final_obs: dict[int, np.ndarray] = field(default_factory=dict)
    """t -> the final observation of an episode truncated at step t (to recompute next values later)."""
    last_obs: np.ndarray | None = None
    """The observation after the batch's last step (its episode goes on unless dones[-1])."""

    def next_observations(self) -> np.ndarray:
        """(T, obs_dim): the observation each step reached: s_{t+1} inside an episode, the final observation
        at a truncation, the observation after the batch for its last step (a terminal step's entry is the
        next episode's first observation, never used: termination masks it)."""
        obs = self.obs.numpy()
        assert self.last_obs is not None, "a collected batch records the observation after its last step"
        nxt = np.concatenate([obs[1:], self.last_obs[None]])
        for t, final in self.final_obs.items():
            nxt[t] = final
        return nxt


EpisodeSink = Callable[[int, float, int], None]


class RolloutCollector:
    def __init__(
        self,
        env: gym.Env,
        policy: Policy,
        value_fn: nn.Module,
        horizon: int,
        generator: torch.Generator,
        seed: int,
        on_episode: EpisodeSink,
    ):
        self.env, self.policy, self.value_fn = env, policy, value_fn
        self.horizon, self.generator, self.on_episode = horizon, generator, on_episode
        self.rng = np.random.default_rng(seed)  # action noise (acting runs on a NumPy policy snapshot)
        self.box = env.action_space if isinstance(env.action_space, gym.spaces.Box) else None
        self.continuous = self.box is not None
        if self.box is not None:
            self.low, self.high = self.box.low, self.box.high
        obs, _ = env.reset(seed=seed)
        self.obs = np.asarray(obs, dtype=np.float32)
        self.step_count = 0

    def collect(self) -> Batch:
        T = self.horizon
        obs_buf = np.zeros((T, *self.obs.shape), dtype=np.float32)
        act_shape = self.box.shape if self.box is not None else ()
        act_buf = np.zeros((T, *act_shape), dtype=np.float32 if self.continuous else np.int64)
        rew_buf, next_val_buf, term_buf, done_buf = (np.zeros(T) for _ in range(4))
        obs = self.obs
        final_obs: dict[int, np.ndarray] = {}  # t -> final observation of a time-limited episode
        act = self.policy.numpy_actor(self.rng)
        with torch.no_grad():
            for t in range(T):
                action = act(obs)
                obs_buf[t], act_buf[t] = obs, action
                env_action = np.clip(action, self.low, self.high) if self.continuous else int(action)
                next_obs, reward, terminated, truncated, info = self.env.step(env_action)
                self.step_count += 1
                rew_buf[t], term_buf[t] = reward, terminated
                if terminated or truncated:
                    done_buf[t] = 1.0
                    if not terminated:  # time limit: bootstrap from the final observation
                        final_obs[t] = np.asarray(next_obs, dtype=np.float32)
                    ep = info["episode"]
                    self.on_episode(self.step_count, float(ep["r"]), int(ep["l"]))
                    next_obs, _ = self.env.reset()
                obs = np.asarray(next_obs, dtype=np.float32)
            # Values and log-probs of the whole batch in one forward pass each (same numbers as per step).
            obs_t, act_t = torch.from_numpy(obs_buf), torch.from_numpy(act_buf)
            log_probs = self.policy.log_prob_entropy(obs_t, act_t)[0]
            extra = np.stack([obs, *final_obs.values()]).astype(np.float32)
            extra_values = self.value_fn(torch.from_numpy(extra)).double().numpy()
            values = self.value_fn(obs_t)
        self.obs = obs
        val = values.double().numpy()
        # next_values[t] = V(s_{t+1}) inside an episode, V(final obs) at a truncation, 0 at a termination,
        # and V(current obs) after the last step of the batch if its episode goes on.
        next_val_buf[:-1] = val[1:]
        next_val_buf[-1] = extra_values[0]
        next_val_buf[term_buf > 0] = 0.0
        next_val_buf[list(final_obs)] = extra_values[1:]
        return Batch(
            obs_t,
            act_t,
            log_probs,
            values,
            rew_buf,
            next_val_buf,
            term_buf,
            done_buf,
            final_obs=final_obs,
            last_obs=obs,
        )
