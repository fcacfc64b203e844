"""The papers' reported numbers: the project's own copy of the collected table, with sources.

``analysis/data/reported_results.csv``: one row per (algo, env, source) with the metric, budget, value,
and how it was read (exact table value, read off a figure, or unverified).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

REFERENCE_CSV = Path(__file__).resolve().parent / "data" / "reported_results.csv"


def load_references(path: Path = REFERENCE_CSV) -> pd.DataFrame:
    return pd.read_csv(path)


def env_base(env_id: str) -> str:
    """'Hopper-v5' -> 'Hopper' (the tables name envs without their gym version)."""
    return env_id.rsplit("-v", 1)[0]


def paper_values(selection: dict[str, Any], table: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """env base name -> {value, source, table_or_figure, metric, how_read, env_version} for the rows that
    ``selection`` (a config's ``reference`` block: algo and source prefix) picks; first match per env."""
    table = load_references() if table is None else table
    rows = table[
        (table.algo == selection.get("algo")) & table.source.str.startswith(selection.get("source_startswith", ""))
    ]
    out: dict[str, dict[str, Any]] = {}
    for row in rows.to_dict("records"):
        out.setdefault(row["env"], row)
    return out
