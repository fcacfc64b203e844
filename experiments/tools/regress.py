"""``rlrepro regress ALGO``: is the current code a statistically significant regression?

The suite is the algorithm's ``regress`` budget (a few classic-control envs, several seeds, minutes on two
cores). The committed baseline (``results/regress/<algo>-baseline.csv``) holds the per-seed scores the same
command produced at a known commit with seeds 0..N-1; the check runs the current code with *other* seeds
(1000..1000+N-1), so an unchanged algorithm is compared on fresh noise, not on a copy of itself.

Test: the probability of improvement P(candidate > baseline) (rliable; per env a Mann-Whitney probability,
averaged over envs) with a 95% stratified-bootstrap CI. A regression is a CI entirely below 0.5: the current
code is significantly more likely to score lower than the baseline. Exact numerical changes are caught
separately by the golden fingerprints in ``make test``.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import pandas as pd

from analysis.scores import with_scores
from analysis.stats import probability_of_improvement
from experiments.grid import execute, plan_grid, run_grid
from experiments.store import ResultsStore, provenance
from replications.core.errors import UserError

BASELINE_DIR = Path(__file__).resolve().parents[2] / "results" / "regress"
CANDIDATE_SEED_OFFSET = 1000
BOUND = 0.5


def baseline_path(algo: str, directory: Path = BASELINE_DIR) -> Path:
    return directory / f"{algo}-baseline.csv"


def run_suite(algo: str, seed_offset: int, workers: int, overrides: dict | None = None) -> pd.DataFrame:
    """Per-seed scores of the regress suite for the current code (a temporary results store)."""
    specs = plan_grid(algo, "regress", impls=["ours"], overrides=overrides)
    specs = [dataclasses.replace(s, seed=s.seed + seed_offset) for s in specs]
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(tmp)
        if workers <= 1:  # in this process (what a test that patches the code needs)
            rows = [execute(spec, store) for spec in specs]
        else:
            _, failures = run_grid(specs, store, workers=workers)
            if failures:
                raise RuntimeError(f"regress suite runs failed: {failures}")
            rows = store.read_index().to_dict("records")
        scored = with_scores(pd.DataFrame(rows), store.root)
    df = scored[["env", "seed", "score", "steps", "config_id"]].sort_values(["env", "seed"])
    return df.reset_index(drop=True)


def compare(candidate: pd.DataFrame, baseline: pd.DataFrame) -> dict:
    envs = sorted(set(baseline.env))
    missing = sorted(set(envs) - set(candidate.env))
    if missing:
        raise UserError(f"the candidate suite lacks envs {missing} of the baseline; re-run with the same suite")
    by_env = lambda df: {e: df[df.env == e].score.to_numpy() for e in envs}  # noqa: E731
    p, lo, hi = probability_of_improvement(by_env(candidate), by_env(baseline))
    table = pd.DataFrame(
        {
            "env": envs,
            "baseline_mean": [baseline[baseline.env == e].score.mean() for e in envs],
            "candidate_mean": [candidate[candidate.env == e].score.mean() for e in envs],
            "n_baseline": [int((baseline.env == e).sum()) for e in envs],
            "n_candidate": [int((candidate.env == e).sum()) for e in envs],
        }
    )
    return {"table": table, "p_improvement": p, "ci_low": lo, "ci_high": hi, "regression": hi < BOUND}


def regress(
    algo: str,
    *,
    update_baseline: bool = False,
    workers: int = 1,
    overrides: dict | None = None,
    baseline_dir: Path = BASELINE_DIR,
) -> int:
    path = baseline_path(algo, baseline_dir)
    if update_baseline:
        df = run_suite(algo, 0, workers, overrides)
        meta = provenance()
        df["commit"], df["dirty"] = meta["commit"], meta["dirty"]
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        print(
            f"baseline for {algo} written to {path} ({len(df)} runs at commit {meta['commit']}, dirty={meta['dirty']})"
        )
        return 0
    if not path.exists():
        raise UserError(f"no baseline for {algo} at {path}; create it with 'rlrepro regress {algo} --update-baseline'")
    try:
        baseline = pd.read_csv(path)
        baseline[["env", "seed", "score"]]  # noqa: B018
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:
        raise UserError(
            f"baseline {path} is unreadable ({str(exc).splitlines()[0]}); regenerate it with --update-baseline"
        ) from exc
    candidate = run_suite(algo, CANDIDATE_SEED_OFFSET, workers, overrides)
    stale = set(baseline.config_id) != set(candidate.config_id)
    if stale:
        print(
            "note: the baseline was made with other hyperparameters or budgets than this suite; after a "
            "deliberate config change, rewrite it with --update-baseline"
        )
    result = compare(candidate, baseline)
    print(result["table"].to_string(index=False, float_format=lambda x: f"{x:,.1f}"))
    verdict = "REGRESSION" if result["regression"] else "no significant regression"
    print(
        f"P(current > baseline) = {result['p_improvement']:.2f}, 95% CI [{result['ci_low']:.2f}, "
        f"{result['ci_high']:.2f}] (baseline commit {baseline['commit'].iloc[0]}): {verdict} "
        f"(regression = CI entirely below {BOUND})"
    )
    sys.stdout.flush()
    return 1 if result["regression"] else 0
