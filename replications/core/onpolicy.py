"""The on-policy loop driver: collect a batch, estimate advantages, hand it to the algorithm's update.

Every on-policy algorithm (PPO, TRPO, NPG, Q-Prop) runs through ``run_on_policy``; each supplies only its
``update(batch, iteration, n_iterations) -> stats`` function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from replications.core.advantages import gae
from replications.core.logging import RunLogger
from replications.core.networks import Policy
from replications.core.rollout import Batch, RolloutCollector

UpdateFn = Callable[[Batch, int, int], dict[str, Any]]


def run_on_policy(
    env: gym.Env,
    policy: Policy,
    value_fn: nn.Module,
    *,
    total_steps: int,
    horizon: int,
    gamma: float,
    gae_lambda: float,
    update: UpdateFn,
    logger: RunLogger,
    generator: torch.Generator,
    seed: int,
) -> int:
    """Run ceil(total_steps / horizon) iterations (as SB3's ``learn`` does) and return the steps taken."""
    collector = RolloutCollector(env, policy, value_fn, horizon, generator, seed, logger.episode)
    n_iterations = math.ceil(total_steps / horizon)
    for iteration in range(n_iterations):
        batch = collector.collect()
        adv, ret = gae(
            batch.rewards,
            batch.values.double().numpy(),
            batch.next_values,
            batch.terminated,
            batch.dones,
            gamma,
            gae_lambda,
        )
        batch.advantages = torch.from_numpy(adv).float()
        batch.returns = torch.from_numpy(ret).float()
        stats = update(batch, iteration, n_iterations)
        logger.iteration(collector.step_count, **stats)
    return collector.step_count
