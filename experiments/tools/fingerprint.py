"""Golden fingerprints: the first iterations of each of our algorithms, to catch any numerical change.

A fingerprint is a short, fixed-seed CPU run (Pendulum-v1, 512 steps of a shortened config) reduced to its
per-iteration training statistics, its episode returns and the sum and norm of every final parameter
tensor. ``tests/golden/<cpu kind>/<algo>.json`` holds the committed one; ``make test`` compares (relative
tolerance 1e-6, far below any real change and above float noise between CPUs of one kind).

Float results differ between CPU kinds (torch's kernels dispatch by vendor and instruction set: an AMD EPYC
and an Intel Xeon, both AVX-512, differ by up to 2e-5 relative after two PPO iterations, and chaotic
algorithms such as Q-Prop's adaptive eta switch differently), so each kind has its own goldens:
``tests/golden/<vendor>-<capability>/`` (e.g. ``AuthenticAMD-AVX512``), else the vendor's
``tests/golden/<vendor>/``; on a kind with neither the test skips and says how to add one.
``rlrepro fingerprint --update`` rewrites this kind's goldens after a deliberate change (which the commit
should say) and deletes the other kinds' (they cannot be recomputed here; regenerate them on such a
machine); ``rlrepro fingerprint --add-kind`` adds this kind's goldens for unchanged code.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from experiments.grid import execute, make_spec
from experiments.registry import ALGOS
from experiments.store import ResultsStore
from replications.core.errors import UserError

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "tests" / "golden"
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


def cpu_kind() -> str:
    """``<vendor>-<torch's CPU capability>``, e.g. ``GenuineIntel-AVX512``: within one kind, results match."""
    vendor = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            vendor = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("vendor_id")), vendor)
    except OSError:
        pass
    return f"{vendor}-{torch.backends.cpu.get_cpu_capability()}"


def golden_hashes(algo: str) -> dict[str, str]:
    """cpu kind -> sha256 of every kind's golden of ``algo``: what a regression-gate record vouches for."""
    return {
        p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(GOLDEN_DIR.glob(f"*/{algo}.json"))
    }


def golden_path(algo: str, kind: str | None = None) -> Path:
    """This CPU kind's golden, else its vendor's (see the module docstring); may not exist."""
    kind = kind or cpu_kind()
    exact = GOLDEN_DIR / kind / f"{algo}.json"
    return exact if exact.exists() else GOLDEN_DIR / kind.split("-")[0] / f"{algo}.json"


def update_golden(keep_other_kinds: bool = False, algos: tuple[str, ...] = ()) -> Path:
    """Write this CPU kind's goldens (of ``algos``, default all); after a deliberate change
    (``keep_other_kinds=False``) the other kinds' goldens of those algorithms are deleted, since they would now
    fail and cannot be recomputed on this machine (the other algorithms' stay). Returns the folder."""
    unknown = [a for a in algos if a not in ALGOS]
    if unknown:
        raise UserError(f"fingerprint: unknown algorithm '{unknown[0]}'; allowed: {', '.join(ALGOS)}")
    chosen = algos or tuple(ALGOS)
    out = GOLDEN_DIR / cpu_kind()
    if not keep_other_kinds:
        for other in GOLDEN_DIR.iterdir():
            if other.is_dir() and other != out:
                for algo in chosen:
                    (other / f"{algo}.json").unlink(missing_ok=True)
                if not any(other.iterdir()):
                    other.rmdir()
    out.mkdir(parents=True, exist_ok=True)
    for algo in chosen:
        (out / f"{algo}.json").write_text(json.dumps(fingerprint(algo), indent=1) + "\n")
    return out
