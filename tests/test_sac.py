"""SAC on the shared off-policy core: its losses by hand, its gradient step against SB3's, and learning on
Pendulum."""

import dataclasses

import gymnasium as gym
import pandas as pd
import pytest
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from analysis.scores import score_of
from experiments.baselines.sb3 import ADAPTERS
from experiments.grid import execute, make_spec
from experiments.store import ResultsStore
from experiments.tools.lockstep import sac_into_sb3, shared_noise
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


def test_sac_gradient_steps_equal_sb3s_from_the_same_weights_and_minibatches(monkeypatch):
    """The cross-check's two SAC updates are the same algorithm: from the same weights, minibatches and
    reparameterisation noise, five gradient steps of ours and of SB3's ``SAC.train`` (built by our adapter from
    the paper config) give the same losses, temperature and parameters, up to float32 rounding and SB3's 1e-6
    inside the tanh correction's log (ours is exact). Differences in the temperature's place in the step
    (SB3 first, ours last) cancel: both losses use the temperature from before the step."""
    cfg = build_config(SACConfig, load_paper_config("sac").values, "sac")
    cfg = dataclasses.replace(cfg, hidden_sizes=(32, 32), batch_size=16)
    obs_dim, act_dim, n = 3, 1, cfg.batch_size
    torch.manual_seed(0)
    actor = SquashedGaussianActor(obs_dim, act_dim, cfg.hidden_sizes)
    q1, q2 = q_network(obs_dim, act_dim, cfg.hidden_sizes), q_network(obs_dim, act_dim, cfg.hidden_sizes)
    update = make_update(cfg, actor, q1, q2, act_dim)
    actor_start = actor.net[0].weight.detach().clone()
    model = SAC("MlpPolicy", gym.make("Pendulum-v1"), seed=0, device="cpu", **ADAPTERS["sac"].kwargs(cfg, 1))
    model.set_logger(configure(None, []))
    theirs_actor = model.actor
    ours_critics = (q1, q2, update.state["q1_target"], update.state["q2_target"])
    sac_into_sb3(model, {"actor": actor, "q1": q1, "q2": q2})  # targets: copies of q1, q2 at the start
    gen = torch.Generator().manual_seed(1)
    with shared_noise(steepness=1000.0):  # the same reparameterisation noise in both
        for _ in range(5):
            batch = {
                "obs": torch.randn(n, obs_dim, generator=gen),
                "actions": torch.rand(n, act_dim, generator=gen) * 2 - 1,
                "next_obs": torch.randn(n, obs_dim, generator=gen),
                "rewards": torch.randn(n, generator=gen),
                "terminated": (torch.rand(n, generator=gen) < 0.3).float(),
            }
            samples = ReplayBufferSamples(
                batch["obs"],
                batch["actions"],
                batch["next_obs"],
                batch["terminated"][:, None],
                batch["rewards"][:, None],
            )
            monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, samples=samples, **kwargs: samples)
            stats = update(batch)
            model.train(gradient_steps=1, batch_size=n)
            logged = model.logger.name_to_value
            assert float(stats["critic_loss"]) == pytest.approx(logged["train/critic_loss"], rel=1e-4)
            assert float(stats["actor_loss"]) == pytest.approx(logged["train/actor_loss"], rel=1e-4)
            assert float(stats["alpha"]) == pytest.approx(logged["train/ent_coef"], rel=1e-6)
    log_alpha = float(update.state["log_alpha"].detach())
    assert log_alpha == pytest.approx(float(model.log_ent_coef.detach()), rel=1e-5)
    assert log_alpha < 0  # it moved: five steps of 3e-4
    assert not torch.allclose(actor.net[0].weight, actor_start)  # and so did the actor
    trunk = [*theirs_actor.latent_pi.parameters()]
    pairs = [
        *zip([*actor.net[0].parameters(), *actor.net[2].parameters()], trunk, strict=True),
        (actor.net[4].weight, torch.cat([theirs_actor.mu.weight, theirs_actor.log_std.weight])),
        *zip(
            [p for net in ours_critics for p in net.parameters()],
            [*model.critic.parameters(), *model.critic_target.parameters()],
            strict=True,
        ),
    ]
    for ours, theirs in pairs:
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "sac-v1"])
def test_sac_learns_pendulum(tmp_path, algo):
    store = ResultsStore(tmp_path)
    spec = make_spec(algo, "ours", "Pendulum-v1", 0, 5000, "custom", {"eval_every": 5000, "eval_episodes": 5})
    row = execute(spec, store)
    evaluations = pd.read_csv(store.path(spec) / "evaluations.csv")
    assert evaluations.step.unique().tolist() == [5000]
    assert score_of(row, store.root) > -500  # a random policy scores about -1,225 (analysis/data/random_scores.csv)
