"""Statistics over seeds. Seeded and reproducible: the same inputs give the same intervals."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

N_RESAMPLES = 10_000
CONFIDENCE = 0.95
ALPHA = 0.05
VERDICT_TEST = (
    f"Welch's two-sample t-test on per-seed final returns (ours vs the baseline), two-sided, "
    f"alpha = {ALPHA}: 'better'/'worse' if significant in that direction, else 'within'"
)


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


def verdict(ours: np.ndarray, theirs: np.ndarray, alpha: float = ALPHA) -> tuple[str, float]:
    """Ours against the baseline (SB3 or another algorithm of ours; see VERDICT_TEST). Returns (verdict, p-value)."""
    ours = np.asarray(ours, dtype=float)
    theirs = np.asarray(theirs, dtype=float)
    if len(ours) < 2 or len(theirs) < 2:
        return "n/a", float("nan")
    if np.var(ours) == 0 and np.var(theirs) == 0:
        diff = ours.mean() - theirs.mean()
        return ("within" if diff == 0 else "better" if diff > 0 else "worse"), (1.0 if diff == 0 else 0.0)
    p = float(stats.ttest_ind(ours, theirs, equal_var=False).pvalue)
    if p >= alpha:
        return "within", p
    return ("better" if ours.mean() > theirs.mean() else "worse"), p


def probability_of_improvement(
    candidate: dict[str, np.ndarray], baseline: dict[str, np.ndarray], seed: int = 0, reps: int = 2000
) -> tuple[float, float, float]:
    """P(candidate > baseline) averaged over tasks (rliable: per task, the Mann-Whitney probability that a
    random candidate run beats a random baseline run, ties counting half), with its 95% stratified-bootstrap
    CI over runs. Each dict maps task -> per-seed scores. Returns (estimate, ci_low, ci_high)."""
    from rliable import library as rly
    from rliable import metrics

    tasks = sorted(candidate)
    n = min(min(len(candidate[t]) for t in tasks), min(len(baseline[t]) for t in tasks))
    x = np.stack([np.asarray(candidate[t], dtype=float)[:n] for t in tasks], axis=1)  # (runs, tasks)
    y = np.stack([np.asarray(baseline[t], dtype=float)[:n] for t in tasks], axis=1)
    with warnings.catch_warnings():  # arch warns that rliable passes a RandomState (still supported in 7.2)
        warnings.simplefilter("ignore", FutureWarning)
        point, ci = rly.get_interval_estimates(
            {"p": (x, y)}, metrics.probability_of_improvement, reps=reps, random_state=np.random.RandomState(seed)
        )
    lo, hi = np.ravel(ci["p"])
    return float(np.ravel(point["p"])[0]), float(lo), float(hi)
