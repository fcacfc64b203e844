import pandas as pd

from experiments.grid import execute, make_spec
from experiments.store import ResultsStore

STAT_COLUMNS = ["step", "lr", "policy_loss", "value_loss", "entropy", "approx_kl"]


def _run(root, seed, env="Pendulum-v1"):
    store = ResultsStore(root)
    spec = make_spec("ppo", "ours", env, seed, 1024, "custom", {"horizon": 512})
    execute(spec, store)
    path = store.path(spec)
    return pd.read_csv(path / "episodes.csv"), pd.read_csv(path / "progress.csv")[STAT_COLUMNS]


def test_same_seed_gives_identical_progress_on_cpu(tmp_path):
    ep1, pr1 = _run(tmp_path / "a", 3)
    ep2, pr2 = _run(tmp_path / "b", 3)
    pd.testing.assert_frame_equal(ep1, ep2)
    pd.testing.assert_frame_equal(pr1, pr2)
    ep3, pr3 = _run(tmp_path / "c", 4)
    assert not ep1["return"].equals(ep3["return"])
