"""``make bench``: env steps/s of our implementation and SB3's, same hyperparameters, same process.

Both run the paper config on the same env and seed, one torch thread each, one after the other; the
clock covers the training call only (imports and the first env construction are warmed up before).
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
from replications.core.logging import RunLogger
from replications.core.seeding import seed_everything


def bench(algo: str, env_id: str, steps: int, out: Path | None = None) -> dict:
    entry = get_algo(algo)
    cfg = resolve(load_paper_config(algo), entry.config_cls, env_id, {})
    seed_everything(0)  # warm-up: torch's deterministic-mode imports happen here, outside the clock
    load_before = os.getloadavg()[0]  # other work on the machine slows both implementations
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for impl, train in entry.impls.items():
            logger = RunLogger(Path(tmp) / impl)
            start = time.perf_counter()
            facts = train(env_id, cfg, 0, steps, logger)
            wall = time.perf_counter() - start
            logger.close()
            results[impl] = {
                "steps": facts["steps"],
                "seconds": round(wall, 2),
                "steps_per_s": round(facts["steps"] / wall, 1),
            }
    ratio = results["ours"]["steps_per_s"] / results["sb3"]["steps_per_s"]
    report = {
        "algo": algo,
        "env": env_id,
        "steps": steps,
        "results": results,
        "ratio_ours_over_sb3": round(ratio, 2),
        "cpu": provenance()["cpu"],
        "python": platform.python_version(),
        "commit": provenance()["commit"],
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(f"{algo} on {env_id}, {steps:,} steps per implementation, same hyperparameters, 1 torch thread")
    for impl, r in results.items():
        print(f"  {impl:5s} {r['steps_per_s']:>9,.0f} env steps/s  ({r['seconds']:.1f} s)")
    print(f"  ratio ours / sb3: {ratio:.2f}x   (CPU: {report['cpu']}; load average before: {load_before:.2f})")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    return report
