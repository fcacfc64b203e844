"""The bench summary table (the README's Speed table) is generated from the stored bench results."""

import json

from experiments.tools.bench import write_bench_summary


def test_bench_summary_lists_every_stored_measurement(tmp_path):
    machine = {"cpu": "TestCPU", "load_average_before": 1.5, "commit": "abcdef123", "when": "2026-11-25T10:00:00"}
    single = {"algo": "ppo", "env": "Hopper-v5", "steps": 2048, "ratio_ours_over_sb3": 2.5, **machine}
    single["results"] = {"ours": {"steps_per_s": 2500.0}, "sb3": {"steps_per_s": 1000.0}}
    batched = {"algo": "ppo", "env": "Hopper-v5", "seeds": 8, "steps_per_seed": 1024, **machine}
    batched["results"] = {
        "ours_seed_parallel": {"steps_per_s": 3000.0},
        "ours_sequential": {"steps_per_s": 2000.0},
        "sb3_sequential": {"steps_per_s": 750.0},
    }
    batched["ratios"] = {"seed_parallel_over_ours_sequential": 1.5, "seed_parallel_over_sb3_sequential": 4.0}
    (tmp_path / "a.json").write_text(json.dumps(single))
    (tmp_path / "b.json").write_text(json.dumps(batched))
    lines = write_bench_summary(tmp_path, tmp_path / "out" / "summary.md").read_text().splitlines()
    assert (
        "| ppo Hopper-v5, 2,048 steps: ours vs SB3 | 2,500 | 1,000 | 2.50x | TestCPU, load 1.5 | abcdef1, 2026-11-25 |"
        in lines
    )
    assert any(line.startswith("| ppo Hopper-v5, 8 seeds") and "| 3,000 | 750 | 4.00x |" in line for line in lines)
    assert any("(ours sequential) | 3,000 | 2,000 | 1.50x |" in line for line in lines)
