"""How good the regression gate is, measured: ``rlrepro regress ALGO --power`` / ``--false-alarms``.

Power: the gate's decision with each planted bug of ``experiments/tools/mutants.py`` that ``ALGO``'s runs
execute, one row per (algorithm, mutant, commit) in ``results/regress/power.csv``: caught (a regression, or a
run the bug made fail) or missed. The detection rate per family counts the latest decision of every mutant.

False alarms: how often unchanged code is flagged, two ways, rows of ``results/regress/false-alarms.csv``:

- measured: a pool of fresh-seed runs of the working code (``decisions`` x the suite's seeds per env, seeds
  3000..; their scores kept in ``results/regress/<algo>-null-pool.csv``) split into disjoint sets of the suite's
  size, each judged against the committed baseline exactly as the gate judges a candidate;
- simulated: ``reps`` pairs of suites (baseline and candidate) drawn from a normal fit (mean, sample std) of
  the committed baseline's per-env scores, each judged by the gate's own comparison and bootstrap. Cheap, so
  every algorithm with a baseline gets it. It assumes continuous scores without ties, which the measured rate
  does not (a capped return such as CartPole's 500 ties); and as the gate's statistic is rank-based, under that
  assumption the rate depends only on the suite's shape (envs, seeds), not on the fit. Judging the drawn
  candidates against the committed baseline itself would understate the rate: the fit is centred on those
  very scores.

Each rate carries a 95% Wilson interval; the goal is at most 5% false alarms and 80% of harmful mutants caught.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.scores import with_scores
from experiments.grid import plan_grid
from experiments.store import ResultsStore, provenance
from experiments.tools.mutants import FAMILIES, MUTANTS, get
from experiments.tools.regress import BASELINE_DIR, RULE, RULES, compare, decide, load_baseline, run_plan
from replications.core.errors import UserError

NULL_SEED_OFFSET = 3000
RULE_BEFORE_RECORDED = "averaged"  # the rule of the records and rows made before each named its rule
GOAL_DETECTION, GOAL_FALSE_ALARMS = 0.80, 0.05


def power_path(directory: Path = BASELINE_DIR) -> Path:
    return directory / "power.csv"


def false_alarms_path(directory: Path = BASELINE_DIR) -> Path:
    return directory / "false-alarms.csv"


def null_pool_path(algo: str, directory: Path = BASELINE_DIR) -> Path:
    return directory / f"{algo}-null-pool.csv"


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n."""
    if n == 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def mutants_for(algo: str, names: list[str] | None = None) -> list[str]:
    """The catalogue's mutants whose code ``algo``'s runs execute (or ``names``, each checked to be one)."""
    runnable = [m.name for m in MUTANTS.values() if algo in m.algos]
    if not names:
        return runnable
    for name in names:
        if algo not in get(name).algos:
            raise UserError(f"mutant {name} plants code that {algo} does not run; {algo}'s: {', '.join(runnable)}")
    return names


def _append(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to a CSV (header on first write). Rows already there keep their values; where the new
    rows bring a column the file lacks, the file is rewritten with that column empty for the old rows."""
    frame = pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        columns = pd.read_csv(path, nrows=0).columns.tolist()
        if columns != frame.columns.tolist():
            old = pd.read_csv(path)
            pd.concat([old, frame], ignore_index=True).to_csv(path, index=False)
            return
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)


def _provenance() -> dict:
    meta = provenance()
    return {
        "commit": meta["commit"],
        "dirty": meta["dirty"],
        "cpu": meta["cpu"],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def measure_power(
    algo: str,
    names: list[str] | None = None,
    workers: int = 1,
    seed_parallel: int = 1,
    directory: Path = BASELINE_DIR,
) -> pd.DataFrame:
    """The gate's decision on ``algo`` with each mutant (default: every one its runs execute), each appended to
    power.csv as it is made (a long sweep cut short keeps what it measured)."""
    baseline = load_baseline(algo, directory)
    names = mutants_for(algo, names)
    rows = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {algo} with mutant {name}", flush=True)
        result = decide(algo, baseline, workers, None, seed_parallel, name)
        table = result["table"]
        means = {} if table.empty else dict(zip(table.env, table.candidate_mean.round(2), strict=True))
        candidate = result.get("candidate")  # per-seed scores: another decision rule can be judged on them later
        scores = {} if candidate is None else {e: g.score.round(3).tolist() for e, g in candidate.groupby("env")}
        row = {
            "algo": algo,
            "mutant": name,
            "family": get(name).family,
            "caught": bool(result["regression"]),
            "broke": bool(result["broke"]),
            "p_improvement": round(float(result["p_improvement"]), 4),
            "ci_low": round(float(result["ci_low"]), 4),
            "ci_high": round(float(result["ci_high"]), 4),
            "rule": RULE,
            "p_drop_holm": json.dumps({e: round(float(v), 4) for e, v in result.get("p_drop_holm", {}).items()}),
            "means": json.dumps(means),
            "scores": json.dumps(scores),
            "baseline_commit": str(baseline["commit"].iloc[0]),
            "wall_s": round(result["wall_s"], 1),
            **_provenance(),
        }
        _append(power_path(directory), [row])
        rows.append(row)
    return pd.DataFrame(rows)


def _decisions(candidate_sets: list[pd.DataFrame], baseline: pd.DataFrame) -> list[bool]:
    return [bool(compare(candidate, baseline)["regression"]) for candidate in candidate_sets]


def _record_false_alarms(algo: str, method: str, alarms: list[bool], wall: float, directory: Path, **extra) -> dict:
    k, n = sum(alarms), len(alarms)
    low, high = wilson(k, n)
    row = {
        "algo": algo,
        "method": method,
        "decisions": n,
        "alarms": k,
        "rate": round(k / n, 4),
        "ci_low": round(low, 4),
        "ci_high": round(high, 4),
        "wall_s": round(wall, 1),
        "rule": RULE,
        **extra,
        **_provenance(),
    }
    _append(false_alarms_path(directory), [row])
    print(
        f"{algo} false alarms ({method}): {k} of {n} decisions = {k / n:.1%}, 95% CI [{low:.1%}, {high:.1%}] "
        f"(goal at most {GOAL_FALSE_ALARMS:.0%})"
    )
    return row


def _normal_fit(baseline: pd.DataFrame, seed: int):
    """A function drawing a suite of scores (the baseline's envs and seeds per env) from a normal fit (mean,
    sample std) of the baseline's per-env scores."""
    rng = np.random.default_rng(seed)
    fits = {env: (g.score.mean(), g.score.std(ddof=1), len(g)) for env, g in baseline.groupby("env")}

    def draw() -> pd.DataFrame:
        rows = [(env, i, rng.normal(mu, sd)) for env, (mu, sd, n) in fits.items() for i in range(n)]
        return pd.DataFrame(rows, columns=["env", "seed", "score"])

    return draw


def simulate_false_alarms(algo: str, reps: int = 1000, seed: int = 0, directory: Path = BASELINE_DIR) -> dict:
    """The gate's false-alarm rate when the baseline's and the current code's scores come from one
    distribution (a normal fit per env of the committed baseline), both drawn afresh for each decision."""
    start = time.time()
    baseline = load_baseline(algo, directory)
    draw = _normal_fit(baseline, seed)
    alarms = [bool(compare(draw(), draw())["regression"]) for _ in range(reps)]
    return _record_false_alarms(algo, "simulated", alarms, time.time() - start, directory, seed=seed)


def rules_path(directory: Path = BASELINE_DIR) -> Path:
    return directory / "rules.csv"


def compare_rules(algo: str, reps: int = 1000, seed: int = 0, directory: Path = BASELINE_DIR) -> pd.DataFrame:
    """Each decision rule of ``regress.RULES`` judged on what is measured, without new runs: the mutants caught
    among the latest power rows of ``algo`` that kept per-seed scores (a mutant that broke a run counts as
    caught by every rule), and the simulated false-alarm rate (the normal fit of ``simulate_false_alarms``,
    the same draws for every rule). One row per rule appended to rules.csv."""
    start = time.time()
    baseline = load_baseline(algo, directory)
    path = power_path(directory)
    power = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["algo", "mutant", "scores", "broke"])
    power = power[power.algo == algo].drop_duplicates("mutant", keep="last")
    power = power[[bool(r.broke) or bool(_scores(r)) for r in power.itertuples()]]
    if power.empty:
        raise UserError(f"no power rows with per-seed scores for {algo}: run rlrepro regress {algo} --power first")
    caught: dict[str, list[str]] = {rule: [] for rule in RULES}
    for row in power.itertuples():
        broke = dict.fromkeys(RULES, True)
        decisions = broke if row.broke else compare(_frame(_scores(row)), baseline)["decisions"]
        for rule, flagged in decisions.items():
            if flagged:
                caught[rule].append(row.mutant)
    draw = _normal_fit(baseline, seed)
    alarms = {rule: 0 for rule in RULES}
    for _ in range(reps):
        for rule, flagged in compare(draw(), draw())["decisions"].items():
            alarms[rule] += flagged
    sets = _disjoint_sets(_usable_pool(algo, plan_grid(algo, "regress", impls=["ours"]), directory), baseline)
    measured = {rule: 0 for rule in RULES}
    for chosen in sets:
        for rule, flagged in compare(chosen, baseline)["decisions"].items():
            measured[rule] += flagged
    rows = []
    for rule, description in RULES.items():
        low, high = wilson(alarms[rule], reps)
        k, n = len(caught[rule]), len(power)
        rows.append(
            {
                "algo": algo,
                "rule": rule,
                "description": description,
                "mutants_caught": k,
                "mutants_measured": n,
                "caught": " ".join(caught[rule]),
                "simulated_false_alarms": round(alarms[rule] / reps, 4),
                "fa_ci_low": round(low, 4),
                "fa_ci_high": round(high, 4),
                "reps": reps,
                "measured_false_alarms": measured[rule],
                "measured_decisions": len(sets),
                "in_use": rule == RULE,
                **_provenance(),
            }
        )
        print(
            f"{algo} rule {rule:<9} caught {k}/{n} mutants; simulated false alarms "
            f"{alarms[rule] / reps:.1%} [{low:.1%}, {high:.1%}]; measured false alarms {measured[rule]} of "
            f"{len(sets)} disjoint null sets{'  (in use)' if rule == RULE else ''}"
        )
    print(f"({time.time() - start:,.0f} s)")
    _append(rules_path(directory), rows)
    return pd.DataFrame(rows)


def measure_false_alarms(
    algo: str, decisions: int = 20, workers: int = 1, seed_parallel: int = 1, directory: Path = BASELINE_DIR
) -> dict:
    """The gate's false-alarm rate on real runs of the working code: ``decisions`` disjoint sets of fresh seeds
    (the suite's seeds per env each), each judged against the committed baseline. The pool's scores are kept
    in <algo>-null-pool.csv (new rows; what the pool holds for the same suite and algorithm code is reused)."""
    start = time.time()
    baseline = load_baseline(algo, directory)
    specs = plan_grid(algo, "regress", impls=["ours"])
    per_set = len({s.seed for s in specs})
    pool = _null_pool(algo, specs, decisions * per_set, workers, seed_parallel, directory)
    sets = _disjoint_sets(pool, baseline)
    if len(sets) < decisions:
        first = NULL_SEED_OFFSET + len(sets) * per_set
        raise RuntimeError(f"the null pool lacks runs of set {len(sets)} (seeds {first}..{first + per_set - 1})")
    sets = sets[:decisions]
    alarms = _decisions(sets, baseline)
    return _record_false_alarms(algo, "measured", alarms, time.time() - start, directory, seed=NULL_SEED_OFFSET)


def _usable_pool(algo: str, specs: list, directory: Path) -> pd.DataFrame:
    """The null pool's rows that count now: this suite's configs, a clean tree, the same algorithm code."""
    path = null_pool_path(algo, directory)
    columns = ["env", "seed", "score", "config_id", "commit", "dirty"]
    kept = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)
    head = provenance()["commit"]
    same_code = kept.commit.map(lambda c: same_algorithm(str(c), head, algo)).astype(bool)
    return kept[same_code & ~kept.dirty.astype(bool) & kept.config_id.isin({s.config_id for s in specs})]


def _disjoint_sets(pool: pd.DataFrame, suite: pd.DataFrame) -> list[pd.DataFrame]:
    """The pool cut into consecutive disjoint sets of the shape of ``suite`` (a baseline: its envs and seeds
    per env; seeds NULL_SEED_OFFSET + d * n ..), up to the first set that lacks a run."""
    per_set, envs = suite.groupby("env").size().max(), sorted(set(suite.env))
    sets: list[pd.DataFrame] = []
    while True:
        start = NULL_SEED_OFFSET + len(sets) * per_set
        chosen = pool[pool.seed.isin(range(start, start + per_set))]
        if sorted(set(chosen.env)) != envs or len(chosen) != per_set * len(envs):
            return sets
        sets.append(chosen)


def _null_pool(algo: str, specs: list, n_seeds: int, workers: int, seed_parallel: int, directory: Path) -> pd.DataFrame:
    """Scores of the working code on seeds NULL_SEED_OFFSET.. (n_seeds per env of the suite), kept in
    <algo>-null-pool.csv; runs the pool already holds for this config, made from a clean tree by the same
    algorithm code (``same_algorithm``), are not run again: a pool can grow across sessions."""
    path = null_pool_path(algo, directory)
    meta = provenance()
    if meta["dirty"]:
        print("warning: the tree has uncommitted changes; the null pool's rows are marked dirty")
    steps = {s.env: s.steps for s in specs}
    same = _usable_pool(algo, specs, directory)
    have = set(zip(same.env, same.seed, strict=True))
    plan = [
        (env, NULL_SEED_OFFSET + i, steps[env])
        for env in sorted(steps)
        for i in range(n_seeds)
        if (env, NULL_SEED_OFFSET + i) not in have
    ]
    if plan:
        print(f"null pool: {len(plan)} run(s) of the working code to make ({len(have)} kept)", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            run_plan(algo, "regress", plan, tmp, workers, seed_parallel)
            scored = with_scores(ResultsStore(tmp).read_index(), Path(tmp))
        new = scored[["env", "seed", "score", "steps", "config_id"]].assign(commit=meta["commit"], dirty=meta["dirty"])
        _append(path, new.to_dict("records"))
        same = pd.concat([same, new], ignore_index=True)
    return same


def gates_table(directory: Path = BASELINE_DIR) -> list[str]:
    """Markdown rows: each algorithm's suite (from its committed baseline: envs, steps, seeds, the episodes
    that ended at the time limit) and its last gate record (P, CI, wall time, commit)."""
    from experiments.registry import ALGOS
    from experiments.tools.regress import baseline_path, gate_record_path, suite_ids

    lines = [
        "| algo | suite (env: steps, seeds; episodes at the time limit) | baseline commit | last gate: "
        "P(current > baseline) [95% CI]; each env's Holm-adjusted p of a drop | wall | at commit |",
        "|---|---|---|---|---|---|",
    ]
    for algo in ALGOS:
        if not baseline_path(algo, directory).exists():
            lines.append(f"| {algo} | no gate yet | | | | |")
            continue
        base = load_baseline(algo, directory)
        parts = []
        for env, g in base.groupby("env"):
            ends = f"; {int(g.time_limited.sum())} of {int(g.episodes.sum())}" if "time_limited" in g else ""
            parts.append(f"{env}: {int(g.steps.iloc[0]):,}, {len(g)}{ends}")
        record_path = gate_record_path(algo, directory)
        if record_path.exists():
            r = json.loads(record_path.read_text())
            verdict = "pass" if r["passed"] else "NOT passed"
            if r.get("suite") != suite_ids(algo):
                verdict += " (another suite than the config's: re-run)"
            rule = r.get("rule", RULE_BEFORE_RECORDED)
            drops = ", ".join(f"{e} {p:.3f}" for e, p in r.get("p_drop_holm", {}).items())
            gate = f"{r['p_improvement']:.2f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]" + (f"; {drops}" if drops else "")
            gate += f"; {verdict} by rule {rule}"
            wall, commit = f"{r['wall_s']:,.0f} s", r["commit"][:7]
        else:
            gate, wall, commit = "no record", "", ""
        lines.append(f"| {algo} | {'<br>'.join(parts)} | {base['commit'].iloc[0][:7]} | {gate} | {wall} | {commit} |")
    return lines


def same_algorithm(commit: str, head: str, algo: str) -> bool:
    """Whether ``algo``'s numbers at ``commit`` are those at ``head``: the same commit, or golden fingerprints
    committed at both that agree on every CPU kind both have (so a pool made before an unrelated commit is
    reused; one made before a change to the algorithm is not)."""
    from experiments.reporting.protocol import compatible, fingerprint_at

    if commit == head:
        return True
    then, now = fingerprint_at(commit, algo), fingerprint_at(head, algo)
    return then is not None and now is not None and compatible(then, now)


def _scores(row) -> dict[str, list[float]]:
    """A power row's per-seed scores (env -> scores); empty where the row kept none."""
    scores = getattr(row, "scores", None)
    return json.loads(scores) if isinstance(scores, str) and scores else {}


def _frame(scores: dict[str, list[float]]) -> pd.DataFrame:
    """Per-seed scores kept as JSON (env -> scores) as the frame ``compare`` takes."""
    rows = [(env, i, v) for env, xs in scores.items() for i, v in enumerate(xs)]
    return pd.DataFrame(rows, columns=["env", "seed", "score"])


def caught_by_rule_in_use(row, baseline_of: Callable[[str], pd.DataFrame]) -> bool:
    """A power row's decision under ``RULE``: a row that kept per-seed scores and was measured against the
    committed baseline (``baseline_of(algo)``) is judged again; a mutant that broke a run is caught; any other
    row keeps its decision."""
    if bool(getattr(row, "broke", False)):
        return True
    scores = _scores(row)
    if not scores:
        return bool(row.caught)
    baseline = baseline_of(row.algo)
    if str(baseline["commit"].iloc[0]) != str(getattr(row, "baseline_commit", None)):
        return bool(row.caught)
    return bool(compare(_frame(scores), baseline)["regression"])


def _means(row) -> str:
    """A power row's per-env means of the mutant's runs, as text."""
    means = json.loads(row.means) if isinstance(getattr(row, "means", None), str) else {}
    return ", ".join(f"{env} {mean:,.0f}" for env, mean in means.items()) or "no scores"


def summary(directory: Path = BASELINE_DIR) -> str:
    """Markdown: detection rate per family, the mutants missed (the known blind spots) and the false-alarm
    rates, from the latest decision of each (algorithm, mutant) and each (algorithm, method)."""
    lines = gates_table(directory) + [""]
    path = power_path(directory)
    if path.exists():
        power = pd.read_csv(path).drop_duplicates(["algo", "mutant"], keep="last")
        baseline_of = functools.cache(lambda algo: load_baseline(algo, directory))  # read once per algorithm
        power["caught"] = [caught_by_rule_in_use(r, baseline_of) for r in power.itertuples()]
        lines += [
            f"Detection by the rule in use, `{RULE}` ({RULES[RULE]}; a sweep that kept per-seed scores is judged "
            "again under it):",
            "",
            "| family | mutants in the catalogue | decisions measured | caught | detection rate (95% CI) |",
            "|---|---|---|---|---|",
        ]
        for family in FAMILIES:
            total = sum(m.family == family for m in MUTANTS.values())
            rows = power[power.family == family]
            k, n = int(rows.caught.sum()), len(rows)
            low, high = wilson(k, n)
            rate = f"{k / n:.0%} [{low:.0%}, {high:.0%}]" if n else "not measured"
            lines.append(f"| {family} | {total} | {n} | {k} | {rate} |")
        missed = power[~power.caught.astype(bool)]
        unmeasured = sorted(set(MUTANTS) - set(power.mutant))
        lines.append("")
        lines.append(
            "Missed (known blind spots): "
            + (", ".join(f"{r.mutant} on {r.algo} ({_means(r)})" for r in missed.itertuples()) or "none")
            + "."
        )
        lines.append(f"Not yet measured on any algorithm: {', '.join(unmeasured) or 'none'}.")
    else:
        lines.append("No mutant has been measured yet (rlrepro regress ALGO --power).")
    path = false_alarms_path(directory)
    if path.exists():
        alarms = pd.read_csv(path).drop_duplicates(["algo", "method"], keep="last")
        lines += [
            "",
            "| algo | false alarms | decisions | rate (95% CI) | how | rule |",
            "|---|---|---|---|---|---|",
        ]
        for r in alarms.itertuples():
            how = "fresh-seed runs, disjoint sets" if r.method == "measured" else "normal fit of the baseline"
            rule = getattr(r, "rule", None)
            lines.append(
                f"| {r.algo} | {r.alarms} | {r.decisions} | {r.rate:.1%} [{r.ci_low:.1%}, {r.ci_high:.1%}] | {how} | "
                f"{rule if isinstance(rule, str) else RULE_BEFORE_RECORDED} |"
            )
    path = rules_path(directory)
    if path.exists():
        rules = pd.read_csv(path).drop_duplicates(["algo", "rule"], keep="last")
        lines += [
            "",
            "Decision rules judged on the measured sweeps without new runs (`rlrepro regress ALGO --compare-rules "
            "REPS`; in use: `" + RULE + "`):",
            "",
            "| algo | rule | mutants caught | simulated false alarms (95% CI) | measured false alarms | at commit |",
            "|---|---|---|---|---|---|",
        ]
        for r in rules.itertuples():
            lines.append(
                f"| {r.algo} | {r.rule}: {r.description} | {r.mutants_caught} of {r.mutants_measured} | "
                f"{r.simulated_false_alarms:.1%} [{r.fa_ci_low:.1%}, {r.fa_ci_high:.1%}] of {r.reps} | "
                f"{r.measured_false_alarms} of {r.measured_decisions} | {str(r.commit)[:7]} |"
            )
    return "\n".join(lines)


def write_summary(directory: Path, out: Path) -> None:
    """The gate's measured power and false alarms as ``out`` (the README's regress block comes from it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(summary(directory) + "\n")
