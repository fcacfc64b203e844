"""Advantage estimators on one trajectory segment (written once, used by PPO, TRPO, NPG, Q-Prop).

Shapes: every argument of ``gae`` is a 1-D array of length T (one env, time-major); ``standardize`` works
along the last dimension of a torch tensor ((T,) for one seed, (K, T) for K seeds).

Termination vs truncation: ``next_values[t]`` is V(s_{t+1}) for the state actually reached after step t,
*including* the final observation of an episode cut by a time limit (bootstrap on truncation);
``terminated[t]`` zeroes the bootstrap only for true terminal states; ``dones[t]`` (terminated or
truncated) stops the backward recursion at every episode boundary.
"""

from __future__ import annotations

import numpy as np
import torch


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    dones: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized Advantage Estimation (Schulman et al. 2016, eqs. 11-16). Returns (advantages, returns).

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}
    returns = A_t + V(s_t)   (the TD(lambda) value target)
    """
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values
    decay = gamma * lam * (1.0 - dones)
    advantages = np.empty_like(deltas)
    running = 0.0
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        advantages[t] = running
    return advantages, advantages + values


def td_lambda_returns(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    dones: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """TD(lambda) value targets (AWR's critic targets; Sutton & Barto 12.1), same arguments as ``gae``:

    R_t = r_t + gamma (1 - terminated_t) [(1 - lam) V(s_{t+1}) + lam R_{t+1}]   inside an episode
    R_t = r_t + gamma V(final obs)                                               at a truncation
    These are exactly GAE's returns A_t + V(s_t), so they are computed by ``gae`` (written once)."""
    return gae(rewards, values, next_values, terminated, dones, gamma, lam)[1]


def standardize(adv: torch.Tensor, eps: float, unbiased: bool = True) -> torch.Tensor:
    """(A - mean A) / (std A + eps) along the last dimension (the advantage normalisation of PPO, TRPO and
    NPG's reference code; ``unbiased=False`` for the population std, as mjrl)."""
    return (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, unbiased=unbiased, keepdim=True) + eps)
