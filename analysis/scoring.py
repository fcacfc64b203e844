"""What a run's score means, as each paper scored it, computed from the run's ``episodes.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from replications.core.errors import UserError


def read_run_table(path: Path, columns: tuple[str, ...], rows: int | None = None) -> pd.DataFrame:
    """A run's episodes.csv or evaluations.csv, checked whole: present, ending in a newline (not cut
    mid-line), ``columns`` numeric and filled, and ``rows`` rows where the index says how many; a UserError
    naming the file otherwise."""
    fix = "nothing was written; restore the file from the run's copy (git, a backup), or run the run again"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror.lower() if exc.strerror else 'unreadable'}; {fix}") from None
    if raw and not raw.endswith(b"\n"):
        raise UserError(f"{path}: cut short (its last line has no newline); {fix}")
    try:
        table = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: unreadable ({str(exc).splitlines()[0]}); {fix}") from None
    for col in columns:
        if col not in table.columns:
            raise UserError(f"{path}: no '{col}' column; {fix}")
        values = pd.to_numeric(table[col], errors="coerce")
        bad = table.index[values.isna() & ~table[col].astype(str).str.lower().isin(["nan"])]
        if len(bad):
            raise UserError(f"{path} line {int(bad[0]) + 2}: '{col}' is {table.at[bad[0], col]!r}, not a number; {fix}")
        table[col] = values
    if rows is not None and len(table) != rows:
        raise UserError(f"{path}: {len(table)} rows where the run's meta.json counts {rows}; {fix}")
    return table


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
