"""SAC on the shared off-policy core: its losses by hand, and learning on Pendulum."""

import pandas as pd
import pytest
import torch

from experiments.runner import execute, make_spec
from experiments.store import ResultsStore
from replications.core.config import build_config, load_paper_config
from replications.sac import (
    SACConfig,
    SquashedGaussianActor,
    actor_loss,
    alpha_loss,
    critic_loss,
    make_update,
    q_network,
    v_network,
    value_loss,
)


def test_sac_losses_by_hand():
    q1, q2, y = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]), torch.tensor([1.0, 1.0])
    assert float(critic_loss(q1, q2, y)) == pytest.approx(0.5 * (0.5 + 5.0))  # 0.5 (mean 0.5 + mean 5)
    logp, qmin = torch.tensor([-1.0, -3.0]), torch.tensor([2.0, 4.0])
    assert float(actor_loss(logp, qmin, torch.tensor(0.5))) == pytest.approx(((-0.5 - 2) + (-1.5 - 4)) / 2)
    log_alpha = torch.tensor(0.0, requires_grad=True)
    loss = alpha_loss(log_alpha, logp, target_entropy=-1.0)  # -(log a) (log pi + H): gradient -mean(logp - 1)
    loss.backward()
    assert float(log_alpha.grad) == pytest.approx(3.0)  # entropy 2 > target -1: alpha goes down


def test_sac_v1_value_loss_by_hand():
    v, qmin, logp = torch.tensor([1.0, 0.0]), torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 2.0])
    # targets qmin - 0.5 logp = [2.5, 0.0]: 0.5 mean((1 - 2.5)^2, 0) = 0.5625
    assert float(value_loss(v, qmin, logp, torch.tensor(0.5))) == pytest.approx(0.5625)


def test_sac_v1_critics_regress_on_the_target_value_network():
    """v1: y = r + gamma (1 - terminated) V'(s'), V regresses on min Q - alpha log pi with alpha fixed, and
    only V's target moves by Polyak (the critics have no targets in v1)."""
    paper = load_paper_config("sac-v1")
    cfg = build_config(SACConfig, paper.values, "sac-v1")
    assert (cfg.value_network, cfg.auto_alpha, cfg.init_alpha) == (True, False, 0.2)
    torch.manual_seed(0)
    actor, q1, q2 = SquashedGaussianActor(3, 1, (16,)), q_network(3, 1, (16,)), q_network(3, 1, (16,))
    v = v_network(3, (16,))
    update = make_update(cfg, actor, q1, q2, 1, v)
    v_target = update.state["v_target"]
    assert "q1_target" not in update.state and "q2_target" not in update.state  # v1's critics have no targets
    with torch.no_grad():  # constant V' = 2 and Q1 = Q2 = 1, so the target and the loss are known by hand
        for net, value in ((v_target, 2.0), (q1, 1.0), (q2, 1.0)):
            net[-1].weight.zero_()
            net[-1].bias.fill_(value)
    batch = {
        "obs": torch.randn(4, 3),
        "actions": torch.rand(4, 1) * 2 - 1,
        "next_obs": torch.randn(4, 3),
        "rewards": torch.tensor([1.0, 0.0, -1.0, 0.5]),
        "terminated": torch.tensor([0.0, 1.0, 0.0, 0.0]),
    }
    y = batch["rewards"] + cfg.gamma * (1 - batch["terminated"]) * 2.0
    torch.manual_seed(1)
    with torch.no_grad():
        _, log_prob = actor.sample(batch["obs"])  # the same draw as the update's, under the same seed
        expected = critic_loss(torch.ones(4), torch.ones(4), y) + value_loss(
            v(batch["obs"]).squeeze(-1), torch.ones(4), log_prob, torch.tensor(0.2)
        )
    torch.manual_seed(1)
    stats = update(batch)
    assert float(stats["critic_loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(stats["alpha"]) == pytest.approx(0.2)  # fixed
    assert float(v_target[-1].bias) == pytest.approx(2.0 * (1 - cfg.tau) + cfg.tau * float(v[-1].bias.detach()))


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "sac-v1"])
def test_sac_learns_pendulum(tmp_path, algo):
    store = ResultsStore(tmp_path)
    spec = make_spec(algo, "ours", "Pendulum-v1", 0, 5000, "custom", {"eval_every": 5000, "eval_episodes": 5})
    row = execute(spec, store)
    evaluations = pd.read_csv(store.path(spec) / "evaluations.csv")
    assert evaluations.step.unique().tolist() == [5000]
    assert row["score"] > -500  # a random policy scores about -1,225 (analysis/data/random_scores.csv)
