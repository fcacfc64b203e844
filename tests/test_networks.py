import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal

from replications.core.networks import (
    frozen_copy,
    gaussian_entropy,
    gaussian_log_prob,
    make_policy,
    make_value_function,
    mlp,
    params_frozen,
)


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


def test_numpy_actor_matches_the_torch_policy():
    obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    pol = make_policy(obs_space, gym.spaces.Box(-1, 1, (2,), np.float32), (8, 8), "tanh", init_log_std=-1.0)
    with torch.no_grad():
        for p in pol.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    obs = np.random.default_rng(0).normal(size=(500, 4)).astype(np.float32)
    act = pol.numpy_actor(np.random.default_rng(1))
    actions = np.stack([act(o) for o in obs])
    mean = pol.mean(torch.from_numpy(obs)).detach().numpy()
    z = (actions - mean) / np.exp(pol.log_std.detach().numpy())
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1.0) < 0.05  # a ~ N(mean, std^2) around torch's own mean
    act0 = pol.numpy_actor(np.random.default_rng(1))
    np.testing.assert_array_equal(act0(obs[0]), actions[0])  # seeded: same draw again


def test_numpy_categorical_actor_samples_softmax_frequencies():
    obs_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    pol = make_policy(obs_space, gym.spaces.Discrete(3), (4,), "tanh", 0.0)
    with torch.no_grad():
        pol.logits[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    obs = np.zeros(2, np.float32)
    act = pol.numpy_actor(np.random.default_rng(0))
    counts = np.bincount([int(act(obs)) for _ in range(20000)], minlength=3) / 20000
    probs = torch.softmax(pol.logits(torch.from_numpy(obs)), -1).detach().numpy()
    np.testing.assert_allclose(counts, probs, atol=0.015)


def test_params_frozen_passes_gradients_to_the_input_but_not_the_weights():
    """The actor's loss through a critic (DDPG, SAC): d/d(action) as before, no critic weight gradients,
    and every parameter's flag restored afterwards, also after an exception (a frozen target stays frozen)."""
    torch.manual_seed(0)
    critic, actor = mlp([3, 8, 1], "relu", out_gain=1.0), mlp([2, 3], "tanh", out_gain=1.0)
    target = frozen_copy(critic)
    obs = torch.randn(4, 2)
    expected = torch.autograd.grad(critic(actor(obs)).sum(), list(actor.parameters()))
    with params_frozen(critic, target):
        loss = critic(actor(obs)).sum()
    loss.backward()
    for p, g in zip(actor.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g)
    assert all(p.grad is None for p in critic.parameters())
    assert all(p.requires_grad for p in critic.parameters())
    assert not any(p.requires_grad for p in target.parameters())
    with pytest.raises(RuntimeError), params_frozen(critic):
        raise RuntimeError("inside")
    assert all(p.requires_grad for p in critic.parameters())
