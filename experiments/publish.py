"""Publishing to Weights & Biases: runs (config, metrics over steps, final summary) and reports (tables,
figures), always from what is already stored locally, so losing W&B never loses results and a failed
publish can simply be retried.

Without ``WANDB_API_KEY`` (and no ``wandb login``), runs are written offline under ``wandb/`` and the
command prints how to upload them later with ``wandb sync``. Online and offline take the same code path;
only ``mode`` differs. ``wandb.init`` gives up after ``INIT_TIMEOUT_S`` (``$WANDB_INIT_TIMEOUT`` if set; W&B's
own default retries a dead connection for 90 s); online, a failed init raises ``WandbUnreachable``, a one-line
error that stops the command at its first attempt. ``read_offline_run`` reads an offline run file back (used
by the tests, and handy to check what a sync would upload).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from analysis.scores import run_score, scoring_rule
from replications.core.errors import UserError

WANDB_DIR = Path(os.environ.get("RLREPRO_WANDB_DIR", "."))
INIT_TIMEOUT_S = 15.0


class WandbUnreachable(UserError):
    """Online, ``wandb.init`` failed: no publish of this command will get through, so it stops trying."""


class GridPublisher:
    """``replicate --wandb``: publishes each run as it finishes, then the report. Once W&B is found unreachable
    it says so and publishes nothing more (the grid goes on, with no timeout per run); ``close`` then raises that
    error for the command to end with."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.unreachable: WandbUnreachable | None = None

    def publish(self, publish: Callable[..., Path | None], path: Path) -> None:
        """``publish(path)`` (``publish_run`` or ``publish_report``), unless W&B was found unreachable."""
        if self.unreachable is None:
            try:
                publish(path, project=self.project)
            except WandbUnreachable as exc:
                self.unreachable = exc
                print(f"warning: {exc}; the grid goes on without publishing", flush=True)

    def close(self) -> None:
        if self.unreachable is not None:
            raise self.unreachable


Mode = Literal["online", "offline", "disabled", "shared"]
MODES: tuple[Mode, ...] = ("online", "offline", "disabled", "shared")


def _mode() -> Mode:
    if env := os.environ.get("WANDB_MODE"):
        for mode in MODES:
            if env == mode:
                return mode
        raise UserError(f"WANDB_MODE={env} is not a W&B mode; allowed: {', '.join(MODES)}")
    if os.environ.get("WANDB_API_KEY") or (Path.home() / ".netrc").exists():
        return "online"
    return "offline"


def _finish(run: Any, mode: str) -> None:
    run_dir = Path(run.dir).parent
    run.finish()
    if mode == "offline":
        _complete_records(run_dir, wait_s=60.0)  # W&B may still be flushing the file: wait for its exit record
        print(f"W&B offline run written to {run_dir}; upload it later with: wandb sync {run_dir}")


def _init(mode: Mode, **kwargs: Any) -> Any:
    """``wandb.init`` (offline or online, the same call) with a short timeout; online, a failure is
    ``WandbUnreachable``."""
    import wandb

    timeout = float(os.environ.get("WANDB_INIT_TIMEOUT", INIT_TIMEOUT_S))
    try:
        return wandb.init(
            mode=mode,
            dir=str(WANDB_DIR),
            reinit="create_new",
            settings=wandb.Settings(init_timeout=timeout),
            **kwargs,
        )
    except Exception as exc:
        if mode != "online":
            raise
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WandbUnreachable(
            f"W&B is unreachable ({cause}); nothing more was published, local results are unchanged; "
            "publish offline with WANDB_MODE=offline (upload later with wandb sync), or retry when online"
        ) from exc


def _abandon(run: Any) -> None:
    """Close a W&B run that failed part-way (so a retry starts clean); its own errors are ignored."""
    if run is not None:
        with contextlib.suppress(Exception):
            run.finish(exit_code=1)


def publish_run(run_dir: Path, project: str = "rlrepro") -> Path | None:
    """Publish one stored run; returns the local W&B run directory (None if W&B failed: results stay).
    Raises ``WandbUnreachable`` if W&B cannot be reached online."""
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    meta = json.loads((run_dir / "meta.json").read_text())
    episodes = pd.read_csv(run_dir / "episodes.csv")
    progress = pd.read_csv(run_dir / "progress.csv")
    mode = _mode()
    run = None
    try:
        run = _init(
            mode,
            project=project,
            name=f"{config['algo']}-{config['impl']}-{config['env']}-s{config['seed']}",
            id=config["run_id"],
            resume="allow",
            config={
                **config,
                "provenance": {k: meta.get(k) for k in ("commit", "dirty", "packages", "cpu", "gpu")},
            },
            group=f"{config['algo']}-{config['env']}",
            job_type=config["impl"],
        )
        rows = [
            (int(s), {"episode/return": float(r), "episode/length": int(n)})
            for s, r, n in episodes[["step", "return", "length"]].itertuples(index=False)
        ]
        rows += [
            (int(row["step"]), {f"train/{k}": float(v) for k, v in row.items() if k != "step"})
            for row in progress.to_dict("records")
        ]
        for step, values in sorted(rows, key=lambda x: x[0]):
            run.log(values, step=step)
        run.summary.update(
            {
                "score": run_score(run_dir, scoring_rule(config["algo"]), meta.get("n_episodes")),
                "steps": meta.get("steps"),
                "sps": meta.get("sps"),
                "wall_s": meta.get("wall_s"),
                "n_episodes": meta.get("n_episodes"),
            }
        )
        local = Path(run.dir).parent
        _finish(run, mode)
        return local
    except WandbUnreachable:
        raise
    except Exception as exc:  # W&B misconfigured or failing mid-way: the local run is untouched
        _abandon(run)
        print(f"warning: W&B publish of {run_dir} failed ({exc}); results are local; retry later")
        return None


def publish_report(report_dir: Path, project: str = "rlrepro") -> Path | None:
    """Publish a report's summary table and figures as one W&B run of job type 'report' (None if W&B failed;
    ``WandbUnreachable`` if it cannot be reached online)."""
    import wandb

    report_dir = Path(report_dir)
    mode = _mode()
    run = None
    try:
        run = _init(mode, project=project, name=f"report-{report_dir.name}", job_type="report")
        summary = pd.read_csv(report_dir / "summary.csv")
        run.log({"summary": wandb.Table(dataframe=summary)})
        for png in sorted(report_dir.glob("*.png")):
            run.log({f"curves/{png.stem}": wandb.Image(str(png))})
        local = Path(run.dir).parent
        _finish(run, mode)
        return local
    except WandbUnreachable:
        raise
    except Exception as exc:
        _abandon(run)
        print(f"warning: W&B publish of {report_dir} failed ({exc}); the report is local; retry later")
        return None


# -- reading an offline run back ---------------------------------------------------------------------
_BLOCK, _HEADER = 32768, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path):
    """The records of a W&B transaction log (LevelDB-style 32 KiB blocks); a record still being written
    at the end of the file is left out."""
    data = path.read_bytes()
    if len(data) < _HEADER:
        return
    ident, magic, version = struct.unpack("<4sHB", data[:_HEADER])
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path} is not a W&B run file")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        if _BLOCK - pos % _BLOCK < _HEADER:  # the rest of a block too small for a header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if pos + _HEADER + length > len(data):  # cut short: the writer has not flushed it yet
            return
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
        elif kind == 0 and length == 0:
            pos += _BLOCK - pos % _BLOCK if pos % _BLOCK else 0


def _parsed(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    out = []
    for raw in _records(path):
        record = pb.Record()  # type: ignore[attr-defined]  # generated protobuf class: no stub
        record.ParseFromString(raw)
        out.append(record)
    return out


def _complete_records(wandb_run_dir: Path, wait_s: float) -> list[Any]:
    """The run file's records once it ends with the run's exit record. W&B's writer can still be flushing
    the file for a moment after ``run.finish()`` returns (seen on a loaded 2-core machine: a file without
    its history rows), so this polls for up to ``wait_s`` seconds before calling the file incomplete."""
    files = list(Path(wandb_run_dir).glob("run-*.wandb"))
    if len(files) != 1:
        raise ValueError(f"{wandb_run_dir}: expected one run-*.wandb file, found {len(files)}")
    deadline = time.monotonic() + wait_s
    while True:
        records = _parsed(files[0])
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        if time.monotonic() > deadline:
            raise ValueError(
                f"{files[0]}: incomplete W&B run file (no exit record after {wait_s:.0f} s): "
                "the run is still being written, or its process died before run.finish()"
            )
        time.sleep(0.1)


def read_offline_run(wandb_run_dir: Path, wait_s: float = 60.0) -> dict[str, Any]:
    """Config, logged history rows and summary of an offline run directory (``wandb/offline-run-*``),
    once its file is complete (waiting up to ``wait_s`` seconds for W&B to finish writing it)."""
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}}
    for record in _complete_records(wandb_run_dir, wait_s):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
        elif kind == "summary":
            out["summary"].update(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.summary.update}
            )
        elif kind == "config":
            out["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "run":
            out["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
    return out
