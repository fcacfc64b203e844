"""Q-Prop: sample-efficient policy gradient with an off-policy critic (TR-Q-Prop).

Paper: S. Gu, T. Lillicrap, Z. Ghahramani, R. E. Turner, S. Levine (2017). Q-Prop: Sample-Efficient Policy
Gradient with An Off-Policy Critic. ICLR 2017, arXiv:1611.02247. Settings: the authors' code
(rlbayes/rllabplusplus launcher defaults), ``configs/qprop.yaml`` (conservative) and
``configs/qprop-aggressive.yaml``.

Update per iteration of T on-policy steps (Algorithm 1; "code" is the authors' rllab++,
rlbayes/rllabplusplus@4d55f96, sandbox/rocky/tf/algos/batch_polopt.py train(), rllab/sampler/base.py
process_samples(), sandbox/rocky/tf/algos/npo.py init_opt()):
    A_hat = GAE(lambda) with V_phi as it stands                      (code: process_samples; V refitted after)
    add the batch to the replay buffer R; fit Q_w off-policy on R, one step per sampled step
        (DDPG-style: y = r + gamma (1 - term) Q_w'(s', mu'(s')))      (Algorithm 1 lines 7-8)
    A_bar(s, a) = grad_a Q_w(s, a)|_{a = mu(s)} . (a - mu(s))         (line 10, eq. 6-7; code get_cv_sym)
    eta = 1 (standard), 1[A_hat A_bar > 0] (conservative), sign(A_hat A_bar) (aggressive), per sample,
        from the raw GAE advantage                                    (line 11, Section 3.2; code adapt1/adapt2)
    l = A_hat - eta A_bar, centred and scaled: l' = (l - mean l) / s, s = std(l) + 1e-8
                                                                      (line 12; code center_advantages)
    g = E[ grad log pi(a|s) l' ] + E[ eta grad_a Q_w(s, mu(s)) grad_theta mu(s) ] / s    (line 13, eq. 7)
    theta <- TRPO step with g (the shared trust-region step: CG, KL-scaled step, line search)   (line 14)
    fit V_phi on the batch
The policy step maximises L(theta) = E[r(theta) l'] + E[eta grad_a Q . mu_theta(s)] / s (ratio
r = pi_theta / pi_old), whose gradient at theta_old is g: the paper's estimator times 1/s, a positive scale
the natural step removes, so both terms keep the weights eq. (7) gives them and g stays unbiased.

Implementation details:
 1. [reference code] 5000 steps per iteration, KL 0.01, GAE lambda 0.97, gamma 0.99; 100-50 tanh Gaussian
    policy; Q 100-100 ReLU, Adam 1e-3, minibatch 64, replay 1e6, one Q step per sampled step
    (updates_ratio 1), training starts at 1000 samples; target networks (tau 0.001) for Q and the policy mean.
 2. [reference code] The eta rules are applied per sample (the code's adapt1 / adapt2 options), to the raw
    GAE advantage.
 3. [paper] A_bar, eta and the analytic term use the Q fitted in this iteration (Algorithm 1: Q is fitted,
    line 8, before A_bar is computed, line 10). The code computes A_bar and eta in process_samples, before
    optimize_critic, but its analytic term E[eta Q(s, mu(s))] with the refitted Q: two different critics in
    one control variate, which is no longer unbiased.
 4. [paper] The analytic term is scaled by the same 1/s as the centred learning signal. The code standardises
    l but adds the analytic term unscaled, which weights the two terms of eq. (7) by s and biases the gradient
    whenever s != 1 (tests/test_qprop.py measures both).
 5. [reference code] CG 10 iterations; line search shrinking by 0.8 up to 15 times (rllab's TRPO).
 6. [ours] The value function is a 32-32 tanh MLP fitted like our TRPO's (the code's default is linear);
    truncation bootstraps; the Q critic learns from the sampled (unclipped) actions.
Diagnostics per iteration: corr(A_hat, A_bar), mean eta, and the variance of the per-sample policy gradient
with the control variate relative to the plain likelihood-ratio one (``gradient_variance_ratio``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn

from replications.core.algorithm import Update
from replications.core.checkpoint import StatefulRNG
from replications.core.envs import Normalization
from replications.core.logging import RunLogger
from replications.core.natural_gradient import policy_dist_params, policy_mean_kl, trust_region_step
from replications.core.networks import GaussianPolicy, frozen_copy, gaussian_log_prob, mlp
from replications.core.onpolicy import Networks, networks, train_on_policy
from replications.core.replay import ReplayBuffer
from replications.core.rollout import Batch
from replications.core.seeds import SeedNets, one_seed
from replications.core.targets import bellman_target, polyak_update
from replications.core.value import fit_value_function


@dataclass(frozen=True)
class QPropConfig:
    horizon: int
    max_kl: float
    cg_iters: int
    cg_damping: float
    line_search_shrink: float
    line_search_max_backtracks: int
    gamma: float
    gae_lambda: float
    hidden_sizes: tuple[int, ...]
    activation: Literal["tanh", "relu"]
    init_log_std: float
    value_hidden_sizes: tuple[int, ...]
    value_learning_rate: float
    value_epochs: int
    value_minibatch_size: int
    center_advantages: bool
    orthogonal_init: bool
    normalize_observations: bool
    normalize_rewards: bool
    eta: Literal["standard", "conservative", "aggressive"]
    qf_hidden_sizes: tuple[int, ...]
    qf_learning_rate: float
    qf_batch_size: int
    qf_updates_ratio: float
    """Q gradient steps per sampled env step."""
    replay_size: int
    min_pool_size: int
    tau: float

    def normalization(self) -> Normalization:  # no clip values: the reference code normalises nothing
        return Normalization(self.normalize_observations, self.normalize_rewards)

    def networks(self) -> Networks:  # the value MLP with the policy's activation (the config has no other)
        return networks(self, self.value_hidden_sizes, self.activation)

    def evaluation(self) -> None:  # scored by its training episodes
        return None


def control_variate(q: nn.Module, obs: torch.Tensor, mean: torch.Tensor, actions: torch.Tensor):  # noqa: ANN201
    """(A_bar, grad_a Q(s, mu(s))): the first-order Taylor expansion of Q around the policy mean."""
    mu = mean.detach().requires_grad_(True)
    (grad_q,) = torch.autograd.grad(q(torch.cat([obs, mu], -1)).sum(), mu)
    return (grad_q * (actions - mu.detach())).sum(-1), grad_q


def eta_rule(adv: torch.Tensor, abar: torch.Tensor, rule: str) -> torch.Tensor:
    """eta(s) per sample: 1, 1[A_hat A_bar > 0] (conservative) or sign(A_hat A_bar) (aggressive)."""
    if rule == "standard":
        return torch.ones_like(adv)
    if rule == "conservative":
        return (adv * abar > 0).float()
    return torch.sign(adv * abar)


def learning_signal(adv: torch.Tensor, abar: torch.Tensor, eta: torch.Tensor, center: bool):  # noqa: ANN201
    """(l', s): l = A_hat - eta A_bar, centred and divided by s = std(l) + 1e-8 (rllab's center_advantages,
    population std) where ``center``; else (l, 1)."""
    signal = adv - eta * abar
    if not center:
        return signal, torch.ones(())
    scale = signal.std(correction=0) + 1e-8
    return (signal - signal.mean()) / scale, scale


def qprop_surrogate(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    signal: torch.Tensor,
    eta: torch.Tensor,
    grad_q: torch.Tensor,
    mean: torch.Tensor,
    scale: torch.Tensor,
) -> torch.Tensor:
    """L(theta) = E[r(theta) l'] + E[eta grad_a Q . mu_theta(s)] / s; its gradient at theta_old is eq. (7) / s."""
    ratio = torch.exp(log_probs - old_log_probs)
    return (ratio * signal).mean() + (eta * (grad_q * mean).sum(-1)).mean() / scale


def gradient_variance_ratio(
    policy: GaussianPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    adv: torch.Tensor,
    abar: torch.Tensor,
    eta: torch.Tensor,
    grad_q: torch.Tensor,
    max_samples: int = 1000,
) -> float:
    """tr Cov of the per-sample Q-Prop gradient, grad log pi (l - mean l) + eta grad_a Q grad mu, over tr Cov
    of the per-sample likelihood-ratio gradient, grad log pi (A_hat - mean A_hat), both in parameter space and
    unscaled: below 1, the control variate reduces the estimator's variance by 1 minus it. Estimated on every
    ``stride``-th sample (about ``max_samples``: per-sample gradients of a whole batch cost seconds)."""
    stride = max(1, len(obs) // max_samples)
    obs, actions, adv, abar, eta, grad_q = (x[::stride] for x in (obs, actions, adv, abar, eta, grad_q))
    params = {k: v.detach() for k, v in policy.mean.named_parameters()}
    log_std = policy.log_std.detach()
    signal = adv - eta * abar

    def per_sample(p: dict[str, torch.Tensor], ls: torch.Tensor, o, a, weight, e, gq):  # noqa: ANN001, ANN202
        mu = torch.func.functional_call(policy.mean, p, (o[None],))[0]
        return gaussian_log_prob(a, mu, ls) * weight + e * (gq * mu).sum()

    def trace_cov(weight: torch.Tensor, e: torch.Tensor) -> float:
        grads = torch.func.vmap(torch.func.grad(per_sample, argnums=(0, 1)), in_dims=(None, None, 0, 0, 0, 0, 0))(
            params, log_std, obs, actions, weight, e, grad_q
        )
        flat = torch.cat([g.reshape(len(obs), -1) for g in (*grads[0].values(), grads[1])], 1)
        return float(flat.var(0).sum())

    plain = trace_cov(adv - adv.mean(), torch.zeros_like(eta))
    return trace_cov(signal - signal.mean(), eta) / plain if plain > 0 else float("nan")


def make_update(cfg: QPropConfig, nets: SeedNets) -> Update:
    """``update(batch, iteration, n_iterations) -> [stats]`` for the on-policy driver (one seed)."""
    policy, value_fn, generator = one_seed(nets).parts()
    if not isinstance(policy, GaussianPolicy):
        raise ValueError("Q-Prop needs a continuous action space (its control variate differentiates Q in a)")
    obs_dim, act_dim = cast(nn.Linear, policy.mean[0]).in_features, int(policy.log_std.shape[0])
    params = list(policy.parameters())
    value_opt = torch.optim.Adam(value_fn.parameters(), lr=cfg.value_learning_rate)
    q = mlp([obs_dim + act_dim, *cfg.qf_hidden_sizes, 1], "relu", out_gain=1.0, orthogonal=False)
    q_target, mu_target = frozen_copy(q), frozen_copy(policy.mean)
    q_opt = torch.optim.Adam(q.parameters(), lr=cfg.qf_learning_rate)
    replay = ReplayBuffer(cfg.replay_size, obs_dim, act_dim)
    rng = StatefulRNG(np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=generator))))

    def fit_q(n_steps: int) -> torch.Tensor:
        total = torch.zeros(())
        for _ in range(n_steps):
            b = replay.sample(cfg.qf_batch_size, rng.generator)
            with torch.no_grad():
                next_q = q_target(torch.cat([b["next_obs"], mu_target(b["next_obs"])], -1)).squeeze(-1)
                y = bellman_target(b["rewards"], b["terminated"], next_q, cfg.gamma)
            loss = (q(torch.cat([b["obs"], b["actions"]], -1)).squeeze(-1) - y).pow(2).mean()
            q_opt.zero_grad(set_to_none=True)
            loss.backward()
            q_opt.step()
            polyak_update(q_target, q, cfg.tau)
            polyak_update(mu_target, policy.mean, cfg.tau)
            total += loss.detach()
        return total / max(n_steps, 1)

    def update(batch: Batch, iteration: int, n_iterations: int) -> list[dict[str, Any]]:
        obs, actions, old_log_probs = batch.obs, batch.actions, batch.log_probs
        next_obs = batch.next_observations()
        for t in range(len(obs)):
            replay.add(
                obs[t].numpy(), actions[t].numpy(), batch.rewards[t], next_obs[t], bool(batch.terminated[t]), False
            )
        n_q = int(cfg.qf_updates_ratio * len(obs)) if replay.size >= cfg.min_pool_size else 0
        q_loss = fit_q(n_q)  # Algorithm 1 line 8: before A_bar, so that both terms of eq. (7) use this Q
        adv = batch.advantages  # raw GAE: eta is set from it (the code's adapt1 / adapt2)
        with torch.no_grad():
            old = policy_dist_params(policy, obs)
        abar, grad_q = control_variate(q, obs, old[0], actions)
        eta = eta_rule(adv, abar, cfg.eta) if n_q else torch.zeros_like(adv)  # no critic yet: plain TRPO
        signal, scale = learning_signal(adv, abar, eta, cfg.center_advantages)
        variance_ratio = gradient_variance_ratio(policy, obs, actions, adv, abar, eta, grad_q) if n_q else 1.0

        def surrogate() -> torch.Tensor:
            log_probs = policy.log_prob_entropy(obs, actions)[0]
            return qprop_surrogate(log_probs, old_log_probs, signal, eta, grad_q, policy.mean(obs), scale)

        def mean_kl() -> torch.Tensor:
            return policy_mean_kl(policy, old, obs)

        search = trust_region_step(
            params, surrogate, mean_kl, mean_kl, cfg.max_kl, cfg.cg_iters, cfg.cg_damping,
            cfg.line_search_shrink, cfg.line_search_max_backtracks,
        )  # fmt: skip
        v_loss = fit_value_function(nets, value_opt, obs, batch.returns, cfg.value_epochs, cfg.value_minibatch_size)
        return nets.rows(
            {
                "surrogate_gain": search.improvement,
                "kl": search.kl,
                "accepted": search.accepted.long(),
                "value_loss": v_loss,
                "q_loss": q_loss,
                "eta_mean": eta.mean(),
                "adv_abar_corr": torch.corrcoef(torch.stack([adv, abar]))[0, 1] if abar.std() > 0 else 0.0,
                "pg_variance_ratio": variance_ratio,
            }
        )

    return Update(
        update,
        {  # saved in checkpoints
            "value_adam": value_opt,
            "q": q,
            "q_target": q_target,
            "mu_target": mu_target,
            "q_adam": q_opt,
            "replay": replay,
            "replay_rng": rng,
        },
    )


def train(env_id: str, cfg: QPropConfig, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
    """Train one seed through the shared on-policy driver; episodes and statistics go to ``logger``."""
    return train_on_policy(env_id, cfg, seed, total_steps, logger, make_update)
