"""Deterministic evaluation episodes on a separate env (the score of the papers that report them: DDPG, SAC,
AWR), for both loop drivers.

The evaluation env is built without normalisation wrappers; a policy trained on normalised observations
sees them normalised with the training env's running statistics, read and never updated.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from replications.core.envs import Normalize
from replications.core.networks import Action, CategoricalPolicy, Policy

Act = Callable[[np.ndarray], Action]


def evaluate(env: gym.Env, exploit: Act, episodes: int, seed: int) -> list[tuple[float, int]]:
    """Deterministic-policy episodes on a separate env: (raw return, length) each."""
    results = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(exploit(np.asarray(obs, dtype=np.float32)))
            total, length, done = total + float(reward), length + 1, terminated or truncated
        results.append((total, length))
    return results


def frozen_normalizer(train_env: gym.Env) -> Callable[[np.ndarray], np.ndarray]:
    """obs -> obs as the training env's Normalize wrapper would present it now (without updating it)."""
    env = train_env
    while isinstance(env, gym.Wrapper) and not isinstance(env, Normalize):
        env = env.env
    if not isinstance(env, Normalize) or env.obs_rms is None:
        return lambda obs: obs
    return env.normalized


def deterministic_actor(policy: Policy, train_env: gym.Env, action_space: gym.Space) -> Act:
    """The policy's mean action (argmax for discrete actions), clipped to the action bounds."""
    normalize = frozen_normalizer(train_env)
    box = action_space if isinstance(action_space, gym.spaces.Box) else None

    def act(obs: np.ndarray) -> Action:
        with torch.no_grad():
            o = torch.from_numpy(normalize(obs))[None]
            if isinstance(policy, CategoricalPolicy):
                return np.int64(policy.logits(o)[0].argmax())
            mean = policy.mean(o)[0].numpy()
        return np.clip(mean, box.low, box.high) if box is not None else mean

    return act
