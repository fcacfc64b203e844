"""``make bench``: env steps/s of our implementation and SB3's, same hyperparameters, same process.

Both run the paper config on the same env and seed, one torch thread each, one after the other; the
clock covers the training call only (imports and the first env construction are warmed up before).

``seed_parallel=K`` measures aggregate throughput on one core instead: K seeds trained together in one
process with batched networks, against the same K seeds run one after the other by ours and by SB3.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

from experiments.registry import get_algo
from experiments.store import provenance
from replications.core.config import load_paper_config, resolve
from replications.core.errors import UserError
from replications.core.logging import RunLogger
from replications.core.seeding import seed_everything


def _timed(train, env_id: str, cfg, seeds: list[int], steps: int, root: Path) -> dict:  # noqa: ANN001
    """Run ``train`` for each seed in turn (or, for a seed-parallel trainer, once for all seeds)."""
    start = time.perf_counter()
    if isinstance(train, tuple):  # (seed-parallel trainer,)
        loggers = [RunLogger(root / f"seed{s}") for s in seeds]
        total = sum(f["steps"] for f in train[0](env_id, cfg, seeds, steps, loggers))
        for logger in loggers:
            logger.close()
    else:
        total = 0
        for seed in seeds:
            logger = RunLogger(root / f"seed{seed}")
            total += train(env_id, cfg, seed, steps, logger)["steps"]
            logger.close()
    wall = time.perf_counter() - start
    return {"runs": len(seeds), "steps": total, "seconds": round(wall, 2), "steps_per_s": round(total / wall, 1)}


def bench_seed_parallel(algo: str, env_id: str, steps: int, k: int, out: Path | None = None) -> dict:
    """Aggregate env steps/s on one core: K seeds batched in one process vs K sequential runs (ours, SB3)."""
    entry = get_algo(algo)
    if entry.seed_parallel is None:
        raise UserError(f"{algo} has no seed-parallel trainer; those that do: ppo, trpo, npg")
    cfg = resolve(load_paper_config(algo), entry.config_cls, env_id, {})
    seed_everything(0)
    load_before = os.getloadavg()[0]
    seeds = list(range(k))
    contenders = {"ours_seed_parallel": (entry.seed_parallel,), "ours_sequential": entry.impls["ours"]}
    if "sb3" in entry.impls:
        contenders["sb3_sequential"] = entry.impls["sb3"]
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            name: _timed(train, env_id, cfg, seeds, steps, Path(tmp) / name) for name, train in contenders.items()
        }
    batched = results["ours_seed_parallel"]["steps_per_s"]
    ratios = {f"seed_parallel_over_{name}": round(batched / r["steps_per_s"], 2) for name, r in results.items()}
    ratios.pop("seed_parallel_over_ours_seed_parallel")
    report = {
        "algo": algo,
        "env": env_id,
        "seeds": k,
        "steps_per_seed": steps,
        "results": results,
        "ratios": ratios,
        **_machine(load_before),
    }
    print(f"{algo} on {env_id}: {k} seeds x {steps:,} steps, aggregate env steps/s on one core (1 torch thread)")
    for name, r in results.items():
        print(f"  {name:20s} {r['steps_per_s']:>9,.0f} env steps/s  ({r['seconds']:.1f} s for {r['runs']} runs)")
    for name, ratio in ratios.items():
        print(f"  {name}: {ratio:.2f}x")
    return _finish(report, out)


def bench(algo: str, env_id: str, steps: int, out: Path | None = None) -> dict:
    entry = get_algo(algo)
    cfg = resolve(load_paper_config(algo), entry.config_cls, env_id, {})
    seed_everything(0)  # warm-up: torch's deterministic-mode imports happen here, outside the clock
    load_before = os.getloadavg()[0]  # other work on the machine slows both implementations
    with tempfile.TemporaryDirectory() as tmp:
        results = {impl: _timed(fn, env_id, cfg, [0], steps, Path(tmp) / impl) for impl, fn in entry.impls.items()}
    ratio = results["ours"]["steps_per_s"] / results["sb3"]["steps_per_s"]
    report = {
        "algo": algo,
        "env": env_id,
        "steps": steps,
        "results": results,
        "ratio_ours_over_sb3": round(ratio, 2),
        **_machine(load_before),
    }
    where = os.environ.get("RLREPRO_DEVICE", "cpu")
    print(f"{algo} on {env_id}, {steps:,} steps per implementation, same hyperparameters, 1 torch thread, {where}")
    for impl, r in results.items():
        print(f"  {impl:5s} {r['steps_per_s']:>9,.0f} env steps/s  ({r['seconds']:.1f} s)")
    print(f"  ratio ours / sb3: {ratio:.2f}x")
    return _finish(report, out)


def _machine(load_before: float) -> dict:
    from replications.core.cuda_graph import graph_updates_requested
    from replications.core.offpolicy import run_device

    device, prov = run_device(), provenance()
    return {
        "load_average_before": load_before,
        "cpu": prov["cpu"],
        "device": str(device),
        "gpu": prov["gpu"] if device.type == "cuda" else None,
        "cuda_graph": graph_updates_requested() and device.type == "cuda",
        "python": platform.python_version(),
        "commit": prov["commit"],
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _finish(report: dict, out: Path | None) -> dict:
    print(f"  (CPU: {report['cpu']}; load average before: {report['load_average_before']:.2f})")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        write_bench_summary(out.parent)
    return report


def write_bench_summary(bench_dir: Path, out: Path = Path("reports/bench/summary.md")) -> Path:
    """A Markdown table of every stored bench result (the README's Speed table is generated from it)."""
    rows = [
        "| bench | ours env steps/s | baseline env steps/s | ratio | CPU, load before | commit, date |",
        "|---|---:|---:|---:|---|---|",
    ]
    for path in sorted(bench_dir.glob("*.json")):
        r = json.loads(path.read_text())
        load = r.get("load_average_before")
        machine = f"{r['cpu']}, load {load:.1f}" if load is not None else r["cpu"]
        if r.get("gpu"):  # off-policy nets on the GPU (ours and SB3's alike)
            machine += f"; {r['gpu']}" + (", ours CUDA-graphed" if r.get("cuda_graph") else "")
        stamp = f"{(r.get('commit') or '?')[:7]}, {r['when'][:10]}"
        if "seeds" in r:  # seed-parallel: aggregate throughput of K seeds on one core
            res = r["results"]
            name = f"{r['algo']} {r['env']}, {r['seeds']} seeds x {r['steps_per_seed']:,} steps: batched vs sequential"
            for base in ("ours_sequential", "sb3_sequential"):
                if base in res:
                    rows.append(
                        f"| {name} ({base.replace('_', ' ')}) | {res['ours_seed_parallel']['steps_per_s']:,.0f} | "
                        f"{res[base]['steps_per_s']:,.0f} | {r['ratios'][f'seed_parallel_over_{base}']:.2f}x | "
                        f"{machine} | {stamp} |"
                    )
        else:
            res = r["results"]
            rows.append(
                f"| {r['algo']} {r['env']}, {r['steps']:,} steps: ours vs SB3 | {res['ours']['steps_per_s']:,.0f} | "
                f"{res['sb3']['steps_per_s']:,.0f} | {r['ratio_ours_over_sb3']:.2f}x | {machine} | {stamp} |"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    shown = bench_dir.resolve()
    root = Path(__file__).resolve().parents[2]
    shown = shown.relative_to(root) if shown.is_relative_to(root) else shown
    out.write_text("\n".join(rows) + f"\n\n(from `{shown}/*.json`, written by `make bench`)\n")
    return out
