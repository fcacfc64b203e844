"""Environment construction: the supported env ids, the normalisation wrappers, and their saved state.

Wrapper stack (innermost first):
  gym.make(env_id)            TimeLimit sets ``truncated`` at the env's max_episode_steps
  RecordEpisodeStatistics     raw (un-normalised) episode return/length: what every score is computed from
  Normalize                   (optional) the reference code's VecNormalize for one env:
                              obs <- clip((obs - mean) / sqrt(var + 1e-8), -c_o, c_o), running mean/var of obs;
                              ret <- gamma * ret + r (reset to 0 at episode ends), r <- clip(r / sqrt(var_ret
                              + 1e-8), -c_r, c_r). One wrapper doing both, instead of gymnasium's four
                              (NormalizeObservation, TransformObservation, NormalizeReward, TransformReward), because
                              those cost ~90 us per step here, a fifth of a lean PPO step; the statistics are the
                              same running mean/variance (Chan et al.'s parallel update, as baselines).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from replications.core.errors import UserError

MUJOCO_ENVS = (
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Humanoid-v5",
    "Swimmer-v5",
    "Reacher-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
)
CLASSIC_ENVS = (
    "CartPole-v1",
    "Acrobot-v1",
    "Pendulum-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
)
SUPPORTED_ENVS = MUJOCO_ENVS + CLASSIC_ENVS


def check_env_id(env_id: str) -> str:
    if env_id not in SUPPORTED_ENVS:
        raise UserError(f"unknown env '{env_id}'; allowed: {', '.join(SUPPORTED_ENVS)}")
    return env_id


@dataclass(frozen=True)
class Normalization:
    """Which of the reference code's env-side normalisations to apply, each with the values it needs (from the
    algorithm's config, ``normalization()``): observations need their clip, rewards their discount and clip."""

    observations: bool = False
    rewards: bool = False
    gamma: float | None = None
    """The discount of the running return that rewards are divided by the standard deviation of."""
    clip_observations: float | None = None
    clip_rewards: float | None = None
    obs_update_limit: int | None = None
    """Stop updating the observation statistics after this many samples (AWR's normaliser; None: never)."""

    def check(self, algo: str = "the algorithm") -> Normalization:
        """This normalisation, if each normalisation it applies has its values; else a one-line error."""
        if self.observations and self.clip_observations is None:
            raise UserError(f"observation normalisation needs clip_observations, which {algo}'s config does not have")
        if self.rewards and (self.gamma is None or self.clip_rewards is None):
            raise UserError(f"reward normalisation needs gamma and clip_rewards, which {algo}'s config does not have")
        return self


RAW = Normalization()
"""Raw observations and rewards (the off-policy algorithms, SB3's own envs, evaluation envs)."""


class RunningMeanStd:
    """Running mean and variance, updated one sample at a time (baselines' RunningMeanStd, batch of 1)."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = epsilon

    def update(self, x: np.ndarray | float) -> None:
        total = self.count + 1.0
        delta = x - self.mean
        self.mean = self.mean + delta / total
        self.var = (self.var * self.count + delta * delta * self.count / total) / total
        self.count = total


class Normalize(gym.Wrapper):
    """Observation and reward normalisation of the reference code (see the module docstring)."""

    def __init__(self, env: gym.Env, norm: Normalization):
        super().__init__(env)
        self.norm = norm.check()
        self.obs_rms = RunningMeanStd(tuple(env.observation_space.shape or ())) if norm.observations else None
        self.ret_rms = RunningMeanStd(()) if norm.rewards else None
        self.discounted_return = 0.0

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        if self.obs_rms is None:
            return obs
        if self.norm.obs_update_limit is None or self.obs_rms.count < self.norm.obs_update_limit:
            self.obs_rms.update(obs)
        return self.normalized(obs)

    def normalized(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` standardised by the current statistics (without updating them), clipped."""
        rms, c = self.obs_rms, self.norm.clip_observations
        assert rms is not None and c is not None, "observation normalisation is off"  # check() made c a float
        return np.clip((obs - rms.mean) / np.sqrt(rms.var + 1e-8), -c, c).astype(np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.discounted_return = 0.0
        return self._obs(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.ret_rms is not None:
            self.discounted_return = self.discounted_return * self.norm.gamma + float(reward)
            self.ret_rms.update(self.discounted_return)
            c = self.norm.clip_rewards
            assert c is not None  # check() made it a float
            reward = min(max(float(reward) / float(np.sqrt(self.ret_rms.var + 1e-8)), -c), c)
            if terminated or truncated:
                self.discounted_return = 0.0
        return self._obs(obs), reward, terminated, truncated, info


def make_env(env_id: str, seed: int, norm: Normalization) -> gym.Env:
    """Build one seeded env with the wrapper stack in the module docstring."""
    env = gym.make(check_env_id(env_id))
    env = gym.wrappers.RecordEpisodeStatistics(env)
    if norm.observations or norm.rewards:
        env = Normalize(env, norm)
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    return env


def normalization_state(env: gym.Env) -> dict[str, np.ndarray]:
    """The running statistics of the normalisation wrappers (saved with every run)."""
    state: dict[str, np.ndarray] = {}
    while isinstance(env, gym.Wrapper):
        if isinstance(env, Normalize):
            for name, rms in (("obs", env.obs_rms), ("ret", env.ret_rms)):
                if rms is not None:
                    state.update(
                        {
                            f"{name}_mean": np.asarray(rms.mean),
                            f"{name}_var": np.asarray(rms.var),
                            f"{name}_count": np.asarray(rms.count),
                        }
                    )
        env = env.env
    return state
