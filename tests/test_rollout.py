import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from replications.core.envs import Normalization, Normalize, RunningMeanStd
from replications.core.networks import make_policy
from replications.core.rollout import RolloutCollector


class Counter(gym.Env):
    """obs = [steps taken in this episode]; terminates when it reaches ``terminate_at`` (if set)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, terminate_at=None):
        self.terminate_at, self.k = terminate_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.k += 1
        return np.array([self.k], np.float32), 1.0, self.k == self.terminate_at, False, {}


def _collector(env, horizon):
    env = gym.wrappers.RecordEpisodeStatistics(gym.wrappers.TimeLimit(env, max_episode_steps=3))
    value = nn.Linear(1, 1)
    with torch.no_grad():
        value.weight.fill_(10.0)
        value.bias.fill_(1.0)
    value_fn = nn.Sequential(value, nn.Flatten(0))
    policy = make_policy(env.observation_space, env.action_space, (4,), "tanh", 0.0)
    episodes = []
    col = RolloutCollector(
        env, policy, value_fn, horizon, torch.Generator().manual_seed(0), 0, lambda *e: episodes.append(e)
    )
    return col, episodes


def test_truncation_bootstraps_from_the_final_observation():
    col, episodes = _collector(Counter(), 7)
    b = col.collect()
    np.testing.assert_allclose(b.obs[:, 0].numpy(), [0, 1, 2, 0, 1, 2, 0])
    # V(s) = 10 s + 1; at t=2 and t=5 the time limit cuts the episode: bootstrap V(final obs 3) = 31
    np.testing.assert_allclose(b.next_values, [11, 21, 31, 11, 21, 31, 11])
    np.testing.assert_array_equal(b.dones, [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(b.terminated, np.zeros(7))
    assert episodes == [(3, 3.0, 3), (6, 3.0, 3)]  # (global step at the end, raw return, length)
    b2 = col.collect()  # the next batch continues the running episode
    np.testing.assert_allclose(b2.obs[:3, 0].numpy(), [1, 2, 0])


def test_termination_does_not_bootstrap():
    col, _ = _collector(Counter(terminate_at=2), 5)
    b = col.collect()
    np.testing.assert_allclose(b.obs[:, 0].numpy(), [0, 1, 0, 1, 0])
    np.testing.assert_allclose(b.next_values, [11, 0, 11, 0, 11])
    np.testing.assert_array_equal(b.terminated, [0, 1, 0, 1, 0])


def test_running_mean_std_matches_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(500, 4))
    rms = RunningMeanStd((4,), epsilon=1e-12)
    for row in x:
        rms.update(row)
    np.testing.assert_allclose(rms.mean, x.mean(0), rtol=1e-9)
    np.testing.assert_allclose(rms.var, x.var(0), rtol=1e-9)


def test_normalize_wrapper_scales_rewards_by_discounted_return_std_and_clips_obs():
    env = Normalize(gym.wrappers.TimeLimit(Counter(), 3), Normalization(True, True, 0.5, 0.5, 10.0))
    env.reset(seed=0)
    rets, rewards = [], []
    disc = 0.0
    for _ in range(6):
        obs, r, term, trunc, _ = env.step(np.zeros(1))
        disc = 0.5 * disc + 1.0
        rets.append(disc)
        ref = RunningMeanStd(())
        for d in rets:
            ref.update(d)
        assert r == pytest.approx(min(1.0 / np.sqrt(ref.var + 1e-8), 10.0))  # clipped at 10
        assert np.all(np.abs(obs) <= 0.5)
        if term or trunc:
            disc = 0.0  # the discounted return restarts with the episode
            env.reset()
        rewards.append(r)
    assert rewards[0] == 10.0 and rewards[-1] < 10.0
