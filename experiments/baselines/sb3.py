"""Stable-Baselines3 run under *our* paper configs, writing the same run contract as our implementations.

``ADAPTERS`` is a table, one ``SB3Adapter`` per algorithm: the SB3 class, its keyword arguments as data
(SB3's name -> our config field, or a function of the config and the env's action dimension), the settings
SB3 cannot express at all (refused with a one-line error), and the differences the mapping cannot remove
(recorded in the run's metadata and shown in the report). One training function per kind (on-policy,
off-policy) runs any of them and records training episodes through the same ``RunLogger`` (raw returns from
SB3's ``Monitor``, innermost wrapper). The described arguments are part of an SB3 run's identity (run id).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import TRPO
from stable_baselines3 import DDPG, PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize
from torch import nn

from replications.core.envs import RAW, Normalization, check_env_id, make_env
from replications.core.errors import UserError
from replications.core.evaluation import evaluate
from replications.core.logging import RunLogger
from replications.core.offpolicy import OffPolicySchedule, run_device
from replications.core.seeding import seed_everything

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class LinearSchedule:
    """SB3 learning-rate schedule: ``initial * progress_remaining`` (annealed to 0), or constant."""

    def __init__(self, initial: float, anneal: bool):
        self.initial, self.anneal = initial, anneal

    def __call__(self, progress_remaining: float) -> float:
        return self.initial * (progress_remaining if self.anneal else 1.0)

    def __repr__(self) -> str:
        return f"LinearSchedule({self.initial!r}, anneal={self.anneal})"


def describe(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The SB3 arguments as JSON data (schedules and classes by name): saved with the run and hashed into
    its id, so a changed mapping never reuses a stale SB3 run."""

    def default(obj: Any) -> str:
        return obj.__name__ if isinstance(obj, type) else repr(obj)

    return json.loads(json.dumps(kwargs, default=default, sort_keys=True))


class EpisodeRecorder(BaseCallback):
    """Writes SB3's finished training episodes and per-iteration statistics to our RunLogger."""

    STATS = {
        "train/policy_gradient_loss": "policy_loss",
        "train/value_loss": "value_loss",
        "train/approx_kl": "approx_kl",
        "train/learning_rate": "lr",
        "train/clip_fraction": "clip_fraction",
    }

    def __init__(self, logger: RunLogger):
        super().__init__()
        self.run_logger = logger

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.run_logger.episode(self.num_timesteps, float(info["episode"]["r"]), int(info["episode"]["l"]))
        return True

    def _log_iteration(self) -> None:
        values = self.model.logger.name_to_value
        stats = {ours: float(values[theirs]) for theirs, ours in self.STATS.items() if theirs in values}
        if "train/entropy_loss" in values:
            stats["entropy"] = -float(values["train/entropy_loss"])
        self.run_logger.iteration(self.num_timesteps, **stats)

    def _on_rollout_start(self) -> None:  # SB3 trains between rollouts: log the previous iteration here
        if self.num_timesteps > 0:
            self._log_iteration()

    def _on_training_end(self) -> None:
        self._log_iteration()


def make_sb3_env(env_id: str, seed: int, norm: Normalization) -> VecEnv:
    """SB3's env for one seed, with our config's normalisation as SB3's ``VecNormalize``."""
    venv: VecEnv = DummyVecEnv([lambda: Monitor(gym.make(check_env_id(env_id)))])
    venv.seed(seed)
    if norm.observations or norm.rewards:
        given = {"clip_obs": norm.clip_observations, "clip_reward": norm.clip_rewards, "gamma": norm.gamma}
        values: dict[str, Any] = {k: v for k, v in given.items() if v is not None}  # absent: unused, SB3's default
        venv = VecNormalize(venv, norm_obs=norm.observations, norm_reward=norm.rewards, epsilon=1e-8, **values)
    return venv


def _policy_kwargs(
    pi: tuple[int, ...], vf: tuple[int, ...], activation: str, log_std: float, ortho: bool, adam_eps: float
) -> dict[str, Any]:
    return dict(
        net_arch=dict(pi=list(pi), vf=list(vf)),
        activation_fn=ACTIVATIONS[activation],
        log_std_init=log_std,
        ortho_init=ortho,
        optimizer_kwargs=dict(eps=adam_eps),
    )


@functools.cache
def action_dims(env_id: str) -> int:
    """k, the number of independent action dimensions of ``env_id`` (1 for a discrete action space)."""
    env = gym.make(check_env_id(env_id))
    space = env.action_space
    env.close()
    return int(np.prod(space.shape)) if isinstance(space, gym.spaces.Box) else 1


# -- off-policy (SAC, DDPG): deterministic evaluation episodes, as our off-policy driver runs them ----------
class OffPolicyRecorder(BaseCallback):
    """Episodes at every step; SB3's training statistics every ``log_every`` steps; deterministic evaluation
    episodes every ``eval_every`` steps on a separate env with our ``evaluate`` (same seeds as our runs).

    The evaluation at step t sees the policy after step t's gradient steps, as in our driver: SB3 trains after
    ``_on_step`` (between rollouts), so it runs at the next rollout's start, or at the end of training."""

    STATS = {"train/critic_loss": "critic_loss", "train/actor_loss": "actor_loss", "train/ent_coef": "alpha"}

    def __init__(self, logger: RunLogger, eval_env: gym.Env, schedule: OffPolicySchedule, seed: int):
        super().__init__()
        self.run_logger, self.eval_env, self.schedule, self.seed = logger, eval_env, schedule, seed
        self.evaluated = 0

    def _evaluate_if_due(self) -> None:
        t, s = self.num_timesteps, self.schedule
        if t > self.evaluated and (t % s.eval_every == 0 or t == s.total_steps):
            self.evaluated = t
            exploit = lambda obs: self.model.predict(obs, deterministic=True)[0]  # noqa: E731
            self.run_logger.evaluation(t, evaluate(self.eval_env, exploit, s.eval_episodes, self.seed + 10_000 + t))

    def _on_rollout_start(self) -> None:
        self._evaluate_if_due()

    def _on_training_end(self) -> None:
        self._evaluate_if_due()

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.run_logger.episode(self.num_timesteps, float(info["episode"]["r"]), int(info["episode"]["l"]))
        t, s = self.num_timesteps, self.schedule
        if t % s.log_every == 0 or t == s.total_steps:
            values = self.model.logger.name_to_value
            stats = {ours: float(values[theirs]) for theirs, ours in self.STATS.items() if theirs in values}
            if stats:
                self.run_logger.iteration(t, **stats)
        return True


class PaperDDPG(DDPG):
    """SB3's DDPG (TD3 with its tricks removed) with two settings of the DDPG paper SB3 has no argument
    for: separate actor and critic learning rates, and weight decay on the critic only."""

    def __init__(self, *args: Any, actor_learning_rate: float, critic_weight_decay: float, **kwargs: Any):
        self.actor_learning_rate, self.critic_weight_decay = actor_learning_rate, critic_weight_decay
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        for group in self.critic.optimizer.param_groups:
            group["weight_decay"] = self.critic_weight_decay

    def _update_learning_rate(self, optimizers: Any) -> None:
        super()._update_learning_rate(optimizers)  # both at learning_rate (the critic's)
        for group in self.actor.optimizer.param_groups:
            group["lr"] = self.actor_learning_rate


Setting = str | Callable[[Any, int], Any]
"""An SB3 argument's value: the name of our config's field, or ``f(cfg, action_dim)``."""
Difference = str | Callable[[Any, int], str | None]
"""A difference SB3 leaves: text, or ``f(cfg, action_dim)`` giving text (None where it does not apply)."""
ABSENT = object()
"""A ``Setting`` function's value for an argument not passed at all."""


@dataclass(frozen=True)
class SB3Adapter:
    """One SB3 / sb3-contrib algorithm run under our config (see the module docstring)."""

    algo_cls: type
    settings: dict[str, Setting]
    differences: tuple[Difference, ...]
    off_policy: bool
    refuse: tuple[tuple[Callable[[Any], bool], str], ...] = ()
    """(condition on our config, error): settings of ours SB3 cannot run."""
    per_action_dim: bool = False
    """Whether the arguments depend on the env's action dimension (else it is not looked up: making a MuJoCo
    env only to count its actions costs time and prints MuJoCo's warnings)."""

    def _action_dim(self, env_id: str) -> int:
        return action_dims(env_id) if self.per_action_dim else 1

    def kwargs(self, cfg: Any, action_dim: int) -> dict[str, Any]:
        """SB3's keyword arguments for our config (markers for objects built at training time included)."""
        for applies, error in self.refuse:
            if applies(cfg):
                raise UserError(error.format(cfg=cfg))
        values = {
            name: getattr(cfg, v) if isinstance(v, str) else v(cfg, action_dim) for name, v in self.settings.items()
        }
        return {name: v for name, v in values.items() if v is not ABSENT}

    def describe(self, cfg: Any, env_id: str) -> dict[str, Any]:
        """The arguments for ``env_id`` as JSON data (the run's identity)."""
        return describe(self.kwargs(cfg, self._action_dim(env_id)))

    def differences_for(self, cfg: Any, action_dim: int) -> list[str]:
        texts = [d if isinstance(d, str) else d(cfg, action_dim) for d in self.differences]
        return [t for t in texts if t is not None]

    def train(self, env_id: str, cfg: Any, seed: int, total_steps: int, logger: RunLogger) -> dict[str, Any]:
        """Train one seed with SB3, writing our run contract; returns the run's facts."""
        k = self._action_dim(env_id)
        run = _train_off_policy if self.off_policy else _train_on_policy
        facts = run(self.algo_cls, self.kwargs(cfg, k), env_id, cfg, seed, total_steps, logger)
        return {**facts, "sb3_differences": self.differences_for(cfg, k)}


def _train_on_policy(
    algo_cls: type, kwargs: dict[str, Any], env_id: str, cfg: Any, seed: int, total_steps: int, logger: RunLogger
) -> dict[str, Any]:
    """Run an SB3 on-policy algorithm with env normalisation taken from our config."""
    seed_everything(seed)
    venv = make_sb3_env(env_id, seed, cfg.normalization().check())
    model = algo_cls("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs)
    model.learn(total_timesteps=total_steps, callback=EpisodeRecorder(logger))
    torch.save({"policy": model.policy.state_dict()}, logger.run_dir / "model.pt")
    norm: dict[str, np.ndarray] = {}
    if isinstance(venv, VecNormalize):
        obs_rms: Any = venv.obs_rms  # one RunningMeanStd (a flat Box observation space)
        norm = {"obs_mean": obs_rms.mean, "obs_var": obs_rms.var, "ret_var": np.asarray(venv.ret_rms.var)}
    venv.close()
    return {"steps": int(model.num_timesteps), "normalization": norm}


def _train_off_policy(
    algo_cls: type, kwargs: dict[str, Any], env_id: str, cfg: Any, seed: int, total_steps: int, logger: RunLogger
) -> dict[str, Any]:
    """Run an SB3 off-policy algorithm on raw observations and rewards, evaluated as our driver evaluates."""
    seed_everything(seed)
    venv = make_sb3_env(env_id, seed, RAW)
    if not isinstance(venv.action_space, gym.spaces.Box):
        raise ValueError(f"{algo_cls.__name__} needs a continuous action space; {env_id} has {venv.action_space}")
    eval_env = make_env(env_id, seed + 1, RAW)
    kwargs = dict(kwargs)
    if kwargs.pop("ou_noise", None) is not None:  # built here: it needs the action dimension
        d = venv.action_space.shape[0]
        kwargs["action_noise"] = OrnsteinUhlenbeckActionNoise(
            np.zeros(d), cfg.noise_sigma * np.ones(d), theta=cfg.noise_theta, dt=1.0
        )
    elif kwargs.pop("gaussian_noise", None) is not None:
        d = venv.action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(d), cfg.noise_sigma * np.ones(d))
    # the same device as ours (RLREPRO_DEVICE): a GPU cross-check or benchmark runs both there
    model = algo_cls("MlpPolicy", venv, seed=seed, device=run_device(), verbose=0, **kwargs)
    schedule = OffPolicySchedule.from_config(cfg, total_steps)
    model.learn(total_timesteps=total_steps, callback=OffPolicyRecorder(logger, eval_env, schedule, seed))
    torch.save({"policy": model.policy.state_dict()}, logger.run_dir / "model.pt")
    venv.close()
    eval_env.close()
    return {"steps": int(model.num_timesteps)}


# The replay and update schedule SB3's off-policy algorithms share with ours: one env step, then
# ``gradient_steps`` updates on minibatches from the buffer, after ``warmup_steps`` random steps.
REPLAY: dict[str, Setting] = {
    "buffer_size": "buffer_size",
    "learning_starts": "warmup_steps",
    "batch_size": "batch_size",
    "tau": "tau",
    "gamma": "gamma",
    "train_freq": lambda c, k: 1,
    "gradient_steps": "gradient_steps",
}

VALUE_CLIPPING = (
    "Value clipping: SB3's clip_range_vf clips the prediction, (V_old + clip(V - V_old) - R)^2, without "
    "the reference code's max with the unclipped error; both stop the value moving more than "
    "clip_range per batch towards its target, they differ when it overshoots."
)

FINAL_OBSERVATIONS = (
    "Observation statistics: ours counts each episode's final observation in the running mean/variance (then "
    "the reset observation); SB3's VecNormalize, like baselines', counts only the observations the policy acts on "
    "and standardises the final one after the reset observation has updated them (found by rlrepro lockstep ppo)."
)

ADAPTERS: dict[str, SB3Adapter] = {
    "ppo": SB3Adapter(
        PPO,
        {
            "learning_rate": lambda c, k: LinearSchedule(c.learning_rate, c.anneal_learning_rate),
            "n_steps": "horizon",
            "batch_size": "minibatch_size",
            "n_epochs": "epochs",
            "gamma": "gamma",
            "gae_lambda": "gae_lambda",
            "clip_range": "clip_range",
            "clip_range_vf": lambda c, k: c.clip_range if c.clip_value_loss else None,
            "normalize_advantage": "normalize_advantages",
            "ent_coef": "entropy_coef",
            # SB3's value loss is the plain MSE; ours (the reference code's) is 0.5 * MSE: same effective weight
            "vf_coef": lambda c, k: c.value_coef * 0.5,
            "max_grad_norm": "max_grad_norm",
            "policy_kwargs": lambda c, k: _policy_kwargs(
                c.hidden_sizes, c.hidden_sizes, c.activation, c.init_log_std, c.orthogonal_init, c.adam_eps
            ),
        },
        (
            "vf_coef = 0.5 * value_coef because SB3's value loss is MSE, ours 0.5 * MSE (same gradient).",
            "SB3 anneals the learning rate after each rollout (progress_remaining), ours before it: one iteration "
            "apart.",
            "Normalisation by SB3's VecNormalize (same running mean/var formulas, epsilon 1e-8).",
            lambda c, k: FINAL_OBSERVATIONS if c.normalize_observations else None,
            lambda c, k: VALUE_CLIPPING if c.clip_value_loss else None,
        ),
        off_policy=False,
    ),
    # sb3-contrib's KL is ``kl_divergence(new, old).mean()`` over a per-dimension Gaussian: it divides by the
    # action dimension k as well as by the batch, where ours (the paper's) sums over dimensions. Its curvature
    # matrix is then F/k + damping I, so it is given ``target_kl = delta / k`` and ``cg_damping = damping / k``:
    # (F + damping I) / k, CG's solution k times ours, and its step sqrt(2 (delta/k) / (k^2 x'(F + d I)x/k)) k x
    # = ours; its line-search KL < delta / k is ours' summed KL < delta (tests/test_trpo_sb3.py).
    "trpo": SB3Adapter(
        TRPO,
        {
            "learning_rate": "value_learning_rate",
            "n_steps": "horizon",
            "batch_size": "value_minibatch_size",
            "gamma": "gamma",
            "gae_lambda": "gae_lambda",
            "cg_max_steps": "cg_iters",
            "cg_damping": lambda c, k: c.cg_damping / k,
            "line_search_shrinking_factor": "line_search_shrink",
            "line_search_max_iter": "line_search_max_backtracks",
            "n_critic_updates": "value_epochs",
            "normalize_advantage": "normalize_advantages",
            "target_kl": lambda c, k: c.max_kl / k,
            "sub_sampling_factor": lambda c, k: 1,
            "policy_kwargs": lambda c, k: _policy_kwargs(
                c.hidden_sizes, c.value_hidden_sizes, c.activation, c.init_log_std, c.orthogonal_init, c.value_adam_eps
            ),
        },
        (
            lambda c, k: (
                "Fisher subsampling off in sb3-contrib (its sub_sampling_factor subsamples the gradient and line "
                f"search too, not only the Fisher-vector product as ours, every {c.fisher_subsample}th sample)."
            ),
            lambda c, k: (
                f"sb3-contrib averages its KL over the {k} action dimension(s) where ours sums them: it "
                f"runs with target_kl = max_kl / {k} and cg_damping = cg_damping / {k}, which makes its Fisher-vector "
                "product, CG solution and step ours."
            ),
            "sb3-contrib's line search bounds KL(pi_new || pi_old), ours KL(pi_old || pi_new) (the same to second "
            "order, the quantity both steps are sized by); it accepts KL < target_kl (strict), ours KL <= delta.",
            "Observation clipping by SB3's VecNormalize (same running mean/var).",
            lambda c, k: FINAL_OBSERVATIONS if c.normalize_observations else None,
        ),
        off_policy=False,
        per_action_dim=True,
    ),
    "sac": SB3Adapter(
        SAC,
        {
            "learning_rate": "learning_rate",
            **REPLAY,
            "ent_coef": lambda c, k: f"auto_{c.init_alpha}" if c.auto_alpha else c.init_alpha,
            "target_entropy": lambda c, k: "auto",  # -dim(A)
            "target_update_interval": lambda c, k: 1,
            "policy_kwargs": lambda c, k: dict(net_arch=list(c.hidden_sizes), activation_fn=nn.ReLU),
        },
        (
            "SB3 updates the temperature first in each gradient step, then the critics and the actor; ours "
            "follows the paper's Algorithm 1 (critics, actor, temperature). Both use the temperature from before "
            "its own update in the losses.",
            "SB3's actor has separate mean and log-std output layers; ours one output layer split in two (the "
            "same function class, PyTorch default init in both).",
            "SB3's tanh log-prob correction is log(1 - tanh(u)^2 + 1e-6); ours is exact. From the same weights and "
            "minibatches the two gradient steps agree to 1e-6 (tests/test_sac.py).",
            lambda c, k: (
                "SB3's SAC has no state-value network: its critics regress on the v2 soft target "
                "(min of the target critics minus alpha log pi) instead of v1's target V network."
                if c.value_network
                else None
            ),
        ),
        off_policy=True,
        refuse=(
            (
                lambda c: c.target_entropy_per_dim != -1.0,
                "the SB3 SAC adapter supports only the paper's target entropy -dim(A)",
            ),
            (
                lambda c: c.log_prob_epsilon != 0.0,
                "log_prob_epsilon = {cfg.log_prob_epsilon} is an ablation of our "
                "SAC (SB3's is fixed at 1e-6); run it with --impl ours",
            ),
        ),  # fmt: skip
    ),
    "ddpg": SB3Adapter(
        PaperDDPG,
        {
            "learning_rate": "critic_learning_rate",
            "actor_learning_rate": "actor_learning_rate",
            "critic_weight_decay": "critic_weight_decay",
            **REPLAY,
            "policy_kwargs": lambda c, k: dict(net_arch=list(c.hidden_sizes), activation_fn=nn.ReLU),
            # markers: the noise is built at training time (it needs the action dimension)
            "ou_noise": lambda c, k: True if c.noise == "ou" else ABSENT,
            "gaussian_noise": lambda c, k: ABSENT if c.noise == "ou" else True,
        },
        (
            "SB3's critic takes the action at its first layer; the paper's (and ours) at the second hidden layer.",
            lambda c, k: (
                f"SB3's final layers keep PyTorch's default init; the paper's are U[-{c.final_layer_init}, "
                f"{c.final_layer_init}]."
            ),
            "SB3's DDPG is TD3 with target smoothing, delayed updates and twin critics switched off "
            "(target_policy_noise has no effect with target_noise_clip 0).",
            "SB3 adds the exploration noise to its uniform warm-up actions too (clipped to the bounds); ours (TD3's "
            "protocol) takes them uniform. With these aligned, the two loops take the same actions "
            "(tests/test_ddpg.py).",
        ),
        off_policy=True,
        refuse=(
            (
                lambda c: c.action_layer != 2,
                "action_layer = {cfg.action_layer} is an ablation of our DDPG (SB3's "
                "critic always takes the action at its input); run it with --impl ours",
            ),
        ),  # fmt: skip
    ),
}
