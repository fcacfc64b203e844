"""What an algorithm hands its loop driver: its update, and the state a checkpoint must carry to resume it.

One type for every algorithm and both drivers (core/onpolicy.py, core/offpolicy.py), for checkpoints
(core/checkpoint.py) and for CUDA graphs (core/cuda_graph.py). ``state`` holds what the update owns beyond
what the driver holds itself: the optimisers, and for off-policy algorithms the networks, target networks
and temperature; for Q-Prop its critic, replay buffer and generator. Each value is something
core/checkpoint.py can capture and restore (an object with ``state_dict``/``load_state_dict``, a tensor, a
generator, plain data); its name is its key in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Update:
    """``step`` is the update itself: on-policy ``step(batch, iteration, n_iterations) -> [stats]`` (one row
    per seed: core/seeds.py); off-policy ``step(minibatch) -> stats``. Calling the ``Update`` calls it."""

    step: Callable[..., Any]
    state: dict[str, Any] = field(default_factory=dict)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.step(*args, **kwargs)

    def with_state(self, **more: Any) -> Update:
        """The same step with more checkpointed state (a driver's or a train function's own objects)."""
        return Update(self.step, {**self.state, **more})
