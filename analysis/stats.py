"""Statistics over seeds. Seeded and reproducible: the same inputs give the same intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats

N_RESAMPLES = 10_000
CONFIDENCE = 0.95


def bootstrap_ci(values: np.ndarray, seed: int = 0, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over seeds (10,000 resamples); NaNs with fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    res = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=N_RESAMPLES,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_band(matrix: np.ndarray, seed: int = 0, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile-bootstrap CI of the mean across rows (seeds) for each column (step), by scipy
    (2,000 resamples per column, seeded). Columns with fewer than 2 finite values get NaN bounds."""
    matrix = np.asarray(matrix, dtype=float)
    lo, hi = np.full(matrix.shape[1], np.nan), np.full(matrix.shape[1], np.nan)
    finite = np.isfinite(matrix).all(axis=0)
    if matrix.shape[0] < 2 or not finite.any():
        return lo, hi
    cols = matrix[:, finite]
    constant = np.all(cols == cols[0], axis=0)
    with np.errstate(invalid="ignore"):
        res = stats.bootstrap(
            (cols,),
            np.mean,
            axis=0,
            n_resamples=2000,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    lo[finite] = np.where(constant, cols[0], res.confidence_interval.low)
    hi[finite] = np.where(constant, cols[0], res.confidence_interval.high)
    return lo, hi


# -- rliable's aggregate metrics (Agarwal et al. 2021), vectorised for the bootstrap -------------------------
# Each takes one implementation's scores as a list of per-task arrays of per-seed scores, (..., n_seeds), where the
# leading axes (if any) are bootstrap resamples; tests/test_report.py checks them against rliable's own.


def iqm(tasks: list[np.ndarray]) -> np.ndarray:
    """Interquartile mean: the 25% trimmed mean of all runs of all tasks (rliable ``aggregate_iqm``)."""
    return stats.trim_mean(np.concatenate(tasks, axis=-1), 0.25, axis=-1)


def mean_of_means(tasks: list[np.ndarray]) -> np.ndarray:
    """Mean over tasks of the per-task mean (rliable ``aggregate_mean``)."""
    return np.mean([t.mean(-1) for t in tasks], axis=0)


def median_of_means(tasks: list[np.ndarray]) -> np.ndarray:
    """Median over tasks of the per-task mean (rliable ``aggregate_median``)."""
    return np.median([t.mean(-1) for t in tasks], axis=0)


def optimality_gap(tasks: list[np.ndarray], gamma: float = 1.0) -> np.ndarray:
    """gamma minus the mean of min(score, gamma) over all runs (rliable ``aggregate_optimality_gap``)."""
    return gamma - np.minimum(np.concatenate(tasks, axis=-1), gamma).mean(-1)


def improvement(xs: list[np.ndarray], ys: list[np.ndarray]) -> np.ndarray:
    """P(X > Y) averaged over tasks: per task the Mann-Whitney probability that a random run of X beats a random
    run of Y, ties counting half (rliable ``probability_of_improvement``)."""
    per_task = [
        (x[..., :, None] > y[..., None, :]).mean((-2, -1)) + 0.5 * (x[..., :, None] == y[..., None, :]).mean((-2, -1))
        for x, y in zip(xs, ys, strict=True)
    ]
    return np.mean(per_task, axis=0)


def stratified_bootstrap(
    groups: list[list[np.ndarray]],
    statistic,
    seed: int = 0,
    n_resamples: int = 5000,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """``statistic(*groups)`` and its percentile-bootstrap CI, where each group is one implementation's list of
    per-task per-seed scores and every (group, task) sample is resampled on its own: rliable's stratified
    bootstrap (runs resampled within each task), done by scipy with the statistic vectorised over resamples
    (seeded). Returns (estimate, ci_low, ci_high)."""
    groups = [[np.asarray(t, dtype=float) for t in g] for g in groups]
    sizes = [len(g) for g in groups]

    def regrouped(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        it = iter(samples)
        return statistic(*[[next(it) for _ in range(k)] for k in sizes])

    res = stats.bootstrap(
        [t for g in groups for t in g],
        regrouped,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return float(statistic(*groups)), float(ci.low), float(ci.high)


def probability_of_improvement(
    candidate: dict[str, np.ndarray], baseline: dict[str, np.ndarray], seed: int = 0, reps: int = 2000
) -> tuple[float, float, float]:
    """P(candidate > baseline) averaged over tasks (``improvement``) with its 95% stratified-bootstrap CI over
    runs. Each dict maps task -> per-seed scores. Returns (estimate, ci_low, ci_high)."""
    tasks = list(candidate)  # in the caller's order (the order the resamples are drawn in)
    return stratified_bootstrap(
        [[candidate[t] for t in tasks], [baseline[t] for t in tasks]], improvement, seed=seed, n_resamples=reps
    )
