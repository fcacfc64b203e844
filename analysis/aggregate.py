"""Aggregate statistics the way rliable recommends (Agarwal et al. 2021), on the (runs x tasks) score
matrix of one implementation: IQM and mean with stratified-bootstrap CIs per env and across envs, and the
probability of improvement of ours over SB3. Seeded: the same runs give the same intervals.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPS = 5000


def _interval(scores: dict[str, np.ndarray], fn, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from rliable import library as rly

    # arch (under rliable) also draws from NumPy's global RNG, so a given random_state alone does not make the
    # CIs reproducible: seed the global RNG for the call and put its state back afterwards.
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():  # arch warns that rliable passes a RandomState (still supported in 7.2)
            warnings.simplefilter("ignore", FutureWarning)
            return rly.get_interval_estimates(scores, fn, reps=REPS, random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(saved)


def score_matrix(runs: pd.DataFrame, impl: str, envs: list[str]) -> np.ndarray:
    """(runs, tasks) scores of ``impl``: the first n seeds of every env, n = the fewest seeds of any env."""
    per_env = [runs[(runs.impl == impl) & (runs.env == e)].sort_values("seed").score.to_numpy(float) for e in envs]
    n = min(len(x) for x in per_env)
    return np.stack([x[:n] for x in per_env], axis=1)


def per_env_iqm(runs: pd.DataFrame, envs: list[str], seed: int = 0) -> pd.DataFrame:
    """Per env and implementation: IQM of the final return with its 95% bootstrap CI over seeds."""
    from rliable import metrics

    rows = []
    for impl in sorted(set(runs.impl)):
        for env in envs:
            x = runs[(runs.impl == impl) & (runs.env == env)].score.to_numpy(float)
            if len(x) == 0:
                continue
            if len(x) < 2:
                rows.append({"env": env, "impl": impl, "iqm": float(np.mean(x)), "iqm_low": np.nan, "iqm_high": np.nan})
                continue
            point, ci = _interval({impl: x[:, None]}, lambda m: np.array([metrics.aggregate_iqm(m)]), seed)
            lo, hi = np.ravel(ci[impl])
            rows.append(
                {
                    "env": env,
                    "impl": impl,
                    "iqm": float(np.ravel(point[impl])[0]),
                    "iqm_low": float(lo),
                    "iqm_high": float(hi),
                }
            )
    return pd.DataFrame(rows)


def improvement_over_sb3(runs: pd.DataFrame, envs: list[str], seed: int = 0, other: str = "sb3") -> dict | None:
    """P(ours > other) averaged over the envs both have (2+ seeds each), with its 95% stratified-bootstrap CI."""
    from rliable import metrics

    both = [e for e in envs if all(((runs.impl == i) & (runs.env == e)).sum() >= 2 for i in ("ours", other))]
    if not both:
        return None
    x, y = score_matrix(runs, "ours", both), score_matrix(runs, other, both)
    n = min(len(x), len(y))
    point, ci = _interval({"p": (x[:n], y[:n])}, metrics.probability_of_improvement, seed)
    lo, hi = np.ravel(ci["p"])
    return {"p": float(np.ravel(point["p"])[0]), "low": float(lo), "high": float(hi), "envs": len(both), "runs": n}


RANDOM_SCORES = Path(__file__).resolve().parent / "data" / "random_scores.csv"
METRICS = ("median", "iqm", "mean", "optimality_gap")


def random_scores(path: Path = RANDOM_SCORES) -> dict[str, float]:
    """env id -> mean return of a uniformly random policy (experiments/random_scores.py made the file)."""
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


def aggregate_table(normalized: dict[str, np.ndarray], label: str, seed: int = 0) -> pd.DataFrame:
    """Median, IQM, mean and optimality gap of normalised scores with 95% stratified-bootstrap CIs."""
    from rliable import metrics

    def fn(x: np.ndarray) -> np.ndarray:
        return np.array(
            [
                metrics.aggregate_median(x),
                metrics.aggregate_iqm(x),
                metrics.aggregate_mean(x),
                metrics.aggregate_optimality_gap(x),
            ]
        )

    if not normalized or min(m.shape[0] for m in normalized.values()) < 2:
        return pd.DataFrame()
    point, ci = _interval(normalized, fn, seed)
    rows = []
    for impl in normalized:
        for k, metric in enumerate(METRICS):
            rows.append(
                {
                    "normalised_by": label,
                    "impl": impl,
                    "metric": metric,
                    "value": float(point[impl][k]),
                    "ci_low": float(ci[impl][0][k]),
                    "ci_high": float(ci[impl][1][k]),
                    "envs": normalized[impl].shape[1],
                    "runs": normalized[impl].shape[0],
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
