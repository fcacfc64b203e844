"""TRPO and NPG updates on real rollouts: the trust region holds, the NPG step lands at its KL, they learn."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from experiments.grid import execute, make_spec
from experiments.store import ResultsStore
from replications import npg, trpo
from replications.core.advantages import gae
from replications.core.config import load_paper_config, resolve
from replications.core.envs import make_env
from replications.core.natural_gradient import flat_params, policy_dist_params
from replications.core.networks import make_policy, make_value_function
from replications.core.rollout import RolloutCollector
from replications.core.seeding import seed_everything
from replications.core.seeds import OneSeed


def test_categorical_kl_matches_torch():
    import gymnasium as gym

    space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    pol = make_policy(space, gym.spaces.Discrete(4), (8,), "tanh", 0.0)
    obs = torch.randn(10, 3)
    old_logits = torch.randn(10, 4)
    old = (torch.log_softmax(old_logits, -1),)
    ref = kl_divergence(Categorical(logits=old_logits), Categorical(logits=pol.logits(obs)))
    torch.testing.assert_close(pol.kl_from(old, obs), ref)


def _batch(algo, cfg_cls, env_id, overrides):
    cfg = resolve(load_paper_config(algo), cfg_cls, env_id, overrides)
    g = seed_everything(0)
    env = make_env(env_id, 0, cfg.normalization())
    pol = make_policy(env.observation_space, env.action_space, cfg.hidden_sizes, cfg.activation, cfg.init_log_std)
    vf = make_value_function(env.observation_space, cfg.value_hidden_sizes, "tanh")
    batch = RolloutCollector(env, pol, vf, cfg.horizon, g, 0, lambda *a: None).collect()
    adv, ret = gae(
        batch.rewards,
        batch.values.double().numpy(),
        batch.next_values,
        batch.terminated,
        batch.dones,
        cfg.gamma,
        cfg.gae_lambda,
    )
    batch.advantages, batch.returns = torch.from_numpy(adv).float(), torch.from_numpy(ret).float()
    return cfg, pol, vf, g, batch


def test_trpo_update_stays_in_the_trust_region_and_improves_the_surrogate():
    cfg, pol, vf, g, batch = _batch("trpo", trpo.TRPOConfig, "Pendulum-v1", {"horizon": 2048})
    old = policy_dist_params(pol, batch.obs)  # a frozen copy (the parameters are written in place)
    (stats,) = trpo.make_update(cfg, OneSeed(pol, vf, g))(batch, 0, 1)
    with torch.no_grad():
        kl = float(pol.kl_from(old, batch.obs).mean())
    assert stats["accepted"] == 1 and stats["surrogate_gain"] > 0
    assert kl <= cfg.max_kl and kl == pytest.approx(stats["kl"], rel=1e-5)


def test_npg_step_lands_at_half_the_normalised_step_size():
    # a small step: the quadratic KL model is then accurate (at the default 0.05 it measures ~0.032 here)
    cfg, pol, vf, g, batch = _batch(
        "npg", npg.NPGConfig, "Pendulum-v1", {"horizon": 4000, "normalized_step_size": 0.002}
    )
    theta = flat_params(list(pol.parameters()))
    (stats,) = npg.make_update(cfg, OneSeed(pol, vf, g))(batch, 0, 1)
    assert not torch.equal(theta, flat_params(list(pol.parameters())))  # a full step, no line search
    # the damped model (F + 1e-4 I) overstates the KL of the large-norm CG direction a little: ~0.8 of target
    assert stats["kl"] == pytest.approx(cfg.normalized_step_size / 2, rel=0.25)


@pytest.mark.slow
@pytest.mark.parametrize("algo, steps", [("trpo", 30_720), ("npg", 50_000)])
def test_learns_cartpole(tmp_path, algo, steps):
    store = ResultsStore(tmp_path)
    spec = make_spec(algo, "ours", "CartPole-v1", 0, steps, "custom", {})
    execute(spec, store)
    episodes = pd.read_csv(store.path(spec) / "episodes.csv")
    assert episodes["return"].iloc[:20].mean() < 50
    assert episodes["return"].iloc[-20:].mean() >= 150


def test_trpo_at_npgs_settings_differs_from_npg_only_in_the_line_search():
    """The NPG report's first comparison is our TRPO at NPG's settings (npg.yaml reference.compare_algo): every
    hyperparameter the two share agrees on every env of NPG's grid, max_kl is NPG's quadratic KL target
    delta_n / 2, and from the same weights and batch TRPO's step is NPG's step times its line search's fraction."""
    import copy

    from experiments.reporting.comparison import comparators

    paper = load_paper_config("npg")
    matched, own = comparators(paper.reference)
    assert (matched.key, matched.algo, own.key) == ("trpo-npg-settings", "trpo", "trpo")
    for env in paper.budget("paper").steps:
        ours = make_spec("npg", "ours", env, 0, 10_000, "paper", {}).hyperparameters
        other = make_spec("trpo", "ours", env, 0, 10_000, "paper", matched.overrides_for(env)).hyperparameters
        shared = set(ours) & set(other)
        assert shared >= {"horizon", "hidden_sizes", "cg_damping", "gae_lambda", "value_activation", "init_log_std"}
        assert {k: other[k] for k in shared} == {k: ours[k] for k in shared}, env
        assert other["max_kl"] == ours["normalized_step_size"] / 2 and other["fisher_subsample"] == 1, env
    env = "Hopper-v5"
    cfg, pol, vf, g, batch = _batch("npg", npg.NPGConfig, env, {"horizon": 2000})
    trpo_cfg = resolve(load_paper_config("trpo"), trpo.TRPOConfig, env, {**matched.overrides_for(env), "horizon": 2000})
    trpo_pol, trpo_vf = copy.deepcopy(pol), copy.deepcopy(vf)
    theta = flat_params(list(pol.parameters()))
    npg.make_update(cfg, OneSeed(pol, vf, g))(batch, 0, 1)
    (stats,) = trpo.make_update(trpo_cfg, OneSeed(trpo_pol, trpo_vf, torch.Generator().manual_seed(0)))(batch, 0, 1)
    npg_step = flat_params(list(pol.parameters())) - theta
    trpo_step = flat_params(list(trpo_pol.parameters())) - theta
    fraction = float(trpo_step @ npg_step / (npg_step @ npg_step))  # the line search's 0.5^k, or 1
    assert stats["accepted"] == 1 and any(fraction == pytest.approx(0.5**k, rel=1e-3) for k in range(11))
    # float32 CG from advantages standardised with 1e-8 (TRPO) and 1e-6, population std (NPG): measured 5e-5
    assert float((trpo_step - fraction * npg_step).norm() / (fraction * npg_step).norm()) < 1e-3
