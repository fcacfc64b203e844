"""Execute one run, or several seeds of one config together (seed-parallel), into a results store: resume a
killed attempt from its checkpoint, mark an interrupted or failed run as such, index a finished one (its
score is the analysis's to compute from the run's files: analysis/scores.py)."""

from __future__ import annotations

import shutil
import traceback
from collections.abc import Callable

from experiments.registry import get_algo
from experiments.store import ResultsStore, RunBusy, RunSpec
from replications.core.checkpoint import CHECKPOINT_FILE
from replications.core.config import build_config
from replications.core.errors import UserError
from replications.core.logging import RunLogger

ProgressFn = Callable[[str, int], None]
"""(run_id, env steps so far) -> None"""


def train(
    spec: RunSpec, store: ResultsStore, on_progress: Callable[[int, float], None] | None = None, force: bool = False
) -> dict | None:
    """``rlrepro train``: one run into the store; ``None`` if it is already complete, unless ``force``, which
    deletes the complete run directory and runs it again."""
    if store.is_complete(spec):
        if not force:
            return None
        shutil.rmtree(store.path(spec))
    store.read_index()  # a corrupt index is reported before the run starts
    return execute(spec, store, on_progress)


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
    return store.complete(spec, facts, wall, logger.n_episodes)
