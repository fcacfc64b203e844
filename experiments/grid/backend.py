"""The one interface every backend implements: run the work items of a grid into the local results store,
reporting each run's steps, completion or failure to the tracker, and never stopping on one failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from experiments.grid.progress import GridTracker
from experiments.store import ResultsStore, RunSpec


@dataclass(frozen=True)
class BackendOptions:
    """What a backend may be told: ``workers`` (local: pool size), ``address`` (ray: the cluster's
    HOST:PORT, ``None`` for a Ray instance started here), ``gpus_per_run`` (ray: GPUs each task asks for)."""

    workers: int = 1
    address: str | None = None
    gpus_per_run: float = 0.0


class Backend(Protocol):
    """A work item is one run, or up to K seeds of one config trained together (``--seed-parallel K``)."""

    def __call__(
        self, items: list[list[RunSpec]], store: ResultsStore, tracker: GridTracker, options: BackendOptions
    ) -> None: ...
