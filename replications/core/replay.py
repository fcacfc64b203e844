"""A preallocated replay buffer for the off-policy algorithms (DDPG, SAC, Q-Prop's critic).

Shapes: obs and next_obs (capacity, obs_dim) float32; actions (capacity, act_dim) float32; rewards,
terminated, truncated (capacity,) float32. A sampled batch is a dict of torch tensors with a leading batch
dimension.

Termination vs truncation: ``next_obs`` is always the observation the transition really reached (the final
observation when an episode ends), ``terminated`` is kept apart from ``truncated``, and targets bootstrap
with ``(1 - terminated)`` only: a time-limit truncation still bootstraps from V(next_obs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


class ReplayBuffer:
    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device | str = "cpu"):
        self.capacity = capacity
        self.device = torch.device(device)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.truncated = np.zeros(capacity, dtype=np.float32)
        self.pos, self.size = 0, 0

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> None:
        i = self.pos
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.terminated[i], self.truncated[i] = next_obs, terminated, truncated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A uniform minibatch on the buffer's device (on a GPU: copied from pinned memory without waiting,
        so sampling never synchronises the host with the device)."""
        idx = rng.integers(0, self.size, size=batch_size)
        batch = {name: torch.from_numpy(getattr(self, name)[idx]) for name in self.FIELDS}
        if self.device.type == "cuda":
            batch = {k: v.pin_memory().to(self.device, non_blocking=True) for k, v in batch.items()}
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (a checkpoint includes the buffer): the filled rows and the cursor."""
        n = self.size
        return {
            "pos": self.pos,
            "size": n,
            "capacity": self.capacity,
            **{name: getattr(self, name)[:n].copy() for name in self.FIELDS},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"replay buffer capacity {self.capacity} != the saved {int(state['capacity'])}")
        n = int(state["size"])
        for name in self.FIELDS:
            getattr(self, name)[:n] = state[name]
        self.pos, self.size = int(state["pos"]), n

    def save(self, path: Path) -> None:
        np.savez(path, **self.state_dict())

    @classmethod
    def load(cls, path: Path) -> ReplayBuffer:
        data = dict(np.load(path))
        buf = cls(int(data["capacity"]), data["obs"].shape[1], data["actions"].shape[1])
        buf.load_state_dict(data)
        return buf


class RecentSamples:
    """The most recent on-policy samples in collection order (AWR's FIFO buffer of trajectories).

    Keeps obs, actions, rewards, terminated and dones of the last ``capacity`` steps, and the observation each
    step reached (``Batch.next_observations``: the final observation of a truncated episode, the observation
    after the newest step), which their value targets bootstrap from.
    """

    FIELDS = ("obs", "actions", "rewards", "terminated", "dones", "next_obs")

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    dones: np.ndarray
    next_obs: np.ndarray

    def __init__(self, capacity: int):
        self.capacity = capacity

    def add(self, batch: Any) -> None:
        """Append a ``rollout.Batch`` (collected after the previous one) and drop the oldest rows."""
        new = {
            "obs": batch.obs.numpy(),
            "actions": batch.actions.numpy(),
            "rewards": batch.rewards,
            "terminated": batch.terminated,
            "dones": batch.dones,
            "next_obs": batch.next_observations(),
        }
        for name, rows in new.items():
            old = getattr(self, name, None)
            setattr(self, name, (rows if old is None else np.concatenate([old, rows]))[-self.capacity :])

    def __len__(self) -> int:
        obs = getattr(self, "obs", None)  # set by the first add (or a checkpoint)
        return 0 if obs is None else len(obs)

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name, None) for name in self.FIELDS}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def next_values(self, value_fn: Any) -> np.ndarray:
        """V of the state each row reached (V(s_{t+1}), V(final obs) at a truncation, V(observation after the
        newest step)), 0 at a termination."""
        with torch.no_grad():
            nxt = value_fn(torch.from_numpy(self.next_obs)).double().numpy()
        nxt[self.terminated > 0] = 0.0
        return nxt
