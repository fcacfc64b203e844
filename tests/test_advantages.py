import numpy as np
import pytest

from replications.core.advantages import gae


def test_gae_hand_computed_with_termination_and_truncation():
    # Steps 0-1: episode A, truncated after step 1 (time limit): bootstrap from V(final obs) = 10.
    # Step 2: episode B terminates: no bootstrap. Steps 3-4: episode C, still running: bootstrap V(s5) = 4.
    gamma, lam = 0.9, 0.5
    rewards = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    values = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
    next_values = np.array([1.0, 10.0, 99.0, 3.0, 4.0])  # 99 must be ignored (terminal)
    terminated = np.array([0, 0, 1, 0, 0.0])
    dones = np.array([0, 1, 1, 0, 0.0])

    d = [1 + 0.9 * 1.0 - 0.5, 2 + 0.9 * 10.0 - 1.0, 3 - 1.5, 4 + 0.9 * 3.0 - 2.0, 5 + 0.9 * 4.0 - 3.0]
    a4 = d[4]
    a3 = d[3] + 0.45 * a4
    a2 = d[2]  # episode end: recursion stops
    a1 = d[1]  # truncation also stops the recursion (the bootstrap carries the future)
    a0 = d[0] + 0.45 * a1
    expected = np.array([a0, a1, a2, a3, a4])

    adv, ret = gae(rewards, values, next_values, terminated, dones, gamma, lam)
    np.testing.assert_allclose(adv, expected)
    np.testing.assert_allclose(ret, expected + values)


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_gae_limits_are_td0_and_monte_carlo(lam):
    rng = np.random.default_rng(0)
    r, v, nv = rng.normal(size=6), rng.normal(size=6), rng.normal(size=6)
    nv[:-1] = v[1:]
    zeros = np.zeros(6)
    adv, _ = gae(r, v, nv, zeros, zeros, 0.99, lam)
    if lam == 0.0:
        np.testing.assert_allclose(adv, r + 0.99 * nv - v)
    else:  # discounted return to the end plus bootstrap, minus V
        disc = np.array([sum(0.99 ** (k - t) * r[k] for k in range(t, 6)) + 0.99 ** (6 - t) * nv[-1] for t in range(6)])
        np.testing.assert_allclose(adv, disc - v, rtol=1e-10)


def test_td_lambda_returns_by_the_recursive_definition_including_truncation():
    from replications.core.advantages import td_lambda_returns

    # Steps 0-1: episode A truncated after step 1 (bootstrap V(final obs) = 10); step 2: B terminates;
    # steps 3-4: C goes on (bootstrap V(s5) = 4).
    g, lam = 0.9, 0.5
    r = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    v = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
    nv = np.array([1.0, 10.0, 99.0, 3.0, 4.0])
    terminated, dones = np.array([0, 0, 1, 0, 0.0]), np.array([0, 1, 1, 0, 0.0])
    r4 = 5 + g * 4.0  # the last step: the bootstrap carries all of the future
    r3 = 4 + g * ((1 - lam) * 3.0 + lam * r4)
    r2 = 3.0  # terminal
    r1 = 2 + g * 10.0  # truncated: V(final obs)
    r0 = 1 + g * ((1 - lam) * 1.0 + lam * r1)
    np.testing.assert_allclose(td_lambda_returns(r, v, nv, terminated, dones, g, lam), [r0, r1, r2, r3, r4])
