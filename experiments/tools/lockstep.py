"""``rlrepro lockstep ALGO ENV``: ours and SB3 from the same weights and the same randomness, compared step by
step and update by update, so a disagreement between the two is located, not argued from p-values.

Both implementations train under the grid's settings (the paper config resolved for the env), through their
real training loops: ours in our driver, SB3's ``learn`` through our adapter (experiments/baselines/sb3.py).
Before they start, the SB3 model is given our initial weights; they are fed the same randomness (minibatch rows
and exploration noise drawn as SB3 draws them, from NumPy's global generator seeded by the run's seed; SAC's
reparameterisation noise and PPO's action noise a fixed function of the mean they perturb, as neither library's
draw order is the other's; PPO's minibatches in SB3's order); and each documented difference of the adapter
that can be aligned is aligned (``ALIGNMENTS``; ``--keep NAME`` leaves one in place, so its effect is seen on its
own). Each run records a trace:

- every env step of the training env and of the evaluation env: action, reward, terminated, truncated;
- after every update: each loss the two compute, the temperature (SAC), PPO's advantages and value targets,
  and every network's parameters (actor, critics and their targets) and the step the update took, each as a
  digest (its norm and four fixed random projections).

On-policy, SB3's env is stepped with the actions ours took (SB3's own action is still recorded and compared): a
stochastic policy on MuJoCo's contacts turns float32 rounding into visible action differences within a few
thousand steps, and one action sequence keeps the physics out of the comparison of the two algorithms' arithmetic.
A difference in code rather than in a setting is aligned by patching SB3 to do as ours does (PPO's observation
statistics), named like the others.

The traces are compared in order; the result is either "identical for N updates" with the largest relative
difference seen and where, or the first quantity and update at which they part beyond the tolerance, with
both values. Exit status: 0 identical, 1 diverged, 2 usage error. Pairs: ``ppo``, ``trpo`` (an update is an
iteration: a rollout and its policy and value steps), ``sac``, ``ddpg`` (an update is a gradient step).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from unittest import mock

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

from experiments.baselines.sb3 import ADAPTERS, SB3Adapter, action_dims
from replications import ddpg, ppo, sac, trpo
from replications.core import seeds as seeds_module
from replications.core.algorithm import Update
from replications.core.config import load_paper_config, resolve
from replications.core.envs import check_env_id
from replications.core.errors import UserError
from replications.core.logging import RunLogger

DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Alignment:
    """A documented difference of the SB3 adapter, removed for the lockstep (``--keep name`` leaves it)."""

    name: str
    what: str
    ours: dict[str, Any] = field(default_factory=dict)
    """Settings of ours changed to SB3's."""
    both: dict[str, Any] = field(default_factory=dict)
    """Settings changed in both (where SB3 cannot take ours)."""
    sb3: Callable[[], contextlib.AbstractContextManager[Any]] | None = None
    """A difference in code rather than in a setting: SB3's code patched to do as ours does."""


def _vecnormalize_counting_final_observations() -> contextlib.AbstractContextManager[Any]:
    """SB3's ``VecNormalize.step_wait`` as our ``Normalize`` wrapper steps: an episode's final observation
    updates the running statistics and is standardised by them before the reset observation updates them."""
    from stable_baselines3.common.vec_env import VecNormalize

    def step_wait(self: Any) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.old_obs, self.old_reward = obs, rewards
        for idx in np.flatnonzero(dones):
            final = infos[idx].get("terminal_observation")
            if final is not None:
                if self.training and self.norm_obs:
                    self.obs_rms.update(final[None])
                infos[idx]["terminal_observation"] = self.normalize_obs(final)
        if self.training and self.norm_obs:
            self.obs_rms.update(obs)
        obs = self.normalize_obs(obs)
        if self.training:
            self._update_reward(rewards)
        rewards = self.normalize_reward(rewards)
        self.returns[dones] = 0
        return obs, rewards, dones, infos

    return mock.patch.object(VecNormalize, "step_wait", step_wait)


def _sb3_kl_old_new() -> contextlib.AbstractContextManager[Any]:
    """sb3-contrib's TRPO with its KL's arguments swapped: KL(old || new), as ours."""
    import sb3_contrib.trpo.trpo as sb3_trpo

    kl = sb3_trpo.kl_divergence
    return mock.patch.object(sb3_trpo, "kl_divergence", lambda new, old: kl(old, new))


FINAL_OBSERVATION_STATISTICS = Alignment(
    "final_observation_statistics",
    "ours counts each episode's final observation in the running observation mean/variance; SB3's "
    "VecNormalize (like baselines') counts only the observations the policy acts on: SB3 runs as ours",
    sb3=_vecnormalize_counting_final_observations,
)

ALIGNMENTS: dict[str, tuple[Alignment, ...]] = {
    "sac": (
        Alignment(
            "log_prob_epsilon",
            "SB3's tanh log-prob correction is log(1 - tanh(u)^2 + 1e-6); ours is exact: ours runs with SB3's 1e-6",
            ours={"log_prob_epsilon": 1e-6},
        ),
    ),
    "ppo": (
        Alignment(
            "lr_annealing",
            "SB3 anneals the learning rate after each rollout, ours before it (one iteration apart): both constant",
            both={"anneal_learning_rate": False},
        ),
        Alignment(
            "value_clipping",
            "SB3's clip_range_vf clips the prediction without the reference code's max with the unclipped error: "
            "both without value clipping",
            both={"clip_value_loss": False},
        ),
        FINAL_OBSERVATION_STATISTICS,
    ),
    "trpo": (
        Alignment(
            "fisher_subsample",
            "ours computes the Fisher-vector product on every 5th sample (baselines), sb3-contrib's subsampling "
            "would subsample the gradient and line search too: both on every sample",
            both={"fisher_subsample": 1},
        ),
        Alignment(
            "kl_direction",
            "sb3-contrib's KL (line search and Fisher-vector product) is KL(new || old), ours KL(old || new): "
            "SB3 runs with ours",
            sb3=lambda: _sb3_kl_old_new(),
        ),
        FINAL_OBSERVATION_STATISTICS,
    ),
    "ddpg": (
        Alignment(
            "action_layer",
            "SB3's critic takes the action at its first layer, ours at the second: ours runs with it at the first",
            ours={"action_layer": 1},
        ),
        Alignment(
            "warmup_noise",
            "SB3 adds the exploration noise to its uniform warm-up actions, ours does not: both run without warm-up",
            both={"warmup_steps": 0},
        ),
    ),
}
PAIRS = tuple(ALIGNMENTS)


@dataclass
class Trace:
    """What one implementation did: env steps per env (in creation order: training, evaluation) and updates."""

    env_steps: list[list[dict[str, Any]]] = field(default_factory=list)
    updates: list[dict[str, np.ndarray]] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    identical: bool
    updates: int
    quantity: str
    where: str
    ours: Any = None
    theirs: Any = None
    difference: float = 0.0
    before: tuple[float, str] = (0.0, "nothing")
    """The largest difference within tolerance before the parting (what agreed, and how closely)."""
    terminations: int = 0
    truncations: int = 0
    """Episode ends in the training env within the window (ours)."""

    def line(self, algo: str, env: str, tolerance: float) -> str:
        window = f"the window held {self.terminations} terminations and {self.truncations} truncations"
        if self.identical:
            return (
                f"{algo} {env}: identical for {self.updates:,} updates (largest relative difference "
                f"{self.difference:.1e} in {self.quantity}; {window})"
            )
        return (
            f"{algo} {env}: parted at {self.where}: {self.quantity}, ours {_show(self.ours)} vs SB3 "
            f"{_show(self.theirs)} (relative difference {self.difference:.1e} > tolerance {tolerance:.0e}; until "
            f"then every quantity agreed to {self.before[0]:.1e}, the largest in {self.before[1]})"
        )


def _show(x: Any) -> str:
    a = np.asarray(x, dtype=float).ravel()
    return (
        f"{a[0]:.6g}" if a.size == 1 else "[" + ", ".join(f"{v:.6g}" for v in a[:4]) + (", ...]" if a.size > 4 else "]")
    )


# -- digests of parameters --------------------------------------------------------------------------------------
def digest(params: list[torch.Tensor]) -> np.ndarray:
    """(norm, four fixed random projections) of the flattened parameters: equal parameters give equal digests,
    and a change of any entry moves the projections."""
    flat = _flat(params)
    g = torch.Generator().manual_seed(flat.numel())
    proj = torch.randn(4, flat.numel(), generator=g, dtype=torch.float64) / np.sqrt(flat.numel())
    return np.concatenate([[float(flat.norm())], (proj @ flat).numpy()])


class Digests:
    """Per update, for each network: the digest of its parameters ("X parameters", how far the two have
    drifted) and of the step the update took ("X step", the update's own arithmetic, relative to the step's
    size: a halved Polyak rate shows at the first update, however small the step)."""

    def __init__(self, groups: dict[str, list[torch.Tensor]]):
        self.prev = {name: _flat(params) for name, params in groups.items()}

    def __call__(self, groups: dict[str, list[torch.Tensor]]) -> dict[str, np.ndarray]:
        out = {}
        for name, params in groups.items():
            flat = _flat(params)
            out[f"{name} step"] = digest([flat - self.prev[name]])
            out[f"{name} parameters"] = digest([flat])
            self.prev[name] = flat
        return out


def _flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().double().reshape(-1).cpu() for p in params])


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def params_of(layers: list[nn.Linear]) -> list[torch.Tensor]:
    return [t for layer in layers for t in (layer.weight, layer.bias)]


def copy_layers(src: list[nn.Linear], dst: list[nn.Linear]) -> None:
    shapes = [tuple(x.weight.shape) for x in src], [tuple(x.weight.shape) for x in dst]
    if shapes[0] != shapes[1]:
        raise UserError(
            f"ours' layers {shapes[0]} and SB3's {shapes[1]} differ (a kept architectural difference): the two "
            "cannot start from the same weights; lockstep needs that difference aligned"
        )
    with torch.no_grad():
        for a, b in zip(src, dst, strict=True):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)


# -- the two implementations' networks, layer by layer ------------------------------------------------------------
def _sac_actor_layers(model: Any) -> list[torch.Tensor]:
    """SB3's actor as ours stores it: the trunk, then one output layer [mu; log_std]."""
    head_w = torch.cat([model.actor.mu.weight, model.actor.log_std.weight])
    head_b = torch.cat([model.actor.mu.bias, model.actor.log_std.bias])
    return [*params_of(linears(model.actor.latent_pi)), head_w, head_b]


def sac_into_sb3(model: Any, start: dict[str, nn.Module]) -> None:
    ours = linears(start["actor"])
    copy_layers(ours[:-1], linears(model.actor.latent_pi))
    d = model.actor.mu.out_features
    with torch.no_grad():
        for head, rows in ((model.actor.mu, slice(0, d)), (model.actor.log_std, slice(d, None))):
            head.weight.copy_(ours[-1].weight[rows])
            head.bias.copy_(ours[-1].bias[rows])
    critics = (*model.critic.q_networks, *model.critic_target.q_networks)
    for theirs, name in zip(critics, ("q1", "q2", "q1", "q2"), strict=True):
        copy_layers(linears(start[name]), linears(theirs))


def _sac_ours(state: dict[str, Any]) -> dict[str, list[torch.Tensor]]:
    nets = ("actor", "q1", "q2", "q1_target", "q2_target")
    return {**{n: params_of(linears(state[n])) for n in nets}, "log_alpha": [state["log_alpha"]]}


def _sac_sb3(model: Any) -> dict[str, list[torch.Tensor]]:
    q = (*model.critic.q_networks, *model.critic_target.q_networks)
    out = {"actor": _sac_actor_layers(model)}
    names = ("q1", "q2", "q1_target", "q2_target")
    out.update({name: params_of(linears(net)) for name, net in zip(names, q, strict=True)})
    return {**out, "log_alpha": [model.log_ent_coef]}


def ddpg_into_sb3(model: Any, start: dict[str, nn.Module]) -> None:
    for name, nets in (("actor", (model.actor.mu, model.actor_target.mu)), ("critic", (model.critic.qf0,))):
        for net in nets:
            copy_layers(linears(start[name]), linears(net))
    copy_layers(linears(start["critic"]), linears(model.critic_target.qf0))


def _ddpg_ours(state: dict[str, Any]) -> dict[str, list[torch.Tensor]]:
    nets = ("actor", "critic", "actor_target", "critic_target")
    return {n: params_of(linears(state[n])) for n in nets}


def _ddpg_sb3(model: Any) -> dict[str, list[torch.Tensor]]:
    nets = {
        "actor": model.actor.mu,
        "critic": model.critic.qf0,
        "actor_target": model.actor_target.mu,
        "critic_target": model.critic_target.qf0,
    }
    return {n: params_of(linears(net)) for n, net in nets.items()}


def ppo_into_sb3(model: Any, start: dict[str, nn.Module]) -> None:
    """Our policy (mean MLP, log-std) and value MLP into SB3's ActorCriticPolicy: the hidden layers into its
    mlp_extractor's pi and vf networks, the output layers into action_net and value_net."""
    pol, ours_policy = model.policy, cast(Any, start["policy"])
    copy_layers(linears(ours_policy.mean), [*linears(pol.mlp_extractor.policy_net), pol.action_net])
    copy_layers(linears(start["value"]), [*linears(pol.mlp_extractor.value_net), pol.value_net])
    with torch.no_grad():
        pol.log_std.copy_(ours_policy.log_std)


def _ppo_ours(objects: dict[str, Any]) -> dict[str, list[torch.Tensor]]:
    policy = objects["policy"]
    return {"policy": [*params_of(linears(policy.mean)), policy.log_std], "value": params_of(linears(objects["value"]))}


def _ppo_sb3(model: Any) -> dict[str, list[torch.Tensor]]:
    pol = model.policy
    return {
        "policy": [*params_of([*linears(pol.mlp_extractor.policy_net), pol.action_net]), pol.log_std],
        "value": params_of([*linears(pol.mlp_extractor.value_net), pol.value_net]),
    }


def _patched(target: Any, name: str, value: Any) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(target, name, value))
    return stack


def sb3_minibatch_order(n: int, epochs: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Minibatches as SB3's RolloutBuffer draws them: one ``np.random.permutation`` per epoch (NumPy's global
    generator, which both runs seed with the run's seed), sliced in order."""
    for _ in range(epochs):
        yield from torch.from_numpy(np.random.permutation(n)).split(size)


def sb3_trpo_minibatch_order(n: int, epochs: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """The value regression's minibatches as sb3-contrib's TRPO draws them: its policy step first takes the
    whole batch through ``RolloutBuffer.get``, which spends one permutation, then one per critic epoch."""
    np.random.permutation(n)
    yield from sb3_minibatch_order(n, epochs, size, generator)


def _ppo_noise() -> contextlib.ExitStack:
    """PPO's action noise in both, as a fixed function of the mean: SB3 samples through ``Normal.rsample``, ours
    through the policy's NumPy snapshot (patched to the same eps = sin(mean))."""
    from replications.core.networks import GaussianPolicy, numpy_forward

    def numpy_actor(self: GaussianPolicy, rng: np.random.Generator) -> Callable[[np.ndarray], Any]:
        mean = numpy_forward(self.mean)
        std = np.exp(self.log_std.detach().numpy())
        return lambda obs: (mean(obs) + std * np.sin(mean(obs))).astype(np.float32)

    stack = shared_noise()
    stack.enter_context(mock.patch.object(GaussianPolicy, "numpy_actor", numpy_actor))
    return stack


@dataclass(frozen=True)
class Pair:
    module: Any
    config_cls: type
    adapter: SB3Adapter
    nets: Callable[[tuple[Any, ...]], dict[str, nn.Module]]
    """make_update's arguments -> our networks by name (their initial weights go to SB3)."""
    load: Callable[[Any, dict[str, nn.Module]], None]
    ours_params: Callable[[dict[str, Any]], dict[str, list[torch.Tensor]]]
    sb3_params: Callable[[Any], dict[str, list[torch.Tensor]]]
    """Each implementation's networks (and SAC's log temperature) as parameter lists in our layout."""
    losses: dict[str, tuple[str, float | Callable[[Any], float]]]
    """Our statistic -> (SB3's logger key, the factor that puts SB3's value on our scale, or a function of
    SB3's model giving it), for each loss (and temperature) both compute."""
    on_policy: bool = False
    """One update per iteration (SB3's ``train()`` once per rollout), else one per gradient step."""
    both: Callable[[], contextlib.ExitStack] = contextlib.ExitStack
    """The same randomness, patched in both runs."""
    ours_only: Callable[[], contextlib.ExitStack] = contextlib.ExitStack
    """Ours drawing as SB3 draws, patched in our run only."""
    drive_envs: bool = False
    """SB3's envs stepped with our actions (its own still recorded and compared): a stochastic policy on
    MuJoCo's contacts turns float32 rounding (1e-7) into visible action differences within a few thousand
    steps; driving both with one action sequence keeps the physics out of the comparison of the arithmetic."""


PAIR: dict[str, Pair] = {
    "sac": Pair(
        sac,
        sac.SACConfig,
        ADAPTERS["sac"],
        lambda args: {"actor": args[0], "q1": args[1], "q2": args[2]},
        sac_into_sb3,
        _sac_ours,
        _sac_sb3,
        {
            "critic_loss": ("train/critic_loss", 1.0),
            "actor_loss": ("train/actor_loss", 1.0),
            "alpha": ("train/ent_coef", 1.0),
        },
        both=lambda: shared_noise(),  # defined below the table
        ours_only=lambda: _patched(np.random, "default_rng", lambda seed=None: LegacyDraws()),
    ),
    "ddpg": Pair(
        ddpg,
        ddpg.DDPGConfig,
        ADAPTERS["ddpg"],
        lambda args: {"actor": args[0], "critic": args[1]},
        ddpg_into_sb3,
        _ddpg_ours,
        _ddpg_sb3,
        {"critic_loss": ("train/critic_loss", 1.0), "actor_loss": ("train/actor_loss", 1.0)},
        ours_only=lambda: _patched(np.random, "default_rng", lambda seed=None: LegacyDraws()),
    ),
    "ppo": Pair(
        ppo,
        ppo.PPOConfig,
        ADAPTERS["ppo"],
        lambda args: {"policy": args[0].policy, "value": args[0].value_fn},
        ppo_into_sb3,
        _ppo_ours,
        _ppo_sb3,
        {
            "policy_loss": ("train/policy_gradient_loss", 1.0),
            "value_loss": ("train/value_loss", 0.5),  # SB3 logs the MSE, ours 0.5 MSE
            "entropy": ("train/entropy_loss", -1.0),
        },
        on_policy=True,
        drive_envs=True,
        both=_ppo_noise,
        ours_only=lambda: _patched(seeds_module, "minibatch_indices", sb3_minibatch_order),
    ),
    "trpo": Pair(
        trpo,
        trpo.TRPOConfig,
        ADAPTERS["trpo"],
        lambda args: {"policy": args[0].policy, "value": args[0].value_fn},
        ppo_into_sb3,  # the same ActorCriticPolicy layout
        _ppo_ours,
        _ppo_sb3,
        {
            # SB3 logs the accepted objective mean(ratio * A), ours its gain over mean(A) = 0 (standardised A)
            "surrogate_gain": ("train/policy_objective", 1.0),
            # sb3-contrib averages KL over the action's k dimensions, ours sums them
            "kl": ("train/kl_divergence_loss", lambda model: float(np.prod(model.action_space.shape))),
            "value_loss": ("train/value_loss", 0.5),  # SB3 logs the MSE, ours 0.5 MSE
        },
        on_policy=True,
        drive_envs=True,
        both=_ppo_noise,
        ours_only=lambda: _patched(seeds_module, "minibatch_indices", sb3_trpo_minibatch_order),
    ),
}


# -- the same randomness -------------------------------------------------------------------------------------------
class LegacyDraws:
    """A stand-in for our drivers' ``np.random.Generator`` that draws as SB3 does, from NumPy's global generator
    (which both runs seed with the run's seed): minibatch rows and then (one env) env indices, as SB3's
    ``ReplayBuffer.sample``; normal draws as SB3's action noise."""

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        rows = np.random.randint(low, high, size=size)
        np.random.randint(0, 1, size=size)
        return rows

    def standard_normal(self, size: int) -> np.ndarray:
        return np.random.normal(size=size)


def shared_noise(steepness: float = 1.0) -> contextlib.ExitStack:
    """SAC's reparameterisation noise as a fixed function of the mean it perturbs, eps = sin(steepness * mean),
    in both (ours draws for s' first, SB3 for s first, so a shared generator would hand them different draws).
    A gentle function keeps float32 rounding from being amplified over hundreds of updates."""

    def noise(mean: torch.Tensor) -> torch.Tensor:
        return torch.sin(steepness * mean.detach())

    def rsample(self: Normal, sample_shape: tuple = ()) -> torch.Tensor:
        return self.loc + noise(self.loc) * self.scale

    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(torch, "randn_like", lambda t, *a, **k: noise(t)))
    stack.enter_context(mock.patch.object(Normal, "rsample", rsample))
    return stack


class _Recorder(gym.Wrapper):
    """Records every step of the env it wraps (innermost: the env's own actions and rewards). Given ``drive``
    (the other run's steps of this env), it records this run's action but steps the env with the other's."""

    def __init__(
        self,
        env: gym.Env,
        rows: list[dict[str, Any]],
        updates: Callable[[], int],
        drive: list[dict[str, Any]] | None = None,
    ):
        super().__init__(env)
        self.rows, self.updates, self.drive = rows, updates, drive

    def step(self, action: Any):  # noqa: ANN201
        t = len(self.rows)
        if self.drive is not None and t < len(self.drive):
            driven = self.drive[t]["action"].astype(np.asarray(action).dtype).reshape(np.shape(action))
            obs, reward, terminated, truncated, info = self.env.step(driven)
        else:
            obs, reward, terminated, truncated, info = self.env.step(action)
        self.rows.append(
            {
                "action": np.array(action, dtype=np.float64).ravel(),
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
                "updates": self.updates(),
            }
        )
        return obs, reward, terminated, truncated, info


@contextlib.contextmanager
def recorded_envs(trace: Trace, time_limit: int | None, drive: Trace | None = None) -> Iterator[None]:
    """Every ``gym.make`` in the block records its steps into ``trace`` (and, with ``time_limit``, truncates
    episodes at that many steps, so a short window sees truncations as well as terminations). With ``drive``,
    each env is stepped with the actions ``drive`` recorded for the env made in the same order."""
    make = gym.make

    def recording_make(env_id: str, **kwargs: Any) -> gym.Env:
        if time_limit is not None:
            kwargs["max_episode_steps"] = time_limit
        rows: list[dict[str, Any]] = []
        e = len(trace.env_steps)
        trace.env_steps.append(rows)
        driven = drive.env_steps[e] if drive is not None and e < len(drive.env_steps) else None
        return _Recorder(make(env_id, **kwargs), rows, lambda: len(trace.updates), driven)

    with mock.patch.object(gym, "make", recording_make):
        yield


# -- the two runs ----------------------------------------------------------------------------------------------------
def _run_ours(pair: Pair, env_id: str, cfg: Any, seed: int, steps: int, time_limit: int | None, run_dir: Path):
    trace, start = Trace(), {}
    make_update = pair.module.make_update

    def recording_make_update(cfg: Any, *args: Any) -> Update:
        nets = pair.nets(args)
        start.update({name: copy.deepcopy(net) for name, net in nets.items()})
        update = make_update(cfg, *args)
        objects = {**nets, **update.state}
        digests = Digests(pair.ours_params(objects))

        def step(*step_args: Any) -> Any:
            out = update.step(*step_args)
            stats = out[0] if pair.on_policy else out
            row = {name: np.asarray([float(stats[name])]) for name in pair.losses}
            if pair.on_policy:  # the batch's advantages and value targets, before any normalisation
                batch = step_args[0]
                row.update(advantages=digest([batch.advantages]), returns=digest([batch.returns]))
            trace.updates.append({**row, **digests(pair.ours_params(objects))})
            return out

        return Update(step, update.state)

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(pair.module, "make_update", recording_make_update))
        stack.enter_context(pair.ours_only())
        stack.enter_context(recorded_envs(trace, time_limit))
        pair.module.train(env_id, cfg, seed, steps, _logger(run_dir / "ours", "ours", steps))
    return trace, start


def _run_sb3(
    pair: Pair,
    env_id: str,
    cfg: Any,
    seed: int,
    steps: int,
    time_limit: int | None,
    run_dir: Path,
    start: dict,
    ours: Trace | None = None,
) -> Trace:
    trace = Trace()
    sb3_cls: Any = pair.adapter.algo_cls
    setup = sb3_cls._setup_model

    def record(model: Any, digests: Digests) -> None:
        logged = model.logger.name_to_value
        row = {
            ours: np.asarray([(factor(model) if callable(factor) else factor) * float(logged[key])])
            for ours, (key, factor) in pair.losses.items()
        }
        if pair.on_policy:
            buf = model.rollout_buffer
            row.update(
                advantages=digest([torch.as_tensor(buf.advantages).flatten()]),
                returns=digest([torch.as_tensor(buf.returns).flatten()]),
            )
        trace.updates.append({**row, **digests(pair.sb3_params(model))})

    def setup_from_ours(model: Any) -> None:
        setup(model)
        pair.load(model, start)
        train = model.train
        digests = Digests(pair.sb3_params(model))

        def recording_train(*args: Any, **kwargs: Any) -> None:
            if pair.on_policy:  # one update per rollout
                train(*args, **kwargs)
                record(model, digests)
                return
            for _ in range(kwargs.get("gradient_steps", args[0] if args else 1)):  # one update per call
                train(gradient_steps=1, batch_size=kwargs.get("batch_size", 100))
                record(model, digests)

        model.train = recording_train

    if pair.adapter.per_action_dim:
        action_dims(env_id)  # cached: the env it makes to count actions is not one of the recorded runs' envs
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(sb3_cls, "_setup_model", setup_from_ours))
        stack.enter_context(recorded_envs(trace, time_limit, ours if pair.drive_envs else None))
        pair.adapter.train(env_id, cfg, seed, steps, _logger(run_dir / "sb3", "SB3", steps))
    return trace


def _logger(path: Path, who: str, steps: int) -> RunLogger:
    last = [time.time()]

    def progress(step: int, _recent: float) -> None:
        if time.time() - last[0] > 10 or step >= steps:
            last[0] = time.time()
            print(f"  {who}: {step:,}/{steps:,} env steps", flush=True)

    return RunLogger(path, progress)


# -- comparing the traces --------------------------------------------------------------------------------------------
def _relative(a: Any, b: Any, quantity: str) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    if quantity.endswith(("parameters", "step", "advantages", "returns")):  # digests: relative to the norm (entry 0)
        return float(np.max(np.abs(a - b)) / max(abs(b[0]), 1e-12))
    # relative to max(|value|, 1): an action near 0 is not "far" off; PPO's surrogate is a mean of terms of size
    # ~1 (standardised advantages) that nearly cancel, so its value near 0 is not the scale of its rounding
    if quantity in ("action", "reward", "policy_loss", "surrogate_gain"):
        return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)))
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-8)))


@dataclass(frozen=True, order=True)
class _Parting:
    updates: int  # updates done before it: env steps come before the update that follows them
    order: int
    where: str = field(compare=False)
    quantity: str = field(compare=False)
    ours: Any = field(compare=False)
    theirs: Any = field(compare=False)
    difference: float = field(compare=False)


ENV_NAMES = ("training env", "evaluation env")
STEP_FIELDS = ("action", "reward", "terminated", "truncated")


def compare(ours: Trace, theirs: Trace, tolerance: float) -> Result:
    """The first divergence beyond ``tolerance`` in time order (an env step before the update that follows
    it), with the largest difference before it; else the largest difference seen."""
    seen: list[tuple[int, int, float, str]] = []  # (updates before, stream, difference, quantity)
    partings: list[_Parting] = []
    for e, (rows_a, rows_b) in enumerate(zip(ours.env_steps, theirs.env_steps, strict=False)):
        name = ENV_NAMES[e] if e < len(ENV_NAMES) else f"env {e + 1}"
        for t, (a, b) in enumerate(zip(rows_a, rows_b, strict=False)):
            diffs = {key: _relative(a[key], b[key], key) for key in STEP_FIELDS}
            key = next((k for k in STEP_FIELDS if not diffs[k] <= tolerance), None)
            if key is not None:
                where = f"{name} step {t + 1:,} (after {a['updates']:,} updates)"
                partings.append(_Parting(a["updates"], e, where, key, a[key], b[key], diffs[key]))
                break
            seen.extend((a["updates"], e, d, f"{name} {k}s") for k, d in diffs.items())
        else:
            if len(rows_a) != len(rows_b):
                n = min(len(rows_a), len(rows_b))
                done = rows_a[n - 1]["updates"] if n else 0
                where = f"{name} after step {n:,}"
                partings.append(_Parting(done, e, where, "number of steps", len(rows_a), len(rows_b), np.inf))
    last = len(ENV_NAMES)
    for k, (a, b) in enumerate(zip(ours.updates, theirs.updates, strict=False)):
        diffs = {key: _relative(a[key], b.get(key, np.nan), key) for key in a}
        key = next((q for q in a if not diffs[q] <= tolerance), None)
        if key is not None:
            partings.append(_Parting(k, last, f"update {k + 1:,}", key, a[key], b.get(key), diffs[key]))
            break
        seen.extend((k, last, d, q) for q, d in diffs.items())
    n = min(len(ours.updates), len(theirs.updates))
    if len(ours.updates) != len(theirs.updates):
        counts = len(ours.updates), len(theirs.updates)
        partings.append(_Parting(n, last, f"update {n + 1:,}", "number of updates", *counts, np.inf))
    if not partings:
        d, q = _largest(seen)
        return Result(True, n, q, "", difference=d)
    p = min(partings)
    before = _largest([x for x in seen if (x[0], x[1]) < (p.updates, p.order)])
    return Result(False, p.updates, p.quantity, p.where, p.ours, p.theirs, p.difference, before=before)


def _largest(seen: list[tuple[int, int, float, str]]) -> tuple[float, str]:
    """(difference, quantity) of the largest difference seen."""
    return max(((x[2], x[3]) for x in seen), default=(0.0, "nothing"))


# -- the record ---------------------------------------------------------------------------------------------------
LOCKSTEP_DIR = "lockstep"
"""Under a results root: one JSON record per pair, env and settings, read by the reports (write.py)."""


def record(result: Result, algo: str, env_id: str, root: Path, settings: dict[str, Any], tolerance: float) -> Path:
    """Store the result with what produced it (settings, commit, dirty flag, machine, libraries, date):
    ``<root>/lockstep/<algo>-<env>[-<key=value>...].json``; the reports of ``algo`` show it."""
    from experiments.store import provenance, write_atomic

    facts = provenance()
    slug = "".join(f"-{k}={json.dumps(v, separators=(',', ':'))}" for k, v in sorted(settings.get("set", {}).items()))
    out = Path(root) / LOCKSTEP_DIR / f"{algo}-{env_id}{slug}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "algo": algo,
        "env": env_id,
        **settings,
        "tolerance": tolerance,
        "identical": result.identical,
        "line": result.line(algo, env_id, tolerance),
        "updates": result.updates,  # compared: the whole window if identical, else those before the parting
        "where": result.where,
        "quantity": result.quantity,
        "difference": result.difference,
        **{k: facts.get(k) for k in ("commit", "dirty", "cpu", "packages")},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_atomic(out, json.dumps(body, indent=1, default=str) + "\n")
    return out


# -- the command -------------------------------------------------------------------------------------------------
def default_updates(algo: str) -> int:
    """20 iterations on-policy (the issue's minimum; each is a rollout and its epochs), 500 gradient steps off."""
    return 20 if algo in PAIR and PAIR[algo].on_policy else 500


def lockstep(
    algo: str,
    env_id: str,
    updates: int | None = None,
    keep: tuple[str, ...] = (),
    seed: int = 0,
    time_limit: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    overrides: dict[str, Any] | None = None,
    ours_overrides: dict[str, Any] | None = None,
) -> Result:
    """Run the pair for ``updates`` gradient steps and compare. ``ours_overrides`` plants a difference in ours
    alone (what the tests use to check the command finds one)."""
    if algo not in PAIR:
        raise UserError(
            f"lockstep has no trace for '{algo}'; allowed: {', '.join(PAIRS)} (the algorithms with an SB3 pair)"
        )
    updates = default_updates(algo) if updates is None else updates
    if updates <= 0:
        raise UserError(f"--updates must be a positive integer, got {updates}")
    check_env_id(env_id)
    alignments = {a.name: a for a in ALIGNMENTS[algo]}
    unknown = [k for k in keep if k not in alignments]
    if unknown:
        raise UserError(f"--keep {unknown[0]}: not a documented difference of {algo}; allowed: {', '.join(alignments)}")
    pair = PAIR[algo]
    cfg = resolve(load_paper_config(algo), pair.config_cls, env_id, overrides or {})
    if not pair.on_policy:
        cfg = dataclasses.replace(cfg, eval_episodes=1)  # evaluation compares actions; one episode shows them
    both = {k: v for a in alignments.values() if a.name not in keep for k, v in a.both.items()}
    ours_only = {k: v for a in alignments.values() if a.name not in keep for k, v in a.ours.items()}
    cfg = dataclasses.replace(cfg, **both)
    if pair.on_policy:  # an update is an iteration of ``horizon`` env steps
        steps, warmup = updates * cfg.horizon, 0
    else:
        warmup = cfg.warmup_steps
        steps = warmup + -(-updates // cfg.gradient_steps)
    for a in alignments.values():
        print(f"{'kept' if a.name in keep else 'aligned'}: {a.name}: {a.what}")
    with tempfile.TemporaryDirectory() as tmp, pair.both():
        ours_cfg = dataclasses.replace(cfg, **ours_only, **(ours_overrides or {}))
        print(f"ours: {steps:,} env steps ({updates:,} updates after {warmup:,} warm-up steps)", flush=True)
        ours, start = _run_ours(pair, env_id, ours_cfg, seed, steps, time_limit, Path(tmp))
        print("SB3: the same, from our initial weights", flush=True)
        with contextlib.ExitStack() as patched:
            for a in alignments.values():
                if a.sb3 is not None and a.name not in keep:
                    patched.enter_context(a.sb3())
            theirs = _run_sb3(pair, env_id, cfg, seed, steps, time_limit, Path(tmp), start, ours)
    training = ours.env_steps[0] if ours.env_steps else []
    ends = {
        "terminations": sum(r["terminated"] for r in training),
        "truncations": sum(r["truncated"] and not r["terminated"] for r in training),
    }
    return dataclasses.replace(compare(ours, theirs, tolerance), **ends)
