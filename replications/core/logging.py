"""The run logger: the only writer of a run's tidy tables (used by our algorithms and the SB3 adapters).

``episodes.csv``  one row per finished training episode: step (global env step at its end), return, length
                  (raw, un-normalised env reward: every score is computed from this table)
``progress.csv``  one row per iteration / logging interval: step, wall time, steps/s, and the algorithm's
                  training statistics
``evaluations.csv`` (off-policy algorithms) one row per deterministic evaluation episode: step, episode,
                  return, length
Rows are flushed as they are written, so a killed run leaves complete rows only up to its last flush.
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
    def __init__(self, run_dir: Path, on_progress: Callable[[int, float], None] | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._episodes = open(self.run_dir / "episodes.csv", "w", newline="")  # noqa: SIM115
        self._episodes.write("step,return,length\n")
        self._progress_file = open(self.run_dir / "progress.csv", "w", newline="")  # noqa: SIM115
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
            self._evaluations = open(self.run_dir / "evaluations.csv", "w", newline="")  # noqa: SIM115
            self._evaluations.write("step,episode,return,length\n")
        for k, (ret, length) in enumerate(results):
            self._evaluations.write(f"{step},{k},{ret!r},{length}\n")
        self._evaluations.flush()

    def iteration(self, step: int, **stats: Any) -> None:
        """One row of training statistics. A non-finite one stops the run with a clear error (the runner
        marks it failed and the other runs go on)."""
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

    @property
    def recent_return(self) -> float:
        """Mean raw return of the last 10 training episodes (NaN before the first one ends)."""
        return sum(self._recent) / len(self._recent) if self._recent else float("nan")

    def close(self) -> None:
        self._episodes.close()
        self._progress_file.close()
        if hasattr(self, "_evaluations"):
            self._evaluations.close()
