"""The on-policy loop driver: collect a batch, estimate advantages, hand it to the algorithm's update.

Every on-policy algorithm (PPO, TRPO, NPG, Q-Prop, AWR) runs through ``run_on_policy``; each supplies only its
update, built by ``make_update(cfg, nets)`` over the networks it trains (core/seeds.py: one seed's, or K
seeds' batched; core/algorithm.py: ``update(batch, iteration, n_iterations) -> [stats row per seed]``, with
its optimisers and whatever else it owns in ``update.state``, so that checkpoints hold them). PPO, TRPO and
NPG are written against both kinds of ``nets``, so ``train_on_policy_seeds`` trains K seeds of them at once
with the same update.

Checkpoints (core/checkpoint.py) are taken between iterations; a run whose directory holds one resumes at
the iteration after it with every network, optimiser, RNG, the env and the logger restored, so the resumed
run produces the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import gymnasium as gym
import torch
from torch import nn

from replications.core.advantages import gae
from replications.core.algorithm import Update
from replications.core.checkpoint import Checkpointer, LoopState
from replications.core.envs import RAW, Normalization, make_env, normalization_state
from replications.core.evaluation import deterministic_actor, evaluate
from replications.core.logging import RunLogger
from replications.core.networks import Policy, make_policy, make_value_function
from replications.core.rollout import Batch, RolloutCollector
from replications.core.seeding import seed_everything
from replications.core.seeds import OneSeed, SeedNets, SeedParallel, stack_batches


@dataclass(frozen=True)
class Networks:
    """The policy's and the value function's architectures (core/networks.py)."""

    hidden_sizes: tuple[int, ...]
    activation: Literal["tanh", "relu"]
    init_log_std: float
    orthogonal_init: bool
    value_hidden_sizes: tuple[int, ...]
    value_activation: Literal["tanh", "relu"]


class PolicyConfig(Protocol):
    """The policy fields every on-policy config has."""

    @property
    def hidden_sizes(self) -> tuple[int, ...]: ...

    @property
    def activation(self) -> Literal["tanh", "relu"]: ...

    @property
    def init_log_std(self) -> float: ...

    @property
    def orthogonal_init(self) -> bool: ...


def networks(
    cfg: PolicyConfig, value_hidden_sizes: tuple[int, ...], value_activation: Literal["tanh", "relu"]
) -> Networks:
    """The policy from the config's ``hidden_sizes, activation, init_log_std, orthogonal_init`` (fields every
    on-policy config has), the value function as the config says (its own fields, or the policy's)."""
    return Networks(
        cfg.hidden_sizes, cfg.activation, cfg.init_log_std, cfg.orthogonal_init, value_hidden_sizes, value_activation
    )


@dataclass(frozen=True)
class Evaluation:
    """Deterministic evaluation episodes after the iteration that crosses each multiple of ``every`` steps."""

    every: int
    episodes: int


MakeUpdate = Callable[[Any, SeedNets], Update]
"""``make_update(cfg, nets) -> update``: an algorithm's update over one seed's or K seeds' networks; the
update maps ``(batch, iteration, n_iterations)`` to one statistics row per seed."""


class OnPolicyConfig(Protocol):
    """What the on-policy driver reads from an algorithm's config: the rollout's horizon and discounting as
    fields, and its parts, each composed by the config from its own cited values (no default in the driver)."""

    @property
    def horizon(self) -> int: ...

    @property
    def gamma(self) -> float: ...

    @property
    def gae_lambda(self) -> float: ...

    def normalization(self) -> Normalization: ...

    def networks(self) -> Networks: ...

    def evaluation(self) -> Evaluation | None: ...


def add_advantages(batch: Batch, gamma: float, gae_lambda: float) -> Batch:
    """Fill ``batch.advantages`` and ``batch.returns`` (= advantages + values) by GAE."""
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
    return batch


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def run_on_policy(
    env: gym.Env,
    policy: Policy,
    value_fn: nn.Module,
    *,
    total_steps: int,
    horizon: int,
    gamma: float,
    gae_lambda: float,
    update: Update,
    logger: RunLogger,
    generator: torch.Generator,
    seed: int,
    checkpointer: Checkpointer | None = None,
    evaluator: Callable[[int, bool], None] | None = None,
) -> int:
    """Run ceil(total_steps / horizon) iterations (as SB3's ``learn`` does) and return the steps taken.

    ``evaluator(step, last_iteration)``, if given, runs after each update (deterministic evaluation episodes
    for the algorithms scored by them)."""
    collector = RolloutCollector(env, policy, value_fn, horizon, generator, seed, logger.episode)
    n_iterations = math.ceil(total_steps / horizon)
    objects = {"policy": policy, "value": value_fn, **update.state, "generator": generator, "collector": collector.rng}
    loop = LoopState(objects, {"env": env}, logger, checkpointer)
    first = 0
    resumed = loop.resume()
    if resumed is not None:
        last, values = resumed
        collector.obs, collector.step_count = values["obs"], values["step_count"]
        first = last + 1
        print(f"resuming from the checkpoint at step {collector.step_count:,} (iteration {first})", flush=True)
    for iteration in range(first, n_iterations):
        batch = add_advantages(collector.collect(), gamma, gae_lambda)
        (stats,) = update(batch, iteration, n_iterations)
        logger.iteration(collector.step_count, **stats)
        if evaluator is not None:
            evaluator(collector.step_count, iteration + 1 == n_iterations)
        if iteration + 1 < n_iterations:
            loop.save_if_due(iteration, obs=collector.obs, step_count=collector.step_count)
    loop.finish()
    return collector.step_count


def train_on_policy(
    env_id: str,
    cfg: OnPolicyConfig,
    seed: int,
    total_steps: int,
    logger: RunLogger,
    make_update: MakeUpdate,
) -> dict[str, Any]:
    """Seed, build the env and the two networks, run the loop, save the model and normalisation state.
    ``make_update(cfg, nets)`` returns the algorithm's update, here for one seed (core/seeds.py: OneSeed)."""
    env, policy, value_fn, generator = build_seed(env_id, cfg, seed)
    evaluator, eval_env = None, None
    schedule = cfg.evaluation()
    if schedule is not None:  # algorithms scored by deterministic evaluation episodes (AWR)
        eval_env = make_env(env_id, seed + 1, RAW)
        exploit = deterministic_actor(policy, env, eval_env.action_space)

        def evaluator(step: int, last: bool) -> None:
            """After the iteration that crosses each multiple of ``schedule.every``, and after the last one."""
            if last or (step - cfg.horizon) // schedule.every != step // schedule.every:
                logger.evaluation(step, evaluate(eval_env, exploit, schedule.episodes, seed + 10_000 + step))

    steps = run_on_policy(
        env,
        policy,
        value_fn,
        total_steps=total_steps,
        horizon=cfg.horizon,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        update=make_update(cfg, OneSeed(policy, value_fn, generator)),
        logger=logger,
        generator=generator,
        seed=seed,
        checkpointer=Checkpointer(logger.run_dir),
        evaluator=evaluator,
    )
    if eval_env is not None:
        eval_env.close()
    return finish_seed(env, policy, value_fn, logger, steps)


def build_seed(env_id: str, cfg: OnPolicyConfig, seed: int) -> tuple[gym.Env, Policy, nn.Module, torch.Generator]:
    """Seed everything, then build the env, the policy and the value function (in that order: the networks'
    initial weights come from the seeded global torch RNG)."""
    generator = seed_everything(seed)
    env = make_env(env_id, seed, cfg.normalization())
    net = cfg.networks()
    policy = make_policy(
        env.observation_space, env.action_space, net.hidden_sizes, net.activation, net.init_log_std, net.orthogonal_init
    )
    value_fn = make_value_function(
        env.observation_space, net.value_hidden_sizes, net.value_activation, net.orthogonal_init
    )
    return env, policy, value_fn, generator


def finish_seed(env: gym.Env, policy: Policy, value_fn: nn.Module, logger: RunLogger, steps: int) -> dict[str, Any]:
    """Save the model and normalisation state into the run directory; return the run's facts."""
    state = normalization_state(env)
    torch.save(
        {"policy": policy.state_dict(), "value": value_fn.state_dict(), "normalization": state},
        logger.run_dir / "model.pt",
    )
    env.close()
    return {"steps": steps, "normalization": state}


def train_on_policy_seeds(
    env_id: str,
    cfg: OnPolicyConfig,
    seeds: list[int],
    total_steps: int,
    loggers: list[RunLogger],
    make_update: MakeUpdate,
) -> list[dict[str, Any]]:
    """``train_on_policy`` for len(seeds) seeds in one process with batched networks (core/seeds.py:
    SeedParallel); the same ``make_update`` as a single run. Returns each seed's facts."""
    built = [build_seed(env_id, cfg, seed) for seed in seeds]
    model = SeedParallel([b[1] for b in built], [b[2] for b in built], [b[3] for b in built])
    collectors = [
        RolloutCollector(env, policy, value_fn, cfg.horizon, gen, seed, logger.episode)
        for (env, policy, value_fn, gen), seed, logger in zip(built, seeds, loggers, strict=True)
    ]
    update = make_update(cfg, model)
    n_iterations = math.ceil(total_steps / cfg.horizon)
    for iteration in range(n_iterations):
        batch = stack_batches([add_advantages(c.collect(), cfg.gamma, cfg.gae_lambda) for c in collectors])
        rows = update(batch, iteration, n_iterations)
        model.sync()
        for collector, logger, row in zip(collectors, loggers, rows, strict=True):
            logger.iteration(collector.step_count, **row)
    return [
        finish_seed(env, pair.policy, pair.value_fn, logger, collector.step_count)
        for (env, *_), pair, logger, collector in zip(built, model.pairs, loggers, collectors, strict=True)
    ]
