"""The results store against damaged, copied and crafted files: a copy of a small committed store (PPO's quick
CartPole-v1 grid, 5 seeds of ours and of SB3) is damaged one way per case, then the commands run on it.

Whatever happens, no command exits 0 with a run lost or counted twice, a failure is one line naming the file,
nothing stored is deleted, and nothing in a store is ever executed."""

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.scores import with_scores
from experiments.cli import main
from experiments.store import ResultsStore, provenance

ROOT = Path(__file__).resolve().parent.parent
GRID = ["--budget", "quick", "--envs", "CartPole-v1"]
N_RUNS = 10  # 5 seeds x (ours, sb3)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    """The committed PPO quick CartPole-v1 runs, indexed, with their report written once."""
    root = tmp_path_factory.mktemp("store") / "results"
    shutil.copytree(ROOT / "results" / "runs" / "ppo" / "CartPole-v1", root / "runs" / "ppo" / "CartPole-v1")
    assert main(["index", "--rebuild", "--results", str(root)]) == 0
    assert len(ResultsStore(root).read_index()) == N_RUNS
    assert main(["report", "ppo", *GRID, "--results", str(root), "--reports", str(root.parent / "reports")]) == 0
    return root


@pytest.fixture
def store(small_store, tmp_path) -> Path:
    """A fresh copy of the small store and its report for one case."""
    shutil.copytree(small_store.parent, tmp_path / "copy")
    return tmp_path / "copy" / "results"


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().err.strip()


def one_line_naming(err: str, name: str) -> None:
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert name in err, err


def a_run(store: Path, impl: str = "ours", seed: int = 0) -> Path:
    (path,) = (store / "runs" / "ppo" / "CartPole-v1" / impl).glob(f"seed{seed}-*")
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every stored file's bytes (lock files, which hold nothing, aside)."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".lock")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def report_args(store: Path) -> list[str]:
    return ["report", "ppo", *GRID, "--results", str(store), "--reports", str(store.parent / "reports")]


def summary_seeds(store: Path) -> dict[str, int]:
    summary = pd.read_csv(store.parent / "reports" / "ppo-quick" / "summary.csv")
    return dict(zip(summary.impl, summary.n_seeds, strict=True))


# -- damaged run directories: rebuild names them and changes nothing -------------------------------------------
def _garbage(run: Path) -> str:
    (run / "meta.json").write_text("{not json")
    return "meta.json"


def _list_meta(run: Path) -> str:
    (run / "meta.json").write_text("[1, 2]")
    return "meta.json"


def _no_ended_at(run: Path) -> str:
    meta = json.loads((run / "meta.json").read_text())
    del meta["ended_at"]
    (run / "meta.json").write_text(json.dumps(meta))
    return "ended_at"


def _no_config(run: Path) -> str:
    (run / "config.json").unlink()
    return "config.json"


def _no_meta(run: Path) -> str:
    (run / "meta.json").unlink()
    return "meta.json"


@pytest.mark.parametrize("damage", [_garbage, _list_meta, _no_ended_at, _no_config, _no_meta])
def test_an_unreadable_run_directory_stops_rebuild_train_and_replicate_by_name(store, capsys, damage):
    run = a_run(store)
    named = damage(run)
    before = tree(store)
    code, err = run_cli(["index", "--rebuild", "--results", str(store)], capsys)
    assert code != 0
    one_line_naming(err, run.name)
    assert named in err
    assert tree(store) == before  # the index is left as it was
    code, err = run_cli(["replicate", "ppo", *GRID, "--impl", "ours", "--results", str(store), "--no-report"], capsys)
    assert code != 0 and run.name in err and "Traceback" not in err
    assert tree(store) == before  # the run is neither deleted nor trained again


def test_a_backup_copy_of_a_run_is_named_and_never_counted_as_another_seed(store, capsys):
    run = a_run(store, seed=4)
    shutil.copytree(run, run.with_name(run.name + ".bak"))
    code, err = run_cli(["index", "--rebuild", "--results", str(store)], capsys)
    assert code == 0 and f"{run.name}.bak: not a run directory" in err
    assert len(ResultsStore(store).read_index()) == N_RUNS
    assert run_cli(report_args(store), capsys)[0] == 0
    assert summary_seeds(store) == {"ours": 5, "sb3": 5}


def test_a_complete_run_with_nothing_to_score_is_indexed_with_a_nan_score(store, capsys):
    """NaN is a score (a run that finished no episode), not damage: it indexes, and the analysis scores it NaN."""
    run = a_run(store, seed=1)
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "n_episodes": 0}))
    (run / "episodes.csv").write_text("step,return,length\n")
    assert run_cli(["index", "--rebuild", "--results", str(store)], capsys)[0] == 0
    index = with_scores(ResultsStore(store).read_index(), store)
    assert len(index) == N_RUNS and index.set_index("path").score.isna().sum() == 1


# -- a damaged index: every reader stops with its line, and the index is not rewritten -------------------------
def _cut_mid_row(index: Path) -> None:
    text = index.read_text()
    index.write_text(text[: len(text) - 40])


def _cut_mid_row_with_newline(index: Path) -> None:
    lines = index.read_text().splitlines()
    index.write_text("\n".join([*lines[:-1], lines[-1][:30]]) + "\n")


def _non_numeric_count(index: Path) -> None:
    df = pd.read_csv(index, dtype=str)
    df.loc[3, "n_episodes"] = "abc"
    index.write_text(df.to_csv(index=False))


def _duplicated_row(index: Path) -> None:
    lines = index.read_text().splitlines()
    index.write_text("\n".join([*lines, lines[1]]) + "\n")


@pytest.mark.parametrize("damage", [_cut_mid_row, _cut_mid_row_with_newline, _non_numeric_count, _duplicated_row])
def test_a_damaged_index_is_an_error_naming_it_for_every_command(store, capsys, damage):
    damage(store / "index.csv")
    before = tree(store.parent)
    for args in (
        report_args(store),
        ["replicate", "ppo", *GRID, "--results", str(store), "--no-report"],
        ["train", "ppo", "CartPole-v1", "--steps", "2048", "--out", str(store)],
        ["index", "--results", str(store)],
    ):
        code, err = run_cli(args, capsys)
        assert code != 0, args
        one_line_naming(err, "index.csv")
    assert tree(store.parent) == before  # nothing written: the index, the runs and the report as they were
    assert run_cli(["index", "--rebuild", "--results", str(store)], capsys)[0] == 0
    assert len(ResultsStore(store).read_index()) == N_RUNS


# -- reports: a damaged input or a wrong --results never replaces a good report --------------------------------
def _cut_episodes(store: Path) -> str:
    path = a_run(store) / "episodes.csv"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    return "episodes.csv"


def _no_episodes(store: Path) -> str:
    (a_run(store) / "episodes.csv").unlink()
    return "episodes.csv"


def _complete_but_not_indexed(store: Path) -> str:
    index = store / "index.csv"
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines[:-1]) + "\n")
    return "index --rebuild"


@pytest.mark.parametrize("damage", [_cut_episodes, _no_episodes, _complete_but_not_indexed])
def test_a_report_on_damaged_runs_fails_by_name_and_keeps_the_previous_report(store, capsys, damage):
    reports = store.parent / "reports"
    before = tree(reports)
    named = damage(store)
    code, err = run_cli(report_args(store), capsys)
    assert code != 0
    one_line_naming(err, named)
    assert tree(reports) == before
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]  # no half-written folder left


def test_a_mistyped_results_path_is_an_error_not_an_empty_report(store, capsys):
    reports = store.parent / "reports"
    before = tree(reports)
    code, err = run_cli(["report", "ppo", *GRID, "--results", str(store) + "-typo", "--reports", str(reports)], capsys)
    assert code != 0
    one_line_naming(err, "typo")
    assert tree(reports) == before


# -- nothing in a store is executed --------------------------------------------------------------------------
class Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_crafted_checkpoint_is_refused_and_its_code_never_runs(store, capsys, tmp_path):
    """A run folder whose meta.json says 'running at this commit' and whose checkpoint.pt is a pickle that
    would create a file when unpickled: train refuses the checkpoint by name and the file never appears."""
    import torch

    run = a_run(store)
    meta = json.loads((run / "meta.json").read_text())
    meta.update(status="running", commit=provenance()["commit"])
    (run / "meta.json").write_text(json.dumps(meta))
    marker = tmp_path / "payload-ran"
    torch.save({"iteration": Payload(str(marker))}, run / "checkpoint.pt")
    config = json.loads((run / "config.json").read_text())
    steps = str(config["steps"])
    code, err = run_cli(["train", "ppo", "CartPole-v1", "--steps", steps, "--out", str(store)], capsys)
    assert code != 0
    one_line_naming(err, "checkpoint.pt")
    assert not marker.exists()
    pickle.loads(pickle.dumps(Payload(str(marker))))  # the same payload, unpickled plainly, does run
    assert marker.exists()


def test_a_plain_checkpoint_of_another_layout_is_refused_by_name(store, capsys):
    """Plain data that is not this loop's checkpoint (an older layout: no format, other objects): refused
    with one line naming the file, never half-restored."""
    import torch

    run = a_run(store)
    meta = json.loads((run / "meta.json").read_text())
    meta.update(status="running", commit=provenance()["commit"])
    (run / "meta.json").write_text(json.dumps(meta))
    torch.save({"iteration": 3, "modules": {"policy": {}}}, run / "checkpoint.pt")
    steps = str(json.loads((run / "config.json").read_text())["steps"])
    code, err = run_cli(["train", "ppo", "CartPole-v1", "--steps", steps, "--out", str(store)], capsys)
    assert code != 0
    one_line_naming(err, "checkpoint.pt")
    assert "another version" in err


def test_import_skips_runs_holding_symbolic_links(store, capsys, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the store")
    run = a_run(store, seed=2)
    (run / "progress.csv").unlink()
    (run / "progress.csv").symlink_to(secret)
    dest = tmp_path / "other"
    code = main(["index", "--import", str(store), "--results", str(dest)])
    out = capsys.readouterr().out
    assert code == 0 and f"{run.name}: holds symbolic links" in out
    assert not (dest / run.relative_to(store)).exists()
    assert len(ResultsStore(dest).read_index()) == N_RUNS - 1


def test_store_files_are_readable_as_the_umask_allows(store, capsys):
    old = os.umask(0o022)
    try:
        assert main(["index", "--rebuild", "--results", str(store)]) == 0
    finally:
        os.umask(old)
    assert (store / "index.csv").stat().st_mode & 0o777 == 0o644


# -- any bytes in any file: never exit 0 with a run lost or counted twice ------------------------------------
TARGETS = ["index.csv", "ours/seed0/meta.json", "ours/seed1/config.json", "sb3/seed2/episodes.csv"]


def _target(store: Path, name: str) -> Path:
    if name == "index.csv":
        return store / "index.csv"
    impl, seed, file = name.split("/")
    return a_run(store, impl, int(seed.removeprefix("seed"))) / file


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(TARGETS),
    data=st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"", b"{}", b"[]", b"null", b'{"status": "complete"}', b"run_id\n", b"\xff\xfe"]),
    ),
    keep=st.floats(0.0, 1.0),
)
def test_whatever_a_store_file_holds_no_command_loses_or_double_counts_a_run(
    small_store, tmp_path_factory, capsys, target, data, keep
):
    root = tmp_path_factory.mktemp("fuzz") / "results"
    shutil.copytree(small_store, root)
    path = _target(root, target)
    original = path.read_bytes()
    path.write_bytes(original[: int(len(original) * keep)] + data)  # a cut, garbage appended, or both
    for args in (["index", "--results", str(root)], ["index", "--rebuild", "--results", str(root)]):
        code, err = run_cli(args, capsys)
        if code == 0:
            index = ResultsStore(root).read_index()
            assert len(index) == N_RUNS and index.run_id.is_unique, (target, data)
        else:
            assert "Traceback" not in err and len(err.splitlines()) == 1, err
            assert path.name in err or "run directory" in err, err
    assert len(list(root.glob("runs/ppo/CartPole-v1/*/seed*"))) == N_RUNS  # nothing deleted


# -- Ctrl-C keeps the checkpoint ------------------------------------------------------------------------------
@pytest.mark.slow
def test_ctrl_c_keeps_the_checkpoint_and_the_next_train_resumes_from_it(tmp_path):
    env = {**os.environ, "RLREPRO_CHECKPOINT_SECONDS": "0"}
    args = [sys.executable, "-m", "experiments.cli", "train", "ppo", "Hopper-v5", "--steps", "40960"]
    args += ["--out", str(tmp_path)]
    proc = subprocess.Popen(  # SIGINT as a terminal's Ctrl-C (a shell's background jobs inherit it ignored)
        args,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline, checkpoint = time.time() + 300, None
    while time.time() < deadline and checkpoint is None:
        found = list(tmp_path.glob("runs/ppo/Hopper-v5/ours/seed0-*/checkpoint.pt"))
        checkpoint = found[0] if found else None
        time.sleep(0.05)
    assert checkpoint is not None, "no checkpoint was written"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "resume from their last checkpoint" in err, err
    assert checkpoint.exists()
    assert json.loads((checkpoint.parent / "meta.json").read_text())["status"] == "running"
    again = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming from the checkpoint at step" in again.stdout


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), keep=st.floats(0.0, 1.0))
def test_whatever_an_episodes_file_holds_a_report_never_counts_it_wrong(
    small_store, tmp_path_factory, capsys, data, keep
):
    copy = tmp_path_factory.mktemp("fuzz-report")
    shutil.copytree(small_store.parent, copy, dirs_exist_ok=True)
    store = copy / "results"
    path = a_run(store, "sb3", 3) / "episodes.csv"
    original = path.read_bytes()
    path.write_bytes(original[: int(len(original) * keep)] + data)
    before = tree(copy / "reports")
    code, err = run_cli(report_args(store), capsys)
    if code == 0:
        assert summary_seeds(store) == {"ours": 5, "sb3": 5}
        index = ResultsStore(store).read_index().set_index("path")
        assert len(pd.read_csv(path)) == index.at[path.parent.relative_to(store).as_posix(), "n_episodes"]
    else:
        one_line_naming(err, "episodes.csv")
        assert tree(copy / "reports") == before
