"""The off-policy loop driver: act, store the transition, update, evaluate.

DDPG, SAC and Q-Prop's critic supply only ``explore(obs) -> action`` (with exploration noise or sampling),
``exploit(obs) -> action`` (deterministic, for evaluation) and ``update(batch) -> stats``; the schedule
(warm-up steps of uniform random actions, update-to-data ratio, evaluation every N steps) is data.

Termination vs truncation: the buffer stores the observation actually reached (the final one at an
episode's end) with ``terminated`` and ``truncated`` apart, so time-limit truncations bootstrap.

Statistics: ``update`` returns tensors; they become numbers only when logged (every ``log_every`` steps),
so on a GPU the update loop needs no host synchronisation of its own (tests/test_gpu.py checks it);
with ``RLREPRO_CUDA_GRAPH=1`` the update is replayed as one CUDA graph (core/cuda_graph.py).

Checkpoints (core/checkpoint.py: ``LoopState``, as the on-policy driver's) are taken at logging steps: the
algorithm's ``state`` objects (networks, target networks, optimisers, temperature, noise), the replay buffer,
every RNG, both envs and the logger; a run with a checkpoint resumes after it with the same numbers as an
uninterrupted run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from replications.core.algorithm import Update
from replications.core.checkpoint import Checkpointer, LoopState
from replications.core.cuda_graph import cuda_graphed, graph_updates_requested
from replications.core.envs import RAW, make_env
from replications.core.errors import UserError
from replications.core.evaluation import Act, evaluate
from replications.core.logging import RunLogger
from replications.core.replay import ReplayBuffer
from replications.core.seeding import seed_everything


class UnitBoxActions(gym.Wrapper):
    """Actions in [-1, 1]^d for the networks and the replay buffer, rescaled to the env's bounds on the way
    in (DDPG's and SAC's tanh outputs; warm-up actions are sampled uniformly in [-1, 1])."""

    def __init__(self, env: gym.Env, seed: int):
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"this algorithm needs a continuous action space; the env has {env.action_space}")
        self.low, self.high = env.action_space.low, env.action_space.high
        self.action_space = gym.spaces.Box(-1.0, 1.0, env.action_space.shape, np.float32, seed=seed)

    def step(self, action: np.ndarray):  # noqa: ANN201
        action = np.asarray(action, dtype=np.float32)
        return self.env.step(self.low + (action + 1.0) * 0.5 * (self.high - self.low))


def run_device() -> torch.device:
    """Where the off-policy networks and minibatches live: ``RLREPRO_DEVICE`` (default ``cpu``; e.g.
    ``cuda``). Not part of a run's identity: the algorithm is the same on every device."""
    device = torch.device(os.environ.get("RLREPRO_DEVICE", "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"RLREPRO_DEVICE={device} but torch {torch.__version__} sees no CUDA device; allowed: cpu")
    return device


def off_policy_setup(env_id: str, seed: int) -> tuple[gym.Env, gym.Env, int, int, torch.device]:
    """Seed everything; the training and evaluation envs, the observation and action sizes, the device."""
    seed_everything(seed)
    env, eval_env = make_off_policy_envs(env_id, seed)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    assert obs_shape is not None and act_shape is not None, "flat Box observations and actions"
    return env, eval_env, int(obs_shape[0]), int(act_shape[0]), run_device()


def make_off_policy_envs(env_id: str, seed: int) -> tuple[gym.Env, gym.Env]:
    """The training env and a separate evaluation env (seeded apart), raw rewards and observations."""
    return UnitBoxActions(make_env(env_id, seed, RAW), seed), UnitBoxActions(make_env(env_id, seed + 1, RAW), seed)


class OffPolicyConfig(Protocol):
    """The schedule fields every off-policy config (SAC, DDPG) has, each cited in its config."""

    @property
    def warmup_steps(self) -> int: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def gradient_steps(self) -> int: ...

    @property
    def eval_every(self) -> int: ...

    @property
    def eval_episodes(self) -> int: ...


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

    @classmethod
    def from_config(cls, cfg: OffPolicyConfig, total_steps: int, log_every: int = 1000) -> OffPolicySchedule:
        """The schedule of an off-policy config (``warmup_steps, batch_size, gradient_steps, eval_every,
        eval_episodes``), shared by our SAC and DDPG and their SB3 adapters."""
        return cls(
            total_steps,
            cfg.warmup_steps,
            cfg.batch_size,
            cfg.gradient_steps,
            cfg.eval_every,
            cfg.eval_episodes,
            log_every,
        )


def run_off_policy(
    env: gym.Env,
    eval_env: gym.Env,
    *,
    explore: Act,
    exploit: Act,
    update: Update,
    buffer: ReplayBuffer,
    schedule: OffPolicySchedule,
    logger: RunLogger,
    rng: np.random.Generator,
    seed: int,
    on_episode_start: Callable[[], None] | None = None,
    checkpointer: Checkpointer | None = None,
) -> int:
    """Run ``schedule.total_steps`` env steps; returns the steps taken. Checkpoints hold ``update.state``."""
    loop = LoopState(
        {**update.state, "buffer": buffer, "rng_numpy": rng}, {"env": env, "eval_env": eval_env}, logger, checkpointer
    )
    obs, _ = env.reset(seed=seed)
    obs = np.asarray(obs, dtype=np.float32)
    stats: dict[str, Any] = {}
    first = 1
    resumed = loop.resume()
    if resumed is not None:
        last, values = resumed
        obs, stats = values["obs"], values["stats"]
        first = last + 1
        print(f"resuming from the checkpoint at step {last:,}", flush=True)
    if graph_updates_requested() and buffer.device.type == "cuda":
        update = cuda_graphed(update)
    for step in range(first, schedule.total_steps + 1):
        action = np.asarray(env.action_space.sample() if step <= schedule.warmup_steps else explore(obs))
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
            if step < schedule.total_steps:
                loop.save_if_due(step, obs=obs, stats=stats)
    loop.finish()
    return schedule.total_steps
