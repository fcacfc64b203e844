"""Checkpoints that let a killed run resume exactly where it was (same numbers as an uninterrupted run).

A checkpoint is written at a loop boundary (an on-policy iteration, an off-policy logging interval) once
``RLREPRO_CHECKPOINT_SECONDS`` (default 120) have passed since the last one, to ``<run_dir>/checkpoint.pt``
(temp file + rename, so a kill during the write leaves the previous checkpoint). It holds everything the
loop's future depends on: network and optimiser state, every RNG (torch generator, torch/NumPy/Python global
RNGs, the collector's NumPy generator), the env's full state (all of MuJoCo's MjData or a classic env's
state, its NumPy RNG, and each wrapper's counters and running statistics), the logger's file offsets
and the loop position. The driver deletes it when the run completes.
"""

from __future__ import annotations

import copy
import os
import random
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

CHECKPOINT_FILE = "checkpoint.pt"


def checkpoint_interval() -> float:
    return float(os.environ.get("RLREPRO_CHECKPOINT_SECONDS", "120"))


def _wrapper_state(wrapper: gym.Wrapper) -> dict[str, Any]:
    """A wrapper's own attributes (counters, running statistics, deques), without the env it wraps; of a
    space it replaces, only its RNG (warm-up actions are sampled from it)."""
    state: dict[str, Any] = {}
    for k, v in vars(wrapper).items():
        if k == "env" or isinstance(v, gym.envs.registration.EnvSpec):
            continue
        if isinstance(v, gym.Space):
            state[k] = _SpaceRNG(copy.deepcopy(v.np_random.bit_generator.state))
        else:
            state[k] = copy.deepcopy(v)
    return state


class _SpaceRNG:
    """The saved RNG state of a space (restored into the space itself, not replacing it)."""

    def __init__(self, state: dict[str, Any]):
        self.state = state


def env_state(env: gym.Env) -> dict[str, Any]:
    """Everything that determines the env's future: wrapper attributes, base-env state and its RNG."""
    wrappers = []
    while isinstance(env, gym.Wrapper):
        wrappers.append(_wrapper_state(env))
        env = env.env
    base: dict[str, Any] = {"np_random": copy.deepcopy(env.np_random.bit_generator.state)}
    if hasattr(env, "model") and hasattr(env, "data"):
        # MuJoCo: all of MjData, derived quantities included (gymnasium's rewards read body positions that
        # lag one step behind qpos, so restoring the integration state and recomputing would not be exact)
        base["mujoco"] = copy.deepcopy(env.data)
    else:  # classic control: plain Python/NumPy attributes (state, last action, step counters)
        base["attrs"] = {
            k: copy.deepcopy(v)
            for k, v in vars(env).items()
            if isinstance(v, int | float | bool | np.ndarray | type(None) | tuple | list)
        }
    return {"wrappers": wrappers, "base": base}


def load_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    """Restore ``env_state(env)`` into an env built the same way."""
    for saved in state["wrappers"]:
        if not isinstance(env, gym.Wrapper):
            raise ValueError("checkpoint env state has more wrappers than this env")
        for k, v in saved.items():
            if isinstance(v, _SpaceRNG):
                getattr(env, k).np_random.bit_generator.state = v.state
            else:
                setattr(env, k, copy.deepcopy(v))
        env = env.env
    base = state["base"]
    env.np_random.bit_generator.state = base["np_random"]
    if "mujoco" in base:
        import mujoco

        mujoco.mj_copyData(env.data, env.model, base["mujoco"])
    else:
        for k, v in base["attrs"].items():
            setattr(env, k, copy.deepcopy(v))


def rng_state() -> dict[str, Any]:
    """The global RNGs seed_everything seeds."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def load_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def capture(objects: dict[str, Any]) -> dict[str, Any]:
    """The state of an algorithm's objects: ``state_dict()`` of modules and optimisers, a copy of plain
    tensors (e.g. SAC's log-alpha), a deep copy of other objects' attributes (exploration noise)."""
    out: dict[str, Any] = {}
    for name, obj in objects.items():
        if hasattr(obj, "state_dict"):
            out[name] = copy.deepcopy(obj.state_dict())
        elif isinstance(obj, torch.Tensor):
            out[name] = obj.detach().clone()
        else:
            out[name] = copy.deepcopy(vars(obj))
    return out


def restore(objects: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put ``capture(objects)`` back into the same objects (in place: references to them stay valid)."""
    for name, obj in objects.items():
        if hasattr(obj, "load_state_dict"):
            obj.load_state_dict(saved[name])
        elif isinstance(obj, torch.Tensor):
            with torch.no_grad():
                obj.copy_(saved[name])
        else:
            vars(obj).update(copy.deepcopy(saved[name]))


class StatefulRNG:
    """A NumPy generator with ``state_dict``/``load_state_dict``, so an update can list it with its optimisers."""

    def __init__(self, generator: np.random.Generator):
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.generator.bit_generator.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.bit_generator.state = state


class Checkpointer:
    """Saves a run's state to ``run_dir/checkpoint.pt`` at most every ``interval`` seconds."""

    def __init__(self, run_dir: Path, interval: float | None = None):
        self.path = Path(run_dir) / CHECKPOINT_FILE
        self.interval = checkpoint_interval() if interval is None else interval
        self._last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        self._last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        return torch.load(self.path, weights_only=False)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
