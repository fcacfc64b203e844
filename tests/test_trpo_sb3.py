"""Our TRPO step and sb3-contrib's, through the adapter's settings, from the same weights and batch.

sb3-contrib's KL is averaged over action dimensions (``kl_divergence(...).mean()`` of a per-dimension Normal),
ours summed (the paper's). The adapter gives it ``target_kl = max_kl / k`` and ``cg_damping = cg_damping / k``;
then its Fisher-vector product is ours / k, and its CG solution and step are ours.
"""

import copy

import numpy as np
import pytest
import torch
from sb3_contrib import TRPO
from stable_baselines3.common.distributions import kl_divergence
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from experiments.baselines.sb3 import ADAPTERS, action_dims
from replications import trpo
from replications.core.advantages import standardize
from replications.core.config import load_paper_config, resolve
from replications.core.envs import RAW, make_env
from replications.core.natural_gradient import (
    fisher_vector_product,
    policy_mean_kl,
    policy_surrogate,
)
from replications.core.networks import make_policy
from replications.core.rollout import RolloutCollector
from replications.core.seeding import seed_everything

ENV = "HalfCheetah-v5"  # k = 6 action dimensions
SB3_TO_OURS = {
    "mlp_extractor.policy_net.0.weight": "mean.0.weight",
    "mlp_extractor.policy_net.0.bias": "mean.0.bias",
    "mlp_extractor.policy_net.2.weight": "mean.2.weight",
    "mlp_extractor.policy_net.2.bias": "mean.2.bias",
    "action_net.weight": "mean.4.weight",
    "action_net.bias": "mean.4.bias",
    "log_std": "log_std",
}


def _pair(action_dim: int):
    """sb3-contrib's TRPO built by the adapter (as if for an env of ``action_dim`` dimensions), our policy with
    its starting weights, and one 1,024-step HalfCheetah batch collected by ours, loaded into its buffer."""
    cfg = resolve(load_paper_config("trpo"), trpo.TRPOConfig, ENV, {"fisher_subsample": 1})  # sb3's whole batch
    seed_everything(0)
    venv = DummyVecEnv([lambda: make_env(ENV, 0, RAW)])
    model = TRPO("MlpPolicy", venv, seed=0, device="cpu", **ADAPTERS["trpo"].kwargs(cfg, action_dim))
    env = make_env(ENV, 0, RAW)
    ours = make_policy(env.observation_space, env.action_space, cfg.hidden_sizes, cfg.activation, cfg.init_log_std)
    theirs = dict(model.policy.named_parameters())
    ours.load_state_dict({o: theirs[t].detach().clone() for t, o in SB3_TO_OURS.items()})
    g = torch.Generator().manual_seed(0)
    value = lambda obs: torch.zeros(obs.shape[0])  # noqa: E731
    batch = RolloutCollector(env, ours, value, cfg.horizon, g, 0, lambda *a: None).collect()
    adv = torch.randn(cfg.horizon, generator=g) + torch.from_numpy(batch.rewards).float()  # the same for both
    buf = model.rollout_buffer
    buf.reset()
    n = cfg.horizon
    buf.observations[:] = batch.obs.numpy().reshape(n, 1, -1)
    buf.actions[:] = batch.actions.numpy().reshape(n, 1, -1)
    buf.log_probs[:] = batch.log_probs.numpy().reshape(n, 1)
    buf.advantages[:] = adv.numpy().reshape(n, 1)
    buf.returns[:] = buf.values[:] = 0.0
    buf.episode_starts[:] = 0.0
    buf.pos, buf.full = n, True
    model.set_logger(configure(None, []))
    return cfg, model, ours, batch, adv


def _sb3_fvp(model: TRPO, obs: torch.Tensor, actions: torch.Tensor, vector: dict[str, torch.Tensor]):
    """sb3-contrib's own Hessian-vector product (its train()'s KL, gradient and product code) of ``vector``."""
    with torch.no_grad():
        old = copy.copy(model.policy.get_distribution(obs))  # as train(): SB3 reuses one distribution object
    dist = model.policy.get_distribution(obs)
    kl = kl_divergence(dist, old)  # (B, k): train() takes its .mean()
    objective = dist.log_prob(actions).mean()
    params, _, grad_kl, _ = model._compute_actor_grad(kl.mean(), objective)
    names = {id(p): n for n, p in model.policy.named_parameters()}
    flat = torch.cat([vector[SB3_TO_OURS[names[id(p)]]].reshape(-1) for p in params])
    product = model.hessian_vector_product(params, grad_kl, flat)
    out, i = {}, 0
    for p in params:
        out[SB3_TO_OURS[names[id(p)]]] = product[i : i + p.numel()].view_as(p)
        i += p.numel()
    return out


def _ours_fvp(ours, cfg, obs, vector: dict[str, torch.Tensor]):
    with torch.no_grad():
        old = ours.dist_params(obs)
    params = [p for _, p in ours.named_parameters()]
    fvp = fisher_vector_product(lambda: policy_mean_kl(ours, old, obs), params, cfg.cg_damping)
    product = fvp(torch.cat([vector[n].reshape(-1) for n, _ in ours.named_parameters()]))
    out, i = {}, 0
    for n, p in ours.named_parameters():
        out[n] = product[i : i + p.numel()].view_as(p)
        i += p.numel()
    return out


def test_the_adapter_divides_target_kl_and_damping_by_the_action_dimension():
    cfg = resolve(load_paper_config("trpo"), trpo.TRPOConfig, ENV, {})
    assert action_dims(ENV) == 6 and action_dims("Hopper-v5") == 3 and action_dims("CartPole-v1") == 1
    settings = ADAPTERS["trpo"].describe(cfg, ENV)
    assert settings["target_kl"] == pytest.approx(0.01 / 6) and settings["cg_damping"] == pytest.approx(0.1 / 6)
    one_dim = resolve(load_paper_config("trpo"), trpo.TRPOConfig, "InvertedPendulum-v5", {})
    pendulum = ADAPTERS["trpo"].describe(one_dim, "InvertedPendulum-v5")
    assert (pendulum["target_kl"], pendulum["cg_damping"]) == (0.01, 0.1)


def test_sb3_contrib_fisher_vector_product_is_ours_over_k_once_the_damping_is_aligned():
    cfg, model, ours, batch, _ = _pair(6)
    obs, actions = batch.obs, batch.actions
    vector = {n: torch.zeros_like(p) for n, p in ours.named_parameters()}
    vector["log_std"][0] = 1.0  # a unit vector on the first log-std entry
    fv = _ours_fvp(ours, cfg, obs, vector)
    # hand-computed: d^2/dlog_std^2 of KL(N(m, s0) || N(m, s)) summed over dims is 2 at s = s0, plus damping
    assert float(fv["log_std"][0]) == pytest.approx(2.0 + cfg.cg_damping, rel=1e-5)
    theirs = _sb3_fvp(model, obs, actions, vector)
    assert float(theirs["log_std"][0]) * 6 == pytest.approx(2.0 + cfg.cg_damping, rel=1e-5)
    g = torch.Generator().manual_seed(1)
    vector = {n: torch.randn(p.shape, generator=g) for n, p in ours.named_parameters()}
    fv, theirs = _ours_fvp(ours, cfg, obs, vector), _sb3_fvp(model, obs, actions, vector)
    for name in fv:
        torch.testing.assert_close(theirs[name] * 6, fv[name], rtol=1e-4, atol=1e-5)


def _ours_step(cfg, ours, batch, adv):
    params = list(ours.parameters())
    adv = standardize(adv, 1e-8)
    with torch.no_grad():
        old = ours.dist_params(batch.obs)
    kl = lambda: policy_mean_kl(ours, old, batch.obs)  # noqa: E731
    return trpo.trpo_step(
        cfg, params, lambda: policy_surrogate(ours, batch.obs, batch.actions, batch.log_probs, adv), kl, kl
    )


def _steps(action_dim: int) -> tuple[torch.Tensor, torch.Tensor, bool, bool]:
    """(our policy step, sb3-contrib's, whether each line search accepted) from the same weights and batch."""
    cfg, model, ours, batch, adv = _pair(action_dim)
    start = torch.cat([p.detach().reshape(-1).clone() for p in ours.parameters()])
    search = _ours_step(cfg, ours, batch, adv)
    np.random.seed(0)
    model.train()
    theirs = dict(model.policy.named_parameters())
    by_ours = {o: theirs[t] for t, o in SB3_TO_OURS.items()}
    sb3_params = torch.cat([by_ours[n].detach().reshape(-1) for n, _ in ours.named_parameters()])
    ours_params = torch.cat([p.detach().reshape(-1) for p in ours.parameters()])
    accepted = model.logger.name_to_value["train/is_line_search_success"] == 1.0
    return ours_params - start, sb3_params - start, bool(search.accepted), accepted


def test_sb3_contrib_trpo_step_through_the_adapter_equals_ours_on_a_six_dimensional_action_space():
    ours, theirs, ours_accepted, theirs_accepted = _steps(action_dims(ENV))
    assert ours_accepted and theirs_accepted and float(ours.norm()) > 1e-2
    assert float((theirs - ours).norm() / ours.norm()) < 1e-3
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_without_the_alignment_sb3_contribs_step_is_not_ours():
    """sb3-contrib with target_kl and damping as ours (its KL a mean over the 6 dimensions): another step."""
    ours, theirs, *_ = _steps(1)
    assert float((theirs - ours).norm() / ours.norm()) > 0.1


def test_every_other_adapters_per_sample_quantities_sum_over_action_dimensions_as_ours():
    """The same class of mismatch, read for the other pairs on a 6-dimensional action: SB3's Gaussian log-prob
    and entropy (PPO's ratio and entropy bonus) and its squashed log-prob (SAC's actor, critic target and
    temperature loss, whose target entropy is -dim(A) on both sides) are sums over dimensions, as ours."""
    from stable_baselines3.common.distributions import DiagGaussianDistribution, SquashedDiagGaussianDistribution

    from replications.core.networks import gaussian_entropy, gaussian_log_prob, tanh_gaussian_log_prob

    g = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(5, 6, generator=g), 0.3 * torch.randn(5, 6, generator=g)
    a, u = torch.randn(5, 6, generator=g), 0.5 * torch.randn(5, 6, generator=g)
    gaussian = DiagGaussianDistribution(6).proba_distribution(mean, log_std[0])
    torch.testing.assert_close(gaussian.log_prob(a), gaussian_log_prob(a, mean, log_std[0].expand(5, -1)))
    torch.testing.assert_close(gaussian.entropy(), gaussian_entropy(log_std[0].expand(5, -1)))
    squashed = SquashedDiagGaussianDistribution(6).proba_distribution(mean, log_std)
    torch.testing.assert_close(
        squashed.log_prob(torch.tanh(u), u), tanh_gaussian_log_prob(u, mean, log_std, 1e-6), rtol=1e-5, atol=1e-5
    )
