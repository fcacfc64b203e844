"""Glue between the store and analysis.report: pick the runs of the current grid, name the sources."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.references import env_base, load_references, paper_values
from analysis.report import STATUS_FILE, ReportInput, build_report
from analysis.scores import with_scores
from analysis.verdicts import LEGEND, SYMBOLS
from experiments.reporting.comparison import MATCHED, Comparison
from experiments.reporting.protocol import protocol_of, split
from experiments.store import ResultsStore, RunSpec, readable_as_umask_allows, write_atomic
from replications.core.config import load_paper_config
from replications.core.errors import UserError


def set_args(overrides: dict[str, Any] | None) -> list[str]:
    """``KEY=VALUE`` of each override as ``--set`` takes it (JSON values), sorted by key."""
    return [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in sorted((overrides or {}).items())]


def variant_name(overrides: dict[str, Any] | None = None, steps: int | None = None) -> str:
    """The suffix that keeps a report on a changed grid (``--steps``, ``--set``) out of the budget's own report
    folder: e.g. ``steps2048-horizon=512`` ('' for the budget's grid as configured)."""
    parts = [f"steps{steps}"] if steps else []
    parts += set_args(overrides)
    return re.sub(r"[^A-Za-z0-9._=,-]", "_", "-".join(parts))


def report_dir(
    reports_root: Path, algo: str, budget: str, overrides: dict[str, Any] | None = None, steps: int | None = None
) -> Path:
    name = algo if budget == "paper" else f"{algo}-{budget}"
    variant = variant_name(overrides, steps)
    return reports_root / (f"{name}-{variant}" if variant else name)


def _why_missing(store: ResultsStore, spec: RunSpec) -> str:
    """Why a run of the grid is not in the report: failed (with its error), unfinished, or never run."""
    meta = store.meta(spec)
    if meta is None:
        return ": not run yet"
    if meta.get("status") == "failed":
        return f": FAILED, excluded from the analysis ({meta.get('error', 'no error recorded')})"
    if meta.get("status") == "complete":
        raise UserError(
            f"run {store.path(spec)} is complete but not in the results index {store.index_path}; nothing was "
            "written; rebuild the index from the run directories with 'rlrepro index --rebuild'"
        )
    return f": unfinished ({meta.get('status')}), excluded from the analysis"


def where_it_ran(meta: dict[str, Any]) -> str:
    """The device a run's networks ran on, from its meta.json: "cpu", or e.g. "cuda (NVIDIA H100 80GB HBM3,
    CUDA graph)" (runs stored before the device was recorded ran on the CPU)."""
    device = meta.get("device", "cpu")
    if device == "cpu":
        return "cpu"
    return f"{device} ({meta.get('gpu') or 'unknown GPU'}{', CUDA graph' if meta.get('cuda_graph') else ''})"


def write_report(comparison: Comparison, store: ResultsStore, reports_root: Path) -> Path:
    """Report on the complete runs of ``comparison``'s grid and of its baselines (runs of a changed config are
    never mixed in).

    A grid run with overrides (an ablation) or another ``steps`` budget gets a folder of its own
    (``report_dir``), so the budget's own report is never overwritten; an ablation's runs are also set against
    the same grid at the config's own values (and SB3's, for an ablation of ours alone), where those are stored.
    """
    c = comparison
    algo, budget, specs, overrides, steps = c.algo, c.budget, list(c.specs), c.overrides, c.steps
    paper = load_paper_config(algo)
    index = store.read_index()
    wanted = {s.run_id for s in specs}
    runs = index[index.run_id.isin(wanted)].copy()
    gone = [p for p in runs.path if not (store.root / p / "meta.json").exists()]
    if gone:
        raise UserError(
            f"results index {store.index_path} lists {len(gone)} run(s) whose directory is missing (first: {gone[0]}); "
            f"nothing was changed; rebuild the index from the run directories with 'rlrepro index --rebuild'"
        )
    runs.loc[runs.run_id.isin(c.matched_ids), "impl"] = MATCHED
    missing = [
        f"{c.impl_label(s)} {s.env} seed {s.seed} ({s.steps:,} steps){_why_missing(store, s)}"
        for s in specs
        if s.run_id not in set(runs.run_id)
    ]
    differences: list[str] = []
    meta = functools.cache(lambda path: store.meta_at(path) or {})  # each run's meta.json, read once
    for path in runs[runs.impl == "sb3"].path:
        for d in meta(path).get("sb3_differences", []):
            if d not in differences:
                differences.append(d)
    differences += c.notes
    envs = list(dict.fromkeys(s.env for s in specs))
    baselines = []
    for group in c.baselines:
        ids = {s.run_id for s in group.specs}
        if group.specs and not (group.if_stored and not index.run_id.isin(ids).any()):
            got = index[index.run_id.isin(ids)].copy()
            got["impl"] = group.key
            missing.extend(
                f"{group.label} {s.env} seed {s.seed}{_why_missing(store, s)}"
                for s in group.specs
                if s.run_id not in set(got.run_id)
            )
            runs = pd.concat([runs, got], ignore_index=True)
        elif group.specs:
            continue  # an ablation's reference with no stored runs
        baselines.append((group.key, group.label))
    relation = c.relation
    extra_pairs = list(c.extra_pairs)
    runs = with_scores(runs, store.root)  # every run drawn, the grid's and its baselines'
    runs["device"] = [where_it_ran(meta(path)) for path in runs.path]
    labels = {"ours": "ours", "sb3": "SB3", **dict(baselines)}
    runs, set_apart, protocol_note, n_apart = one_protocol(runs, meta, labels)
    table = load_references()  # read once: the primary rows and every row set beside ours
    inp = ReportInput(
        algo=algo,
        budget=budget,
        paper=paper.paper,
        scoring=f"{paper.scoring.get('description', paper.scoring.get('metric'))} [{paper.scoring.get('source', '')}]",
        envs=envs,
        runs=runs,
        results_root=store.root,
        references=paper_values(paper.reference, table) if budget == "paper" else {},
        reference_note=paper.reference.get("note", "")
        if budget == "paper"
        else "No paper reports numbers for this budget; it is a cross-check of ours against the baseline only.",
        deviations=paper.deviations,
        sb3_differences=differences,
        lockstep=lockstep_lines(store.root, algo) if any(s.impl == "sb3" for s in specs) else None,
        missing=missing,
        command=f"rlrepro report {algo} --budget {budget}"
        + (f" --steps {steps}" if steps else "")
        + "".join(f" --set {kv}" for kv in set_args(overrides)),
        curves="evaluation" if paper.scoring.get("metric") == "last_evaluation" else "training",
        baselines=baselines,
        relation=relation,
        extra_pairs=extra_pairs,
        variant=variant_name(overrides, steps),
        margin_fraction=c.margin,
        margin_source=c.margin_source,
        set_apart=set_apart,
        n_set_apart=n_apart,
        reference_rows=table[table.algo == paper.reference.get("algo")].reset_index(drop=True),
        reference_settings=str(paper.reference.get("settings", "")),
        protocol=protocol_note,
        diagnostics=paper.diagnostics,
    )
    out = report_dir(reports_root, algo, budget, overrides, steps)
    if runs.empty:
        raise UserError(
            f"no complete runs of the {algo} '{budget}' grid in {store.root} (is --results right?); nothing was "
            f"written" + (f", the report at {out} is left as it was" if out.exists() else "")
        )
    with report_folder(out) as tmp:
        build_report(inp, tmp)
        _write_grid(tmp, algo, budget, envs, specs, steps, overrides)
    return out


def one_protocol(
    runs: pd.DataFrame, meta: Callable[[str], dict[str, Any]], labels: dict[str, str]
) -> tuple[pd.DataFrame, list[str], str, int]:
    """The runs of the main protocol (experiments/reporting/protocol.py), the others named with what differs, and a line
    saying what the pooled protocol is and how many of our runs' fingerprints could be checked. The runs set
    apart come grouped by what differs, with their number (the fourth value: how many in all)."""
    if runs.empty:
        return runs, [], "", 0
    pairs = [
        (algo, protocol_of(meta(path), algo, "sb3" if impl == "sb3" else "ours"))
        for algo, impl, path in zip(runs.algo, runs.impl, runs.path, strict=True)
    ]
    main, apart = split(pairs)
    groups: dict[str, list[str]] = {}
    for i in apart:
        row = runs.iloc[i]
        why = pairs[i][1].describe(main[pairs[i][0]])
        groups.setdefault(why, []).append(f"{labels.get(row.impl, row.impl)} {row.env} seed {row.seed}")
    set_apart = [f"{len(names)} run(s) with {why}: {', '.join(names)}" for why, names in groups.items()]
    ours = [p for (_, p), impl in zip(pairs, runs.impl, strict=True) if impl != "sb3"]
    some = next(iter(main.values()))
    checked = sum(p.fingerprint is not None for p in ours)
    note = (
        f"pooled: device {some.device}; "
        + ", ".join(f"{k} {v}" for k, v in some.libraries)
        + f"; the algorithm's fingerprint at the run's commit checked for {checked} of {len(ours)} runs of ours"
        + (" (the others' commits predate the golden fingerprints)" if checked < len(ours) else "")
    )
    return runs.drop(index=runs.index[apart]), set_apart, note, len(apart)


@contextlib.contextmanager
def report_folder(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out`` to write a report into; moved into place as ``out`` only if everything
    in the block succeeded (a failed report leaves the previous one whole)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    except OSError as exc:
        raise UserError(
            f"cannot write reports under {out.parent}: {exc.strerror or exc}; nothing was written"
        ) from None
    readable_as_umask_allows(tmp, directory=True)
    try:
        yield tmp
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_grid(
    out: Path,
    algo: str,
    budget: str,
    envs: list[str],
    specs: list[RunSpec],
    steps: int | None,
    overrides: dict[str, Any] | None,
) -> None:
    grid = {
        "algo": algo,
        "budget": budget,
        "envs": envs,
        "impls": list(dict.fromkeys(s.impl for s in specs)),
        "seeds": len({s.seed for s in specs}),
        "steps": steps,
        "overrides": overrides or {},
    }
    (out / GRID_FILE).write_text(json.dumps(grid, indent=1) + "\n")


GRID_FILE = "grid.json"
"""In each report folder: the grid it reports on (what ``rlrepro report`` was given), so ``report all`` can
regenerate the reports written with ``--steps`` or ``--set`` too."""


def variant_grids(reports_root: Path) -> list[dict[str, Any]]:
    """The grids of the reports under ``reports_root`` that were written with ``--steps`` or ``--set``."""
    grids = []
    for path in sorted(reports_root.glob(f"*/{GRID_FILE}")):
        try:
            grid = json.loads(path.read_text())
            keys = {"algo", "budget", "envs", "impls", "seeds", "steps", "overrides"}
            if not isinstance(grid, dict) or set(grid) != keys:
                raise ValueError(f"needs exactly the keys {', '.join(sorted(keys))}")
        except ValueError as err:
            raise UserError(
                f"report grid file {path} is not readable ({err}); delete its folder or rewrite it"
            ) from err
        if grid["steps"] or grid["overrides"]:
            grids.append(grid)
    return grids


def lockstep_lines(root: Path, algo: str) -> list[str]:
    """Each recorded lockstep of ``algo`` (``<root>/lockstep/*.json``, written by ``rlrepro lockstep``), as one
    line with its settings and provenance."""
    lines = []
    for path in sorted((Path(root) / "lockstep").glob(f"{algo}-*.json")):
        try:
            rec = json.loads(path.read_text())
            if rec.get("algo") != algo:
                continue
            window = f" of {rec['window']:,}" if rec.get("window") else ""  # older records: the compared count only
            settings = [f"{rec['updates']:,}{window} updates compared", f"seed {rec['seed']}"]
            settings.append(f"tolerance {rec['tolerance']:g}")
            settings += [f"time limit {rec['time_limit']}"] if rec.get("time_limit") else []
            settings += [f"--set {k}={json.dumps(v)}" for k, v in sorted(rec.get("set", {}).items())]
            settings += [f"kept: {', '.join(rec['keep'])}"] if rec.get("keep") else []
            dirty = ", uncommitted changes" if rec.get("dirty") else ""
            made = f"commit {str(rec['commit'])[:8]}{dirty}, {str(rec['date'])[:10]}, {rec.get('cpu')}"
            lines.append(f"{rec['line']} [{'; '.join(settings)}; {made}]")
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"lockstep record {path} is not readable ({err}); delete it or record it again") from err
    return lines


def read_statuses(reports_root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(report folder, its status.json) of every report under ``reports_root``, sorted by folder name."""
    out = []
    for path in sorted(reports_root.glob(f"*/{STATUS_FILE}")):
        try:
            status = json.loads(path.read_text())
            title, runs, missing, verdicts = (status[k] for k in ("title", "runs", "missing", "verdicts"))
            cells = status.get("cells", [])
            if not isinstance(status.get("set_apart", 0), int):
                raise ValueError("set_apart must be an integer")
            if not (isinstance(runs, int) and isinstance(missing, int) and isinstance(verdicts, list)):
                raise ValueError("runs and missing must be integers, verdicts a list")
            if not isinstance(cells, list) or any(not isinstance(c, dict) or set(c) != CELL_KEYS for c in cells):
                raise ValueError(f"cells must be a list of objects with the keys {', '.join(sorted(CELL_KEYS))}")
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(
                f"report status file {path} is not readable ({err}); regenerate it with 'rlrepro report all'"
            ) from err
        out.append((path.parent, status))
    return out


CELL_KEYS = {"comparison", "env", "verdict", "verdict_holm", "ours", "baseline", "n", "seeds_needed"}


def _cell(c: dict[str, Any]) -> str:
    """'? 1,853 / 2,024 n=14 (Holm =)': the verdict's symbol, the two means, the seeds an inconclusive one needs."""
    text = f"{SYMBOLS.get(c['verdict'], c['verdict'])} {c['ours']:,.0f} / {c['baseline']:,.0f}"
    if c["seeds_needed"]:  # '14', or '>1000' where no number of seeds up to 1,000 would do
        needed = str(c["seeds_needed"])
        text += f" n{needed}" if needed.startswith(">") else f" n={needed}"
    if c["verdict_holm"] != c["verdict"]:
        text += f" (Holm {SYMBOLS.get(c['verdict_holm'], c['verdict_holm'])})"
    return text


def verdict_matrix(reports_root: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The front page's matrix: the envs (columns, short names, in random_scores.csv's order) and one row per
    report and comparison: {folder, title, comparison, runs, missing, cells: env -> text}."""
    from analysis.aggregate import random_scores

    order = {env: i for i, env in enumerate(random_scores())}
    envs: set[str] = set()
    rows = []
    for folder, status in read_statuses(reports_root):
        by_comparison: dict[str, dict[str, str]] = {}
        for c in status.get("cells", []):
            by_comparison.setdefault(c["comparison"], {})[c["env"]] = _cell(c)
            envs.add(c["env"])
        for comparison, cells in by_comparison.items() or [("(none yet)", {})]:
            rows.append(
                {
                    "folder": folder,
                    "title": status["title"],
                    "comparison": comparison,
                    "runs": status["runs"],
                    "missing": status["missing"],
                    "set_apart": status.get("set_apart", 0),
                    "cells": cells,
                }
            )
    return sorted(envs, key=lambda e: (order.get(e, len(order)), e)), rows


def matrix_markdown(reports_root: Path, link_from: Path) -> str:
    """The matrix as Markdown, each report linked to its summary.md relative to ``link_from``."""
    envs, rows = verdict_matrix(reports_root)
    lines = [
        f"Legend: {LEGEND}. Cells: the tested mean / the baseline's mean.",
        "",
        "| report | comparison | runs (missing, set apart) | " + " | ".join(env_base(e) for e in envs) + " |",
        "|---|---|---:|" + "---|" * len(envs),
    ]
    for r in rows:
        link = Path(os.path.relpath(r["folder"] / "summary.md", link_from)).as_posix()
        cells = " | ".join(r["cells"].get(e, "") for e in envs)
        lines.append(f"| [{r['title']}]({link}) | {r['comparison']} | {_counts(r)} | {cells} |")
    return "\n".join(lines)


def _counts(row: dict[str, Any]) -> str:
    """'81 (12, 33)': runs pooled, missing, set apart (another protocol)."""
    return f"{row['runs']} ({row['missing']}, {row['set_apart']})"


def matrix_html(reports_root: Path) -> str:
    import html

    envs, rows = verdict_matrix(reports_root)
    head = "".join(f"<th>{html.escape(env_base(e))}</th>" for e in envs)
    body = "".join(
        f'<tr><td><a href="{r["folder"].name}/index.html">{html.escape(r["title"])}</a></td>'
        f"<td>{html.escape(r['comparison'])}</td><td>{_counts(r)}</td>"
        + "".join(f"<td>{html.escape(r['cells'].get(e, ''))}</td>" for e in envs)
        + "</tr>"
        for r in rows
    )
    return (
        f"<p>Legend: {html.escape(LEGEND)}. Cells: the tested mean / the baseline's mean.</p>"
        f"<table><tr><th>report</th><th>comparison</th><th>runs (missing, set apart)</th>{head}</tr>{body}</table>"
    )


def write_overview(reports_root: Path) -> Path:
    """``reports/index.html`` and ``reports/summary.md``: every report's summary table on one page."""
    import html

    sections_html, sections_md = [], []
    for summary in sorted(reports_root.glob("*/summary.csv")):
        name = summary.parent.name
        table = pd.read_csv(summary, keep_default_na=False, na_values=[""])
        md = (summary.parent / "summary.md").read_text() if (summary.parent / "summary.md").exists() else ""
        sections_md.append(f"## {name}\n\n{md}")
        first_line = html.escape(md.splitlines()[0].replace("**", "")) if md else ""
        figures = "".join(
            f'<figure><img src="{name}/{png.name}" alt="{png.stem}" width="360"></figure>'
            for png in sorted(summary.parent.glob("*.png"))
        )
        aggregate = summary.parent / "aggregate.csv"
        agg_html = ""
        if aggregate.exists() and aggregate.stat().st_size > 1:
            agg = pd.read_csv(aggregate)
            agg = agg[agg.metric.isin(["iqm", "optimality_gap"])]
            agg_html = "<p>Normalised-score aggregates (IQM, optimality gap):</p>" + agg.to_html(
                index=False, float_format=lambda x: f"{x:,.3f}"
            )
        sections_html.append(
            f'<h2><a href="{name}/index.html">{name}</a></h2><p>{first_line}</p>'
            + table.to_html(index=False, na_rep="", float_format=lambda x: f"{x:,.1f}")
            + agg_html
            + figures
        )
    out = reports_root / "index.html"
    write_atomic(
        out,
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>rlrepro reports</title>'
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:"
        "collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}</style></head><body>"
        "<h1>rlrepro: all replications</h1>" + matrix_html(reports_root) + "".join(sections_html) + "</body></html>\n",
    )
    write_atomic(reports_root / "summary.md", "# rlrepro: all replications\n\n" + "\n".join(sections_md))
    return out
