"""Bootstrapped targets and target networks for the off-policy algorithms (DDPG, SAC, Q-Prop's critic).

Shapes: rewards, terminated, next_q, next_log_prob are (B,); the returned targets are (B,).
"""

from __future__ import annotations

import torch
from torch import nn


def bellman_target(rewards: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor, gamma: float) -> torch.Tensor:
    """y = r + gamma (1 - terminated) Q'(s', mu'(s'))  (DDPG, Lillicrap et al. 2016, Algorithm 1)."""
    return rewards + gamma * (1.0 - terminated) * next_q


def soft_bellman_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: float | torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """y = r + gamma (1 - terminated) (Q'(s', a') - alpha log pi(a'|s')), a' ~ pi(.|s')
    (SAC, Haarnoja et al. 2018, eqs. 3 and 5, with next_q the minimum of the two target critics)."""
    return rewards + gamma * (1.0 - terminated) * (next_q - alpha * next_log_prob)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta' <- tau theta + (1 - tau) theta' for every parameter (and buffer) of ``target``."""
    tgt = [*target.parameters(), *target.buffers()]
    src = [*source.parameters(), *source.buffers()]
    torch._foreach_mul_(tgt, 1.0 - tau)
    torch._foreach_add_(tgt, src, alpha=tau)
