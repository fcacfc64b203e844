import pandas as pd
import pytest

from experiments.grid import execute, make_spec
from experiments.store import ResultsStore

# A random CartPole policy averages about 22; the task is solved at 500.
THRESHOLD = 150.0
BUDGET = 40_960  # 20 iterations of the paper's horizon 2048


@pytest.mark.slow
def test_ppo_learns_cartpole_within_budget(tmp_path):
    store = ResultsStore(tmp_path)
    spec = make_spec("ppo", "ours", "CartPole-v1", 1, BUDGET, "custom", {})
    execute(spec, store)
    episodes = pd.read_csv(store.path(spec) / "episodes.csv")
    assert episodes["return"].iloc[:20].mean() < 50  # it starts near random
    assert episodes["return"].iloc[-20:].mean() >= THRESHOLD
