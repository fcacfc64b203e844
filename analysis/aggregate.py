"""Aggregate statistics the way rliable recommends (Agarwal et al. 2021), on the (runs x tasks) score
matrix of one implementation: IQM and mean with stratified-bootstrap CIs per env and across envs, and the
probability of improvement of ours over SB3. Seeded: the same runs give the same intervals.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

REPS = 5000


def _interval(scores: dict[str, np.ndarray], fn, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from rliable import library as rly

    with warnings.catch_warnings():  # arch warns that rliable passes a RandomState (still supported in 7.2)
        warnings.simplefilter("ignore", FutureWarning)
        return rly.get_interval_estimates(scores, fn, reps=REPS, random_state=np.random.RandomState(seed))


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
