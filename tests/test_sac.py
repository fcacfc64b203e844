"""SAC on the shared off-policy core: its losses by hand, and learning on Pendulum."""

import pandas as pd
import pytest
import torch

from experiments.runner import execute, make_spec
from experiments.store import ResultsStore
from replications.sac import actor_loss, alpha_loss, critic_loss


def test_sac_losses_by_hand():
    q1, q2, y = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]), torch.tensor([1.0, 1.0])
    assert float(critic_loss(q1, q2, y)) == pytest.approx(0.5 * (0.5 + 5.0))  # 0.5 (mean 0.5 + mean 5)
    logp, qmin = torch.tensor([-1.0, -3.0]), torch.tensor([2.0, 4.0])
    assert float(actor_loss(logp, qmin, torch.tensor(0.5))) == pytest.approx(((-0.5 - 2) + (-1.5 - 4)) / 2)
    log_alpha = torch.tensor(0.0, requires_grad=True)
    loss = alpha_loss(log_alpha, logp, target_entropy=-1.0)  # -(log a) (log pi + H): gradient -mean(logp - 1)
    loss.backward()
    assert float(log_alpha.grad) == pytest.approx(3.0)  # entropy 2 > target -1: alpha goes down


@pytest.mark.slow
def test_sac_learns_pendulum(tmp_path):
    store = ResultsStore(tmp_path)
    spec = make_spec("sac", "ours", "Pendulum-v1", 0, 5000, "custom", {"eval_every": 5000, "eval_episodes": 5})
    row = execute(spec, store)
    evaluations = pd.read_csv(store.path(spec) / "evaluations.csv")
    assert evaluations.step.unique().tolist() == [5000]
    assert row["score"] > -500  # a random policy scores about -1,225 (analysis/data/random_scores.csv)
