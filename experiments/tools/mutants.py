"""Planted bugs for measuring the regression gate: ``rlrepro regress ALGO --mutant NAME``.

Each mutant is one small, realistic edit of the kind that happens in real code (a wrong sign, a missing term, a
mishandled done flag, an off-by-one, a target network that stops tracking, ...), written as an exact text
replacement in one source file. ``mutated_copy`` applies it to a copy of the code (``replications/``,
``experiments/``, ``analysis/``) in a temporary folder, never to the working tree; the gate then runs its
candidate suite in a subprocess whose imports resolve to that copy (``experiments.tools.regress.run_plan``).

A mutant whose target text is no longer in its file (the code moved) is an error naming it, so the catalogue
cannot silently stop planting its bug. ``families`` group the mutants for the detection rates the README
reports; ``algos`` are the algorithms whose runs execute the mutated line (the gate is measured on them).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from replications.core.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("replications", "experiments", "analysis")
FAMILIES = ("on-policy", "natural-gradient", "off-policy", "awr", "qprop")


@dataclass(frozen=True)
class Mutant:
    name: str
    family: str
    file: str  # relative to the repository root
    old: str  # exact text, present once in ``file``
    new: str
    what: str  # the bug, in words
    algos: tuple[str, ...]  # algorithms whose runs execute the mutated code


def _m(name: str, family: str, file: str, old: str, new: str, what: str, *algos: str) -> Mutant:
    return Mutant(name, family, file, old, new, what, algos)


MUTANTS: dict[str, Mutant] = {}
"""name -> mutant: the catalogue, registered at the end of this module, one block per family."""


def register(*mutants: Mutant) -> None:
    for m in mutants:
        if m.family not in FAMILIES:
            raise ValueError(f"mutant {m.name}: unknown family {m.family!r}")
        if m.name in MUTANTS:
            raise ValueError(f"mutant {m.name} registered twice")
        MUTANTS[m.name] = m


def get(name: str) -> Mutant:
    if name not in MUTANTS:
        raise UserError(f"unknown mutant '{name}'; allowed: {', '.join(sorted(MUTANTS))}")
    return MUTANTS[name]


def check_applies(mutant: Mutant, root: Path = ROOT) -> str:
    """The mutated text of ``mutant.file`` (its target must occur exactly once)."""
    path = root / mutant.file
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise UserError(
            f"mutant {mutant.name} no longer applies: its target text occurs {count} times in {mutant.file} "
            "(once expected); update the catalogue (experiments/tools/mutants.py)"
        )
    return text.replace(mutant.old, mutant.new)


@contextlib.contextmanager
def mutated_copy(mutant: Mutant) -> Iterator[Path]:
    """A temporary copy of the code with ``mutant`` applied; the working tree is not touched."""
    mutated = check_applies(mutant)
    with tempfile.TemporaryDirectory(prefix=f"rlrepro-mutant-{mutant.name}-") as tmp:
        dest = Path(tmp)
        for package in PACKAGES:
            shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
        (dest / mutant.file).write_text(mutated)
        yield dest


# ---------------------------------------------------------------------------------------------------------------
# The catalogue. Each mutant: a name, its family, the file, the exact text it replaces (once in the file), the
# replacement, the bug in words, and the algorithms whose runs execute it.

_PPO = "replications/ppo.py"
_ADV = "replications/core/advantages.py"
_ROLLOUT = "replications/core/rollout.py"
_ENVS = "replications/core/envs.py"
_NETS = "replications/core/networks.py"
_VALUE = "replications/core/value.py"
_NG = "replications/core/natural_gradient.py"
_TRPO = "replications/trpo.py"
_NPG = "replications/npg.py"
_SAC = "replications/sac.py"
_DDPG = "replications/ddpg.py"
_OFF = "replications/core/offpolicy.py"
_REPLAY = "replications/core/replay.py"
_TARGETS = "replications/core/targets.py"
_AWR = "replications/awr.py"
_QPROP = "replications/qprop.py"

# GAE and the rollout collector feed every on-policy algorithm (AWR's TD(lambda) targets are GAE's returns).
_GAE_USERS = ("ppo", "trpo", "npg", "qprop", "awr")

register(
    _m(
        "ppo-advantage-sign",
        "on-policy",
        _PPO,
        'pg_loss = clipped_surrogate_loss(log_probs, mb["log_probs"], adv, cfg.clip_range)',
        'pg_loss = clipped_surrogate_loss(log_probs, mb["log_probs"], -adv, cfg.clip_range)',
        "A wrong sign on the advantages in PPO's loss: the policy moves away from better-than-average actions.",
        "ppo",
    ),
    _m(
        "ppo-ratio-inverted",
        "on-policy",
        _PPO,
        "ratio = torch.exp(log_probs - old_log_probs)",
        "ratio = torch.exp(old_log_probs - log_probs)",
        "The probability ratio is pi_old / pi_theta instead of pi_theta / pi_old.",
        "ppo",
    ),
    _m(
        "ppo-clip-optimistic-bound",
        "on-policy",
        _PPO,
        "return -torch.min(ratio * advantages, clipped * advantages).mean()",
        "return -torch.max(ratio * advantages, clipped * advantages).mean()",
        "The clipped surrogate takes the max instead of the min of the two terms, an optimistic bound that "
        "removes the trust region.",
        "ppo",
    ),
    _m(
        "ppo-value-clip-min",
        "on-policy",
        _PPO,
        "squared = torch.max(squared, (clipped - returns).pow(2))",
        "squared = torch.min(squared, (clipped - returns).pow(2))",
        "The clipped value loss takes the min instead of the max of the clipped and unclipped errors (subtle).",
        "ppo",
    ),
    _m(
        "ppo-adam-state-reset",
        "on-policy",
        _PPO,
        "            nets.clip_grad_norm_(params, cfg.max_grad_norm)\n            optimizer.step()\n",
        "            nets.clip_grad_norm_(params, cfg.max_grad_norm)\n"
        "            optimizer.state.clear()\n"
        "            optimizer.step()\n",
        "Adam's moment estimates are reset before every minibatch step (each step becomes a sign-like step).",
        "ppo",
    ),
    _m(
        "ppo-lr-anneal-reversed",
        "on-policy",
        _PPO,
        "(1.0 - iteration / n_iterations if cfg.anneal_learning_rate else 1.0)",
        "(iteration / n_iterations if cfg.anneal_learning_rate else 1.0)",
        "The learning-rate schedule is reversed: it rises linearly from 0 instead of decaying to 0.",
        "ppo",
    ),
    _m(
        "gae-lambda-dropped",
        "on-policy",
        _ADV,
        "decay = gamma * lam * (1.0 - dones)",
        "decay = gamma * (1.0 - dones)",
        "GAE's recursion forgets lambda (lambda = 1: Monte-Carlo advantages, higher variance; subtle).",
        *_GAE_USERS,
    ),
    _m(
        "gae-crosses-truncation",
        "on-policy",
        _ADV,
        "decay = gamma * lam * (1.0 - dones)",
        "decay = gamma * lam * (1.0 - terminated)",
        "GAE's recursion is cut only at terminations, so advantages leak across time-limit truncations into the "
        "next episode.",
        *_GAE_USERS,
    ),
    _m(
        "gae-done-off-by-one",
        "on-policy",
        _ADV,
        "running = deltas[t] + decay[t] * running",
        "running = deltas[t] + decay[t - 1] * running",
        "Off-by-one in GAE: step t's recursion is masked by the previous step's done flag.",
        *_GAE_USERS,
    ),
    _m(
        "gae-returns-miss-values",
        "on-policy",
        _ADV,
        "return advantages, advantages + values",
        "return advantages, advantages",
        "The value targets miss the + V(s_t) term: the critic regresses on advantages instead of returns.",
        *_GAE_USERS,
    ),
    _m(
        "rollout-truncation-as-termination",
        "on-policy",
        _ROLLOUT,
        "rew_buf[t], term_buf[t] = reward, terminated",
        "rew_buf[t], term_buf[t] = reward, terminated or truncated",
        "Time-limit truncations are stored as terminations, so their advantages do not bootstrap.",
        *_GAE_USERS,
    ),
    _m(
        "rollout-next-value-off-by-one",
        "on-policy",
        _ROLLOUT,
        "next_val_buf[:-1] = val[1:]",
        "next_val_buf[:-1] = val[:-1]",
        "Off-by-one in the rollout: the next value of step t is V(s_t) instead of V(s_{t+1}).",
        "ppo",
        "trpo",
        "npg",
        "qprop",
    ),
    _m(
        "reward-norm-by-variance",
        "on-policy",
        _ENVS,
        "float(reward) / float(np.sqrt(self.ret_rms.var + 1e-8))",
        "float(reward) / float(self.ret_rms.var + 1e-8)",
        "Rewards are divided by the variance of the discounted return instead of its standard deviation.",
        "ppo",
    ),
    _m(
        "obs-norm-by-variance",
        "on-policy",
        _ENVS,
        "(obs - rms.mean) / np.sqrt(rms.var + 1e-8)",
        "(obs - rms.mean) / (rms.var + 1e-8)",
        "Observations are divided by their running variance instead of their standard deviation.",
        "ppo",
        "trpo",
        "awr",
    ),
    _m(
        "gaussian-logprob-missing-logstd",
        "on-policy",
        _NETS,
        "return (-0.5 * z.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)",
        "return (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)",
        "The Gaussian log-density misses its -log(std) term, so widening the policy always raises its "
        "likelihood (continuous actions only).",
        "ppo",
        "trpo",
        "npg",
        "qprop",
    ),
    _m(
        "categorical-softmax-wrong-dim",
        "on-policy",
        _NETS,
        "log_p = torch.log_softmax(self.logits(obs), -1)",
        "log_p = torch.log_softmax(self.logits(obs), 0)",
        "The categorical log-probabilities are normalised over the batch dimension instead of the actions "
        "(discrete actions only).",
        "ppo",
        "trpo",
        "npg",
        "awr",
    ),
    _m(
        "standardize-skips-mean",
        "on-policy",
        _ADV,
        "return (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, unbiased=unbiased, keepdim=True) + eps)",
        "return adv / (adv.std(-1, unbiased=unbiased, keepdim=True) + eps)",
        "Advantage standardisation divides by the std but forgets to subtract the mean (subtle).",
        "trpo",
        "npg",
        "awr",
    ),
    _m(
        "value-target-broadcast",
        "on-policy",
        _VALUE,
        "return 0.5 * (value_fn(obs) - targets).pow(2).mean()",
        "return 0.5 * (value_fn(obs)[:, None] - targets).pow(2).mean()",
        "A broadcasting bug in the value regression: (B, 1) - (B,) pairs every prediction with every target, "
        "so V regresses to the batch mean.",
        "trpo",
        "npg",
        "qprop",
        "awr",
    ),
)

register(
    _m(
        "surrogate-ratio-inverted",
        "natural-gradient",
        _NG,
        "return (torch.exp(log_probs - old_log_probs) * advantages).mean()",
        "return (torch.exp(old_log_probs - log_probs) * advantages).mean()",
        "The surrogate's ratio is pi_old / pi_theta, which flips the sign of the policy gradient.",
        "trpo",
        "npg",
    ),
    _m(
        "cg-residual-sign",
        "natural-gradient",
        _NG,
        "r -= _col(alpha) * ap",
        "r += _col(alpha) * ap",
        "Conjugate gradient adds A p to the residual instead of subtracting it, so x is not F^-1 g.",
        "trpo",
        "npg",
        "qprop",
    ),
    _m(
        "cg-beta-inverted",
        "natural-gradient",
        _NG,
        "p = r + _col(rr_new / rr) * p",
        "p = r + _col(rr / rr_new) * p",
        "Conjugate gradient's direction coefficient beta is inverted (r_old^T r_old / r_new^T r_new).",
        "trpo",
        "npg",
        "qprop",
    ),
    _m(
        "fvp-damping-sign",
        "natural-gradient",
        _NG,
        "return flat_grad(_dot(kl_grad, v), params, retain_graph=True) + damping * v",
        "return flat_grad(_dot(kl_grad, v), params, retain_graph=True) - damping * v",
        "The Fisher-vector product subtracts the damping instead of adding it (an indefinite system for CG).",
        "trpo",
        "npg",
        "qprop",
    ),
    _m(
        "kl-step-missing-factor-2",
        "natural-gradient",
        _NG,
        "torch.sqrt(2.0 * delta / _dot(x, fx).clamp_min(1e-20))",
        "torch.sqrt(delta / _dot(x, fx).clamp_min(1e-20))",
        "The KL-scaled step misses the factor 2: steps are 1/sqrt(2) of the trust region's (subtle).",
        "trpo",
        "npg",
        "qprop",
    ),
    _m(
        "line-search-ignores-improvement",
        "natural-gradient",
        _NG,
        "ok = ~accepted & (gain > 0) & (trial_kl <= delta)",
        "ok = ~accepted & (trial_kl <= delta)",
        "The line search accepts the first step inside the KL bound whether or not the surrogate improved.",
        "trpo",
        "qprop",
    ),
    _m(
        "old-policy-log-std-view",
        "natural-gradient",
        _NG,
        "return tuple(t.detach().clone() for t in policy.dist_params(obs))",
        "return tuple(t.detach() for t in policy.dist_params(obs))",
        "pi_old's parameters are detached views, not copies: the line search's KL misses the log-std's change "
        "(Gaussian policies only; subtle).",
        "trpo",
        "qprop",
    ),
    _m(
        "trpo-returns-as-advantages",
        "natural-gradient",
        _TRPO,
        "adv = standardize(adv, 1e-8)",
        "adv = standardize(batch.returns, 1e-8)",
        "TRPO standardises the returns instead of the advantages (the baseline is lost).",
        "trpo",
    ),
    _m(
        "trpo-value-fit-on-advantages",
        "natural-gradient",
        _TRPO,
        "v_loss = fit_value_function(nets, value_opt, obs, batch.returns, cfg.value_epochs, cfg.value_minibatch_size)",
        "v_loss = fit_value_function(nets, value_opt, obs, batch.advantages, cfg.value_epochs, "
        "cfg.value_minibatch_size)",
        "TRPO's value function is fitted to the advantages instead of the returns.",
        "trpo",
    ),
    _m(
        "npg-step-sign",
        "natural-gradient",
        _NPG,
        "add_to_params(params, step)",
        "add_to_params(params, -step)",
        "NPG subtracts the natural-gradient step: descent on the surrogate instead of ascent.",
        "npg",
    ),
    _m(
        "npg-step-size-not-halved",
        "natural-gradient",
        _NPG,
        "step = kl_scaled_step(x, g, cfg.normalized_step_size / 2)",
        "step = kl_scaled_step(x, g, cfg.normalized_step_size)",
        "NPG's KL target is delta_n instead of delta_n / 2: steps sqrt(2) too long (subtle).",
        "npg",
    ),
)

register(
    _m(
        "bellman-target-ignores-terminated",
        "off-policy",
        _TARGETS,
        "return rewards + gamma * (1.0 - terminated) * next_q",
        "return rewards + gamma * next_q",
        "The Bellman target bootstraps through terminal states (the (1 - terminated) mask is missing).",
        "ddpg",
        "sac-v1",
        "qprop",
    ),
    _m(
        "soft-target-entropy-sign",
        "off-policy",
        _TARGETS,
        "return rewards + gamma * (1.0 - terminated) * (next_q - alpha * next_log_prob)",
        "return rewards + gamma * (1.0 - terminated) * (next_q + alpha * next_log_prob)",
        "The soft Bellman target adds alpha log pi instead of subtracting it (an entropy penalty, not a bonus).",
        "sac",
    ),
    _m(
        "polyak-tau-swapped",
        "off-policy",
        _TARGETS,
        "    torch._foreach_mul_(tgt, 1.0 - tau)\n    torch._foreach_add_(tgt, src, alpha=tau)",
        "    torch._foreach_mul_(tgt, tau)\n    torch._foreach_add_(tgt, src, alpha=1.0 - tau)",
        "The Polyak update swaps tau and 1 - tau: the target networks copy the online networks at once.",
        "sac",
        "ddpg",
        "sac-v1",
        "qprop",
    ),
    _m(
        "replay-flags-swapped",
        "off-policy",
        _REPLAY,
        "self.next_obs[i], self.terminated[i], self.truncated[i] = next_obs, terminated, truncated",
        "self.next_obs[i], self.terminated[i], self.truncated[i] = next_obs, truncated, terminated",
        "The replay buffer stores terminated and truncated swapped: time limits stop bootstrapping, "
        "true terminations bootstrap.",
        "sac",
        "ddpg",
        "sac-v1",
        "qprop",
    ),
    _m(
        "offpolicy-next-obs-after-reset",
        "off-policy",
        _OFF,
        "        buffer.add(obs, action, float(reward), next_obs, terminated, truncated)\n"
        "        obs = next_obs\n"
        "        if terminated or truncated:\n"
        '            ep = info["episode"]\n'
        '            logger.episode(step, float(ep["r"]), int(ep["l"]))\n'
        "            obs = np.asarray(env.reset()[0], dtype=np.float32)\n"
        "            if on_episode_start is not None:\n"
        "                on_episode_start()\n",
        "        prev_obs, obs = obs, next_obs\n"
        "        if terminated or truncated:\n"
        '            ep = info["episode"]\n'
        '            logger.episode(step, float(ep["r"]), int(ep["l"]))\n'
        "            obs = np.asarray(env.reset()[0], dtype=np.float32)\n"
        "            if on_episode_start is not None:\n"
        "                on_episode_start()\n"
        "        buffer.add(prev_obs, action, float(reward), obs, terminated, truncated)\n",
        "At an episode's end the buffer stores the next episode's first observation as next_obs, so truncations "
        "bootstrap from the wrong state (subtle).",
        "sac",
        "ddpg",
        "sac-v1",
    ),
    _m(
        "action-rescale-missing-offset",
        "off-policy",
        _OFF,
        "self.low + (action + 1.0) * 0.5 * (self.high - self.low)",
        "self.low + action * 0.5 * (self.high - self.low)",
        "The [-1, 1] -> [low, high] action rescaling forgets the + 1 shift: the env only receives the lower half "
        "of its action range.",
        "sac",
        "ddpg",
        "sac-v1",
    ),
    _m(
        "tanh-logprob-correction-sign",
        "off-policy",
        _NETS,
        "return gaussian_log_prob(pre_tanh, mean, log_std) - correction.sum(-1)",
        "return gaussian_log_prob(pre_tanh, mean, log_std) + correction.sum(-1)",
        "The tanh change-of-variables correction is added instead of subtracted in the squashed Gaussian log-prob.",
        "sac",
        "sac-v1",
    ),
    _m(
        "sac-alpha-loss-sign",
        "off-policy",
        _SAC,
        "return -(log_alpha * (log_prob.detach() + target_entropy)).mean()",
        "return (log_alpha * (log_prob.detach() + target_entropy)).mean()",
        "The temperature loss has the wrong sign: alpha grows when the entropy is above its target.",
        "sac",
    ),
    _m(
        "sac-alpha-not-exponentiated",
        "off-policy",
        _SAC,
        "alpha = log_alpha.detach().exp()",
        "alpha = log_alpha.detach()",
        "The temperature used in the losses is log(alpha) instead of alpha (0 or negative: no entropy bonus).",
        "sac",
        "sac-v1",
    ),
    _m(
        "sac-q2-never-trained",
        "off-policy",
        _SAC,
        "q_loss = critic_loss(q_value(q1, obs, actions), q_value(q2, obs, actions), y)",
        "q_loss = critic_loss(q_value(q1, obs, actions), q_value(q1, obs, actions), y)",
        "Copy-paste bug: the critic loss uses Q1 twice, so Q2 is never trained but still enters the minimum.",
        "sac",
        "sac-v1",
    ),
    _m(
        "sac-sample-detached",
        "off-policy",
        _SAC,
        "u = mean + log_std.exp() * torch.randn_like(mean)",
        "u = (mean + log_std.exp() * torch.randn_like(mean)).detach()",
        "The actor's sample is detached: no reparameterised gradient of Q flows into the policy.",
        "sac",
        "sac-v1",
    ),
    _m(
        "sac-v1-value-target-entropy-sign",
        "off-policy",
        _SAC,
        "return 0.5 * (v - (q_min - alpha * log_prob).detach()).pow(2).mean()",
        "return 0.5 * (v - (q_min + alpha * log_prob).detach()).pow(2).mean()",
        "SAC v1's state-value target adds alpha log pi instead of subtracting it.",
        "sac-v1",
    ),
    _m(
        "ddpg-actor-loss-sign",
        "off-policy",
        _DDPG,
        "return -q_of_mu.mean()",
        "return q_of_mu.mean()",
        "DDPG's actor minimises Q(s, mu(s)) instead of maximising it.",
        "ddpg",
    ),
    _m(
        "ddpg-critic-target-frozen",
        "off-policy",
        _DDPG,
        "        polyak_update(actor_target, actor, cfg.tau)\n        polyak_update(critic_target, critic, cfg.tau)\n",
        "        polyak_update(actor_target, actor, cfg.tau)\n",
        "DDPG's critic target is never updated (it stays at its initial weights).",
        "ddpg",
    ),
    _m(
        "ddpg-target-uses-online-actor",
        "off-policy",
        _DDPG,
        "critic_target(next_obs, actor_target(next_obs))",
        "critic_target(next_obs, actor(next_obs))",
        "DDPG's Bellman target picks the next action with the online actor instead of the target actor (subtle).",
        "ddpg",
    ),
)

register(
    _m(
        "awr-weights-sign",
        "awr",
        _AWR,
        "return torch.exp(adv / temperature).clamp(max=weight_clip)",
        "return torch.exp(-adv / temperature).clamp(max=weight_clip)",
        "AWR's weights are exp(-A / beta): the policy imitates the worst actions most.",
        "awr",
    ),
    _m(
        "awr-weight-clip-as-floor",
        "awr",
        _AWR,
        "return torch.exp(adv / temperature).clamp(max=weight_clip)",
        "return torch.exp(adv / temperature).clamp(min=weight_clip)",
        "The weight clip is a floor instead of a ceiling: weights are at least w_max and unbounded above.",
        "awr",
    ),
    _m(
        "awr-critic-target-unscaled",
        "awr",
        _AWR,
        "loss = value_regression_loss(value_fn, obs[idx], targets[idx] / value_scale)",
        "loss = value_regression_loss(value_fn, obs[idx], targets[idx])",
        "The critic regresses on unscaled TD(lambda) targets although its output is multiplied by 1 / (1 - gamma).",
        "awr",
    ),
    _m(
        "awr-minibatch-stride-one",
        "awr",
        _AWR,
        "yield perm[(b * cfg.minibatch_size + torch.arange(cfg.minibatch_size)) % n]",
        "yield perm[(b + torch.arange(cfg.minibatch_size)) % n]",
        "AWR's sampler advances by one sample instead of one minibatch: consecutive minibatches nearly coincide "
        "and most of the buffer is never used.",
        "awr",
    ),
    _m(
        "awr-buffer-keeps-oldest",
        "awr",
        _REPLAY,
        "setattr(self, name, (rows if old is None else np.concatenate([old, rows]))[-self.capacity :])",
        "setattr(self, name, (rows if old is None else np.concatenate([old, rows]))[: self.capacity])",
        "AWR's FIFO buffer keeps the oldest samples instead of the newest once full (it stops taking new data).",
        "awr",
    ),
)

register(
    _m(
        "qprop-control-variate-sign",
        "qprop",
        _QPROP,
        "    signal = adv - eta * abar\n    if not center:",
        "    signal = adv + eta * abar\n    if not center:",
        "The learning signal adds eta A_bar instead of subtracting it, so the control variate is counted twice.",
        "qprop",
    ),
    _m(
        "qprop-eta-rule-inverted",
        "qprop",
        _QPROP,
        "return (adv * abar > 0).float()",
        "return (adv * abar < 0).float()",
        "The conservative eta rule switches the control variate on where A_hat and A_bar disagree in sign.",
        "qprop",
    ),
    _m(
        "qprop-analytic-term-unscaled",
        "qprop",
        _QPROP,
        "(eta * (grad_q * mean).sum(-1)).mean() / scale",
        "(eta * (grad_q * mean).sum(-1)).mean()",
        "The analytic term is not divided by the learning signal's scale s (the reference code's bias; subtle).",
        "qprop",
    ),
    _m(
        "qprop-analytic-term-sign",
        "qprop",
        _QPROP,
        "return (ratio * signal).mean() + (eta * (grad_q * mean).sum(-1)).mean() / scale",
        "return (ratio * signal).mean() - (eta * (grad_q * mean).sum(-1)).mean() / scale",
        "The analytic term E[eta grad_a Q . mu] is subtracted instead of added back.",
        "qprop",
    ),
    _m(
        "qprop-mu-target-frozen",
        "qprop",
        _QPROP,
        "            polyak_update(mu_target, policy.mean, cfg.tau)\n",
        "",
        "The target policy mean of Q-Prop's critic never tracks the policy (its target stays at the initial policy).",
        "qprop",
    ),
)
