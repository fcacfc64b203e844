"""The Ray backend against a real cluster: a head node on loopback plus a second node joined to it."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments.grid.ray_backend import staging_root

# one worker runs every test here: the cluster fixture ends with `ray stop --force`, which stops every Ray
# process on the machine, so a second cluster in a parallel pytest worker would be killed with it
pytestmark = [pytest.mark.serial, pytest.mark.xdist_group("ray")]
BIN = Path(sys.executable).parent
RUN_GLOB = "runs/ppo/CartPole-v1/ours/seed{seed}-*"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    ray = str(BIN / "ray")
    port = _free_port()
    node = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = [ray, "start", "--head", f"--port={port}", "--include-dashboard=false", *node]
    subprocess.run(head, check=True, capture_output=True, env=env, timeout=300)
    try:
        join = [ray, "start", f"--address=127.0.0.1:{port}", *node]
        subprocess.run(join, check=True, capture_output=True, env=env, timeout=300)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


def _replicate(results, seeds, steps, *extra, env=None, **kwargs):
    args = [
        str(BIN / "rlrepro"), "replicate", "ppo", "--budget", "quick", "--envs", "CartPole-v1", "--impl", "ours",
        "--seeds", str(seeds), "--steps", str(steps), "--set", "horizon=256", "--results", str(results),
        "--no-report", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


def _same_run(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(pd.read_csv(a / "episodes.csv"), pd.read_csv(b / "episodes.csv"))
    got, want = pd.read_csv(a / "progress.csv"), pd.read_csv(b / "progress.csv")
    cols = [c for c in want.columns if c not in ("time", "sps")]
    pd.testing.assert_frame_equal(got[cols], want[cols])


@pytest.mark.slow
def test_a_grid_runs_across_both_nodes_into_the_local_store(cluster, tmp_path):
    ray_run = _replicate(tmp_path / "ray", 2, 2048, "--backend", "ray", "--address", cluster)
    out = ray_run.communicate(timeout=600)[0]
    assert ray_run.returncode == 0, out
    assert "to run with Ray (127.0.0.1:" in out and out.count("done ppo ours CartPole-v1") == 2
    local = _replicate(tmp_path / "local", 2, 2048, "--workers", "1")
    assert local.wait(timeout=600) == 0
    index = pd.read_csv(tmp_path / "ray" / "index.csv")
    assert sorted(index.seed) == [0, 1]
    nodes = set()
    for seed in (0, 1):
        (run,) = (tmp_path / "ray").glob(RUN_GLOB.format(seed=seed))
        meta = json.loads((run / "meta.json").read_text())
        assert meta["status"] == "complete"
        nodes.add(meta["ray"]["node_id"])
        (ref,) = (tmp_path / "local").glob(RUN_GLOB.format(seed=seed))
        _same_run(run, ref)  # the same run contract and numbers as the local backend
    assert len(nodes) == 2, "the two runs should be spread over the two nodes"
    shutil.rmtree(staging_root(str(tmp_path / "ray")), ignore_errors=True)


@pytest.mark.slow
def test_ray_retries_a_killed_task_which_resumes_from_its_checkpoint(cluster, tmp_path):
    fast_checkpoints = {"RLREPRO_CHECKPOINT_SECONDS": "0"}
    proc = _replicate(tmp_path / "ray", 1, 20480, "--backend", "ray", "--address", cluster, env=fast_checkpoints)
    stage = staging_root(str(tmp_path / "ray"))
    deadline, progress = time.time() + 400, None
    while time.time() < deadline and progress is None:
        found = list(stage.glob(RUN_GLOB.format(seed=0) + "/progress.csv"))
        if found and len(found[0].read_text().splitlines()) > 20:
            progress = found[0]
        time.sleep(0.05)
    assert progress is not None, "the Ray task never got going"
    os.kill(json.loads((progress.parent / "meta.json").read_text())["pid"], signal.SIGKILL)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    (run,) = (tmp_path / "ray").glob(RUN_GLOB.format(seed=0))
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "complete" and len(meta["resumed_at"]) == 1
    assert not (run / "checkpoint.pt").exists()
    reference = _replicate(tmp_path / "local", 1, 20480, "--workers", "1")
    assert reference.wait(timeout=600) == 0
    (ref,) = (tmp_path / "local").glob(RUN_GLOB.format(seed=0))
    _same_run(run, ref)
    assert list(pd.read_csv(run / "progress.csv").step) == [256 * (i + 1) for i in range(80)]
    shutil.rmtree(stage, ignore_errors=True)
