"""The shared natural-gradient core (NPG, TRPO, Q-Prop) against explicit linear algebra."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from replications.core.natural_gradient import (
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    flat_params,
    kl_scaled_step,
    policy_dist_params,
    policy_mean_kl,
    set_flat_params,
)
from replications.core.networks import gaussian_kl, make_policy


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    pol = make_policy(obs_space, gym.spaces.Box(-1, 1, (2,), np.float32), (4,), "tanh", init_log_std=-0.3)
    with torch.no_grad():  # a non-degenerate policy (the output layer starts near 0)
        for p in pol.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs = torch.randn(64, 3)
    actions = pol.act(obs, torch.Generator().manual_seed(1)).detach()
    advantages = torch.randn(64)
    old = policy_dist_params(pol, obs)
    old_logp = pol.log_prob_entropy(obs, actions)[0].detach()
    params = list(pol.parameters())

    def mean_kl():
        return pol.kl_from(old, obs).mean()

    def surrogate():
        return (torch.exp(pol.log_prob_entropy(obs, actions)[0] - old_logp) * advantages).mean()

    return pol, params, obs, mean_kl, surrogate


def test_gaussian_kl_matches_torch():
    m1, s1, m2, s2 = torch.randn(5, 2), torch.randn(5, 2) * 0.3, torch.randn(5, 2), torch.randn(5, 2) * 0.3
    ref = kl_divergence(Normal(m1, s1.exp()), Normal(m2, s2.exp())).sum(-1)
    torch.testing.assert_close(gaussian_kl(m1, s1, m2, s2), ref)


def test_fisher_vector_product_equals_the_explicit_kl_hessian(tiny):
    pol, params, obs, mean_kl, _ = tiny
    theta0 = flat_params(params)
    old = policy_dist_params(pol, obs)

    names = [n for n, _ in pol.named_parameters()]
    shapes = [p.shape for p in params]  # params = list(pol.parameters()): the same order as names

    def kl_of(theta):  # mean KL(pi_old || pi_theta) as an explicit function of the flat parameters
        tensors, offset = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            n = int(np.prod(shape))
            tensors[name] = theta[offset : offset + n].view(shape)
            offset += n
        mean = torch.func.functional_call(
            pol.mean, {k[5:]: v for k, v in tensors.items() if k.startswith("mean.")}, (obs,)
        )
        return gaussian_kl(*old, mean, tensors["log_std"].expand(obs.shape[0], -1)).mean()

    hessian = torch.autograd.functional.hessian(kl_of, theta0)
    v = torch.randn_like(theta0)
    damping = 0.1
    fvp = fisher_vector_product(mean_kl, params, damping)
    torch.testing.assert_close(fvp(v), hessian @ v + damping * v, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fvp(2 * v), 2 * fvp(v), rtol=1e-5, atol=1e-6)  # reusable, linear


def test_conjugate_gradient_solves_a_random_spd_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(20, 20, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(20, dtype=torch.float64)
    b = torch.randn(20, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=60, tol=1e-24)
    torch.testing.assert_close(a @ x, b, rtol=0, atol=1e-8)
    x10 = conjugate_gradient(lambda v: a @ v, b, iters=10)  # deterministic from x0 = 0
    torch.testing.assert_close(x10, conjugate_gradient(lambda v: a @ v, b, iters=10), rtol=0, atol=0)


def test_natural_step_has_mean_kl_close_to_delta(tiny):
    _, params, _, mean_kl, surrogate = tiny
    delta = 1e-3
    g = flat_grad(surrogate(), params)
    fvp = fisher_vector_product(mean_kl, params, damping=1e-4)
    x = conjugate_gradient(fvp, g, iters=10)  # mjrl NPG: 10 CG iterations, damping 1e-4
    step = kl_scaled_step(x, fvp(x), delta)
    set_flat_params(params, flat_params(params) + step)
    assert float(mean_kl().detach()) == pytest.approx(delta, rel=0.1)


def test_line_search_step_keeps_kl_within_delta_and_improves(tiny):
    _, params, _, mean_kl, surrogate = tiny
    delta = 0.01
    before = float(surrogate().detach())
    g = flat_grad(surrogate(), params)
    fvp = fisher_vector_product(mean_kl, params, damping=0.1)
    x = conjugate_gradient(fvp, g, iters=10)
    full = kl_scaled_step(x, fvp(x), delta) * 4.0  # deliberately too long: backtracking must shorten it
    result = backtracking_line_search(params, full, surrogate, mean_kl, delta, shrink=0.5, max_backtracks=10)
    assert result.accepted and result.fraction < 1.0
    assert float(mean_kl().detach()) <= delta and float(surrogate().detach()) >= before


def test_rejected_line_search_leaves_parameters_unchanged(tiny):
    _, params, _, mean_kl, surrogate = tiny
    theta = flat_params(params).clone()
    g = flat_grad(surrogate(), params)
    result = backtracking_line_search(params, -g * 10, surrogate, mean_kl, 0.01, 0.5, 10)  # uphill never
    assert not result.accepted
    assert torch.equal(flat_params(params), theta)


def test_pi_old_is_frozen_when_the_line_search_writes_the_parameters_in_place(tiny):
    """pi_old's log-std is the parameter expanded over the batch: kept as a view it would move with every
    trial step, and the line search's KL would miss the log-std's change (found by rlrepro lockstep trpo: the
    KL parted from sb3-contrib's while every parameter agreed). Same mean, log-std l_i -> 0.2: KL(p || q) =
    sum_i (0.2 - l_i) + e^(2 l_i) / (2 e^0.4) - 1/2 at every state."""
    pol, params, obs, _, _ = tiny
    old = policy_dist_params(pol, obs)
    l_old = pol.log_std.detach().clone().double()
    with torch.no_grad():
        pol.log_std.copy_(torch.full_like(pol.log_std, 0.2))  # as set_flat_params writes a trial step
        kl = policy_mean_kl(pol, old, obs)
    expected = float((0.2 - l_old + torch.exp(2 * l_old) / (2 * np.exp(0.4)) - 0.5).sum())
    assert expected > 0.01 and float(kl) == pytest.approx(expected, rel=1e-5)
