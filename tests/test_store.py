import json
import multiprocessing as mp

import pandas as pd
import pytest

from analysis.scores import SCORES_FILE, with_scores
from experiments.store import INDEX_COLUMNS, ResultsStore, RunBusy, RunDone, RunSpec, provenance
from replications.core.errors import UserError


def _spec(seed=0, env="CartPole-v1"):
    return RunSpec("ppo", "ours", env, seed, 100, "quick", {"gamma": 0.99})


def _finish(store, spec, score=1.0):
    """A complete run with one episode of return ``score`` (its score: PPO scores its training episodes)."""
    path = store.begin(spec)
    (path / "episodes.csv").write_text(f"step,return,length\n10,{score!r},10\n")
    return store.complete(spec, {"steps": 100}, wall_s=1.0, n_episodes=1)


def _scores(store):
    return with_scores(store.read_index(), store.root).score.tolist()


def test_run_lifecycle_and_index(tmp_path):
    store = ResultsStore(tmp_path)
    spec = _spec()
    path = store.begin(spec)
    assert json.loads((path / "meta.json").read_text())["status"] == "running"
    assert not store.is_complete(spec) and store.read_index().empty  # no row before completion
    (path / "episodes.csv").write_text("step,return,length\n10,4.0,10\n20,5.0,10\n30,6.0,10\n")
    store.complete(spec, {"steps": 100}, wall_s=2.0, n_episodes=3)
    assert store.is_complete(spec)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["sps"] == 50.0 and meta["packages"]["torch"]
    assert {"commit", "dirty", "cpu", "seed", "started_at", "ended_at"} <= set(meta)
    df = store.read_index()
    assert list(df.columns) == INDEX_COLUMNS and "score" not in meta  # the analysis scores runs, not the runner
    assert _scores(store) == [5.0] and (tmp_path / SCORES_FILE).exists()  # mean of the last 100 episodes
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["run_id"] == spec.run_id and cfg["hyperparameters"] == {"gamma": 0.99}


def test_adding_rows_leaves_the_stored_rows_text_as_it_was(tmp_path):
    """The index is rewritten on every completed run: the rows already there keep their exact text; a score
    needing 17 significant digits is read back exactly from the scores cache, not a digit short."""
    store = ResultsStore(tmp_path)
    _finish(store, _spec(seed=0), score=3678.4499874060107)
    (computed,) = _scores(store)
    assert computed == pytest.approx(3678.4499874060107, rel=1e-15)
    before = store.index_path.read_text()
    _finish(store, _spec(seed=1), score=2.0)
    lines = store.index_path.read_text().splitlines()
    assert set(before.splitlines()) <= set(lines) and len(lines) == 3
    assert _scores(store) == [computed, 2.0] == _scores(store)  # from the cache: every digit kept


def test_a_run_killed_while_its_directory_was_being_created_leaves_no_half_run(tmp_path, monkeypatch):
    """A kill between writing config.json and meta.json (seen in CI: a replicate SIGKILLed as a run began) used to
    leave a directory with config.json alone, which the next replicate refused as 'perhaps a finished run'. The
    two files are written in a hidden folder and renamed into place together: the kill leaves only that folder,
    which scans skip and the next attempt clears."""
    import experiments.store as store_module

    store, spec = ResultsStore(tmp_path), _spec()
    real_write = store_module.write_atomic

    def killed_at_meta(path, text):
        if path.name == "meta.json":
            raise KeyboardInterrupt  # the process dies here
        real_write(path, text)

    monkeypatch.setattr(store_module, "write_atomic", killed_at_meta)
    with pytest.raises(KeyboardInterrupt):
        store.begin(spec)
    monkeypatch.setattr(store_module, "write_atomic", real_write)
    store._release(spec)  # the dead process's lock goes with it
    assert not store.path(spec).exists()  # no half run where runs are read
    assert store.rebuild_index() == (0, [])  # the hidden folder is not a run, nor an unreadable one
    fresh = ResultsStore(tmp_path)  # the next replicate
    _finish(fresh, spec)
    assert fresh.is_complete(spec) and not any(p.name.endswith(".starting") for p in store.path(spec).parent.iterdir())


def test_unfinished_run_is_discarded_and_rerun(tmp_path):
    store = ResultsStore(tmp_path)
    spec = _spec()
    path = store.begin(spec)
    (path / "episodes.csv").write_text("partial")
    store.begin(spec)  # a new attempt starts clean
    assert not (path / "episodes.csv").exists()
    _finish(store, spec)
    episodes = (path / "episodes.csv").read_bytes()
    with pytest.raises(RunDone, match="already complete at .*nothing was changed"):
        store.begin(spec)  # a complete run is never overwritten by accident
    assert store.is_complete(spec) and (path / "episodes.csv").read_bytes() == episodes


def test_corrupt_index_is_a_clear_error_and_is_left_untouched(tmp_path):
    store = ResultsStore(tmp_path)
    _finish(store, _spec(0))
    store.index_path.write_text("run_id,garbage\n1,2\n")
    before = store.index_path.read_bytes()
    with pytest.raises(UserError, match="corrupt .*missing columns.*rlrepro index --rebuild"):
        _finish(store, _spec(1))
    assert store.index_path.read_bytes() == before
    assert store.rebuild_index() == (1, [])  # spec 1 never completed: its meta says running
    assert store.read_index().seed.tolist() == [0]


def _writer(root, seed):
    _finish(ResultsStore(root), _spec(seed))


def test_concurrent_writers_never_lose_or_corrupt_rows(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s)) for s in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    df = pd.read_csv(tmp_path / "index.csv")
    assert sorted(df.seed) == list(range(6))


def test_a_nan_loss_fails_the_run_clearly_and_keeps_it_out_of_the_analysis(tmp_path):
    from experiments.grid import execute, make_spec

    store = ResultsStore(tmp_path)
    diverging = {"horizon": 512, "learning_rate": 1e30}  # a NaN hyperparameter is refused by the config itself
    spec = make_spec("ppo", "ours", "Pendulum-v1", 0, 1024, "custom", diverging)
    with pytest.raises(FloatingPointError, match="non-finite .* at step 512"):
        execute(spec, store)
    meta = json.loads((store.path(spec) / "meta.json").read_text())
    assert meta["status"] == "failed" and "non-finite" in meta["error"]
    assert store.read_index().empty and not store.is_complete(spec)


def _real_spec(seed=0):
    from experiments.grid import make_spec

    return make_spec("ppo", "ours", "CartPole-v1", seed, 2048, "quick", {})


def _holder(root, started, finish, seed=0):
    """Another process running a run: it holds the run's lock until told to finish."""
    store = ResultsStore(root)
    path = store.begin(_real_spec(seed))
    (path / "episodes.csv").write_text("step,return,length\n10,7.0,10\n")
    started.set()
    finish.wait(60)
    store.complete(_real_spec(seed), {"steps": 100}, wall_s=1.0, n_episodes=1)


def test_a_run_another_process_is_running_is_skipped_and_left_untouched(tmp_path, capsys, monkeypatch):
    """Two replicate commands on one store: the second skips what the first is running (before, it deleted
    the first's run directory and ran it again)."""
    from experiments.grid import run_grid

    ctx = mp.get_context("spawn")
    started, finish = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_holder, args=(str(tmp_path), started, finish))
    proc.start()
    assert started.wait(60)
    store = ResultsStore(tmp_path)
    spec = _real_spec()
    episodes = (store.path(spec) / "episodes.csv").read_bytes()
    assert store.busy(spec) and not store.busy(_spec(1))
    with pytest.raises(RunBusy, match="being run by another process.*nothing was changed"):
        store.begin(spec)
    assert run_grid([spec], store, workers=1) == (0, [])
    assert "1 being run by another process (skipped), 0 to run" in capsys.readouterr().out
    assert (store.path(spec) / "episodes.csv").read_bytes() == episodes  # the other run's files are intact
    with monkeypatch.context() as m:  # planned just before the other process began it: the worker skips it
        m.setattr(ResultsStore, "busy", lambda self, s: False)
        assert run_grid([spec], store, workers=1) == (1, [])
    assert "SKIPPED ppo ours CartPole-v1 seed 0: run" in capsys.readouterr().out
    assert (store.path(spec) / "episodes.csv").read_bytes() == episodes
    finish.set()
    proc.join(60)
    assert proc.exitcode == 0 and store.is_complete(spec) and not store.busy(spec)
    assert _scores(store) == [7.0]
    episodes = (store.path(spec) / "episodes.csv").read_bytes()
    with monkeypatch.context() as m:  # planned just before the other process completed it: skipped, kept
        m.setattr(ResultsStore, "is_complete", lambda self, s: False)  # the plan's view; the worker's is real
        assert run_grid([spec], store, workers=1) == (1, [])
    assert "SKIPPED ppo ours CartPole-v1 seed 0: run" in capsys.readouterr().out
    assert (store.path(spec) / "episodes.csv").read_bytes() == episodes
    assert _scores(store) == [7.0] and store.is_complete(spec)


def test_a_seed_parallel_group_that_meets_a_taken_seed_lets_go_of_the_seeds_it_began(tmp_path, monkeypatch):
    from experiments.grid import execute_group

    ctx = mp.get_context("spawn")
    started, finish = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_holder, args=(str(tmp_path), started, finish, 1))
    proc.start()
    assert started.wait(60)
    store = ResultsStore(tmp_path)
    group = [_real_spec(0), _real_spec(1)]
    monkeypatch.setattr(ResultsStore, "busy", lambda self, s: False)  # seed 1 taken after the group's check
    with pytest.raises(RunBusy):
        execute_group(group, store)
    monkeypatch.undo()
    assert store.meta(group[0])["status"] == "failed" and not store.busy(group[0])  # let go, rerun next time
    assert store.busy(group[1]) and store.meta(group[1])["status"] == "running"  # the other process's, intact
    finish.set()
    proc.join(60)
    assert proc.exitcode == 0 and store.is_complete(group[1])


def test_provenance_records_where_the_networks_ran(monkeypatch):
    monkeypatch.delenv("RLREPRO_DEVICE", raising=False)
    monkeypatch.delenv("RLREPRO_CUDA_GRAPH", raising=False)
    meta = provenance()
    assert (meta["device"], meta["cuda_graph"]) == ("cpu", False)
    monkeypatch.setenv("RLREPRO_DEVICE", "cuda")
    monkeypatch.setenv("RLREPRO_CUDA_GRAPH", "1")
    meta = provenance()
    assert (meta["device"], meta["cuda_graph"]) == ("cuda", True)


def test_provenance_outside_git_takes_the_image_builds_commit(monkeypatch):
    """In the Docker image (no .git) a run records the commit and tree state the image was built from."""
    import experiments.store as store_module

    in_git = provenance()
    assert in_git["commit"] and len(in_git["commit"]) == 40 and in_git["image"] is None
    monkeypatch.setattr(store_module, "_git", lambda *args: "")
    monkeypatch.setenv("RLREPRO_COMMIT", "a" * 40)
    monkeypatch.setenv("RLREPRO_DIRTY", "1")
    monkeypatch.setenv("RLREPRO_IMAGE", "rlrepro:cpu")
    meta = provenance()
    assert (meta["commit"], meta["dirty"], meta["image"]) == ("a" * 40, True, "rlrepro:cpu")
    monkeypatch.delenv("RLREPRO_COMMIT")
    monkeypatch.setenv("RLREPRO_DIRTY", "0")
    meta = provenance()
    assert (meta["commit"], meta["dirty"]) == (None, False)  # unknown, not invented


def test_import_runs_copies_complete_runs_once_and_never_overwrites(tmp_path):
    gpu, here = ResultsStore(tmp_path / "gpu"), ResultsStore(tmp_path / "here")
    done, unfinished, mine = _spec(seed=0), _spec(seed=1), _spec(seed=2)
    _finish(gpu, done, score=7.0)
    gpu.begin(unfinished)  # killed mid-run on the other machine: never imported
    gpu._release(unfinished)
    _finish(gpu, mine, score=1.0)
    _finish(here, mine, score=2.0)  # this store's own copy of that run wins
    here.begin(done)  # a dead attempt here is replaced by the complete run
    here._release(done)

    imported, skipped = here.import_runs(gpu.root)
    assert imported == [done.relpath()]
    assert sorted(s.split(":")[0] for s in skipped) == sorted([unfinished.relpath(), mine.relpath()])
    df = with_scores(here.read_index(), here.root).set_index("seed")
    assert df.loc[0, "score"] == 7.0 and df.loc[2, "score"] == 2.0 and 1 not in df.index
    assert (here.path(done) / "episodes.csv").read_text() == (gpu.path(done) / "episodes.csv").read_text()
    assert here.is_complete(done)
    assert here.import_runs(gpu.root)[0] == []  # twice: nothing new


def test_import_runs_from_a_folder_without_runs_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no run directories under .*runs/ALGO/ENV/IMPL/seedN-ID"):
        ResultsStore(tmp_path / "here").import_runs(tmp_path)
