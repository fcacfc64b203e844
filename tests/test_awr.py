"""AWR: the weights, its FIFO buffer's value targets with truncation, and learning on CartPole."""

import numpy as np
import pytest
import torch

from analysis.scores import score_of
from experiments.grid import execute, make_spec
from experiments.store import ResultsStore
from replications.awr import action_bound_loss, actor_loss, awr_weights
from replications.core.replay import RecentSamples
from replications.core.rollout import Batch


def test_weights_are_exp_advantage_over_beta_clipped_at_the_max():
    adv = torch.tensor([-1.0, 0.0, 0.1, 0.2, 5.0])
    w = awr_weights(adv, temperature=0.05, weight_clip=20.0)
    np.testing.assert_allclose(w[:3].numpy(), np.exp([-20.0, 0.0, 2.0]), rtol=1e-6)
    assert float(w[3]) == 20.0 and float(w[4]) == 20.0  # exp(4) = 54.6 and exp(100): clipped at 20
    log_probs = torch.tensor([-1.0, -2.0])
    assert float(actor_loss(log_probs, torch.tensor([2.0, 0.5]))) == pytest.approx(-(2 * -1.0 + 0.5 * -2.0) / 2)


def test_action_bound_loss_only_penalises_means_outside_the_bounds():
    low, high = torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0])
    mean = torch.tensor([[0.5, -0.5], [1.5, -3.0]])
    assert float(action_bound_loss(mean, low, high)) == pytest.approx(0.5 * (0.0 + (0.25 + 4.0)) / 2)


def _batch(start, n, terminated_at=(), truncated_at=(), last=None):
    obs = torch.arange(start, start + n, dtype=torch.float32)[:, None]
    term = np.zeros(n)
    dones = np.zeros(n)
    term[list(terminated_at)] = 1
    dones[list(terminated_at) + list(truncated_at)] = 1
    final = {t: np.array([100.0 + start + t], np.float32) for t in truncated_at}
    z = torch.zeros(n)
    return Batch(obs, z[:, None], z, z, np.ones(n), np.zeros(n), term, dones, final_obs=final, last_obs=last)


def test_recent_samples_keep_the_newest_rows_and_bootstrap_each_the_right_way():
    buf = RecentSamples(capacity=5)
    buf.add(_batch(0, 4, truncated_at=[1], last=np.array([4.0], np.float32)))
    buf.add(_batch(4, 3, terminated_at=[0], last=np.array([7.0], np.float32)))
    assert len(buf) == 5 and buf.obs[:, 0].tolist() == [2, 3, 4, 5, 6]  # the oldest two dropped

    def value_fn(obs):  # V(s) = 10 s, so every bootstrap is visible in the result
        return 10 * obs[:, 0]

    # rows: s=2 -> V(3); s=3 -> V(4) (continues into the next batch); s=4 terminated -> 0; s=5 -> V(6);
    # s=6 (newest) -> V(last obs 7)
    np.testing.assert_allclose(buf.next_values(value_fn), [30, 40, 0, 60, 70])
    one = RecentSamples(capacity=10)
    one.add(_batch(0, 4, truncated_at=[1], last=np.array([4.0], np.float32)))
    np.testing.assert_allclose(one.next_values(value_fn), [10, 1010, 30, 40])  # truncated at 1: V(final obs 101)


@pytest.mark.slow
def test_awr_learns_cartpole(tmp_path):
    store = ResultsStore(tmp_path)
    spec = make_spec("awr", "ours", "CartPole-v1", 0, 20480, "custom", {"eval_every": 20480, "eval_episodes": 10})
    row = execute(spec, store)
    assert score_of(row, store.root) > 100  # deterministic test return; a random policy scores about 22
