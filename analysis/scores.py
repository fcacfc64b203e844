"""Each run's score, computed by the analysis from the run contract and cached.

A run's score is a function of its stored files only: ``episodes.csv`` (and ``evaluations.csv`` for the
algorithms scored by evaluation episodes) under its algorithm's scoring rule (``scoring:`` in its config,
analysis/scoring.py). The runner never scores; anything that shows a score (reports, ``rlrepro index``,
``train``'s last line, the regression gate, W&B summaries) asks here.

The cache, ``<results>/scores.csv``, holds one row per run: its run id, the rule (as JSON), a hash of the
files' bytes and the score. A row is used only while all three match, so a changed rule or a restored file
is scored again; the cache is derived data, rebuilt whenever it is missing or unreadable, never evidence.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.scoring import read_run_table, score
from replications.core.config import load_paper_config

SCORES_FILE = "scores.csv"
_COLUMNS = ["run_id", "rule", "files", "score"]


def scoring_rule(algo: str) -> dict[str, Any]:
    return dict(load_paper_config(algo).scoring)


def _files(run_dir: Path) -> list[Path]:
    return [p for p in (run_dir / "episodes.csv", run_dir / "evaluations.csv") if p.exists()]


def _files_hash(run_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in _files(run_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def run_score(run_dir: Path, rule: dict[str, Any], n_episodes: int | None = None) -> float:
    """The score of the run in ``run_dir`` under ``rule`` (NaN for a run with nothing to score). The tables
    are checked whole (``read_run_table``): a damaged file is a one-line error naming it."""
    episodes = read_run_table(run_dir / "episodes.csv", ("step", "return"), n_episodes)
    path = run_dir / "evaluations.csv"
    evaluations = read_run_table(path, ("step", "return")) if path.exists() else None
    return score(episodes, rule, evaluations)


def with_scores(runs: pd.DataFrame, root: Path) -> pd.DataFrame:
    """``runs`` (rows of the results index: ``run_id``, ``algo``, ``path``, ``n_episodes``) with a ``score``
    column, from the cache where it is current, else computed and cached."""
    out = runs.copy()
    if out.empty:
        out["score"] = pd.Series(dtype=float)
        return out
    cache_path = Path(root) / SCORES_FILE
    cache = _read_cache(cache_path)
    rules = {algo: scoring_rule(algo) for algo in out.algo.unique()}
    values, changed = [], False
    for row in out.itertuples(index=False):
        run_dir = Path(root) / str(row.path)
        rule = json.dumps(rules[row.algo], sort_keys=True)
        files = _files_hash(run_dir)
        hit = cache.get(str(row.run_id))
        if hit is not None and hit[0] == rule and hit[1] == files:
            values.append(hit[2])
            continue
        n = None if pd.isna(row.n_episodes) else int(row.n_episodes)
        value = run_score(run_dir, rules[row.algo], n)
        cache[str(row.run_id)] = (rule, files, value)
        values.append(value)
        changed = True
    out["score"] = values
    if changed:
        _write_cache(cache_path, cache)
    return out


def score_of(row: dict[str, Any], root: Path) -> float:
    """The score of one run, given its index row (cached as ``with_scores``)."""
    return float(with_scores(pd.DataFrame([row]), root).score.iloc[0])


def _read_cache(path: Path) -> dict[str, tuple[str, str, float]]:
    try:
        df = pd.read_csv(path, dtype={"run_id": str, "rule": str, "files": str}, float_precision="round_trip")
        if list(df.columns) != _COLUMNS:
            return {}
        return {r.run_id: (r.rule, r.files, float(r.score)) for r in df.itertuples(index=False)}
    except (OSError, ValueError, pd.errors.ParserError):
        return {}  # missing or damaged: a cache, rebuilt from the run directories


def _write_cache(path: Path, cache: dict[str, tuple[str, str, float]]) -> None:
    rows = [{"run_id": k, "rule": rule, "files": files, "score": s} for k, (rule, files, s) in sorted(cache.items())]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        pd.DataFrame(rows, columns=_COLUMNS).to_csv(tmp, index=False, float_format="%.17g")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only store: the scores were computed, only not cached
