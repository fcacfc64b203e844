"""The shared off-policy pieces (for DDPG, SAC, Q-Prop's critic) against hand-computed values."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from replications.core.networks import gaussian_log_prob, tanh_gaussian_log_prob
from replications.core.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from replications.core.replay import ReplayBuffer
from replications.core.targets import bellman_target, polyak_update, soft_bellman_target


def test_bellman_and_soft_bellman_targets_by_hand():
    r, term = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    next_q, next_logp = torch.tensor([10.0, 10.0]), torch.tensor([-1.5, -1.5])
    torch.testing.assert_close(bellman_target(r, term, next_q, 0.99), torch.tensor([1.0 + 0.99 * 10.0, 2.0]))
    # soft: r + gamma (Q' - alpha log pi) = 1 + 0.99 * (10 + 0.2 * 1.5) = 11.197 ; terminal: just r
    torch.testing.assert_close(soft_bellman_target(r, term, next_q, next_logp, 0.2, 0.99), torch.tensor([11.197, 2.0]))


def test_tanh_gaussian_log_prob_is_the_change_of_variables():
    torch.manual_seed(0)
    mean, log_std = torch.randn(64, 2), torch.randn(64, 2) * 0.3
    u = mean + torch.randn(64, 2) * log_std.exp()
    ours = tanh_gaussian_log_prob(u, mean, log_std)
    ref = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()]).log_prob(torch.tanh(u)).sum(-1)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    # numerically: log p_a(a) = log p_u(u) - log |da/du|, with da/du by a central finite difference
    eps = 1e-4
    u64 = u.double()
    dadu = (torch.tanh(u64 + eps) - torch.tanh(u64 - eps)) / (2 * eps)
    numeric = gaussian_log_prob(u64, mean.double(), log_std.double()) - torch.log(dadu).sum(-1)
    torch.testing.assert_close(
        tanh_gaussian_log_prob(u64, mean.double(), log_std.double()), numeric, rtol=1e-6, atol=1e-6
    )
    assert torch.isfinite(tanh_gaussian_log_prob(torch.full((1, 2), 30.0), torch.zeros(1, 2), torch.zeros(1, 2))).all()


def test_tanh_log_prob_with_epsilon_is_sb3s():
    from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution

    torch.manual_seed(1)
    mean, log_std = torch.randn(64, 3), torch.randn(64, 3) * 0.3
    u = mean + torch.randn(64, 3) * log_std.exp()
    u[0] = torch.tensor([9.0, -9.0, 0.0])  # saturated: where 1e-6 changes the correction
    dist = SquashedDiagGaussianDistribution(3).proba_distribution(mean, log_std)
    theirs = dist.log_prob(torch.tanh(u), u)
    torch.testing.assert_close(tanh_gaussian_log_prob(u, mean, log_std, 1e-6), theirs)
    exact = tanh_gaussian_log_prob(u, mean, log_std)
    torch.testing.assert_close(exact[1:], theirs[1:], rtol=0, atol=1e-2)  # |u| < 5 here: 1e-6 moves it < 0.005
    # at |u| = 9 the exact -log(1 - tanh^2) is 16.6 per dim, the 1e-6 form 13.8: 2.85 apart in each of two dims
    sech2 = 1.0 / math.cosh(9.0) ** 2
    assert float(exact[0] - theirs[0]) == pytest.approx(
        2 * (math.log(sech2 + 1e-6) - math.log(sech2)), rel=0.05
    )  # float32 tanh


def test_polyak_update():
    src, tgt = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in tgt.parameters()]
    polyak_update(tgt, src, 0.1)
    for t, s, b in zip(tgt.parameters(), src.parameters(), before, strict=True):
        torch.testing.assert_close(t, 0.1 * s + 0.9 * b)
    polyak_update(tgt, src, 1.0)
    for t, s in zip(tgt.parameters(), src.parameters(), strict=True):
        torch.testing.assert_close(t, s)


def test_replay_buffer_keeps_truncation_apart_and_wraps(tmp_path):
    buf = ReplayBuffer(capacity=4, obs_dim=1, act_dim=1)
    for i in range(6):  # two more than the capacity: the oldest two are overwritten
        buf.add(np.array([i]), np.array([0.5]), float(i), np.array([i + 1]), terminated=(i == 4), truncated=(i == 5))
    assert buf.size == 4 and buf.pos == 2
    np.testing.assert_array_equal(buf.obs[:, 0], [4, 5, 2, 3])
    np.testing.assert_array_equal(buf.terminated, [1, 0, 0, 0])
    np.testing.assert_array_equal(buf.truncated, [0, 1, 0, 0])
    np.testing.assert_array_equal(buf.next_obs[:, 0], [5, 6, 3, 4])  # the truncated step keeps its real next obs
    # a truncated transition bootstraps, a terminated one does not
    batch = {k: torch.from_numpy(getattr(buf, k)) for k in ReplayBuffer.FIELDS}
    y = bellman_target(batch["rewards"], batch["terminated"], torch.ones(4), 0.5)
    torch.testing.assert_close(y, torch.tensor([4.0, 5.5, 2.5, 3.5]))
    sample = buf.sample(8, np.random.default_rng(0))
    assert sample["obs"].shape == (8, 1) and set(sample) == set(ReplayBuffer.FIELDS)
    buf.save(tmp_path / "buf.npz")
    again = ReplayBuffer.load(tmp_path / "buf.npz")
    assert (again.pos, again.size) == (2, 4)
    for name in ReplayBuffer.FIELDS:
        np.testing.assert_array_equal(getattr(again, name), getattr(buf, name))


def test_exploration_noise():
    ou = OrnsteinUhlenbeckNoise(1, np.random.default_rng(0), theta=0.15, sigma=0.2)
    xs = np.array([ou()[0] for _ in range(20000)])
    # stationary OU: variance sigma^2 / (1 - (1 - theta)^2) for dt = 1, lag-1 autocorrelation 1 - theta
    assert xs.var() == pytest.approx(0.04 / (1 - 0.85**2), rel=0.1)
    assert np.corrcoef(xs[:-1], xs[1:])[0, 1] == pytest.approx(0.85, abs=0.02)
    gauss = GaussianNoise(3, np.random.default_rng(1), sigma=0.1)
    g = np.array([gauss() for _ in range(5000)])
    assert g.std() == pytest.approx(0.1, rel=0.05) and abs(g.mean()) < 0.01
    assert math.isclose(float(np.corrcoef(g[:-1, 0], g[1:, 0])[0, 1]), 0.0, abs_tol=0.05)


def test_off_policy_driver_schedule_storage_and_evaluation(tmp_path):
    import gymnasium as gym
    import pandas as pd

    from replications.core.algorithm import Update
    from replications.core.logging import RunLogger
    from replications.core.offpolicy import OffPolicySchedule, run_off_policy
    from tests.test_rollout import Counter

    def make():
        return gym.wrappers.RecordEpisodeStatistics(gym.wrappers.TimeLimit(Counter(terminate_at=5), 3))

    env, eval_env = make(), make()
    env.action_space.seed(0)
    buf = ReplayBuffer(100, 1, 1)
    calls = []
    schedule = OffPolicySchedule(
        total_steps=10, warmup_steps=4, batch_size=2, updates_per_step=2, eval_every=5, eval_episodes=2, log_every=5
    )
    logger = RunLogger(tmp_path)
    steps = run_off_policy(
        env,
        eval_env,
        explore=lambda o: np.array([0.25], np.float32),
        exploit=lambda o: np.zeros(1, np.float32),
        update=Update(lambda batch: calls.append(batch["obs"].shape) or {"loss": 1.0}),
        buffer=buf,
        schedule=schedule,
        logger=logger,
        rng=np.random.default_rng(0),
        seed=0,
    )
    logger.close()
    assert steps == 10 and buf.size == 10
    assert len(calls) == (10 - 4) * 2 and calls[0] == (2, 1)  # updates start after the warm-up, UTD 2
    np.testing.assert_array_equal(buf.actions[4:10, 0], np.full(6, 0.25))  # explore() after the warm-up
    # episodes of 3 steps cut by the time limit: truncated, next_obs = the real final observation 3
    np.testing.assert_array_equal(buf.truncated[:10], [0, 0, 1, 0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(buf.terminated[:10], np.zeros(10))
    np.testing.assert_array_equal(buf.next_obs[:3, 0], [1, 2, 3])
    evals = pd.read_csv(tmp_path / "evaluations.csv")
    assert evals.step.tolist() == [5, 5, 10, 10] and (evals.length == 3).all()
    assert pd.read_csv(tmp_path / "progress.csv").step.tolist() == [5, 10]
