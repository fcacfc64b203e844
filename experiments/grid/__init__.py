"""The grid room: plan a grid's runs from a paper config (plan.py), execute one run or a seed-parallel group
into the results store (execute.py), and run a grid through a backend (run.py, behind the one interface of
backend.py: local.py's process pool or ray_backend.py's Ray cluster), with progress (progress.py)."""

from experiments.grid.execute import execute, execute_group, train
from experiments.grid.plan import (
    build_comparison,
    make_spec,
    plan_grid,
    results_root,
    sb3_settings_specs,
    stored_comparisons,
)
from experiments.grid.run import run_grid, work_items

__all__ = [
    "build_comparison",
    "execute",
    "execute_group",
    "make_spec",
    "plan_grid",
    "results_root",
    "run_grid",
    "sb3_settings_specs",
    "stored_comparisons",
    "train",
    "work_items",
]
