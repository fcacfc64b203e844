"""Aggregate statistics the way rliable recommends (Agarwal et al. 2021), on the (runs x tasks) score
matrix of one implementation: IQM and mean with stratified-bootstrap CIs per env and across envs, and the
probability of improvement of ours over SB3. rliable's metrics, vectorised over resamples, with scipy's
bootstrap (analysis/stats.py): a few milliseconds per interval instead of rliable's seconds. Seeded: the same
runs give the same intervals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.stats import (
    iqm,
    mean_of_means,
    median_of_means,
    optimality_gap,
    probability_of_improvement,
    stratified_bootstrap,
)

REPS = 5000


def score_matrix(runs: pd.DataFrame, impl: str, envs: list[str]) -> np.ndarray:
    """(runs, tasks) scores of ``impl``: the first n seeds of every env, n = the fewest seeds of any env."""
    per_env = [runs[(runs.impl == impl) & (runs.env == e)].sort_values("seed").score.to_numpy(float) for e in envs]
    n = min(len(x) for x in per_env)
    return np.stack([x[:n] for x in per_env], axis=1)


def per_env_iqm(runs: pd.DataFrame, envs: list[str], seed: int = 0) -> pd.DataFrame:
    """Per env and implementation: IQM of the final return with its 95% bootstrap CI over seeds."""
    rows = []
    for impl in sorted(set(runs.impl)):
        for env in envs:
            x = runs[(runs.impl == impl) & (runs.env == env)].score.to_numpy(float)
            if len(x) == 0:
                continue
            if len(x) < 2:
                rows.append({"env": env, "impl": impl, "iqm": float(np.mean(x)), "iqm_low": np.nan, "iqm_high": np.nan})
                continue
            point, lo, hi = stratified_bootstrap([[x]], iqm, seed=seed, n_resamples=REPS)
            rows.append({"env": env, "impl": impl, "iqm": point, "iqm_low": lo, "iqm_high": hi})
    return pd.DataFrame(rows)


def improvement_over_sb3(runs: pd.DataFrame, envs: list[str], seed: int = 0, other: str = "sb3") -> dict | None:
    """P(ours > other) averaged over the envs both have (2+ seeds each), with its 95% stratified-bootstrap CI."""
    scores = lambda impl, e: runs[(runs.impl == impl) & (runs.env == e)].score.to_numpy(float)  # noqa: E731
    both = [e for e in envs if all(len(scores(i, e)) >= 2 for i in ("ours", other))]
    if not both:
        return None
    xs, ys = {e: scores("ours", e) for e in both}, {e: scores(other, e) for e in both}
    p, lo, hi = probability_of_improvement(xs, ys, seed=seed, reps=REPS)
    return {"p": p, "low": lo, "high": hi, "envs": len(both), "runs": min(len(s) for s in [*xs.values(), *ys.values()])}


RANDOM_SCORES = Path(__file__).resolve().parent / "data" / "random_scores.csv"
METRICS = ("median", "iqm", "mean", "optimality_gap")


def random_scores(path: Path = RANDOM_SCORES) -> dict[str, float]:
    """env id -> mean return of a uniformly random policy (experiments/tools/random_scores.py made the file)."""
    table = pd.read_csv(path)
    return dict(zip(table.env, table.random_score, strict=True))


def normalized_scores(
    runs: pd.DataFrame, envs: list[str], impls: list[str], high: dict[str, float], low: dict[str, float]
) -> dict[str, np.ndarray]:
    """impl -> (runs, tasks) of (score - low) / (high - low): 0 = random policy, 1 = the reference ``high``.
    Only envs with a reference, a random score and at least one run of every impl are kept."""
    usable = [
        e
        for e in envs
        if e in high
        and e in low
        and abs(high[e] - low[e]) > 1e-9
        and all(((runs.impl == i) & (runs.env == e)).any() for i in impls)
    ]
    if len(usable) < 1:
        return {}
    out = {}
    for impl in impls:
        matrix = score_matrix(runs, impl, usable)
        out[impl] = (matrix - np.array([low[e] for e in usable])) / np.array([high[e] - low[e] for e in usable])
    return out


AGGREGATES = {"median": median_of_means, "iqm": iqm, "mean": mean_of_means, "optimality_gap": optimality_gap}


def aggregate_table(normalized: dict[str, np.ndarray], label: str, seed: int = 0) -> pd.DataFrame:
    """Median, IQM, mean and optimality gap of normalised scores with 95% stratified-bootstrap CIs."""
    if not normalized or min(m.shape[0] for m in normalized.values()) < 2:
        return pd.DataFrame()
    rows = []
    for impl, matrix in normalized.items():
        tasks = [matrix[:, t] for t in range(matrix.shape[1])]
        for metric in METRICS:
            value, lo, hi = stratified_bootstrap([tasks], AGGREGATES[metric], seed=seed, n_resamples=REPS)
            rows.append(
                {
                    "normalised_by": label,
                    "impl": impl,
                    "metric": metric,
                    "value": value,
                    "ci_low": lo,
                    "ci_high": hi,
                    "envs": matrix.shape[1],
                    "runs": matrix.shape[0],
                }
            )
    return pd.DataFrame(rows)


def performance_profile_figure(normalized: dict[str, np.ndarray], label: str):
    """Fraction of runs with normalised score > tau, per implementation (point estimates: deterministic)."""
    import matplotlib.pyplot as plt

    taus = np.linspace(-0.25, 2.0, 91)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for impl, matrix in normalized.items():
        ax.plot(
            taus, [(matrix > t).mean() for t in taus], label=f"{impl} ({matrix.shape[0]} runs x {matrix.shape[1]} envs)"
        )
    ax.set_xlabel(f"score normalised by {label} (0 = random policy, 1 = {label})")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
