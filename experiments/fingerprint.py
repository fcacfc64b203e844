"""Golden fingerprints: the first iterations of each of our algorithms, to catch any numerical change.

A fingerprint is a short, fixed-seed CPU run (Pendulum-v1, 512 steps of a shortened config) reduced to its
per-iteration training statistics, its episode returns and the sum and norm of every final parameter
tensor. ``tests/golden/<algo>.json`` holds the committed one; ``make test`` compares (relative tolerance
1e-6, far below any real change and above float noise between CPUs of one kind); ``rlrepro fingerprint
--update`` rewrites them after a deliberate change, which the commit should say.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from experiments.registry import ALGOS
from experiments.runner import execute, make_spec
from experiments.store import ResultsStore

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "tests" / "golden"
ENV, SEED, STEPS = "Pendulum-v1", 7, 512
# short versions of each config: two on-policy iterations; for off-policy, 256 updates after a 256-step warm-up
_OFF_POLICY = {"warmup_steps": 256, "batch_size": 64, "eval_every": 512, "eval_episodes": 1}
_QPROP = {"horizon": 256, "min_pool_size": 256, "qf_updates_ratio": 0.25}
OVERRIDES: dict[str, dict[str, Any]] = {
    "sac": _OFF_POLICY,
    "sac-v1": _OFF_POLICY,
    "ddpg": _OFF_POLICY,
    "awr": {"horizon": 256, "actor_steps": 50, "critic_steps": 20, "eval_every": 512, "eval_episodes": 1},
    "qprop": _QPROP,
    "qprop-aggressive": _QPROP,
}
DEFAULT_OVERRIDES = {"horizon": 256}


def fingerprint(algo: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(tmp)
        spec = make_spec(algo, "ours", ENV, SEED, STEPS, "fingerprint", OVERRIDES.get(algo, DEFAULT_OVERRIDES))
        execute(spec, store)
        path = store.path(spec)
        progress = pd.read_csv(path / "progress.csv").drop(columns=["time", "sps"])
        episodes = pd.read_csv(path / "episodes.csv")
        model = torch.load(path / "model.pt", weights_only=False)
    params = {
        f"{net}.{name}": [float(t.double().sum()), float(t.double().norm())]
        for net, state in model.items()
        if net != "normalization"
        for name, t in state.items()
    }
    return {
        "algo": algo,
        "env": ENV,
        "seed": SEED,
        "steps": STEPS,
        "progress": progress.to_dict("list"),
        "episode_returns": episodes["return"].tolist(),
        "parameters": params,
    }


def golden_path(algo: str) -> Path:
    return GOLDEN_DIR / f"{algo}.json"


def update_golden() -> list[str]:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for algo in ALGOS:
        golden_path(algo).write_text(json.dumps(fingerprint(algo), indent=1) + "\n")
    return list(ALGOS)
