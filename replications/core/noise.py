"""Exploration noise for deterministic policies (DDPG), seeded by an explicit NumPy generator."""

from __future__ import annotations

import numpy as np


class OrnsteinUhlenbeckNoise:
    """x_{t+1} = x_t + theta (mu - x_t) dt + sigma sqrt(dt) N(0, I)  (DDPG paper, Section 7: theta 0.15, sigma 0.2)."""

    def __init__(
        self,
        size: int,
        rng: np.random.Generator,
        theta: float = 0.15,
        sigma: float = 0.2,
        mu: float = 0.0,
        dt: float = 1.0,
    ):
        self.size, self.rng, self.theta, self.sigma, self.mu, self.dt = size, rng, theta, sigma, mu, dt
        self.reset()

    def reset(self) -> None:
        self.x = np.full(self.size, self.mu, dtype=np.float64)

    def __call__(self) -> np.ndarray:
        self.x = (
            self.x
            + self.theta * (self.mu - self.x) * self.dt
            + self.sigma * np.sqrt(self.dt) * self.rng.standard_normal(self.size)
        )
        return self.x.astype(np.float32)


class GaussianNoise:
    """Independent N(0, sigma^2) per step."""

    def __init__(self, size: int, rng: np.random.Generator, sigma: float = 0.1):
        self.size, self.rng, self.sigma = size, rng, sigma

    def reset(self) -> None:
        pass

    def __call__(self) -> np.ndarray:
        return (self.sigma * self.rng.standard_normal(self.size)).astype(np.float32)
