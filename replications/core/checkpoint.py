"""Checkpoints that let a killed run resume exactly where it was (same numbers as an uninterrupted run).

A checkpoint is written at a loop boundary (an on-policy iteration, an off-policy logging interval) once
``RLREPRO_CHECKPOINT_SECONDS`` (default 120) have passed since the last one, to ``<run_dir>/checkpoint.pt``
(temp file + rename, so a kill during the write leaves the previous checkpoint). It holds everything the
loop's future depends on: network and optimiser state, every RNG (torch generator, torch/NumPy/Python global
RNGs, the collector's NumPy generator), the env's full state (all of MuJoCo's MjData or a classic env's
state, its NumPy RNG, and each wrapper's counters and running statistics), the logger's file offsets
and the loop position. The driver deletes it when the run completes.

A checkpoint is plain data: ``to_plain`` turns NumPy arrays into bytes with their dtype and shape, MuJoCo's
MjData into MuJoCo's own byte serialisation, a NumPy generator into its bit generator's state, deques and
objects into dicts of their attributes, and it is
read back with ``torch.load(weights_only=True)``, which builds nothing but tensors and Python containers.
Object attributes are written back into the live objects (``restore_attrs``); no class named in a file
is ever constructed, so a checkpoint copied in from someone else's results store cannot run code.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import gymnasium as gym
import numpy as np
import torch

from replications.core.errors import UserError

CHECKPOINT_FILE = "checkpoint.pt"


class Attrs(dict):
    """An object's attributes read from a checkpoint: written back into the live object (``restore_attrs``)."""


class _RNGState:
    """The saved state of a NumPy generator: a space's (warm-up actions) or one an object holds (DDPG's
    exploration noise). Written back into the live generator, which is never replaced or built from the file."""

    def __init__(self, state: dict[str, Any]):
        self.state = state


def to_plain(x: Any) -> Any:
    """``x`` as tensors, numbers, strings, bytes and containers only (what ``weights_only`` loading allows)."""
    if isinstance(x, np.ndarray | np.generic):  # before float: np.float64 is a float
        a = np.asarray(x)
        if a.dtype.hasobject:
            raise TypeError("checkpoint: NumPy arrays of Python objects cannot be stored as plain data")
        return {"__ndarray__": a.tobytes(), "dtype": a.dtype.str, "shape": list(a.shape), "scalar": a is not x}
    if x is None or isinstance(x, bool | int | float | str | bytes | torch.Tensor):
        return x
    if type(x).__name__ == "MjData":  # MuJoCo's own byte serialisation of all of MjData
        return {"__mjdata__": x.__getstate__()}
    if isinstance(x, deque):
        return {"__deque__": [to_plain(v) for v in x], "maxlen": x.maxlen}
    if isinstance(x, np.random.Generator):
        x = _RNGState(dict(x.bit_generator.state))
    if isinstance(x, _RNGState):  # the key checkpoints already used for a space's generator, now for any
        return {"__space_rng__": to_plain(x.state)}
    if isinstance(x, dict):
        return {k: to_plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(to_plain(v) for v in x)
    if hasattr(x, "__dict__"):
        return {"__attrs__": to_plain(vars(x))}
    raise TypeError(f"checkpoint: cannot store a {type(x).__name__} as plain data")


def from_plain(x: Any) -> Any:
    """The inverse of ``to_plain``; objects come back as ``Attrs`` to write into the live objects."""
    if isinstance(x, list | tuple):
        return type(x)(from_plain(v) for v in x)
    if not isinstance(x, dict):
        return x
    if "__ndarray__" in x:
        dtype = np.dtype(x["dtype"])
        if dtype.hasobject:
            raise ValueError("a NumPy array of Python objects")
        a = np.frombuffer(x["__ndarray__"], dtype=dtype).reshape(x["shape"]).copy()
        return a[()] if x["scalar"] else a
    if "__mjdata__" in x:
        import mujoco

        data = mujoco.MjData.__new__(mujoco.MjData)
        data.__setstate__(x["__mjdata__"])
        return data
    if "__deque__" in x:
        return deque(from_plain(x["__deque__"]), maxlen=x["maxlen"])
    if "__space_rng__" in x:
        return _RNGState(from_plain(x["__space_rng__"]))
    if "__attrs__" in x:
        return Attrs(from_plain(x["__attrs__"]))
    return {k: from_plain(v) for k, v in x.items()}


def restore_attrs(obj: Any, attrs: dict[str, Any]) -> None:
    """Write saved attributes into ``obj`` in place; nested objects are updated, not replaced."""
    for name, value in attrs.items():
        current = vars(obj).get(name)
        if isinstance(value, Attrs) and current is not None and hasattr(current, "__dict__"):
            restore_attrs(current, value)
        elif isinstance(value, _RNGState):
            if not isinstance(current, np.random.Generator):
                raise ValueError(f"the checkpoint holds a generator's state where {type(obj).__name__}.{name} has none")
            current.bit_generator.state = value.state
        elif isinstance(value, Attrs):
            raise ValueError(f"the checkpoint holds the state of an object {type(obj).__name__}.{name} lacks")
        else:
            vars(obj)[name] = copy.deepcopy(value)


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
            state[k] = _RNGState(dict(copy.deepcopy(v.np_random.bit_generator.state)))
        else:
            state[k] = copy.deepcopy(v)
    return state


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
            if isinstance(v, _RNGState):
                getattr(env, k).np_random.bit_generator.state = v.state
            elif isinstance(v, Attrs):
                restore_attrs(env, {k: v})
            else:
                setattr(env, k, copy.deepcopy(v))
        env = env.env
    base = state["base"]
    env.np_random.bit_generator.state = base["np_random"]
    if "mujoco" in base:
        import mujoco

        sim = cast(Any, env)  # a MujocoEnv (its base state holds MuJoCo data)
        mujoco.mj_copyData(sim.data, sim.model, base["mujoco"])
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


def capture(objects: dict[str, Any], copy_state: bool = True) -> dict[str, Any]:
    """The state of an algorithm's objects: ``state_dict()`` of modules, optimisers and buffers, a copy of
    plain tensors (e.g. SAC's log-alpha), the state of torch and NumPy generators, a deep copy of other
    objects' attributes (exploration noise). ``copy_state=False`` skips the copy of state dicts, for a caller
    that serialises them at once (a checkpoint)."""
    out: dict[str, Any] = {}
    for name, obj in objects.items():
        if hasattr(obj, "state_dict"):
            out[name] = copy.deepcopy(obj.state_dict()) if copy_state else obj.state_dict()
        elif isinstance(obj, torch.Tensor):
            out[name] = obj.detach().clone()
        elif isinstance(obj, torch.Generator):
            out[name] = obj.get_state()
        elif isinstance(obj, np.random.Generator):
            out[name] = dict(copy.deepcopy(obj.bit_generator.state))
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
        elif isinstance(obj, torch.Generator):
            obj.set_state(saved[name])
        elif isinstance(obj, np.random.Generator):
            obj.bit_generator.state = saved[name]
        else:
            restore_attrs(obj, saved[name])


class StatefulRNG:
    """A NumPy generator with ``state_dict``/``load_state_dict``, so an update can list it with its optimisers."""

    def __init__(self, generator: np.random.Generator):
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        return dict(copy.deepcopy(self.generator.bit_generator.state))

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
        torch.save(to_plain(state), tmp)
        os.replace(tmp, self.path)
        self._last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            return from_plain(torch.load(self.path, weights_only=True))
        except pickle.UnpicklingError:
            why = "it names Python objects to build, which plain data never does"
        except (RuntimeError, ValueError, TypeError, KeyError, EOFError, OSError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"checkpoint {self.path} is not a plain-data checkpoint of this suite ({why}); it was not loaded; "
            "delete it to start the run over"
        )

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class StatefulLogger(Protocol):
    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class LoopState:
    """What a loop driver's checkpoint holds, one type for both drivers (core/onpolicy.py, core/offpolicy.py):

    - ``objects``: every stateful object the loop's future depends on, by name (``capture``/``restore``):
      the algorithm's ``Update.state`` (networks, optimisers, target networks, temperature, noise, Q-Prop's
      replay buffer), the driver's own (the policy and value function, a replay buffer, torch and NumPy
      generators);
    - ``envs``: the envs, by name (``env_state``);
    - the global RNGs and the logger's file offsets, always;
    - at each save, the loop's position (iteration or step) and the plain values it carries (the current
      observation, the last statistics), given back by ``resume``.
    """

    objects: dict[str, Any]
    envs: dict[str, gym.Env]
    logger: StatefulLogger
    checkpointer: Checkpointer | None

    def resume(self) -> tuple[int, dict[str, Any]] | None:
        """Restore the run's checkpoint into the live objects, if there is one: (position, plain values)."""
        saved = self.checkpointer.load() if self.checkpointer is not None else None
        if saved is None:
            return None
        if saved.get("format") != LOOP_STATE_FORMAT or set(saved["objects"]) != set(self.objects):
            raise UserError(
                f"checkpoint {self.checkpointer.path if self.checkpointer else ''} was written by another version "
                "of this loop; it was not loaded; delete it to start the run over"
            )
        restore(self.objects, saved["objects"])
        for name, env in self.envs.items():
            load_env_state(env, saved["envs"][name])
        load_rng_state(saved["rng"])
        self.logger.restore(saved["logger"])
        return saved["position"], saved["values"]

    def save_if_due(self, position: int, **values: Any) -> None:
        """Checkpoint at this position if the interval has passed."""
        if self.checkpointer is not None and self.checkpointer.due():
            self.checkpointer.save(
                {
                    "format": LOOP_STATE_FORMAT,
                    "position": position,
                    "values": values,
                    "objects": capture(self.objects, copy_state=False),
                    "envs": {name: env_state(env) for name, env in self.envs.items()},
                    "rng": rng_state(),
                    "logger": self.logger.state(),
                }
            )

    def finish(self) -> None:
        """The run completed: its checkpoint is no longer needed."""
        if self.checkpointer is not None:
            self.checkpointer.remove()


LOOP_STATE_FORMAT = 1
