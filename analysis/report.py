"""The per-algorithm report: summary table, learning curves and the paper comparison, as files.

Inputs are the run contract only: rows of the results index and each run's ``episodes.csv``.
Outputs in ``out_dir``: ``summary.csv`` (columns ``SUMMARY_COLUMNS``), ``summary.md``, one
``curves_<env>.png`` per env, ``comparisons.csv`` (ours against each baseline, per env), and ``index.html``
tying them together with sources and provenance.
"""

from __future__ import annotations

import functools
import html
import json
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.aggregate import (  # noqa: E402
    aggregate_table,
    improvement_over_sb3,
    normalized_scores,
    per_env_iqm,
    performance_profile_figure,
    random_scores,
)
from analysis.references import (  # noqa: E402
    METRIC_KINDS,
    PER_SEED,
    env_base,
    max_seed_mean_curve,
    per_seed_value,
)
from analysis.scoring import evaluation_curve, learning_curve, read_run_table  # noqa: E402
from analysis.stats import CONFIDENCE, N_RESAMPLES, bootstrap_band, bootstrap_ci  # noqa: E402
from analysis.verdicts import (  # noqa: E402
    NOT_APPLICABLE,
    RULE,
    VERDICTS,
    Verdict,
    decide,
    holm,
    margin_for,
    word_for,
)

SUMMARY_COLUMNS = [
    "algo",
    "env",
    "impl",
    "n_seeds",
    "steps",
    "final_return_mean",
    "ci_low",
    "ci_high",
    "paper_value",
    "verdict",
    "seeds_needed",
]
DIAGNOSTIC_COLUMNS = ["env", "statistic", "seeds", "mean", "mean_last_quarter", "seed_min", "seed_max", "measures"]
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
CURVE_WINDOW = 10


@dataclass
class ReportInput:
    algo: str
    budget: str
    paper: str
    scoring: str
    envs: list[str]
    runs: pd.DataFrame  # index rows (with 'score' and 'path')
    results_root: Path
    references: dict[str, dict[str, Any]]  # env base -> reference row
    reference_note: str = ""
    deviations: list[str] = field(default_factory=list)
    sb3_differences: list[str] = field(default_factory=list)
    lockstep: list[str] | None = None
    """The pair's recorded lockstep results (rlrepro lockstep), where the report has an SB3 pair."""
    missing: list[str] = field(default_factory=list)
    command: str = ""
    baselines: list[tuple[str, str]] = field(default_factory=lambda: [("sb3", "SB3")])
    """(impl, label) of what 'ours' is tested against: SB3, or other algorithms of ours (the first is the
    summary's verdict; every one gets a row in comparisons.csv)."""
    relation: str = ""  # the expected relation between ours and the baselines, stated in the report
    extra_pairs: list[tuple[str, str, str]] = field(default_factory=list)
    """(tested impl, its label, baseline impl) compared besides ours against each baseline: ours run with the
    baseline's settings where our paper config differs from what the baseline can do (TRPO's Fisher subsample)."""
    curves: str = "training"  # 'training' episode returns, or deterministic 'evaluation' returns
    variant: str = ""
    """What the grid changed from the budget's (``--steps``, ``--set``), e.g. 'log_prob_epsilon=1e-06'."""
    margin_fraction: float = 0.10
    """The config's equivalence margin: a fraction of the baseline's mean score above a random policy's."""
    margin_source: str = ""
    set_apart: list[str] = field(default_factory=list)
    """Runs of the grid made under another protocol (device, libraries, fingerprint), grouped by what differs:
    named, not pooled."""
    n_set_apart: int = 0
    protocol: str = ""
    """The protocol the pooled runs share, in words."""
    random: dict[str, float] = field(default_factory=random_scores)
    """env id -> a uniformly random policy's mean return (analysis/data/random_scores.csv)."""
    reference_rows: pd.DataFrame | None = None
    """Every row of analysis/data/reported_results.csv for this algorithm: each gets ours under its metric."""
    reference_settings: str = ""
    """The ``settings`` value of the rows that ran this config's own settings (``reference.settings``)."""
    diagnostics: dict[str, str] = field(default_factory=dict)
    """progress.csv column -> what it measures (the config's ``diagnostics``): summarised per env for ours."""

    def judge(self, env: str, tested: np.ndarray, baseline: np.ndarray) -> Verdict:
        """``tested`` against ``baseline`` on ``env``: the four-word verdict at this config's margin."""
        low = self.random.get(env, float("nan"))
        margin = margin_for(float(np.mean(baseline)), low, self.margin_fraction) if len(baseline) else float("nan")
        return decide(tested, baseline, margin)

    @property
    def variant_suffix(self) -> str:
        """', VARIANT' for titles, or ''."""
        return f", {self.variant}" if self.variant else ""

    @property
    def baseline_impl(self) -> str:
        return self.baselines[0][0]

    @property
    def baseline_label(self) -> str:
        return self.baselines[0][1]

    @property
    def impls(self) -> list[str]:
        return ["ours", *(impl for impl, _ in self.baselines)]


def _scores(runs: pd.DataFrame, impl: str) -> np.ndarray:
    return runs[runs.impl == impl].sort_values("seed").score.to_numpy(dtype=float)


def summarize(inp: ReportInput) -> pd.DataFrame:
    rows = []
    for env in inp.envs:
        env_runs = inp.runs[inp.runs.env == env]
        scores = {impl: _scores(env_runs, impl) for impl in inp.impls}
        ref = inp.references.get(env_base(env))
        for impl in inp.impls:
            s = scores[impl]
            if len(s) == 0:
                continue
            lo, hi = bootstrap_ci(s, seed=0)
            v = inp.judge(env, s, scores[inp.baseline_impl]) if impl == "ours" else None
            rows.append(
                {
                    "algo": inp.algo,
                    "env": env,
                    "impl": impl,
                    "n_seeds": len(s),
                    "steps": int(env_runs[env_runs.impl == impl].steps.max()),
                    "final_return_mean": float(np.mean(s)),
                    "ci_low": lo,
                    "ci_high": hi,
                    "paper_value": float(ref["value"]) if ref and impl in ("ours", "sb3") else float("nan"),
                    "verdict": v.word if v else NOT_APPLICABLE,
                    "seeds_needed": _needed(v),
                    "p_value": v.p_welch if v else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, "p_value"])


def _needed(v: Verdict | None) -> str:
    """'' unless inconclusive; then the seeds a side the equivalence test (or, without a margin, Welch's) needs."""
    if v is None:
        return ""
    return v.needed_text() or v.detect_text()


COMPARISON_COLUMNS = [
    "env",
    "ours",
    "baseline",
    "n_ours",
    "n_baseline",
    "ours_mean",
    "baseline_mean",
    "diff",
    "diff_low",
    "diff_high",
    "margin",
    "p_welch",
    "p_tost",
    "verdict",
    "p_welch_holm",
    "p_tost_holm",
    "verdict_holm",
    "seeds_needed",
    "seeds_to_detect",
]
"""``diff``: the tested mean minus the baseline's, with its 90% Welch CI (``diff_low``, ``diff_high``: the
interval the equivalence test holds against +-``margin``). ``verdict`` from the raw p-values (analysis/verdicts.py);
``verdict_holm`` from Holm-adjusted ones across the envs of the same pair. ``seeds_needed``: for an
inconclusive verdict, seeds a side for 80% power of the equivalence test at a true difference of zero;
``seeds_to_detect``: where the estimate lies outside the margin, seeds a side for Welch's test to detect it."""


def _pairs(inp: ReportInput) -> list[tuple[str, str, str, str]]:
    """(tested impl, its label, baseline impl, baseline label): ours against every baseline, then the extras."""
    labels = {"ours": "ours", **dict(inp.baselines)}
    tested = {p[0] for p in inp.extra_pairs}  # listed as baselines for their rows and curves, not tested by ours
    pairs = [("ours", "ours", impl, label) for impl, label in inp.baselines if impl not in tested]
    return pairs + [(a, a_label, b, labels[b]) for a, a_label, b in inp.extra_pairs]


def comparisons(inp: ReportInput) -> pd.DataFrame:
    """Each tested implementation against its baseline on every env where both have runs: the verdict, raw and
    with Holm's correction across the pair's envs."""
    rows = []
    for impl, label, base, base_label in _pairs(inp):
        for env in inp.envs:
            env_runs = inp.runs[inp.runs.env == env]
            ours, theirs = _scores(env_runs, impl), _scores(env_runs, base)
            if len(ours) == 0 or len(theirs) == 0:
                continue
            v = inp.judge(env, ours, theirs)
            rows.append(
                {
                    "env": env,
                    "ours": label,
                    "baseline": base_label,
                    "n_ours": len(ours),
                    "n_baseline": len(theirs),
                    "ours_mean": float(ours.mean()),
                    "baseline_mean": float(theirs.mean()),
                    **{k: getattr(v, k) for k in ("diff", "diff_low", "diff_high", "margin", "p_welch", "p_tost")},
                    "verdict": v.word,
                    "seeds_needed": v.needed_text(),
                    "seeds_to_detect": v.detect_text(),
                }
            )
    table = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if "holm" not in c])
    for col in ("p_welch_holm", "p_tost_holm"):
        table[col] = np.nan
    for _, group in table.groupby(["ours", "baseline"], sort=False):
        table.loc[group.index, "p_welch_holm"] = holm(group.p_welch.to_numpy(float))
        table.loc[group.index, "p_tost_holm"] = holm(group.p_tost.to_numpy(float))
    table["verdict_holm"] = [
        word_for(pw, pt, d) for pw, pt, d in zip(table.p_welch_holm, table.p_tost_holm, table["diff"], strict=True)
    ]
    return table[COMPARISON_COLUMNS]


REFERENCE_COLUMNS = [
    "env",
    "source",
    "table_or_figure",
    "implementation",
    "settings",
    "metric_kind",
    "env_version",
    "budget_steps",
    "value",
    "ours",
    "n_ours",
    "margin",
    "p_welch",
    "p_tost",
    "verdict",
    "seeds_needed",
    "why_no_verdict",
]
"""``references.csv``: every reported number for the algorithm on the report's envs, with ours computed under
that number's metric (``metric_kind``) from the stored curves; a verdict (against the number as a fixed value:
one-sample Welch and TOST) only where the metric, the settings and the step budget match, else the reason."""


def like_for_like(inp: ReportInput) -> pd.DataFrame:
    if inp.reference_rows is None or inp.reference_rows.empty:
        return pd.DataFrame(columns=REFERENCE_COLUMNS)
    tables: dict[tuple[str, str], pd.DataFrame] = {}

    def table(path: str, name: str, n: int | None = None) -> pd.DataFrame:
        if (path, name) not in tables:
            file = inp.results_root / path / name
            tables[path, name] = read_run_table(file, ("step", "return"), n) if file.exists() else pd.DataFrame()
        return tables[path, name]

    rows = []
    for env in inp.envs:
        ours = inp.runs[(inp.runs.env == env) & (inp.runs.impl == "ours")].sort_values("seed")
        refs = inp.reference_rows[inp.reference_rows.env == env_base(env)]
        if ours.empty or refs.empty:
            continue
        steps = int(ours.steps.max())
        evaluated = all((inp.results_root / p / "evaluations.csv").exists() for p in ours.path)
        for ref in refs.to_dict("records"):
            kind, param = ref["metric_kind"], ref["metric_param"]
            values = np.array([])
            reasons = []
            budget = ref["budget_steps"]
            if ref["settings"] != inp.reference_settings:
                reasons.append(f"ran {ref['settings']}, not this config's settings")
            if not np.isfinite(budget) or abs(budget - steps) > 0.01 * budget:
                stated = f"{budget:,.0f}" if np.isfinite(budget) else "unstated"
                reasons.append(f"a budget of {stated} steps, ours {steps:,}")
            if kind in PER_SEED and (kind == "mean_last_n_training_episodes" or evaluated):
                values = np.array(
                    [
                        per_seed_value(
                            kind,
                            param,
                            functools.partial(table, p, "episodes.csv", int(n)),
                            functools.partial(table, p, "evaluations.csv"),
                        )
                        for p, n in zip(ours.path, ours.n_episodes, strict=True)
                    ]
                )
                value = float(np.mean(values))
            elif kind == "max_seed_mean_evaluation_curve" and evaluated:
                value = max_seed_mean_curve([table(p, "evaluations.csv") for p in ours.path])
                reasons.append("a statistic of the seed-mean curve: no per-seed values to test")
            else:
                value = float("nan")
                reasons.append(
                    "our runs of this algorithm have no deterministic evaluations"
                    if kind not in ("max_within_episode_budget", "final_return_budget_unstated")
                    else f"not computable from our runs ({METRIC_KINDS[kind]})"
                )
            why = "; ".join(reasons)
            v = None
            if not why:
                margin = margin_for(float(ref["value"]), inp.random.get(env, float("nan")), inp.margin_fraction)
                v = decide(values, np.full(2, float(ref["value"])), margin)
            rows.append(
                {
                    "env": env,
                    **{k: ref[k] for k in ("source", "table_or_figure", "implementation", "settings", "metric_kind")},
                    "env_version": ref["env_version"],
                    "budget_steps": budget,
                    "value": float(ref["value"]),
                    "ours": value,
                    "n_ours": len(ours),
                    "margin": v.margin if v else float("nan"),
                    "p_welch": v.p_welch if v else float("nan"),
                    "p_tost": v.p_tost if v else float("nan"),
                    "verdict": v.word if v else NOT_APPLICABLE,
                    "seeds_needed": _needed(v),
                    "why_no_verdict": why,
                }
            )
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS)


def training_diagnostics(inp: ReportInput) -> pd.DataFrame:
    """Per env and statistic of ``inp.diagnostics``: over our runs' progress.csv, the mean over seeds of each
    run's mean over all iterations, over the last quarter of them, and the seeds' range of the former."""
    rows = []
    ours = inp.runs[inp.runs.impl == "ours"]
    for env in inp.envs:
        progress = []
        for path in ours[ours.env == env].path:
            file = inp.results_root / path / "progress.csv"
            if file.exists():
                progress.append(pd.read_csv(file))
        for column, what in inp.diagnostics.items():
            series = [p[column].dropna().to_numpy(float) for p in progress if column in p]
            series = [x for x in series if len(x)]
            if not series:
                continue
            means = np.array([x.mean() for x in series])
            rows.append(
                {
                    "env": env,
                    "statistic": column,
                    "seeds": len(series),
                    "mean": means.mean(),
                    "mean_last_quarter": np.mean([x[-max(1, len(x) // 4) :].mean() for x in series]),
                    "seed_min": means.min(),
                    "seed_max": means.max(),
                    "measures": what,
                }
            )
    return pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)


def _three_figures(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its float columns as text to three significant figures (statistics such as a correlation
    that the one-decimal returns format would hide)."""
    return table.apply(lambda col: col.map(lambda x: f"{x:.3g}") if col.dtype.kind == "f" else col)


def pair_tally(versus: pd.DataFrame, ours_label: str, baseline_label: str) -> str:
    """'ours against SB3 on n envs: equivalent on a, better on b, worse on c, inconclusive on d (Holm: ...)',
    over the envs with a verdict (at least 2 seeds on each side)."""
    rows = versus[(versus.ours == ours_label) & (versus.baseline == baseline_label) & (versus.verdict != "n/a")]
    count = lambda col: ", ".join(  # noqa: E731
        f"{w} on {int((rows[col] == w).sum())}" for w in VERDICTS if (rows[col] == w).any()
    )
    text = f"{ours_label} against {baseline_label} on {_envs(len(rows))}: {count('verdict') or 'no verdicts'}"
    if len(rows) > 1 and (rows.verdict != rows.verdict_holm).any():
        text += f" (with Holm's correction across the {len(rows)}: {count('verdict_holm')})"
    return text


P_COLUMNS = ("p_value", "p_welch", "p_tost", "p_welch_holm", "p_tost_holm")


def _with_p_text(table: pd.DataFrame) -> pd.DataFrame:
    """p-values to three decimals as text (the table's other numbers take one decimal)."""
    return table.assign(
        **{c: table[c].map(lambda p: "" if np.isnan(p) else f"{p:.3f}") for c in P_COLUMNS if c in table}
    )


def _curve_kind(inp: ReportInput, run_dir: Path) -> str:
    """The report's curve kind, or training episodes for a run with no evaluations (a comparison algorithm
    scored on its training episodes, such as our PPO in AWR's report)."""
    return "evaluation" if inp.curves == "evaluation" and (run_dir / "evaluations.csv").exists() else "training"


def _curve(inp: ReportInput, run_dir: Path, grid: np.ndarray, n_episodes: int) -> np.ndarray:
    if _curve_kind(inp, run_dir) == "evaluation":
        return evaluation_curve(read_run_table(run_dir / "evaluations.csv", ("step", "return")), grid)
    episodes = read_run_table(run_dir / "episodes.csv", ("step", "return"), n_episodes)
    return learning_curve(episodes, grid, CURVE_WINDOW)


def curves_figure(inp: ReportInput, env: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    env_runs = inp.runs[inp.runs.env == env]
    max_steps = int(env_runs.steps.max())
    grid = np.linspace(0, max_steps, 101)
    labels = {"ours": "ours", **dict(inp.baselines)}
    for impl, color in zip(inp.impls, COLORS, strict=False):
        chosen = env_runs[env_runs.impl == impl].sort_values("seed")
        paths = chosen.path
        if len(paths) == 0:
            continue
        matrix = np.stack(
            [_curve(inp, inp.results_root / p, grid, int(n)) for p, n in zip(paths, chosen.n_episodes, strict=True)]
        )
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before the first episode ends
            mean = np.nanmean(matrix, axis=0)
            lo, hi = bootstrap_band(matrix, seed=0)
        label = f"{labels[impl]} (n={len(paths)})"
        if _curve_kind(inp, inp.results_root / paths.iloc[0]) != inp.curves:
            label += ", training episodes"
        ax.plot(grid, mean, color=color, label=label)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.25, linewidth=0)
    ref = inp.references.get(env_base(env))
    if ref:
        ax.axhline(
            float(ref["value"]),
            color="k",
            linestyle="--",
            linewidth=1,
            label=f"paper {ref['table_or_figure']} ({ref['env_version']}, {ref['how_read'].split(' ')[0]})",
        )
    ax.set_title(f"{inp.algo.upper()} {env}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(
        "deterministic evaluation return"
        if inp.curves == "evaluation"
        else f"training episode return (last {CURVE_WINDOW} episodes)"
    )
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "" if np.isnan(x) else f"{x:,.1f}"
    return str(x)


def markdown_table(table: pd.DataFrame, cols: list[str] = SUMMARY_COLUMNS[1:]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table[cols].to_dict("records"):
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


MISSING_SHOWN = 6
"""How many missing runs summary.md names (index.html lists them all)."""

STATUS_FILE = "status.json"
"""In each report folder: its title, how many runs it holds and misses, and its verdict lines (the README's
status table is generated from these)."""


def tally(summary: pd.DataFrame, baseline_label: str = "SB3") -> str:
    """The summary's verdict words counted: 'ours against SB3 on n envs: equivalent on a, inconclusive on b'."""
    ours = summary[(summary.impl == "ours") & (summary.verdict != "n/a")]
    words = ", ".join(f"{w} on {int((ours.verdict == w).sum())}" for w in VERDICTS if (ours.verdict == w).any())
    return f"ours against {baseline_label} on {_envs(len(ours))} with both: {words or 'no verdicts'}"


def _envs(n: int) -> str:
    return f"{n} env" + ("" if n == 1 else "s")


def verdict_cells(versus: pd.DataFrame) -> list[dict[str, Any]]:
    """One cell of the front page's matrix per comparison row: the words (raw and Holm), the means, the seeds."""
    return [
        {
            "comparison": f"{r['ours']} vs {r['baseline']}",
            "env": r["env"],
            "verdict": r["verdict"],
            "verdict_holm": r["verdict_holm"],
            "ours": round(float(r["ours_mean"]), 1),
            "baseline": round(float(r["baseline_mean"]), 1),
            "n": [int(r["n_ours"]), int(r["n_baseline"])],
            "seeds_needed": r["seeds_needed"] or r["seeds_to_detect"],
        }
        for r in versus.to_dict("records")
    ]


def paper_cells(papers: pd.DataFrame) -> list[dict[str, Any]]:
    """The matrix cells of the reported numbers that got a verdict (same metric, settings and budget)."""
    judged = papers[papers.verdict != NOT_APPLICABLE]
    return [
        {
            "comparison": f"ours vs {r['implementation']} ({r['table_or_figure']})",
            "env": r["env"],
            "verdict": r["verdict"],
            "verdict_holm": holm_word,
            "ours": round(float(r["ours"]), 1),
            "baseline": round(float(r["value"]), 1),
            "n": [int(r["n_ours"]), 0],
            "seeds_needed": r["seeds_needed"],
        }
        for r, holm_word in zip(judged.to_dict("records"), _holm_words(judged), strict=True)
    ]


def _holm_words(papers: pd.DataFrame) -> list[str]:
    """Each paper verdict again with Holm's correction across the envs of its source and table."""
    words = pd.Series(NOT_APPLICABLE, index=papers.index, dtype=object)
    for _, group in papers.groupby(["implementation", "table_or_figure"], sort=False):
        pw, pt = holm(group.p_welch.to_numpy(float)), holm(group.p_tost.to_numpy(float))
        ours, value = group.ours.to_numpy(float), group.value.to_numpy(float)
        words[group.index] = [word_for(a, b, d) for a, b, d in zip(pw, pt, ours - value, strict=True)]
    return words.tolist()


def verdict_text(inp: ReportInput) -> str:
    margin = f"+-{inp.margin_fraction:.0%}" + (f" ({inp.margin_source})" if inp.margin_source else "")
    return f"{RULE}. Equivalence margin: {margin}"


def build_report(inp: ReportInput, out_dir: Path) -> pd.DataFrame:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("curves_*.png"):
        old.unlink()
    summary = summarize(inp)
    summary[SUMMARY_COLUMNS].to_csv(out_dir / "summary.csv", index=False)
    images = []
    for env in inp.envs:
        if (inp.runs.env == env).any():
            fig = curves_figure(inp, env)
            name = f"curves_{env}.png"
            fig.savefig(out_dir / name)
            plt.close(fig)
            images.append(name)
    versus = comparisons(inp)
    versus.to_csv(out_dir / "comparisons.csv", index=False)
    papers = like_for_like(inp)
    papers.to_csv(out_dir / "references.csv", index=False)
    tallies = [
        pair_tally(versus, label, base_label)
        for _, label, _, base_label in _pairs(inp)
        if not versus.empty and ((versus.ours == label) & (versus.baseline == base_label)).any()
    ]
    title = f"{inp.algo.upper()} ({inp.budget} budget{inp.variant_suffix})"
    status = {
        "title": title,
        "runs": len(inp.runs),
        "missing": len(inp.missing),
        "set_apart": inp.n_set_apart,
        "verdicts": tallies or [tally(summary, inp.baseline_label)],
        "cells": verdict_cells(versus) + paper_cells(papers),
    }
    (out_dir / STATUS_FILE).write_text(json.dumps(status, indent=1) + "\n")
    md = [
        f"**{title}**: {tally(summary, inp.baseline_label)}. "
        f"Score: {inp.scoring}. "
        f"Mean over seeds with {int(CONFIDENCE * 100)}% bootstrap CI. Verdict: {verdict_text(inp)}.",
        "",
        *(f"- {line}." for line in tallies),
        *([""] if tallies else []),
        markdown_table(summary),
    ]
    if inp.missing:  # a grid with holes says so where the numbers are read, not only in index.html
        shown = "; ".join(inp.missing[:MISSING_SHOWN]) + ("; ..." if len(inp.missing) > MISSING_SHOWN else "")
        md += ["", f"Missing from this report: {len(inp.missing)} run(s) of the grid ({shown}); all in index.html."]
    judged = papers[papers.verdict != NOT_APPLICABLE]
    if not papers.empty:
        md += [
            "",
            f"Reported numbers, like for like: {len(papers)} row(s) of analysis/data/reported_results.csv on these "
            f"envs, each with ours computed under its metric (references.csv); a verdict only where the metric, the "
            f"settings ({inp.reference_settings or 'none of the rows ran this config'}) and the budget match: "
            f"{len(judged)} row(s)" + (":" if len(judged) else "; the others are context (index.html gives why)."),
        ]
        if len(judged):
            cols = ["env", "implementation", "table_or_figure", "metric_kind", "value", "ours", "margin"]
            md += ["", markdown_table(_with_p_text(judged), [*cols, "p_welch", "p_tost", "verdict", "seeds_needed"])]
    if inp.set_apart:
        md += [
            "",
            f"Set apart, not pooled: {inp.n_set_apart} run(s) made under another protocol than the grid's "
            f"({inp.protocol}):",
            "",
            *(f"- {group}" for group in inp.set_apart),
        ]
    if not versus.empty:
        md += [
            "",
            "Each comparison (diff: tested mean minus baseline mean, with its 90% CI [diff_low, diff_high], the "
            "interval the equivalence test holds against +-margin; verdict_holm: with Holm's correction across "
            "the pair's envs; seeds_needed: seeds a side for 80% power of the equivalence test if the true "
            "difference were zero; seeds_to_detect: for Welch's test to detect the observed difference):",
            "",
            markdown_table(_with_p_text(versus), COMPARISON_COLUMNS),
        ]
    diagnostics = training_diagnostics(inp)
    if not diagnostics.empty:
        diagnostics.to_csv(out_dir / "diagnostics.csv", index=False)
        md += [
            "",
            "Training diagnostics of ours (progress.csv, every iteration; mean over seeds of each run's mean, over "
            "all iterations and over the last quarter; diagnostics.csv):",
            "",
            markdown_table(_three_figures(diagnostics), DIAGNOSTIC_COLUMNS[:-1]),
            "",
            *(f"- {column}: {what}" for column, what in inp.diagnostics.items()),
        ]
    (out_dir / "summary.md").write_text("\n".join(md) + "\n")
    iqm = per_env_iqm(inp.runs, inp.envs) if not inp.runs.empty else pd.DataFrame()
    iqm.to_csv(out_dir / "iqm.csv", index=False)
    aggregates, profiles = normalised_aggregates(inp, out_dir)
    aggregates.to_csv(out_dir / "aggregate.csv", index=False)
    poi = improvement_over_sb3(inp.runs, inp.envs, other=inp.baseline_impl) if not inp.runs.empty else None
    (out_dir / "index.html").write_text(
        _html(inp, summary, versus, images, iqm, poi, aggregates, profiles)
        .replace("<!-- like-for-like -->", _with_p_text(papers).to_html(index=False, na_rep=""))
        .replace(
            "<!-- diagnostics -->",
            "<h2>Training diagnostics of ours</h2><p>From each run's progress.csv: the mean over seeds of each "
            "run's mean over all iterations and over the last quarter.</p>"
            + _three_figures(diagnostics).to_html(index=False, na_rep="")
            if not diagnostics.empty
            else "",
        )
    )
    if inp.relation:
        with (out_dir / "summary.md").open("a") as f:
            f.write(f"\n{inp.relation}\n")
    return summary


def _lockstep_html(inp: ReportInput) -> str:
    """Where ours and SB3 part under the same weights and randomness (rlrepro lockstep), beside the verdicts."""
    if inp.lockstep is None:
        return ""
    how = (
        f"<p>Recorded by <code>rlrepro lockstep {html.escape(inp.algo)} ENV</code>: ours and SB3 from the same "
        "weights and randomness, every documented difference above aligned unless kept, compared step by step "
        "and update by update.</p>"
    )
    body = (
        _list(inp.lockstep)
        if inp.lockstep
        else f"<p>none recorded (run <code>rlrepro lockstep {html.escape(inp.algo)} ENV</code>)</p>"
    )
    return f"\n<h2>Lockstep with SB3</h2>{how}{body}"


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>" if items else "<p>none</p>"


def normalised_aggregates(inp: ReportInput, out_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Across envs: scores normalised by the paper's numbers and by the baseline's means (0 = random policy),
    aggregated (median, IQM, mean, optimality gap with CIs) and drawn as performance profiles."""
    for old in out_dir.glob("profile_*.png"):
        old.unlink()
    if inp.runs.empty:
        return pd.DataFrame(), []
    low = random_scores()
    impls = [i for i in inp.impls if (inp.runs.impl == i).any()]
    baseline = inp.runs[inp.runs.impl == inp.baseline_impl].groupby("env").score.mean().to_dict()
    paper = {e: float(inp.references[env_base(e)]["value"]) for e in inp.envs if env_base(e) in inp.references}
    tables, images = [], []
    for label, high in (("paper", paper), (inp.baseline_label, baseline)):
        normalized = normalized_scores(inp.runs, inp.envs, impls, high, low)
        table = aggregate_table(normalized, label)
        if table.empty:
            continue
        tables.append(table)
        fig = performance_profile_figure(normalized, label)
        name = f"profile_{re.sub(r'[^A-Za-z0-9]+', '_', label).strip('_')}.png"
        fig.savefig(out_dir / name)
        plt.close(fig)
        images.append(name)
    return (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()), images


def _aggregate_html(iqm: pd.DataFrame, poi: dict | None, label: str) -> str:
    if iqm.empty:
        return "<p>no runs yet</p>"
    text = (
        "<p>Per env: interquartile mean (IQM) of the per-seed final returns with a 95% percentile bootstrap "
        "CI (5,000 resamples, seeded).</p>" + iqm.to_html(index=False, float_format=lambda x: f"{x:,.1f}")
    )
    if poi:
        text += (
            f"<p><b>Probability of improvement</b> P(ours &gt; {html.escape(label)}), averaged over the "
            f"{poi['envs']} envs with both implementations (at least {poi['runs']} runs each): <b>{poi['p']:.2f}</b>, "
            f"95% stratified-bootstrap CI [{poi['low']:.2f}, {poi['high']:.2f}] (0.5 = no difference).</p>"
        )
    return text


def _html(
    inp: ReportInput,
    summary: pd.DataFrame,
    versus: pd.DataFrame,
    images: list[str],
    iqm: pd.DataFrame,
    poi: dict | None,
    aggregates: pd.DataFrame,
    profiles: list[str],
) -> str:
    if aggregates.empty:
        normalised = "<p>needs at least 2 seeds of each implementation on the envs with a reference</p>"
    else:
        normalised = (
            "<p>Scores normalised per env as (score - random) / (reference - random), where random is a uniformly "
            "random policy's return (analysis/data/random_scores.csv); aggregated across envs with rliable's "
            "metrics (stratified bootstrap, 5,000 resamples, seeded; optimality gap at 1).</p>"
            + aggregates.to_html(index=False, float_format=lambda x: f"{x:,.3f}")
            + "".join(f'<figure><img src="{p}" alt="{p}" width="480"></figure>' for p in profiles)
        )
    table = _with_p_text(summary)
    for c in ("final_return_mean", "ci_low", "ci_high", "paper_value"):
        table[c] = table[c].map(_fmt)
    refs = [
        f"{env}: {r['value']} ({r['source']}, {r['table_or_figure']}, env {r['env_version']}, metric: "
        f"{r['metric']}; {r['how_read']})"
        for env, r in inp.references.items()
        if any(env_base(e) == env for e in inp.envs)
    ]
    where = [c for c in ("commit", "cpu", "device") if c in inp.runs]  # device: set by experiments.reporting
    provenance = inp.runs.groupby(where, dropna=False).size().reset_index(name="runs")
    columns = ["env", "impl", "seed", "steps", "score", "n_episodes", "sps", "wall_s", "commit", "dirty", "run_id"]
    runs = inp.runs[columns + (["device"] if "device" in inp.runs else [])].sort_values(["env", "impl", "seed"])
    imgs = "".join(f'<figure><img src="{i}" alt="{i}" width="480"></figure>' for i in images)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{inp.algo.upper()} replication ({inp.budget}{inp.variant_suffix})</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
figure{{display:inline-block;margin:4px}}</style></head>
<body><h1>{inp.algo.upper()} replication: {html.escape(inp.budget)} budget{html.escape(inp.variant_suffix)}</h1>
<p><b>Paper:</b> {html.escape(inp.paper)}</p>
<p><b>Result:</b> {html.escape(tally(summary, inp.baseline_label))}.</p>
<p>{html.escape(inp.relation)}</p>
<p><b>Score:</b> {html.escape(inp.scoring)}. <b>Mean and CI:</b> mean over seeds, {int(CONFIDENCE * 100)}% percentile
bootstrap over seeds ({N_RESAMPLES:,} resamples, seeded). <b>Verdict:</b> {html.escape(verdict_text(inp))}; 'n/a' on the
baselines' own rows ({html.escape(", ".join(label for _, label in inp.baselines))}); the summary's verdict is
against {html.escape(inp.baseline_label)}, the table below it against each. <b>Curves:</b> mean over seeds of the last
{CURVE_WINDOW} training episodes' return at 101 points, band = 95% pointwise bootstrap CI.</p>
<h2>Summary</h2>{table.to_html(index=False, na_rep="")}
<h3>Each comparison</h3>{versus.to_html(index=False, na_rep="", float_format=lambda x: f"{x:,.3f}")}
<h2>Learning curves</h2>{imgs}
<h2>Aggregate statistics</h2>{_aggregate_html(iqm, poi, inp.baseline_label)}
<h3>Normalised scores across envs</h3>{normalised}
<h2>Paper values</h2><p>{html.escape(inp.reference_note)}</p>{_list(refs)}
<h3>Every reported number, like for like</h3><p>Ours computed under each row's metric from the stored curves; a
verdict only where the metric, the settings and the step budget match (why_no_verdict otherwise).</p>
<!-- like-for-like -->
<!-- diagnostics -->
<h2>Deviations from the paper</h2>{_list(inp.deviations)}
<h2>Where the baseline is configured differently</h2>{_list(inp.sb3_differences)}{_lockstep_html(inp)}
<h2>Missing runs</h2>{_list(inp.missing)}
<h2>Runs set apart (another protocol)</h2><p>{html.escape(inp.protocol)}</p>{_list(inp.set_apart)}
<h2>Provenance</h2>{provenance.to_html(index=False)}
<p>Generated {time.strftime("%Y-%m-%d %H:%M %Z")} by <code>{html.escape(inp.command)}</code> from the stored runs
below (results/index.csv and each run's episodes.csv).</p>
<h2>Runs</h2>{runs.to_html(index=False)}
</body></html>
"""
