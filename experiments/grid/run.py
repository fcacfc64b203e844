"""Run a grid: skip what is complete or busy, group seeds for seed-parallel training, and hand the rest to a
backend (``local``: grid/local.py, a process pool here; ``ray``: grid/ray_backend.py, a Ray cluster)."""

from __future__ import annotations

from collections.abc import Callable

from experiments.grid.backend import Backend, BackendOptions
from experiments.grid.progress import GridTracker
from experiments.registry import get_algo
from experiments.store import ResultsStore, RunSpec
from replications.core.errors import UserError

BACKENDS = ("local", "ray")


def backend_named(name: str) -> Backend:
    """The backend called ``name`` (imported on demand: Ray is only loaded for the ray backend)."""
    if name == "local":
        from experiments.grid.local import run_local

        return run_local
    if name == "ray":
        from experiments.grid.ray_backend import run_on_ray

        return run_on_ray
    raise UserError(f"unknown backend '{name}'; allowed: {', '.join(BACKENDS)}")


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
    Ray task per work item on the cluster at ``address`` (``None``: a Ray instance started here). Either way
    the finished runs land in ``store``. ``seed_parallel=K`` trains up to K seeds of one config in one worker
    with batched networks (replications/core/seeds.py).
    """
    run_items = backend_named(backend)
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
    run_items(items, store, tracker, BackendOptions(workers, address, gpus_per_run))
    return len(pending), tracker.close()
