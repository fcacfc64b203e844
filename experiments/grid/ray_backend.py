"""The Ray backend: each run of a grid is one Ray task, and its finished run directory comes back to the
driver's local results store.

A task runs ``execute_group`` (grid/execute.py) into a staging store on its node
(``$TMPDIR/rlrepro-ray/<store key>``), so nodes need no shared filesystem; it returns the run directory's
files, which the driver writes into its own store and index exactly as a local run's. Progress (steps)
streams back through a Ray queue. A task whose worker or node dies is retried by Ray (``max_retries``); a
retry on the same node resumes from the run's last checkpoint in the staging store
(replications/core/checkpoint.py), one on another node starts over.
Tasks are spread over the nodes; each asks for one CPU and ``gpus_per_run`` GPUs. A task is one run, or
with ``--seed-parallel K`` up to K seeds trained together in one process.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from experiments.grid.backend import BackendOptions
from experiments.grid.execute import execute_group
from experiments.grid.progress import GridTracker, first_line
from experiments.store import ResultsStore, RunSpec
from replications.core.checkpoint import CHECKPOINT_FILE
from replications.core.errors import UserError

MAX_RETRIES = 3


def staging_root(store_root: str) -> Path:
    key = hashlib.sha256(os.path.abspath(store_root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "rlrepro-ray" / key


def run_task(specs: list[RunSpec], store_root: str, progress_queue: Any) -> list[dict[str, bytes]]:
    """One work item (a run, or a seed-parallel group) on whichever node Ray chose; returns, per run, the
    {file name: contents} of its finished directory."""
    import json

    import ray

    stage = ResultsStore(staging_root(store_root))

    def report(run_id: str, step: int) -> None:
        with contextlib.suppress(Exception):  # progress is best effort; the run must not die of it
            progress_queue.put_nowait((run_id, step))

    execute_group(specs, stage, report)
    results = []
    for spec in specs:
        path = stage.path(spec)
        meta = json.loads((path / "meta.json").read_text())
        meta["ray"] = {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}
        files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.name != CHECKPOINT_FILE}
        files["meta.json"] = json.dumps(meta, indent=2).encode()
        results.append(files)
    return results


def run_on_ray(items: list[list[RunSpec]], store: ResultsStore, tracker: GridTracker, options: BackendOptions) -> None:
    """The ``Backend`` of a Ray cluster at ``options.address``, each task asking for ``options.gpus_per_run``."""
    import ray
    from ray.util.queue import Empty, Queue

    try:
        ray.init(
            address=options.address,
            ignore_reinit_error=True,
            log_to_driver=False,
            logging_level=logging.ERROR,
            # the suite's own settings (checkpoint interval, W&B dir...) travel with the tasks
            runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k.startswith("RLREPRO_")}},
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"cannot connect to the Ray cluster at '{options.address}': {first_line(exc)}") from exc
    try:
        progress_queue = Queue(actor_options={"num_cpus": 0})
        task = ray.remote(run_task).options(
            num_cpus=1, num_gpus=options.gpus_per_run, max_retries=MAX_RETRIES, scheduling_strategy="SPREAD"
        )
        refs = {task.remote(item, str(store.root), progress_queue): item for item in items}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
            while True:
                try:
                    tracker.step(*progress_queue.get_nowait())
                except Empty:
                    break
            tracker.progress.tick()
            for ref in ready:
                item = refs.pop(ref)
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the run itself failed (error, NaN): not retried
                    reason = first_line(exc.cause) if exc.cause else first_line(exc)
                    for spec in item:
                        store.fail(spec, reason)
                        tracker.failed(spec, reason)
                except ray.exceptions.RayError as exc:  # worker/node lost more than MAX_RETRIES times
                    for spec in item:
                        tracker.failed(spec, f"Ray lost the task: {first_line(exc)}", lost=True)
                else:
                    for spec, files in zip(item, results, strict=True):
                        tracker.done(spec, store.install(spec, files))
    finally:
        ray.shutdown()
