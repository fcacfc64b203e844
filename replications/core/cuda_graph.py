"""Off-policy updates replayed as one CUDA graph (``RLREPRO_CUDA_GRAPH=1`` with ``RLREPRO_DEVICE=cuda``).

An eager SAC or DDPG update launches a hundred-odd small kernels, each from Python; on a GPU the launches,
not the arithmetic, bound the speed. Captured once as a CUDA graph, the whole update (forward passes,
backward passes, the Adam steps, the Polyak averaging) is replayed by a single launch on the same tensors.

The algorithm is unchanged: the same update function is captured, on the same networks and optimisers.
What differs from eager mode: Adam runs its ``capturable`` variant (step counts on the device; float
rounding differs), and SAC's noise comes from the graph's own Philox offsets (another random stream).

Capture needs a few warm-up calls of the update on a side stream; those would be extra gradient steps, so
every tensor the update touches (networks, target networks, optimiser moments and step counts, SAC's
temperature) is copied before them and written back afterwards, in place (the graph holds their
addresses). ``checkpoint.capture`` and ``restore_in_place`` do that and are tested on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from replications.core.algorithm import Update
from replications.core.checkpoint import capture as capture_state

StepFn = Callable[[dict[str, torch.Tensor]], dict[str, Any]]


def graph_updates_requested() -> bool:
    """``RLREPRO_CUDA_GRAPH=1``: replay the off-policy update as a CUDA graph (a no-op on the CPU)."""
    return os.environ.get("RLREPRO_CUDA_GRAPH", "0") not in ("", "0", "false", "False")


@torch.no_grad()
def restore_in_place(state: dict[str, Any], saved: dict[str, Any]) -> None:
    """Write ``checkpoint.capture(state)`` back into the same tensors (their addresses stay valid). Optimiser state
    created after the snapshot (Adam's moments after its first step) is zeroed: a fresh optimiser."""
    for name, obj in state.items():
        if name not in saved:
            continue
        if isinstance(obj, nn.Module):
            current = obj.state_dict()
            for key, value in saved[name].items():
                current[key].copy_(value)
        elif isinstance(obj, torch.Tensor):
            obj.copy_(saved[name])
        elif isinstance(obj, torch.optim.Optimizer):
            params = [p for group in obj.param_groups for p in group["params"]]
            for i, p in enumerate(params):
                before = saved[name]["state"].get(i, {})
                for key, t in obj.state.get(p, {}).items():
                    if isinstance(t, torch.Tensor):
                        t.copy_(before[key]) if key in before else t.zero_()


def _make_capturable(optimizers: list[torch.optim.Optimizer], device: torch.device) -> None:
    """Adam's step count on the device, so a replay advances it without the host."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["capturable"] = True
        for per_param in opt.state.values():
            if isinstance(per_param.get("step"), torch.Tensor):
                per_param["step"] = per_param["step"].to(device, torch.float32)


def capture(update: StepFn, state: dict[str, Any], batch: dict[str, torch.Tensor], warmup: int = 3):
    """Capture ``update(batch)`` as a CUDA graph on ``batch``'s tensors; returns (graph, its outputs).
    The warm-up calls' changes to ``state`` are undone."""
    device = next(iter(batch.values())).device
    optimizers = [o for o in state.values() if isinstance(o, torch.optim.Optimizer)]
    _make_capturable(optimizers, device)
    before = capture_state(state)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            update(batch)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = update(batch)
    restore_in_place(state, before)
    torch.cuda.synchronize(device)
    return graph, outputs


def cuda_graphed(update: Update) -> Update:
    """``update`` replayed as a CUDA graph: captured at the first call (after any checkpoint was restored),
    then each call copies the minibatch into the graph's input tensors and replays it. The returned
    statistics are the graph's output tensors (overwritten by the next replay; read them before it)."""
    graph: torch.cuda.CUDAGraph | None = None
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, Any] = {}

    def replay(batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        nonlocal graph, outputs
        if graph is None:
            inputs.update({k: v.clone() for k, v in batch.items()})
            graph, outputs = capture(update.step, update.state, inputs)
        for k, v in batch.items():
            inputs[k].copy_(v, non_blocking=True)
        graph.replay()
        return outputs

    return Update(replay, update.state)
