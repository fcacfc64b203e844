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

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        self.capacity = capacity
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
        idx = rng.integers(0, self.size, size=batch_size)
        return {name: torch.from_numpy(getattr(self, name)[idx]) for name in self.FIELDS}

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
