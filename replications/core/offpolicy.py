"""The off-policy loop driver: act, store the transition, update, evaluate.

DDPG, SAC and Q-Prop's critic supply only ``explore(obs) -> action`` (with exploration noise or sampling),
``exploit(obs) -> action`` (deterministic, for evaluation) and ``update(batch) -> stats``; the schedule
(warm-up steps of uniform random actions, update-to-data ratio, evaluation every N steps) is data.

Termination vs truncation: the buffer stores the observation actually reached (the final one at an
episode's end) with ``terminated`` and ``truncated`` apart, so time-limit truncations bootstrap.

Statistics: ``update`` returns tensors; they become numbers only when logged (every ``log_every`` steps),
so on a GPU the update loop needs no host synchronisation of its own.

Checkpoints (core/checkpoint.py) are taken at logging steps: the algorithm's ``state`` objects (networks,
target networks, optimisers, temperature, noise), the replay buffer, every RNG, both envs and the logger;
a run with a checkpoint resumes after it with the same numbers as an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from replications.core.checkpoint import (
    Checkpointer,
    capture,
    env_state,
    load_env_state,
    load_rng_state,
    restore,
    rng_state,
)
from replications.core.logging import RunLogger
from replications.core.replay import ReplayBuffer

Act = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class OffPolicySchedule:
    total_steps: int
    warmup_steps: int
    """Uniform random actions, and no updates, for the first steps."""
    batch_size: int
    updates_per_step: int
    """The update-to-data ratio."""
    eval_every: int
    eval_episodes: int
    log_every: int


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


def run_off_policy(
    env: gym.Env,
    eval_env: gym.Env,
    *,
    explore: Act,
    exploit: Act,
    update: Callable[[dict[str, Any]], dict[str, Any]],
    buffer: ReplayBuffer,
    schedule: OffPolicySchedule,
    logger: RunLogger,
    rng: np.random.Generator,
    seed: int,
    on_episode_start: Callable[[], None] | None = None,
    state: dict[str, Any] | None = None,
    checkpointer: Checkpointer | None = None,
) -> int:
    """Run ``schedule.total_steps`` env steps; returns the steps taken."""
    obs, _ = env.reset(seed=seed)
    obs = np.asarray(obs, dtype=np.float32)
    stats: dict[str, Any] = {}
    first = 1
    saved = checkpointer.load() if checkpointer is not None else None
    if saved is not None:
        restore(state or {}, saved["objects"])
        buffer.load_state_dict(saved["buffer"])
        rng.bit_generator.state = saved["rng_numpy"]
        load_rng_state(saved["rng"])
        load_env_state(env, saved["env"])
        load_env_state(eval_env, saved["eval_env"])
        obs, stats = saved["obs"], saved["stats"]
        logger.restore(saved["logger"])
        first = saved["step"] + 1
        print(f"resuming from the checkpoint at step {saved['step']:,}", flush=True)
    for step in range(first, schedule.total_steps + 1):
        action = env.action_space.sample() if step <= schedule.warmup_steps else explore(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        next_obs = np.asarray(next_obs, dtype=np.float32)
        buffer.add(obs, action, float(reward), next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            ep = info["episode"]
            logger.episode(step, float(ep["r"]), int(ep["l"]))
            obs = np.asarray(env.reset()[0], dtype=np.float32)
            if on_episode_start is not None:
                on_episode_start()
        if step > schedule.warmup_steps:
            for _ in range(schedule.updates_per_step):
                stats = update(buffer.sample(schedule.batch_size, rng))
        if step % schedule.eval_every == 0 or step == schedule.total_steps:
            logger.evaluation(step, evaluate(eval_env, exploit, schedule.eval_episodes, seed + 10_000 + step))
        if stats and (step % schedule.log_every == 0 or step == schedule.total_steps):
            logger.iteration(step, **stats)
            if checkpointer is not None and checkpointer.due() and step < schedule.total_steps:
                checkpointer.save(
                    {
                        "step": step,
                        "objects": capture(state or {}),
                        "buffer": buffer.state_dict(),
                        "rng_numpy": rng.bit_generator.state,
                        "rng": rng_state(),
                        "env": env_state(env),
                        "eval_env": env_state(eval_env),
                        "obs": obs,
                        "stats": stats,
                        "logger": logger.state(),
                    }
                )
    if checkpointer is not None:
        checkpointer.remove()
    return schedule.total_steps
