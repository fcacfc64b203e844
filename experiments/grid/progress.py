"""What every backend shows and collects while a grid runs: runs done, aggregate steps/s and ETA, failures."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from experiments.store import RunSpec


def fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Runs done, aggregate steps/s and ETA: a rich bar on a terminal, a plain line every 30 s otherwise."""

    def __init__(self, specs: list[RunSpec], interval: float = 30.0):
        self.total_steps = sum(s.steps for s in specs)
        self.n_runs = len(specs)
        self.steps: dict[str, int] = {s.run_id: 0 for s in specs}
        self.done = 0
        self.start = time.time()
        self.interval, self.last_print = interval, 0.0
        self.tty = sys.stdout.isatty()
        self._bar = None
        if self.tty:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
            )
            self._task = self._bar.add_task("runs", total=self.total_steps, info="")
            self._bar.start()

    def line(self) -> str:
        done_steps = sum(self.steps.values())
        elapsed = time.time() - self.start
        sps = done_steps / max(elapsed, 1e-9)
        eta = (self.total_steps - done_steps) / sps if sps > 0 else float("inf")
        return (
            f"[{self.done}/{self.n_runs} runs] {done_steps:,}/{self.total_steps:,} steps | "
            f"{sps:,.0f} steps/s | elapsed {fmt_time(elapsed)} | ETA "
            f"{fmt_time(eta) if eta != float('inf') else '?'}"
        )

    def update(self, run_id: str, step: int) -> None:
        self.steps[run_id] = step
        self.tick()

    def finish_run(self, spec: RunSpec, message: str, failed: bool = False) -> None:
        if failed:  # a failed run's steps no longer count towards the rate or the ETA
            self.total_steps -= spec.steps - self.steps[spec.run_id]
        else:
            self.steps[spec.run_id] = spec.steps
        self.done += 1
        self.log(message)
        self.tick(force=True)

    def log(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message)
        else:
            print(message, flush=True)

    def tick(self, force: bool = False) -> None:
        """Redraw the bar, or print the plain line if ``interval`` seconds have passed (or ``force``)."""
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=sum(self.steps.values()),
                description=f"{self.done}/{self.n_runs} runs",
                info=self.line().split("| ", 1)[1],
            )
        elif force or time.time() - self.last_print > self.interval:
            self.last_print = time.time()
            print(self.line(), flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


class GridTracker:
    """What both backends share once runs are dispatched: progress, failures, the after-run hook."""

    def __init__(self, pending: list[RunSpec], after_run: Callable[[RunSpec, dict], None] | None):
        self.progress = Progress(pending)
        self.failures: list[str] = []
        self.after_run = after_run

    def step(self, run_id: str, step: int) -> None:
        self.progress.update(run_id, step)

    def done(self, spec: RunSpec, row: dict) -> None:
        self.progress.finish_run(
            spec,
            f"done {run_name(spec)}: {row['n_episodes']:,} episodes ({row['sps']:,.0f} steps/s, {row['wall_s']:.0f} s)",
        )
        if self.after_run is not None:
            self.after_run(spec, row)

    def failed(self, spec: RunSpec, reason: str, lost: bool = False) -> None:
        self.failures.append(f"{run_name(spec)}: {reason}")
        self.progress.finish_run(spec, f"{'LOST' if lost else 'FAILED'} {run_name(spec)}: {reason}", failed=True)

    def skipped(self, spec: RunSpec, reason: str) -> None:
        self.progress.finish_run(spec, f"SKIPPED {run_name(spec)}: {reason}", failed=True)  # its steps are not ours

    def close(self) -> list[str]:
        self.progress.close()
        print(self.progress.line(), flush=True)
        return self.failures


def run_name(spec: RunSpec) -> str:
    return f"{spec.algo} {spec.impl} {spec.env} seed {spec.seed}"


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
