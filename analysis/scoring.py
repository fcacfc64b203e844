"""What a run's score means, as each paper scored it, computed from the run's ``episodes.csv``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from replications.core.errors import UserError


def last_n_training_episodes(episodes: pd.DataFrame, n: int) -> float:
    """Mean raw return of the last ``n`` training episodes (PPO paper, Section 6.1). NaN if none."""
    if episodes.empty:
        return float("nan")
    return float(episodes["return"].iloc[-n:].mean())


def last_evaluation(evaluations: pd.DataFrame) -> float:
    """Mean return of the deterministic evaluation episodes at the last evaluation step (DDPG, SAC, TD3
    papers' evaluation protocol). NaN if the run has none."""
    if evaluations.empty:
        return float("nan")
    return float(evaluations[evaluations.step == evaluations.step.max()]["return"].mean())


def score(episodes: pd.DataFrame, scoring: dict[str, Any], evaluations: pd.DataFrame | None = None) -> float:
    metric = scoring.get("metric")
    if metric == "last_n_training_episodes":
        return last_n_training_episodes(episodes, int(scoring.get("n", 100)))
    if metric == "last_evaluation":
        return last_evaluation(evaluations if evaluations is not None else pd.DataFrame())
    raise UserError(f"unknown scoring metric '{metric}'; allowed: last_n_training_episodes, last_evaluation")


def learning_curve(episodes: pd.DataFrame, grid: np.ndarray, window: int = 10) -> np.ndarray:
    """At each step of ``grid``: mean return of the last ``window`` episodes finished by then (NaN before)."""
    steps = episodes["step"].to_numpy()
    returns = episodes["return"].to_numpy(dtype=float)
    csum = np.concatenate([[0.0], np.cumsum(returns)])
    ends = np.searchsorted(steps, grid, side="right")  # episodes finished at or before each grid step
    starts = np.maximum(ends - window, 0)
    counts = ends - starts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (csum[ends] - csum[starts]) / counts, np.nan)


def evaluation_curve(evaluations: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    """At each step of ``grid``: the mean return of the latest evaluation at or before it (NaN before any)."""
    if evaluations.empty:
        return np.full(len(grid), np.nan)
    per_step = evaluations.groupby("step")["return"].mean()
    steps, means = per_step.index.to_numpy(), per_step.to_numpy(dtype=float)
    idx = np.searchsorted(steps, grid, side="right") - 1
    return np.where(idx >= 0, means[np.clip(idx, 0, None)], np.nan)
