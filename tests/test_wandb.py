from pathlib import Path

import pandas as pd
import pytest

from analysis.scores import with_scores
from experiments.grid import execute, make_spec
from experiments.publish import publish_report, publish_run, read_offline_run
from experiments.store import ResultsStore


def test_offline_publish_is_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr("experiments.publish.WANDB_DIR", tmp_path / "wb")
    (tmp_path / "wb").mkdir()
    store = ResultsStore(tmp_path / "results")
    spec = make_spec("ppo", "ours", "Pendulum-v1", 0, 1024, "custom", {"horizon": 512})
    execute(spec, store)
    local = publish_run(store.path(spec), project="rlrepro-test")
    assert local is not None and local.name.startswith("offline-run-")
    run = read_offline_run(local)
    episodes = pd.read_csv(store.path(spec) / "episodes.csv")
    logged = [(h["_step"], h["episode/return"]) for h in run["history"] if "episode/return" in h]
    assert logged == list(zip(episodes.step, episodes["return"], strict=True))
    assert any("train/value_loss" in h for h in run["history"])
    assert run["summary"]["score"] == pytest.approx(
        with_scores(store.read_index(), store.root).score.iloc[0], rel=1e-12
    )
    assert run["config"]["env"] == "Pendulum-v1" and run["config"]["run_id"] == spec.run_id

    report = tmp_path / "report"
    report.mkdir()
    pd.DataFrame({"env": ["Pendulum-v1"], "final_return_mean": [1.0]}).to_csv(report / "summary.csv", index=False)
    assert publish_report(report, project="rlrepro-test") is not None


def test_unreachable_wandb_never_loses_local_results(tmp_path, monkeypatch, capsys):
    import wandb

    def broken(*a, **k):
        raise ConnectionError("api.wandb.ai unreachable")

    monkeypatch.setattr(wandb, "init", broken)
    store = ResultsStore(tmp_path / "results")
    spec = make_spec("ppo", "ours", "Pendulum-v1", 0, 512, "custom", {"horizon": 512})
    execute(spec, store)
    assert publish_run(store.path(spec)) is None
    assert "results are local; retry later" in capsys.readouterr().out
    assert store.is_complete(spec)


def test_publish_command_sends_a_stored_report_offline(tmp_path, rlrepro_cmd):
    import os
    import subprocess

    env = {**os.environ, "WANDB_MODE": "offline", "RLREPRO_WANDB_DIR": str(tmp_path)}
    out = subprocess.run(
        [*rlrepro_cmd, "publish", "ppo", "--budget", "quick"], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    logged = {k for h in read_offline_run(run)["history"] for k in h}
    assert "summary/_type" in logged and "curves/curves_CartPole-v1/_type" in logged
    bad = subprocess.run(
        [*rlrepro_cmd, "publish", "ppo", "--budget", "quick", "--reports", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 2 and "no report at" in bad.stderr


def test_wandb_failing_mid_publish_keeps_results_and_the_publish_can_be_retried(tmp_path, monkeypatch, capsys):
    from wandb.sdk.wandb_run import Run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr("experiments.publish.WANDB_DIR", tmp_path / "wb")
    (tmp_path / "wb").mkdir()
    store = ResultsStore(tmp_path / "results")
    spec = make_spec("ppo", "ours", "Pendulum-v1", 0, 1024, "custom", {"horizon": 512})
    execute(spec, store)
    before = {p.name: p.read_bytes() for p in store.path(spec).iterdir()}
    real_log, calls = Run.log, []

    def failing_log(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the connection drops after two rows went out
            raise ConnectionError("connection to api.wandb.ai lost")
        return real_log(self, *args, **kwargs)

    monkeypatch.setattr(Run, "log", failing_log)
    assert publish_run(store.path(spec), project="rlrepro-test") is None
    assert "results are local; retry later" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in store.path(spec).iterdir()} == before  # nothing local changed
    monkeypatch.setattr(Run, "log", real_log)
    local = publish_run(store.path(spec), project="rlrepro-test")  # the retry
    assert local is not None
    history = read_offline_run(local)["history"]
    episodes = pd.read_csv(store.path(spec) / "episodes.csv")
    assert [h["episode/return"] for h in history if "episode/return" in h] == list(episodes["return"])


def test_an_offline_run_file_is_read_only_once_complete(tmp_path):
    """W&B's writer can still be flushing the file when run.finish() returns: the reader waits for the
    exit record (a file completed meanwhile reads whole) and calls a file that never completes incomplete."""
    import shutil
    import threading

    import wandb

    run = wandb.init(project="rlrepro-test", dir=str(tmp_path), mode="offline")
    for step in range(50):
        run.log({"episode/return": float(step)}, step=step)
    local = Path(run.dir).parent
    run.finish()
    read_offline_run(local)  # the writer may still be flushing the original: take it once it is complete
    (path,) = local.glob("run-*.wandb")
    whole = path.read_bytes()
    cut = tmp_path / "cut" / local.name
    shutil.copytree(local, cut)
    (cut / path.name).write_bytes(whole[: len(whole) // 2])  # half written, a record cut in two
    with pytest.raises(ValueError, match="incomplete W&B run file"):
        read_offline_run(cut, wait_s=0.3)
    threading.Timer(0.5, lambda: (cut / path.name).write_bytes(whole)).start()  # the writer catches up
    history = read_offline_run(cut, wait_s=30)["history"]
    assert [h["episode/return"] for h in history if "episode/return" in h] == [float(s) for s in range(50)]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_publish_online_without_a_network_fails_fast_in_one_line(tmp_path, rlrepro_cmd):
    """W&B online but unreachable (its server refuses connections): one attempt with a short init timeout, then
    one line saying so and how to publish offline; not W&B's 90 s of retries for each run, then a warning each."""
    import os
    import shutil
    import subprocess
    import time

    committed = Path(__file__).resolve().parent.parent / "results"
    results, reports = tmp_path / "results", tmp_path / "reports"
    shutil.copytree(committed / "runs" / "ppo" / "CartPole-v1", results / "runs" / "ppo" / "CartPole-v1")
    index = pd.read_csv(committed / "index.csv")
    index[(index.algo == "ppo") & (index.env == "CartPole-v1")].head(2).to_csv(results / "index.csv", index=False)
    (reports / "ppo-quick").mkdir(parents=True)
    pd.DataFrame({"env": ["CartPole-v1"]}).to_csv(reports / "ppo-quick" / "summary.csv", index=False)
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    env = {
        **os.environ,
        "WANDB_MODE": "online",
        "WANDB_API_KEY": "a" * 40,
        "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
        "RLREPRO_WANDB_DIR": str(tmp_path),
    }
    env.pop("WANDB_INIT_TIMEOUT", None)  # the command's own default
    args = ["publish", "ppo", "--budget", "quick", "--runs", "--results", str(results), "--reports", str(reports)]
    start = time.monotonic()
    out = subprocess.run([*rlrepro_cmd, *args], capture_output=True, text=True, env=env, timeout=150)
    assert time.monotonic() - start < 60
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stdout + out.stderr
    assert lines[0].startswith("rlrepro: error: W&B is unreachable") and "WANDB_MODE=offline" in lines[0]
    assert {p: p.read_bytes() for p in results.rglob("*") if p.is_file()} == before


def test_a_grid_stops_publishing_once_wandb_is_unreachable(capsys):
    """replicate --wandb: the first unreachable publish is the last attempt; the grid goes on and the command
    ends with the error."""
    from experiments.publish import GridPublisher, WandbUnreachable

    tried = []

    def unreachable(path, project):
        tried.append(path)
        raise WandbUnreachable("W&B is unreachable (connection refused)")

    publisher = GridPublisher("rlrepro-test")
    for name in ("run-a", "run-b", "report"):
        publisher.publish(unreachable, Path(name))
    assert tried == [Path("run-a")]
    assert capsys.readouterr().out.count("W&B is unreachable") == 1
    with pytest.raises(WandbUnreachable, match="connection refused"):
        publisher.close()
