"""Plan a replication grid from a paper config, run it in worker processes, skip what is complete.

Each run executes in its own process with one torch thread; the parent shows progress (runs done,
aggregate env steps/s, ETA) and adds each finished run to the store's index.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.scoring import score as score_episodes
from experiments.registry import check_impls, get_algo
from experiments.store import ResultsStore, RunBusy, RunSpec
from replications.core.checkpoint import CHECKPOINT_FILE
from replications.core.config import build_config, identity, load_paper_config, resolve
from replications.core.envs import check_env_id
from replications.core.errors import UserError
from replications.core.logging import RunLogger

LOST_WORKER = (
    "its worker process died (killed or out of memory); finished runs are kept: "
    "run the same command again to resume the unfinished ones from their last checkpoint"
)


def make_spec(algo: str, impl: str, env: str, seed: int, steps: int, budget: str, overrides: dict[str, Any]) -> RunSpec:
    entry = get_algo(algo)
    check_impls(entry, [impl])
    check_env_id(env)
    if seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed}")
    if steps <= 0:
        raise UserError(f"--steps must be a positive integer, got {steps}")
    cfg = resolve(load_paper_config(algo), entry.config_cls, env, overrides)
    _check_one_iteration(algo, env, cfg, steps)
    settings = entry.impl_settings[impl](cfg, env) if impl in entry.impl_settings else {}
    return RunSpec(algo, impl, env, seed, steps, budget, identity(cfg), settings)


def _check_one_iteration(algo: str, env: str, cfg: Any, steps: int) -> None:
    """An on-policy algorithm trains whole iterations of ``cfg.horizon`` env steps (ceil(steps / horizon) of
    them, as SB3 does): a budget below one iteration would train a whole one, more than was asked for."""
    horizon = getattr(cfg, "horizon", 1)
    if steps < horizon:
        raise UserError(
            f"--steps {steps} is less than one iteration of {algo} (horizon {horizon} on {env}); use at least {horizon}"
        )


def plan_grid(
    algo: str,
    budget: str,
    *,
    seeds: int | None = None,
    envs: list[str] | None = None,
    impls: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    steps: int | None = None,
) -> list[RunSpec]:
    """The paper's grid for ``budget`` (envs x impls x seeds), optionally narrowed or re-budgeted."""
    entry = get_algo(algo)
    plan = load_paper_config(algo).budget(budget)
    impls = check_impls(entry, impls or list(entry.impls))
    for env in envs or []:
        check_env_id(env)
        if env not in plan.steps and steps is None:
            raise UserError(
                f"env '{env}' is not in the {algo} '{budget}' grid and no --steps was given; "
                f"grid envs: {', '.join(plan.steps)}"
            )
    env_steps = {env: steps or plan.steps.get(env, 0) for env in (envs or plan.steps)}
    n_seeds = seeds if seeds is not None else plan.seeds
    if n_seeds <= 0:
        raise UserError(f"--seeds must be a positive integer, got {n_seeds}")
    specs = [
        make_spec(algo, impl, env, seed, env_steps[env], budget, overrides or {})
        for env in env_steps
        for impl in impls
        for seed in range(n_seeds)
    ]
    planned = {s.run_id for s in specs}
    if "sb3" in impls:  # the cross-check also at equal settings (not for ours alone, e.g. make regress)
        specs += [s for s in sb3_settings_specs(algo, budget, specs, overrides) if s.run_id not in planned]
    return specs


def sb3_settings_specs(
    algo: str, budget: str, specs: list[RunSpec], overrides: dict[str, Any] | None = None
) -> list[RunSpec]:
    """Our runs of ``specs`` again with the config's ``reference.sb3_settings`` overrides: the settings SB3
    runs where our paper config asks for something SB3 cannot do (TRPO: Fisher-vector products on every
    5th sample; sb3-contrib uses the whole batch). The SB3 cross-check is then also made at equal settings."""
    matched = load_paper_config(algo).reference.get("sb3_settings")
    if not matched:
        return []
    extra = {**(overrides or {}), **matched["overrides"]}
    return [make_spec(algo, "ours", s.env, s.seed, s.steps, budget, extra) for s in specs if s.impl == "ours"]


ProgressFn = Callable[[str, int], None]
"""(run_id, env steps so far) -> None"""


def execute(spec: RunSpec, store: ResultsStore, on_progress: Callable[[int, float], None] | None = None) -> dict:
    """Run one spec into the store (resuming a killed attempt from its checkpoint); returns its index row."""
    entry = get_algo(spec.algo)
    cfg = build_config(entry.config_cls, spec.hyperparameters, spec.algo)
    resume = store.resumable(spec)
    path = store.begin(spec)
    logger = RunLogger(path, on_progress, resume=resume)
    try:
        facts = entry.impls[spec.impl](spec.env, cfg, spec.seed, spec.steps, logger)
    except BaseException as exc:
        logger.close()
        _stopped(spec, store, exc)
        raise
    logger.close()
    return _complete(spec, store, logger, facts)


def execute_group(specs: list[RunSpec], store: ResultsStore, on_progress: ProgressFn | None = None) -> list[dict]:
    """Run specs that differ only in their seed: one ``execute`` each, or, for several seeds of an algorithm
    with a seed-parallel trainer, all of them in this process with batched networks. Returns index rows."""
    if len(specs) == 1:
        spec = specs[0]
        report = None if on_progress is None else (lambda step, _r: on_progress(spec.run_id, step))
        return [execute(spec, store, report)]
    first = specs[0]
    entry = get_algo(first.algo)
    if entry.seed_parallel is None or any(s.impl != "ours" or s.config_id != first.config_id for s in specs):
        raise UserError(f"{first.algo}: seed-parallel training needs one config of impl 'ours' and a trainer")
    cfg = build_config(entry.config_cls, first.hyperparameters, first.algo)
    if any(store.busy(s) for s in specs):  # checked before any seed's files are touched
        raise RunBusy(f"{first.algo} {first.env}: a seed of this group is being run by another process")
    loggers = []
    for spec in specs:
        (store.path(spec) / CHECKPOINT_FILE).unlink(missing_ok=True)  # a group always starts its seeds over
        report = None if on_progress is None else (lambda step, _r, rid=spec.run_id: on_progress(rid, step))
        try:
            loggers.append(RunLogger(store.begin(spec), report))
        except RunBusy:  # taken by another process since the check: let go of the seeds begun here
            for begun, logger in zip(specs, loggers, strict=False):
                logger.close()
                store.fail(begun, "not run: another seed of its group was being run by another process")
            raise
    try:
        facts = entry.seed_parallel(first.env, cfg, [s.seed for s in specs], first.steps, loggers)
    except BaseException as exc:
        for spec, logger in zip(specs, loggers, strict=True):
            logger.close()
            _stopped(spec, store, exc)
        raise
    for logger in loggers:
        logger.close()
    return [
        _complete(spec, store, logger, {**f, "seed_parallel": len(specs)})
        for spec, logger, f in zip(specs, loggers, facts, strict=True)
    ]


def _stopped(spec: RunSpec, store: ResultsStore, exc: BaseException) -> None:
    """A run that raised: failed, unless it was interrupted (Ctrl-C), which leaves it ``running`` with its last
    checkpoint, so the next ``train``/``replicate`` resumes it, as after a kill."""
    if isinstance(exc, KeyboardInterrupt):
        store.interrupted(spec)
    else:
        store.fail(spec, "".join(traceback.format_exception_only(exc)).strip())


def _complete(spec: RunSpec, store: ResultsStore, logger: RunLogger, facts: dict) -> dict:
    wall = logger.elapsed()  # training time of the run's timeline (a resumed run adds up its attempts)
    path = store.path(spec)
    episodes = pd.read_csv(path / "episodes.csv")
    evaluations = pd.read_csv(path / "evaluations.csv") if (path / "evaluations.csv").exists() else None
    scoring = load_paper_config(spec.algo).scoring
    return store.complete(spec, facts, wall, score_episodes(episodes, scoring, evaluations), len(episodes))


def work_items(pending: list[RunSpec], seed_parallel: int) -> list[list[RunSpec]]:
    """Units of work: single runs, or up to ``seed_parallel`` seeds of one config trained together (for
    our implementation of an algorithm that has a seed-parallel trainer)."""
    if seed_parallel < 1:
        raise UserError(f"--seed-parallel must be a positive integer, got {seed_parallel}")
    groups: dict[str, list[RunSpec]] = {}
    items: list[list[RunSpec]] = []
    for spec in pending:
        if seed_parallel > 1 and spec.impl == "ours" and get_algo(spec.algo).seed_parallel is not None:
            groups.setdefault(spec.config_id, []).append(spec)
        else:
            items.append([spec])
    for group in groups.values():
        items += [group[i : i + seed_parallel] for i in range(0, len(group), seed_parallel)]
    return items


_PROGRESS: Any = None  # a worker's queue to the parent's progress display (set by _init_worker)


def _init_worker(parent_pid: int, progress_queue: Any, interval: float = 1.0) -> None:
    """Pool initializer: keep the progress queue, and end this worker when its ``replicate`` process is gone.

    A parent killed with SIGTERM (``kill``, a job scheduler) or by the OOM killer cannot shut its pool down,
    and its workers would go on training, holding their runs' locks, until their runs ended. The worker ends
    itself instead, as a killed worker does: the run keeps its last checkpoint (written atomically) and
    resumes on the next ``replicate``.
    """
    global _PROGRESS
    _PROGRESS = progress_queue
    progress_queue.cancel_join_thread()  # never wait at exit to flush progress messages the parent no longer reads

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        print(f"worker {os.getpid()}: its replicate process ({parent_pid}) is gone; stopping", file=sys.stderr)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _worker(specs: list[RunSpec], root: str) -> list[dict]:
    return execute_group(specs, ResultsStore(root), lambda run_id, step: _PROGRESS.put((run_id, step)))


def _fmt_time(seconds: float) -> str:
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
            f"{sps:,.0f} steps/s | elapsed {_fmt_time(elapsed)} | ETA "
            f"{_fmt_time(eta) if eta != float('inf') else '?'}"
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
            f"done {_name(spec)}: score {row['score']:.1f} ({row['sps']:,.0f} steps/s, {row['wall_s']:.0f} s)",
        )
        if self.after_run is not None:
            self.after_run(spec, row)

    def failed(self, spec: RunSpec, reason: str, lost: bool = False) -> None:
        self.failures.append(f"{_name(spec)}: {reason}")
        self.progress.finish_run(spec, f"{'LOST' if lost else 'FAILED'} {_name(spec)}: {reason}", failed=True)

    def skipped(self, spec: RunSpec, reason: str) -> None:
        self.progress.finish_run(spec, f"SKIPPED {_name(spec)}: {reason}", failed=True)  # its steps are not ours

    def close(self) -> list[str]:
        self.progress.close()
        print(self.progress.line(), flush=True)
        return self.failures


def _name(spec: RunSpec) -> str:
    return f"{spec.algo} {spec.impl} {spec.env} seed {spec.seed}"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def run_grid(
    specs: list[RunSpec],
    store: ResultsStore,
    workers: int = 1,
    after_run: Callable[[RunSpec, dict], None] | None = None,
    backend: str = "local",
    address: str | None = None,
    gpus_per_run: float = 0.0,
    seed_parallel: int = 1,
) -> tuple[int, list[str]]:
    """Run the specs not yet complete; returns (number run, failure messages). Never stops on one failure.

    ``backend='local'``: a pool of ``workers`` processes on this machine (no server). ``backend='ray'``: one
    Ray task per run on the cluster at ``address`` (``None``: a Ray instance started here), see
    experiments/ray_backend.py. Either way the finished runs land in ``store``. ``seed_parallel=K`` trains up
    to K seeds of one config in one worker with batched networks (replications/core/seed_parallel.py).
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend '{backend}'; allowed: {', '.join(BACKENDS)}")
    store.read_index()  # a corrupt index is reported before any work starts
    pending = [s for s in specs if not store.is_complete(s)]
    busy = [s for s in pending if store.busy(s)]  # another replicate on this store is running them now
    pending = [s for s in pending if s not in busy]
    where = f"{workers} worker(s)" if backend == "local" else f"Ray ({address or 'a local instance'})"
    print(
        f"{len(specs)} runs in the grid: {len(specs) - len(pending) - len(busy)} already complete (skipped), "
        + (f"{len(busy)} being run by another process (skipped), " if busy else "")
        + f"{len(pending)} to run with {where}",
        flush=True,
    )
    if not pending:
        return 0, []
    items = work_items(pending, seed_parallel)
    if len(items) < len(pending):
        print(f"seed-parallel: {len(pending)} runs in {len(items)} work items of up to {seed_parallel} seeds")
    tracker = GridTracker(pending, after_run)
    if backend == "ray":
        from experiments.ray_backend import run_on_ray

        run_on_ray(items, store, tracker, address, gpus_per_run)
    else:
        _run_local(items, store, tracker, workers)
    return len(pending), tracker.close()


BACKENDS = ("local", "ray")


def _run_local(items: list[list[RunSpec]], store: ResultsStore, tracker: GridTracker, workers: int) -> None:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()  # handed to each worker when it starts: no manager process to outlive a killed parent
    with cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(), q)
    ) as pool:
        futures = {pool.submit(_worker, item, str(store.root)): item for item in items}
        remaining = set(futures)
        while remaining:
            finished, remaining = cf.wait(remaining, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            try:
                while True:
                    tracker.step(*q.get_nowait())
            except (queue.Empty, EOFError, OSError):  # a lost progress message only delays the display
                pass
            tracker.progress.tick()
            for fut in finished:
                item = futures[fut]
                try:
                    rows = fut.result()
                except BrokenProcessPool:  # a worker died (killed, out of memory): its run can resume
                    for spec in item:
                        tracker.failed(spec, LOST_WORKER, lost=True)
                except RunBusy as exc:  # another process started or finished it meanwhile: not a failure
                    for spec in item:
                        tracker.skipped(spec, _first_line(exc))
                except Exception as exc:  # the run is marked failed in its meta.json
                    for spec in item:
                        tracker.failed(spec, _first_line(exc))
                else:
                    for spec, row in zip(item, rows, strict=True):
                        tracker.done(spec, row)


def results_root(path: str | None) -> Path:
    return Path(path) if path else Path("results")
