"""Helpers for the tests that run one of our off-policy algorithms and its SB3 counterpart on the same
randomness (tests/test_sac.py, tests/test_ddpg.py): whatever still differs between the two runs is the code."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest


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


def time_limited_envs(monkeypatch: pytest.MonkeyPatch, max_episode_steps: int) -> None:
    """Every ``gym.make`` (ours and the SB3 adapter's) with a short time limit, so runs of a few hundred steps
    see truncations as well as terminations."""
    make = gym.make
    monkeypatch.setattr(gym, "make", lambda env_id, **kw: make(env_id, max_episode_steps=max_episode_steps, **kw))


def assert_same_episodes(ours_dir: Path, sb3_dir: Path, rtol: float = 1e-4) -> pd.DataFrame:
    """The two runs' training and evaluation episodes: the same steps and lengths, returns to ``rtol``.
    Returns our training episodes."""
    for table in ("episodes.csv", "evaluations.csv"):
        ours, theirs = pd.read_csv(ours_dir / table), pd.read_csv(sb3_dir / table)
        pd.testing.assert_frame_equal(ours.drop(columns="return"), theirs.drop(columns="return"))
        np.testing.assert_allclose(ours["return"], theirs["return"], rtol=rtol)
    return pd.read_csv(ours_dir / "episodes.csv")
