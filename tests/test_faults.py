"""Faults: a replicate killed mid-grid loses no finished run and re-runs only the unfinished ones."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

EXE = str(Path(sys.executable).parent / "rlrepro")


@pytest.mark.slow
def test_killed_replicate_resumes_without_losing_or_duplicating_runs(tmp_path):
    args = [
        EXE,
        "replicate",
        "ppo",
        "--budget",
        "quick",
        "--envs",
        "CartPole-v1",
        "--impl",
        "ours",
        "--seeds",
        "3",
        "--steps",
        "6144",
        "--set",
        "horizon=512",
        "--workers",
        "1",
        "--results",
        str(tmp_path / "results"),
        "--no-report",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    index = tmp_path / "results" / "index.csv"
    deadline = time.time() + 240
    while time.time() < deadline and not (index.exists() and len(pd.read_csv(index)) >= 1):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker, mid-way through the second run
    proc.wait()
    finished = pd.read_csv(index)
    assert 1 <= len(finished) < 3
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{len(finished)} already complete (skipped), {3 - len(finished)} to run" in again.stdout
    final = pd.read_csv(index)
    assert sorted(final.seed) == [0, 1, 2] and final.run_id.is_unique
    kept = final.set_index("run_id").loc[finished.run_id]
    assert (kept.finished_at.to_numpy() == finished.finished_at.to_numpy()).all()  # finished runs untouched
