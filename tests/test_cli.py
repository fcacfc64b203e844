"""The CLI end to end: a tiny replicate through the console script, then bad inputs."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import SUMMARY_COLUMNS
from analysis.scores import with_scores


def _run(cmd, *args, cwd=None, env=None):
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=env)


def _in_process(capsys, *args):
    """(exit code, stderr) of the CLI called in this process: the bad-input cases below would each pay the
    console script's imports (about 5 s); the console script itself is exercised by ``tiny_grid`` and the
    corrupt-index test, and its exit code is ``main``'s (experiments/cli.py)."""
    from experiments.cli import main

    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    exe = Path(sys.executable).parent / "rlrepro"
    cmd = [str(exe)]
    args = [
        "replicate",
        "ppo",
        "--budget",
        "quick",
        "--envs",
        "CartPole-v1,Pendulum-v1",
        "--seeds",
        "2",
        "--steps",
        "2048",
        "--set",
        "horizon=512",
        "--workers",
        "2",
        "--results",
        str(root / "results"),
        "--reports",
        str(root / "reports"),
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "RLREPRO_WANDB_DIR": str(root / "wb")}
    (root / "wb").mkdir()
    first = _run(cmd, *args, "--wandb", env=env)  # W&B offline: no key, no server
    second = _run(cmd, *args)
    return root, cmd, args, first, second


@pytest.mark.slow
def test_replicate_runs_the_grid_and_writes_the_report(tiny_grid):
    root, _, _, first, _ = tiny_grid
    assert first.returncode == 0, first.stderr
    assert "8 runs in the grid: 0 already complete (skipped), 8 to run" in first.stdout
    index = pd.read_csv(root / "results" / "index.csv")
    assert len(index) == 8 and set(index.impl) == {"ours", "sb3"}
    report = root / "reports" / "ppo-quick-steps2048-horizon=512"  # not the quick budget's own report
    summary = pd.read_csv(report / "summary.csv", keep_default_na=False, na_values=[""])
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 4 and (summary.n_seeds == 2).all() and (summary.steps == 2048).all()
    assert set(summary[summary.impl == "sb3"].verdict) == {"n/a"}
    assert set(summary[summary.impl == "ours"].verdict) <= {"better", "worse", "equivalent", "inconclusive"}
    assert (summary.ci_low <= summary.final_return_mean).all() and (summary.final_return_mean <= summary.ci_high).all()
    for env in ("CartPole-v1", "Pendulum-v1"):
        assert (report / f"curves_{env}.png").stat().st_size > 10_000
    html = (report / "index.html").read_text()
    assert "Welch" in html and "curves_CartPole-v1.png" in html and "Deviations from the paper" in html
    # where each run's networks ran: a column of the runs table (8 rows) and of provenance (1 row)
    assert "<th>device</th>" in html and html.count("<td>cpu</td>") == 8 + 1


@pytest.mark.slow
def test_replicate_publishes_runs_and_report_to_wandb_offline(tiny_grid):
    from experiments.publish import read_offline_run

    root, _, _, first, _ = tiny_grid
    runs = sorted((root / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 9  # 8 runs + the report
    assert first.stdout.count("upload it later with: wandb sync") == 9
    contents = [read_offline_run(r) for r in runs]
    assert sum(any("episode/return" in h for h in c["history"]) for c in contents) == 8
    report = [c for c in contents if any("summary/_type" in h for h in c["history"])]
    assert len(report) == 1
    logged = {k: v for h in report[0]["history"] for k, v in h.items()}
    assert logged["summary/_type"] == "table-file" and logged["summary/nrows"] == 4
    assert {"curves/curves_CartPole-v1/_type", "curves/curves_Pendulum-v1/_type"} <= set(logged)


@pytest.mark.slow
def test_replicate_skips_complete_runs(tiny_grid):
    _, _, _, _, second = tiny_grid
    assert second.returncode == 0, second.stderr
    assert "8 already complete (skipped), 0 to run" in second.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "dqn", "CartPole-v1", "--steps", "10"], "unknown algorithm 'dqn'; allowed: ppo"),
        (["train", "ppo", "Pong-v5", "--steps", "10"], "unknown env 'Pong-v5'; allowed: HalfCheetah-v5"),
        (["train", "ppo", "CartPole-v1", "--impl", "cleanrl", "--steps", "10"], "unknown impl 'cleanrl'"),
        (
            ["train", "ppo", "CartPole-v1", "--steps", "10", "--set", "gama=0.9"],
            "unknown ppo hyperparameter 'gama'",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--steps", "10", "--set", "epochs=ten"],
            "'epochs' = 'ten': expected int",
        ),
        (["train", "ppo", "CartPole-v1", "--steps", "ten"], "invalid int value: 'ten'"),
        (["replicate", "ppo", "--budget", "huge"], "unknown budget 'huge' for ppo; allowed: paper, crosscheck, quick"),
        (["replicate", "ppo", "--with-comparators"], "ppo's report compares with no other algorithm of ours"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_loses_nothing(tiny_grid, capsys, args, message):
    root, _, _, _, _ = tiny_grid
    index = root / "results" / "index.csv"
    before = index.read_bytes()
    code, err = _in_process(capsys, *args, "--out" if args[0] == "train" else "--results", str(root / "results"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlrepro: error:") and message in lines[0], err
    assert index.read_bytes() == before


@pytest.mark.slow
def test_corrupt_results_index_is_reported_and_kept(tiny_grid, tmp_path):
    root, cmd, args, _, _ = tiny_grid
    bad = tmp_path / "results"
    bad.mkdir()
    (bad / "index.csv").write_bytes(b'\x00\x01garbage\n"unclosed')
    out = _run(cmd, *[a if a != str(root / "results") else str(bad) for a in args])
    assert out.returncode == 2
    assert "results index" in out.stderr and "rebuild" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (bad / "index.csv").read_bytes() == b'\x00\x01garbage\n"unclosed'


@pytest.mark.slow
def test_report_all_writes_the_overview_from_the_committed_runs(committed_reports):
    out, reports = committed_reports
    assert out.returncode == 0, out.stderr
    page = (reports / "index.html").read_text()
    # every budget with runs, the cross-check budgets included
    for report in ("ppo-quick", "ppo", "sac-crosscheck", "ddpg-crosscheck", "awr", "qprop"):
        assert f'href="{report}/index.html"' in page, report
    assert "Legend: = equivalent" in page and "<th>Hopper</th>" in page  # the verdict matrix
    assert (reports / "summary.md").read_text().startswith("# rlrepro: all replications")


def test_an_ablation_report_has_its_own_folder_and_tests_against_the_config_values(tmp_path):
    """A report on a grid run with --set (here the committed SAC Hopper runs with SB3's log-prob epsilon) goes
    to a folder of its own, never over the budget's report, and sets the ablation against our runs at the
    config's values and SB3's (which cannot take it), each from the store."""
    import shutil

    from experiments.grid import make_spec

    exe = str(Path(sys.executable).parent / "rlrepro")
    committed = Path(__file__).resolve().parent.parent / "results"
    results, reports = tmp_path / "results", tmp_path / "reports"
    shutil.copytree(committed / "runs" / "sac" / "Hopper-v5", results / "runs" / "sac" / "Hopper-v5")
    index = pd.read_csv(committed / "index.csv")
    index[(index.algo == "sac") & (index.env == "Hopper-v5")].to_csv(results / "index.csv", index=False)
    args = ["sac", "--budget", "crosscheck", "--envs", "Hopper-v5", "--impl", "ours", "--set", "log_prob_epsilon=1e-6"]
    out = _run([exe], "report", *args, "--results", str(results), "--reports", str(reports))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in reports.iterdir() if p.is_dir()) == ["sac-crosscheck-log_prob_epsilon=1e-06"]
    report = reports / "sac-crosscheck-log_prob_epsilon=1e-06"
    index = with_scores(pd.read_csv(results / "index.csv"), results).set_index("run_id")
    ablation = make_spec("sac", "ours", "Hopper-v5", 0, 200_000, "crosscheck", {"log_prob_epsilon": 1e-6})
    default = [
        make_spec("sac", impl, "Hopper-v5", s, 200_000, "crosscheck", {}) for impl in ("ours", "sb3") for s in range(5)
    ]
    versus = pd.read_csv(report / "comparisons.csv")
    assert versus.baseline.tolist() == ["our SAC (config values)", "SB3"]
    # every stored run of each baseline is pooled or set apart by name (one protocol per grid: the committed
    # Hopper seeds 0 and 1 of ours were made at other library versions, seed 0 on a GPU)
    page = (report / "index.html").read_text()
    pooled = [
        [s for s in group if f"{label} Hopper-v5 seed {s.seed}" not in page.split("Runs set apart")[1]]
        for group, label in ((default[:5], "our SAC (config values)"), (default[5:], "SB3"))
    ]
    assert versus.n_baseline.tolist() == [len(g) for g in pooled] and (versus.n_ours >= 1).all()
    assert len(pooled[0]) >= 3 and len(pooled[1]) == 5
    assert versus.baseline_mean.tolist() == pytest.approx(
        [index.loc[[s.run_id for s in group], "score"].mean() for group in pooled]
    )
    summary = pd.read_csv(report / "summary.csv", keep_default_na=False, na_values=[""])
    assert summary.impl.tolist() == ["ours", "config-values", "sb3"]
    if versus.n_ours[0] == 1 and "ours Hopper-v5 seed 0" not in page:  # only seed 0 of the ablation stored
        assert versus.ours_mean[0] == pytest.approx(index.loc[ablation.run_id, "score"])
    text = (report / "summary.md").read_text()
    assert "Ablation: 'ours' is our SAC with log_prob_epsilon = 1e-06" in text
    assert text.startswith("**SAC (crosscheck budget, log_prob_epsilon=1e-06)**")
    assert "<h1>SAC replication: crosscheck budget, log_prob_epsilon=1e-06</h1>" in page
    assert "rlrepro report sac --budget crosscheck --set log_prob_epsilon=1e-06" in page
    # 'report all' regenerates it from its grid.json, beside the budget's own report
    (report / "summary.csv").unlink()
    everything = _run([exe], "report", "all", "--results", str(results), "--reports", str(reports))
    assert everything.returncode == 0, everything.stderr
    assert (report / "summary.csv").exists() and (reports / "sac-crosscheck" / "summary.csv").exists()
    assert pd.read_csv(report / "comparisons.csv").equals(versus)
    from experiments.reporting.write import variant_grids
    from replications.core.errors import UserError

    (report / "grid.json").write_text("{not json")
    with pytest.raises(UserError, match="grid.json is not readable"):
        variant_grids(reports)
    # publishing looks for the same folder: without --set it names the budget's own
    shutil.rmtree(reports / "sac-crosscheck")
    missing = _run([exe], "publish", "sac", "--budget", "crosscheck", "--reports", str(reports))
    assert missing.returncode == 2 and f"no report at {reports / 'sac-crosscheck'};" in missing.stderr


def test_an_index_row_without_its_run_directory_is_a_clear_error(tmp_path):
    import shutil

    exe = Path(sys.executable).parent / "rlrepro"
    root = Path(__file__).resolve().parent.parent
    results = tmp_path / "results"
    shutil.copytree(root / "results" / "runs" / "ppo" / "CartPole-v1", results / "runs" / "ppo" / "CartPole-v1")
    index = pd.read_csv(root / "results" / "index.csv")
    index[index.env == "CartPole-v1"].to_csv(results / "index.csv", index=False)
    (ours,) = [p for p in (results / "runs/ppo/CartPole-v1/ours").iterdir() if p.name.startswith("seed0-")]
    shutil.rmtree(ours)
    before = (results / "index.csv").read_text()
    out = _run([str(exe)], "report", "ppo", "--budget", "quick", "--results", str(results), "--reports", str(tmp_path))
    assert out.returncode == 2 and "whose directory is missing" in out.stderr and len(out.stderr.splitlines()) == 1
    assert (results / "index.csv").read_text() == before


def test_replicate_with_comparators_runs_what_the_report_compares_with(tmp_path):
    """Q-Prop's report sets it against two TRPO configurations: --with-comparators runs them too, and the
    report compares Q-Prop with each (the first, TRPO at Q-Prop's settings, gives the summary's verdict)."""
    exe = str(Path(sys.executable).parent / "rlrepro")
    args = ["replicate", "qprop", "--budget", "quick", "--seeds", "1", "--steps", "5000", "--with-comparators"]
    out = _run([exe], *args, "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports"))
    assert out.returncode == 0, out.stderr
    assert "with comparators (our TRPO at Q-Prop's settings, our TRPO (its own settings, batch 5000)): 2 more" in (
        out.stdout
    )
    index = pd.read_csv(tmp_path / "results" / "index.csv")
    assert sorted(index.algo) == ["qprop", "trpo", "trpo"] and set(index.env) == {"Pendulum-v1"}
    versus = pd.read_csv(tmp_path / "reports" / "qprop-quick-steps5000" / "comparisons.csv")
    assert versus.baseline.tolist() == ["our TRPO at Q-Prop's settings", "our TRPO (its own settings, batch 5000)"]
    summary = (tmp_path / "reports" / "qprop-quick-steps5000" / "summary.md").read_text()
    assert "Missing from this report" not in summary


def test_index_import_merges_another_machines_runs(tiny_grid, tmp_path):
    """The GPU machine's (or a colleague's) results root merged into this one: complete runs once, no loss."""
    root, cmd, _, _, _ = tiny_grid
    here = tmp_path / "results"
    out = _run(cmd, "index", "--import", str(root / "results"), "--results", str(here))
    assert out.returncode == 0, out.stderr
    source = pd.read_csv(root / "results" / "index.csv")
    assert f"{len(source)} run(s) imported" in out.stdout and len(source) >= 4
    merged = pd.read_csv(here / "index.csv")
    merged_scores = with_scores(merged, here).score
    assert sorted(merged.run_id) == sorted(source.run_id)
    assert sorted(merged_scores) == sorted(with_scores(source, root / "results").score)
    again = _run(cmd, "index", "--import", str(root / "results"), "--results", str(here))
    assert "0 run(s) imported" in again.stdout and again.stdout.count("already complete") == len(source)
    bad = _run(cmd, "index", "--import", str(tmp_path / "nowhere"), "--results", str(here))
    assert bad.returncode == 2 and "no run directories under" in bad.stderr and len(bad.stderr.splitlines()) == 1


def _tree(root):
    return sorted(p.relative_to(root) for p in root.rglob("*"))


NOT_A_GRID = ["--backend", "none"]
"""On every replicate below: should its check ever let the bad input through, the grid is refused by the
unknown backend (with another message) before any run starts, so the test fails fast instead of training."""


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "ppo", "CartPole-v1", "--steps", "2048", "--seed", "-1"],
            "--seed must be a non-negative integer, got -1",
        ),
        (["replicate", "ppo", "--budget", "quick", "--seeds", "-1"], "--seeds must be a positive integer, got -1"),
        (
            ["train", "ppo", "CartPole-v1", "--steps", "2048", "--set", "minibatch_size=-64"],
            "ppo hyperparameter 'minibatch_size' = -64: must be an integer >= 1",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--steps", "2048", "--set", "learning_rate=NaN"],
            "ppo hyperparameter 'learning_rate' = nan: must be a finite number > 0",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--steps", "2048", "--set", "learning_rate=Infinity"],
            "'learning_rate' = inf: must be a finite number > 0",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--steps", "2048", "--set", "learning_rate=-Infinity"],
            "'learning_rate' = -inf: must be a finite number > 0",
        ),
        (["replicate", "ppo", "--budget", "quick", "--workers", "0"], "--workers: must be a positive integer, got '0'"),
        (
            ["replicate", "ppo", "--budget", "quick", "--workers", "-2"],
            "--workers: must be a positive integer, got '-2'",
        ),
        (["replicate", "ppo", "--budget", "quick", "--envs", ","], "--envs ',' has an empty item"),
        (["replicate", "ppo", "--budget", "quick", "--envs", ""], "--envs '' has an empty item"),
        (
            ["replicate", "ppo", "--budget", "quick", "--envs", "CartPole-v1,"],
            "--envs 'CartPole-v1,' has an empty item",
        ),
        (["report", "ppo", "--budget", "quick", "--impl", ","], "--impl ',' has an empty item"),
        (
            ["train", "ppo", "CartPole-v1", "--steps", "1"],
            "--steps 1 is less than one iteration of ppo (horizon 2048 on CartPole-v1); use at least 2048",
        ),
        (
            ["replicate", "trpo", "--budget", "quick", "--steps", "100"],
            "--steps 100 is less than one iteration of trpo (horizon 1024 on CartPole-v1); use at least 1024",
        ),
        (["publish", "/etc/passwd"], "unknown algorithm '/etc/passwd'; allowed: ppo, trpo"),
        (["report", "ppo", "--budget", "quick", "--reports", "afile"], "--reports afile is a file; give a directory"),
        (["replicate", "ppo", "--budget", "quick", "--reports", "afile/sub"], "--reports afile/sub: afile is a file"),
        (
            ["bench", "ppo", "--env", "CartPole-v1", "--steps", "2048", "--out", "afile/b.json"],
            "--out afile/b.json: afile",
        ),
        (["bench", "ppo", "--env", "CartPole-v1", "--steps", "2048", "--out", "."], "--out . is a directory"),
        (
            ["train", "npg", "Pendulum-v1", "--steps", "10000", "--set", "normalize_observations=true"],
            "observation normalisation needs clip_observations, which npg's config does not have",
        ),
        (
            ["regress", "ppo", "--power", "--mutants", "sac-alpha-loss-sign"],
            "mutant sac-alpha-loss-sign plants code that ppo does not run; ppo's: ppo-advantage-sign,",
        ),
        (
            ["regress", "ppo", "--false-alarms", "20", "--set", "gamma=0.9"],
            "--power and the false-alarm measurements run the committed suite: no --set",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys, args, message):
    """Bad numbers, names and paths: one line naming the value and what is allowed, exit 2, before any run,
    report or lock file is written (the command runs in an empty folder holding one file, ``afile``)."""
    (tmp_path / "afile").write_text("a file, not a folder\n")
    monkeypatch.chdir(tmp_path)
    where = {"train": ["--out", "results"], "bench": [], "regress": []}.get(args[0], ["--results", "results"])
    extra = NOT_A_GRID if args[0] == "replicate" else []
    code, err = _in_process(capsys, *args, *where, *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rlrepro: error:"), err
    assert message in lines[0], lines[0]
    assert _tree(tmp_path) == [Path("afile")]


def test_a_read_only_reports_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """A read-only --reports (as os.access sees it: a read-only mount, or a folder without write permission
    for a user other than root) is named before any work."""
    from experiments.cli import main

    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != read_only and real_access(p, mode, **kw))
    args = ["--results", str(tmp_path / "results"), "--reports", str(read_only / "reports")]
    assert main(["report", "ppo", "--budget", "quick", *args]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and f"--reports {read_only / 'reports'} is not writable ({read_only} is read-only)" in err
    )
    assert _tree(tmp_path) == [Path("ro")]
