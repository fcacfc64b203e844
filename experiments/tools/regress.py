"""``rlrepro regress ALGO``: is the current code a statistically significant regression?

The suite is the algorithm's ``regress`` budget: short runs on small envs that exercise the algorithm's real
path (continuous control, episodes that end by termination and by time limit), several seeds, minutes on two
cores; each config says why its envs and steps were chosen. The committed baseline
(``results/regress/<algo>-baseline.csv``) holds the per-seed scores the same command produced at a known commit
with seeds 0..N-1; the check runs the current code with *other* seeds (1000..1000+N-1), so an unchanged
algorithm is compared on fresh noise, not on a copy of itself.

Test (``RULE``, one of ``RULES``): per env, a one-sided Mann-Whitney test of a drop (the current code's scores
stochastically lower than the baseline's), Holm's correction across the suite's envs, a regression at alpha
0.05. Reported beside it: the probability of improvement P(candidate > baseline) (rliable; the Mann-Whitney
probability averaged over envs) with a 95% stratified-bootstrap CI, the rule used before (a regression when
that CI lies entirely below 0.5), which missed a drop on one env that a gain on another hid. Exact numerical
changes are caught separately by the golden fingerprints in ``make test``.

Each check of the working code writes its decision as the gate record ``results/regress/<algo>-gate.json``
(commit, the golden fingerprint files it ran against, P and its CI, pass or not): a golden fingerprint may only
be rewritten together with a passing record for the same golden (tests/test_fingerprint.py checks it), so a
change to an algorithm's numbers cannot land without having been through the gate. ``--mutant NAME`` runs the
candidate suite with one planted bug of ``experiments/tools/mutants.py`` applied to a copy of the code (the
working tree is not touched; no record is written): how the gate's power is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.scores import with_scores
from analysis.stats import probability_of_improvement
from analysis.verdicts import holm
from experiments.grid import execute, make_spec, plan_grid, run_grid
from experiments.store import ResultsStore, provenance
from experiments.tools.fingerprint import golden_hashes
from replications.core.errors import UserError

BASELINE_DIR = Path(__file__).resolve().parents[2] / "results" / "regress"
CANDIDATE_SEED_OFFSET = 1000
BOUND = 0.5
ALPHA = 0.05  # per-env rule: Holm-adjusted one-sided Mann-Whitney p-value of a drop on any env
ALPHA_EITHER = 0.02  # the per-env part of "either", so that the union keeps false alarms near 5%
RULES = {
    "averaged": f"P(current > baseline) averaged over envs, 95% CI entirely below {BOUND}",
    "per-env": f"a drop on any env: one-sided Mann-Whitney, Holm across envs, alpha {ALPHA}",
    "either": f"averaged, or a drop on any env at Holm-adjusted alpha {ALPHA_EITHER}",
}
RULE = "per-env"
"""Chosen on PPO's power sweep (results/regress/rules.csv): it caught every planted bug the averaged rule caught
and two it missed (a drop on one env that the other env's gain hid), at the same simulated false-alarm rate;
and its false-alarm rate has a distribution-free bound: under unchanged code the exact Mann-Whitney p-values
are uniform, so with Holm over E envs at most alpha (2 envs x 5 seeds: at most 2 x 4/252 = 3.2%)."""


def baseline_path(algo: str, directory: Path = BASELINE_DIR) -> Path:
    return directory / f"{algo}-baseline.csv"


def gate_record_path(algo: str, directory: Path = BASELINE_DIR) -> Path:
    return directory / f"{algo}-gate.json"


Plan = list[tuple[str, int, int]]
"""(env, seed, steps) of each run of a suite, for one algorithm, budget and overrides."""

_IN_COPY = """
import json, sys
from pathlib import Path
import replications
copy, args = Path(sys.argv[1]).resolve(), json.loads(sys.argv[2])
if Path(replications.__file__).resolve().parents[1] != copy:
    sys.exit(f"the mutant's runs imported {replications.__file__}, not the mutated copy in {copy}")
from experiments.tools.regress import run_plan
run_plan(**args)
"""


def run_plan(
    algo: str,
    budget: str,
    plan: Plan,
    root: str,
    workers: int = 1,
    seed_parallel: int = 1,
    overrides: dict | None = None,
    mutant: str | None = None,
) -> None:
    """Run ``plan`` into the results store at ``root``; with ``mutant``, in a subprocess on a copy of the code
    with that planted bug (experiments/tools/mutants.py), the working tree untouched. RuntimeError if any run
    failed."""
    if mutant:
        from experiments.tools.mutants import get, mutated_copy

        args = dict(algo=algo, budget=budget, plan=plan, root=root, workers=workers, seed_parallel=seed_parallel)
        with mutated_copy(get(mutant)) as copy:
            env = {**os.environ, "PYTHONPATH": str(copy), "RLREPRO_MUTANT": mutant}
            cmd = [sys.executable, "-c", _IN_COPY, str(copy), json.dumps({**args, "overrides": overrides})]
            if subprocess.run(cmd, cwd=copy, env=env, check=False).returncode != 0:
                raise RuntimeError(f"the runs with mutant {mutant} failed")
        return
    specs = [make_spec(algo, "ours", env, seed, steps, budget, overrides or {}) for env, seed, steps in plan]
    store = ResultsStore(root)
    if workers <= 1 and seed_parallel <= 1:  # in this process (what a test that patches the code needs)
        for spec in specs:
            execute(spec, store)
        return
    _, failures = run_grid(specs, store, workers=workers, seed_parallel=seed_parallel)
    if failures:
        raise RuntimeError(f"runs failed: {failures}")


def run_suite(
    algo: str,
    seed_offset: int,
    workers: int,
    overrides: dict | None = None,
    seed_parallel: int = 1,
    mutant: str | None = None,
    seeds: int | None = None,
) -> pd.DataFrame:
    """Per-seed scores of the regress suite (``seeds`` per env, default the suite's, offset by ``seed_offset``)
    for the current code, or with ``mutant`` planted (a temporary results store); with ``seed_parallel`` K, up
    to K seeds of one config train in one process (PPO, TRPO, NPG)."""
    specs = plan_grid(algo, "regress", impls=["ours"], overrides=overrides, seeds=seeds)
    plan = [(s.env, s.seed + seed_offset, s.steps) for s in specs]
    with tempfile.TemporaryDirectory() as tmp:
        run_plan(algo, "regress", plan, tmp, workers, seed_parallel, overrides, mutant)
        scored = with_scores(ResultsStore(tmp).read_index(), Path(tmp))
        scored["episodes"], scored["time_limited"] = zip(
            *(episode_ends(Path(tmp) / p, env) for p, env in zip(scored.path, scored.env, strict=True)), strict=True
        )
    df = scored[["env", "seed", "score", "steps", "config_id", "episodes", "time_limited"]]
    return df.sort_values(["env", "seed"]).reset_index(drop=True)


def episode_ends(run_dir: Path, env: str) -> tuple[int, int]:
    """(episodes, those cut by the env's time limit) of a run: a suite should see both kinds of episode end,
    a termination and a time-limit truncation, so bugs in either path can show."""
    import gymnasium as gym

    from analysis.scoring import read_run_table

    lengths = read_run_table(run_dir / "episodes.csv", ("length",)).length
    limit = gym.spec(env).max_episode_steps
    return len(lengths), int((lengths == limit).sum()) if limit else 0


PROBE_SEED_OFFSET = 2000
PROBE_FRACTIONS = (0.125, 0.25, 0.5, 1.0)


def probe(
    algo: str, env: str, steps: int, mutant: str, seeds: int = 5, workers: int = 1, seed_parallel: int = 1
) -> pd.DataFrame:
    """How fast a suite on ``env`` separates the working code from ``mutant``: ``seeds`` runs of each for
    ``steps``, scored (the algorithm's rule) on what each run had logged at fractions of ``steps``; per
    fraction, P(working > mutant) with its 95% CI. One pair of grids gives every budget up to ``steps``, so the
    cheapest budget that separates them is read off, not guessed (record it in the config's regress budget)."""
    from analysis.scores import scoring_rule
    from analysis.scoring import read_run_table, score

    rule = scoring_rule(algo)
    plan = [(env, PROBE_SEED_OFFSET + i, steps) for i in range(seeds)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, planted in (("working", None), ("mutant", mutant)):
            start = time.time()
            run_plan(algo, "custom", plan, f"{tmp}/{name}", workers, seed_parallel, None, planted)
            wall = time.time() - start
            store = ResultsStore(f"{tmp}/{name}")
            for row in store.read_index().itertuples():
                run_dir = store.root / row.path
                episodes = read_run_table(run_dir / "episodes.csv", ("step", "return"))
                path = run_dir / "evaluations.csv"
                evaluations = read_run_table(path, ("step", "return")) if path.exists() else None
                for fraction in PROBE_FRACTIONS:
                    cut = fraction * steps
                    value = score(
                        episodes[episodes.step <= cut],
                        rule,
                        None if evaluations is None else evaluations[evaluations.step <= cut],
                    )
                    rows.append({"code": name, "seed": row.seed, "steps": int(cut), "score": value, "wall": wall})
    runs = pd.DataFrame(rows)
    table = []
    for cut, at in runs.groupby("steps"):
        working, broken = (at[at.code == c].score.dropna().to_numpy() for c in ("working", "mutant"))
        if min(len(working), len(broken)) < 2:  # nothing scored yet at this cut (an evaluation-scored algorithm)
            continue
        p, lo, hi = probability_of_improvement({env: working}, {env: broken})
        table.append(
            {
                "steps": cut,
                "working_mean": working.mean(),
                "mutant_mean": broken.mean(),
                "p_working_better": p,
                "ci_low": lo,
                "ci_high": hi,
                "separated": lo > BOUND,
            }
        )
    out = pd.DataFrame(table)
    wall = runs.groupby("code").wall.first()
    print(f"probe {algo} on {env}, {seeds} seeds x {steps:,} steps, mutant {mutant}:")
    print(out.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
    print(
        f"wall: working {wall['working']:,.0f} s, mutant {wall['mutant']:,.0f} s for {seeds} seeds x {steps:,} steps "
        f"({workers} worker(s), seed-parallel {seed_parallel})"
    )
    return out


def drop_pvalues(candidate: dict[str, np.ndarray], baseline: dict[str, np.ndarray]) -> dict[str, float]:
    """Per env, the one-sided Mann-Whitney p-value that the candidate's scores are stochastically lower than
    the baseline's (exact without ties, the normal approximation with them); Holm's correction is the caller's."""

    def p_lower(x: np.ndarray, y: np.ndarray) -> float:
        ties = len(np.unique(np.r_[x, y])) < len(x) + len(y)
        method = "asymptotic" if ties else "exact"
        return float(stats.mannwhitneyu(x, y, alternative="less", method=method).pvalue)

    return {env: p_lower(candidate[env], baseline[env]) for env in baseline}


def rule_decisions(p_ci_high: float, drop_p_holm: dict[str, float]) -> dict[str, bool]:
    """Every decision rule's verdict (True: a regression) from the two statistics ``compare`` computes."""
    worst = min(drop_p_holm.values())
    return {
        "averaged": p_ci_high < BOUND,
        "per-env": worst < ALPHA,
        "either": p_ci_high < BOUND or worst < ALPHA_EITHER,
    }


def compare(candidate: pd.DataFrame, baseline: pd.DataFrame) -> dict:
    """The gate's statistics, every rule's verdict (``decisions``) and the decision of the rule in use, ``RULE``."""
    envs = sorted(set(baseline.env))
    missing = sorted(set(envs) - set(candidate.env))
    if missing:
        raise UserError(f"the candidate suite lacks envs {missing} of the baseline; re-run with the same suite")
    by_env = lambda df: {e: df[df.env == e].score.to_numpy() for e in envs}  # noqa: E731
    p, lo, hi = probability_of_improvement(by_env(candidate), by_env(baseline))
    drops = drop_pvalues(by_env(candidate), by_env(baseline))
    adjusted = dict(zip(envs, holm([drops[e] for e in envs]), strict=True))
    table = pd.DataFrame(
        {
            "env": envs,
            "baseline_mean": [baseline[baseline.env == e].score.mean() for e in envs],
            "candidate_mean": [candidate[candidate.env == e].score.mean() for e in envs],
            "n_baseline": [int((baseline.env == e).sum()) for e in envs],
            "n_candidate": [int((candidate.env == e).sum()) for e in envs],
            "p_drop_holm": [adjusted[e] for e in envs],
        }
    )
    decisions = rule_decisions(hi, adjusted)
    return {
        "table": table,
        "p_improvement": p,
        "ci_low": lo,
        "ci_high": hi,
        "p_drop_holm": adjusted,
        "decisions": decisions,
        "regression": decisions[RULE],
    }


def regress(
    algo: str,
    *,
    update_baseline: bool = False,
    workers: int = 1,
    overrides: dict | None = None,
    baseline_dir: Path = BASELINE_DIR,
    mutant: str | None = None,
    seed_parallel: int = 1,
) -> int:
    """0: no significant regression; 1: a regression (or, with ``mutant``, a suite the bug made fail)."""
    path = baseline_path(algo, baseline_dir)
    start = time.time()
    if update_baseline:
        if mutant:
            raise UserError("--mutant measures the gate against the committed baseline; it cannot write one")
        df = run_suite(algo, 0, workers, overrides, seed_parallel)
        meta = provenance()
        df["commit"], df["dirty"] = meta["commit"], meta["dirty"]
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        print(
            f"baseline for {algo} written to {path} ({len(df)} runs at commit {meta['commit']}, dirty={meta['dirty']}, "
            f"{time.time() - start:,.0f} s)"
        )
        return 0
    baseline = load_baseline(algo, baseline_dir)
    result = decide(algo, baseline, workers, overrides, seed_parallel, mutant)
    if not mutant and not overrides:
        write_gate_record(algo, result, baseline, baseline_dir)
    sys.stdout.flush()
    return 1 if result["regression"] else 0


def suite_ids(algo: str) -> list[str]:
    """The config ids of ``algo``'s regress suite as its config stands (a gate record vouches for this suite)."""
    return sorted({s.config_id for s in plan_grid(algo, "regress", impls=["ours"])})


def load_baseline(algo: str, directory: Path = BASELINE_DIR) -> pd.DataFrame:
    """The committed per-seed baseline scores of ``algo``'s suite; a missing or unreadable file is one line."""
    path = baseline_path(algo, directory)
    if not path.exists():
        raise UserError(f"no baseline for {algo} at {path}; create it with 'rlrepro regress {algo} --update-baseline'")
    try:
        baseline = pd.read_csv(path)
        baseline[["env", "seed", "score", "config_id", "commit"]]  # noqa: B018
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:
        raise UserError(
            f"baseline {path} is unreadable ({str(exc).splitlines()[0]}); regenerate it with --update-baseline"
        ) from exc
    return baseline


def decide(
    algo: str,
    baseline: pd.DataFrame,
    workers: int = 1,
    overrides: dict | None = None,
    seed_parallel: int = 1,
    mutant: str | None = None,
) -> dict:
    """One gate decision: the suite run on fresh seeds (with ``mutant`` planted, if given) against ``baseline``.
    The ``compare`` result plus ``broke`` (the planted bug made a run fail: caught), ``stale`` and ``wall_s``;
    the decision is printed."""
    start = time.time()
    if mutant:
        from experiments.tools.mutants import get

        planted = get(mutant)
        print(f"mutant {planted.name} ({planted.family}; {planted.file}): {planted.what}")
        try:
            candidate = run_suite(algo, CANDIDATE_SEED_OFFSET, workers, overrides, seed_parallel, mutant)
        except RuntimeError as exc:
            print(f"{exc}: CAUGHT (the planted bug broke the suite)")
            nan = float("nan")
            broke = {"regression": True, "broke": True, "stale": False, "wall_s": time.time() - start}
            return {**broke, "p_improvement": nan, "ci_low": nan, "ci_high": nan, "table": pd.DataFrame()}
    else:
        candidate = run_suite(algo, CANDIDATE_SEED_OFFSET, workers, overrides, seed_parallel)
    stale = set(baseline.config_id) != set(candidate.config_id)
    if stale:
        print(
            "note: the baseline was made with other hyperparameters or budgets than this suite; after a "
            "deliberate config change, rewrite it with --update-baseline"
        )
    result = compare(candidate, baseline)
    ends = candidate.groupby("env")[["episodes", "time_limited"]].sum()
    result["table"] = result["table"].join(ends, on="env")
    formats = {"p_drop_holm": "{:.3f}".format}
    print(result["table"].to_string(index=False, formatters=formats, float_format=lambda x: f"{x:,.1f}"))
    verdict = "REGRESSION" if result["regression"] else "no significant regression"
    wall = time.time() - start
    print(
        f"P(current > baseline) = {result['p_improvement']:.2f}, 95% CI [{result['ci_low']:.2f}, "
        f"{result['ci_high']:.2f}] (baseline commit {baseline['commit'].iloc[0]}): {verdict} "
        f"(rule {RULE}: {RULES[RULE]}); {wall:,.0f} s"
    )
    return {**result, "broke": False, "stale": stale, "wall_s": wall, "candidate": candidate}


def write_gate_record(algo: str, result: dict, baseline: pd.DataFrame, directory: Path = BASELINE_DIR) -> None:
    """The gate's decision on the working code, kept beside the baseline (tests/test_fingerprint.py reads it)."""
    meta = provenance()
    record: dict[str, Any] = {
        "algo": algo,
        "passed": not result["regression"] and not result["stale"],
        "p_improvement": round(float(result["p_improvement"]), 4),
        "ci": [round(float(result["ci_low"]), 4), round(float(result["ci_high"]), 4)],
        "rule": RULE,
        "p_drop_holm": {env: round(float(p), 4) for env, p in result["p_drop_holm"].items()},
        "scores": {env: g.score.round(3).tolist() for env, g in result["candidate"].groupby("env")},
        "stale_baseline": result["stale"],
        "baseline_commit": str(baseline["commit"].iloc[0]),
        "commit": meta["commit"],
        "dirty": meta["dirty"],
        "golden": golden_hashes(algo),
        "suite": suite_ids(algo),
        "wall_s": round(result["wall_s"], 1),
        "cpu": meta["cpu"],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = gate_record_path(algo, directory)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"gate record: {path} ({'passed' if record['passed'] else 'NOT passed'})")
