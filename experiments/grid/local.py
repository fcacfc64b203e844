"""The local backend: a pool of worker processes on this machine (no server), one work item each."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from experiments.grid.backend import BackendOptions
from experiments.grid.execute import execute_group
from experiments.grid.progress import GridTracker, first_line
from experiments.store import ResultsStore, RunBusy, RunSpec

LOST_WORKER = (
    "its worker process died (killed or out of memory); finished runs are kept: "
    "run the same command again to resume the unfinished ones from their last checkpoint"
)


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


def run_local(items: list[list[RunSpec]], store: ResultsStore, tracker: GridTracker, options: BackendOptions) -> None:
    """The ``Backend`` of a process pool of ``options.workers`` workers."""
    workers = options.workers
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
                        tracker.skipped(spec, first_line(exc))
                except Exception as exc:  # the run is marked failed in its meta.json
                    for spec in item:
                        tracker.failed(spec, first_line(exc))
                else:
                    for spec, row in zip(item, rows, strict=True):
                        tracker.done(spec, row)
