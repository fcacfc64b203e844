"""The run logger: the only writer of a run's tidy tables (used by our algorithms and the SB3 adapters).

``episodes.csv``  one row per finished training episode: step (global env step at its end), return, length
                  (raw, un-normalised env reward: every score is computed from this table)
``progress.csv``  one row per iteration / logging interval: step, wall time, steps/s, and the algorithm's
                  training statistics
``evaluations.csv`` (off-policy algorithms and AWR) one row per deterministic evaluation episode: step, episode,
                  return, length
Rows are flushed as they are written, so a killed run leaves complete rows only up to its last flush.
A run resumed from a checkpoint (``resume=True``, then ``restore(state)``) cuts each table back to the
rows it had at the checkpoint and appends from there, so no row is lost or written twice.
"""

from __future__ import annotations

import csv
import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any


class RunLogger:
    def __init__(self, run_dir: Path, on_progress: Callable[[int, float], None] | None = None, resume: bool = False):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        mode = "a" if resume else "w"  # resume: keep the rows until restore() cuts them back
        self._episodes = open(self.run_dir / "episodes.csv", mode, newline="")  # noqa: SIM115
        if not resume:
            self._episodes.write("step,return,length\n")
        self._progress_file = open(self.run_dir / "progress.csv", mode, newline="")  # noqa: SIM115
        self._progress: csv.DictWriter | None = None
        self._on_progress = on_progress
        self.start = time.perf_counter()
        self._last_time = self.start
        self._last_step = 0
        self.n_episodes = 0
        self._recent: deque[float] = deque(maxlen=10)

    def episode(self, step: int, ret: float, length: int) -> None:
        self._episodes.write(f"{step},{ret!r},{length}\n")
        self.n_episodes += 1
        self._recent.append(ret)

    def evaluation(self, step: int, results: list[tuple[float, int]]) -> None:
        """Deterministic evaluation episodes run at ``step``: (raw return, length) each."""
        if not hasattr(self, "_evaluations"):
            path = self.run_dir / "evaluations.csv"
            fresh = not path.exists() or path.stat().st_size == 0
            self._evaluations = open(path, "w" if fresh else "a", newline="")  # noqa: SIM115
            if fresh:
                self._evaluations.write("step,episode,return,length\n")
        for k, (ret, length) in enumerate(results):
            self._evaluations.write(f"{step},{k},{ret!r},{length}\n")
        self._evaluations.flush()

    def iteration(self, step: int, **stats: Any) -> None:
        """One row of training statistics. A non-finite one stops the run with a clear error (the runner
        marks it failed and the other runs go on)."""
        # 0-d tensors become numbers here, at logging time: updates return tensors, so an accelerator's
        # update loop never waits on the host between logging intervals
        stats = {k: v.item() if getattr(v, "ndim", None) == 0 else v for k, v in stats.items()}
        bad = sorted(k for k, v in stats.items() if isinstance(v, int | float) and not math.isfinite(v))
        if bad:
            raise FloatingPointError(f"non-finite {', '.join(bad)} at step {step:,}")
        now = time.perf_counter()
        row = {
            "step": step,
            "time": round(now - self.start, 3),
            "sps": round((step - self._last_step) / max(now - self._last_time, 1e-9), 1),
            **stats,
        }
        if self._progress is None:
            self._progress = csv.DictWriter(self._progress_file, fieldnames=list(row))
            self._progress.writeheader()
        self._progress.writerow(row)
        self._episodes.flush()
        self._progress_file.flush()
        self._last_time, self._last_step = now, step
        if self._on_progress is not None:
            self._on_progress(step, self.recent_return)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def state(self) -> dict[str, Any]:
        """Where each table stands (for a checkpoint): byte offsets, counters, elapsed time."""
        self._episodes.flush()
        self._progress_file.flush()
        offsets = {"episodes": self._episodes.tell(), "progress": self._progress_file.tell()}
        if hasattr(self, "_evaluations"):
            self._evaluations.flush()
            offsets["evaluations"] = self._evaluations.tell()
        return {
            "offsets": offsets,
            "fields": self._progress.fieldnames if self._progress is not None else None,
            "n_episodes": self.n_episodes,
            "recent": list(self._recent),
            "elapsed": self.elapsed(),
            "last_step": self._last_step,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Cut every table back to ``state`` (rows written after the checkpoint are dropped) and go on."""
        offsets = state["offsets"]
        for name, f in (("episodes", self._episodes), ("progress", self._progress_file)):
            f.flush()
            f.truncate(offsets[name])
        path = self.run_dir / "evaluations.csv"
        if "evaluations" in offsets:
            with open(path, "r+") as f:
                f.truncate(offsets["evaluations"])
        else:
            path.unlink(missing_ok=True)
        if state["fields"] is not None:
            self._progress = csv.DictWriter(self._progress_file, fieldnames=state["fields"])
        self.n_episodes = state["n_episodes"]
        self._recent.extend(state["recent"])
        self.start = time.perf_counter() - state["elapsed"]
        self._last_time, self._last_step = time.perf_counter(), state["last_step"]

    @property
    def recent_return(self) -> float:
        """Mean raw return of the last 10 training episodes (NaN before the first one ends)."""
        return sum(self._recent) / len(self._recent) if self._recent else float("nan")

    def close(self) -> None:
        self._episodes.close()
        self._progress_file.close()
        if hasattr(self, "_evaluations"):
            self._evaluations.close()
