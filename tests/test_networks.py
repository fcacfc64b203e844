import gymnasium as gym
import numpy as np
import torch
from torch.distributions import Categorical, Normal

from replications.core.networks import gaussian_entropy, gaussian_log_prob, make_policy, make_value_function


def test_gaussian_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    x, mean, log_std = torch.randn(16, 3), torch.randn(16, 3), torch.randn(16, 3) * 0.5
    ref = Normal(mean, log_std.exp())
    torch.testing.assert_close(gaussian_log_prob(x, mean, log_std), ref.log_prob(x).sum(-1))
    torch.testing.assert_close(gaussian_entropy(log_std), ref.entropy().sum(-1))


def test_policies_log_prob_of_their_samples():
    g = torch.Generator().manual_seed(0)
    box = gym.spaces.Box(-1, 1, (2,), np.float32)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    pol = make_policy(obs_space, box, (8, 8), "tanh", init_log_std=-0.5)
    obs = torch.randn(5, 4)
    a = pol.act(obs, g)
    lp, ent = pol.log_prob_entropy(obs, a)
    ref = Normal(pol.mean(obs), torch.full((5, 2), float(np.exp(-0.5))))
    torch.testing.assert_close(lp, ref.log_prob(a).sum(-1))
    assert ent.shape == (5,)

    disc = make_policy(obs_space, gym.spaces.Discrete(3), (8,), "tanh", 0.0)
    a = disc.act(obs, g)
    lp, ent = disc.log_prob_entropy(obs, a)
    ref = Categorical(logits=disc.logits(obs))
    torch.testing.assert_close(lp, ref.log_prob(a))
    torch.testing.assert_close(ent, ref.entropy())


def test_orthogonal_init_gains():
    obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    v = make_value_function(obs_space, (64, 64), "tanh")
    w = v[0][0].weight.detach()
    # orthogonal rows scaled by sqrt(2): W W^T = 2 I (4 inputs < 64 outputs: columns orthogonal)
    torch.testing.assert_close(w.T @ w, 2 * torch.eye(4), atol=1e-5, rtol=1e-5)
    assert torch.all(v[0][0].bias == 0)
