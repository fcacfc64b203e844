"""Faults: a replicate killed mid-grid loses no finished run and re-runs only the unfinished ones."""

import json
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


def _grid_args(results, steps=20480):
    return [
        EXE, "replicate", "ppo", "--budget", "quick", "--envs", "CartPole-v1", "--impl", "ours", "--seeds", "1",
        "--steps", str(steps), "--set", "horizon=256", "--workers", "1", "--results", str(results), "--no-report",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_killed_worker_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "RLREPRO_CHECKPOINT_SECONDS": "0"}  # a checkpoint after every iteration
    subprocess.run(_grid_args(tmp_path / "ref"), env=env, check=True, capture_output=True, timeout=300)
    proc = subprocess.Popen(_grid_args(tmp_path / "res"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run_glob = "runs/ppo/CartPole-v1/ours/seed0-*"
    deadline = time.time() + 240
    progress = None
    while time.time() < deadline:
        found = list((tmp_path / "res").glob(f"{run_glob}/progress.csv"))
        if found and len(found[0].read_text().splitlines()) > 20:  # 20 of 80 iterations done
            progress = found[0]
            break
        time.sleep(0.05)
    assert progress is not None, "the run never got going"
    worker = json.loads((progress.parent / "meta.json").read_text())["pid"]
    os.kill(worker, signal.SIGKILL)  # the worker process only; the parent reports the lost run
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 1 and "run the same command again to resume" in out
    assert json.loads((progress.parent / "meta.json").read_text())["status"] == "running"
    assert (progress.parent / "checkpoint.pt").exists()

    again = subprocess.run(_grid_args(tmp_path / "res"), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming from the checkpoint at step" in again.stdout
    resumed_step = int(again.stdout.split("resuming from the checkpoint at step ")[1].split()[0].replace(",", ""))
    assert 256 <= resumed_step < 20480  # the last checkpoint before the kill (at or just before row 20)
    (ref_dir,) = (tmp_path / "ref").glob(run_glob)
    run_dir = progress.parent
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "complete" and len(meta["resumed_at"]) == 1
    assert not (run_dir / "checkpoint.pt").exists()
    # the resumed run is the uninterrupted run: same episodes, same statistics, every iteration exactly once
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "episodes.csv"), pd.read_csv(ref_dir / "episodes.csv"))
    got, want = pd.read_csv(run_dir / "progress.csv"), pd.read_csv(ref_dir / "progress.csv")
    assert list(got.step) == [256 * (i + 1) for i in range(80)]
    cols = [c for c in want.columns if c not in ("time", "sps")]
    pd.testing.assert_frame_equal(got[cols], want[cols])
    assert len(pd.read_csv(tmp_path / "res" / "index.csv")) == 1


@pytest.mark.slow
def test_a_nan_run_fails_alone_and_the_report_excludes_it_and_says_so(tmp_path):
    from experiments.grid import build_comparison, make_spec, run_grid
    from experiments.reporting import write_report
    from experiments.store import ResultsStore

    good = make_spec("ppo", "ours", "Pendulum-v1", 0, 1024, "custom", {"horizon": 512})
    bad = make_spec("ppo", "ours", "Pendulum-v1", 1, 1024, "custom", {"horizon": 512, "learning_rate": 1e30})
    store = ResultsStore(tmp_path / "results")
    n_run, failures = run_grid([bad, good], store, workers=1)  # the failing run first: the other still runs
    assert n_run == 2 and len(failures) == 1 and "seed 1: non-finite" in failures[0]
    assert store.is_complete(good) and store.meta(bad)["status"] == "failed"
    assert list(store.read_index().seed) == [0]
    out = write_report(build_comparison("ppo", "custom", [good, bad]), store, tmp_path / "reports")
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.n_seeds) == [1]
    html = (out / "index.html").read_text()
    assert "ours Pendulum-v1 seed 1 (1,024 steps): FAILED, excluded from the analysis (FloatingPointError" in html


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "ddpg"])
def test_an_off_policy_run_resumes_with_its_replay_buffer_and_matches_an_uninterrupted_run(tmp_path, algo):
    """DDPG also carries its exploration noise's own NumPy generator through the checkpoint (a run of it longer
    than the checkpoint interval once failed: a generator was not plain data)."""
    env = {**os.environ, "RLREPRO_CHECKPOINT_SECONDS": "0"}
    args = [
        EXE, "train", algo, "Pendulum-v1", "--steps", "3000", "--set", "warmup_steps=500", "--set", "eval_every=1000",
        "--set", "eval_episodes=1", "--set", "batch_size=64", "--set", "hidden_sizes=[64,64]",
    ]  # fmt: skip
    subprocess.run([*args, "--out", str(tmp_path / "ref")], env=env, check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen([*args, "--out", str(tmp_path / "res")], env=env, stdout=subprocess.DEVNULL)
    run_glob = f"runs/{algo}/Pendulum-v1/ours/seed0-*"
    deadline, progress = time.time() + 400, None
    while time.time() < deadline and progress is None:
        found = list((tmp_path / "res").glob(f"{run_glob}/progress.csv"))
        if found and len(found[0].read_text().splitlines()) >= 2:  # logged (and checkpointed) at step 1000
            progress = found[0]
        time.sleep(0.05)
    assert progress is not None, "the run never got going"
    proc.kill()  # SIGKILL, mid-run: after the checkpoint at step 1000 (or 2000), before the end
    proc.wait()
    assert (progress.parent / "checkpoint.pt").exists()
    res = [*args, "--out", str(tmp_path / "res")]
    again = subprocess.run(res, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming from the checkpoint at step" in again.stdout
    (ref_dir,) = (tmp_path / "ref").glob(run_glob)
    for table in ("episodes.csv", "evaluations.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(progress.parent / table), pd.read_csv(ref_dir / table))
    got, want = pd.read_csv(progress), pd.read_csv(ref_dir / "progress.csv")
    assert list(got.step) == [1000, 2000, 3000]
    cols = [c for c in want.columns if c not in ("time", "sps")]
    pd.testing.assert_frame_equal(got[cols], want[cols])


@pytest.mark.slow
def test_a_worker_stops_when_its_replicate_process_is_killed(tmp_path):
    """SIGTERM to the replicate process alone (not its group): its worker must not train on as an orphan."""
    from experiments.grid import plan_grid
    from experiments.store import ResultsStore

    results = tmp_path / "results"
    args = _grid_args(results, steps=2_000_000)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    (spec,) = plan_grid(
        "ppo", "quick", seeds=1, envs=["CartPole-v1"], impls=["ours"], overrides={"horizon": 256}, steps=2_000_000
    )
    store = ResultsStore(results)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not store.busy(spec):  # the worker holds the run's lock
            time.sleep(0.2)
        assert store.busy(spec), "the worker never started the run"
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline and store.busy(spec):
            time.sleep(0.2)
        assert not store.busy(spec), "the worker outlived its replicate process and still holds the run"
        while time.time() < deadline and _session_pids(proc.pid):
            time.sleep(0.2)
        assert not _session_pids(proc.pid), "processes of the killed replicate are still running"
        assert json.loads((store.path(spec) / "meta.json").read_text())["status"] == "running"  # resumable
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
        subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)], check=False)  # any orphan left in its session


def _session_pids(sid: int) -> list[str]:
    return subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout.split()
