"""The papers' reported numbers: the project's own copy of the collected table, with sources.

``analysis/data/reported_results.csv``: one row per (algo, env, source) with the metric, budget, value, and how
it was read (exact table value, read off a figure, or unverified), and four structured fields:

- ``implementation``: the code that produced the number (the paper authors' code, OpenAI Baselines, ...);
- ``settings``: whose hyperparameters it ran (a config's ``reference.settings`` names the rows that ran its own);
- ``metric_kind`` (``METRIC_KINDS``) and ``metric_param`` (k or N where the kind has one).

``like_for_like`` computes ours under each row's metric from the stored curves and says, for each row, whether
it is comparable (same metric, same settings, same step budget) or why not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from replications.core.errors import UserError

REFERENCE_CSV = Path(__file__).resolve().parent / "data" / "reported_results.csv"
METRIC_KINDS = {
    "mean_last_n_training_episodes": "the mean return of the last N training episodes of each run, mean over seeds",
    "final_evaluation": "the mean return of the last deterministic evaluation of each run, mean over seeds",
    "mean_last_k_evaluations": "the mean of the last k deterministic evaluations of each run, mean over seeds",
    "max_seed_mean_evaluation_curve": "the maximum over training of the seed-mean deterministic evaluation curve",
    "max_within_episode_budget": "the maximum average return within an episode budget (not computable here)",
    "final_return_budget_unstated": "a final return at a training budget the source does not state",
}
PER_SEED = {"mean_last_n_training_episodes", "final_evaluation", "mean_last_k_evaluations"}
"""Kinds with one value per seed, which a verdict can test; the others are statistics of the seed-mean curve."""
COLUMNS = [
    "algo",
    "env",
    "env_version",
    "source",
    "table_or_figure",
    "metric",
    "budget_steps",
    "n_seeds",
    "value",
    "std",
    "how_read",
    "implementation",
    "settings",
    "metric_kind",
    "metric_param",
]


def load_references(path: Path = REFERENCE_CSV) -> pd.DataFrame:
    """The table, checked: its columns, a known ``metric_kind`` and a parameter where the kind needs one."""
    table = pd.read_csv(path)
    if list(table.columns) != COLUMNS:
        raise UserError(f"{path}: columns must be {', '.join(COLUMNS)}")
    bad = table[~table.metric_kind.isin(list(METRIC_KINDS))]
    if len(bad):
        kind, allowed = bad.metric_kind.iloc[0], ", ".join(METRIC_KINDS)
        raise UserError(f"{path} line {bad.index[0] + 2}: metric_kind {kind!r}; allowed: {allowed}")
    needs = table.metric_kind.isin(["mean_last_n_training_episodes", "mean_last_k_evaluations"])
    if table[needs].metric_param.isna().any():
        raise UserError(f"{path}: a mean_last_* metric_kind needs metric_param (N or k)")
    return table


def env_base(env_id: str) -> str:
    """'Hopper-v5' -> 'Hopper' (the tables name envs without their gym version)."""
    return env_id.rsplit("-v", 1)[0]


def paper_values(selection: dict[str, Any], table: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """env base name -> {value, source, table_or_figure, metric, how_read, env_version, ...} for the rows that
    ``selection`` (a config's ``reference`` block: algo, source prefix, optionally table_or_figure) picks; first
    match per env."""
    table = load_references() if table is None else table
    rows = table[
        (table.algo == selection.get("algo")) & table.source.str.startswith(selection.get("source_startswith", ""))
    ]
    if "table_or_figure" in selection:
        rows = rows[rows.table_or_figure == selection["table_or_figure"]]
    out: dict[str, dict[str, Any]] = {}
    for row in rows.to_dict("records"):
        out.setdefault(row["env"], row)
    return out


# -- ours under a reference row's metric -----------------------------------------------------------------------


def evaluation_means(evaluations: pd.DataFrame) -> pd.Series:
    """step -> the mean return of that evaluation's episodes, in step order."""
    return evaluations.groupby("step")["return"].mean().sort_index()


def per_seed_value(
    kind: str, param: float, episodes: Callable[[], pd.DataFrame], evaluations: Callable[[], pd.DataFrame]
) -> float:
    """One run's value under a per-seed metric kind (tables read lazily: only the one the kind needs)."""
    if kind == "mean_last_n_training_episodes":
        ep = episodes()
        return float(ep["return"].iloc[-int(param) :].mean()) if len(ep) else float("nan")
    means = evaluation_means(evaluations())
    if means.empty:
        return float("nan")
    if kind == "final_evaluation":
        return float(means.iloc[-1])
    if kind == "mean_last_k_evaluations":
        return float(means.iloc[-int(param) :].mean())
    raise ValueError(f"not a per-seed metric kind: {kind}")


def max_seed_mean_curve(evaluations: list[pd.DataFrame]) -> float:
    """The maximum over evaluation steps of the mean over seeds of each seed's evaluation mean (steps that every
    seed evaluated at: the TD3 paper's Table 1 and Tianshou's 'max average test return')."""
    curves = [evaluation_means(ev) for ev in evaluations if not ev.empty]
    if not curves:
        return float("nan")
    joined = pd.concat(curves, axis=1, join="inner")
    return float(joined.mean(axis=1).max()) if len(joined) else float("nan")
