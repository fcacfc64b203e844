"""Networks and action distributions shared by the algorithms.

Shapes: ``obs`` is (B, obs_dim); continuous ``actions`` are (B, act_dim); discrete actions are (B,) int64;
log-probabilities and entropies are (B,) (summed over independent action dimensions).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gymnasium as gym
import numpy as np
import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
LOG_2PI = math.log(2.0 * math.pi)

Action = np.ndarray | np.integer
"""An action as the env takes it: a float array (Box), an integer scalar (Discrete)."""


def frozen_copy(net: nn.Module) -> nn.Module:
    """A target network: a copy of ``net`` that no optimiser trains (moved by Polyak averaging)."""
    target = copy.deepcopy(net)
    target.requires_grad_(False)
    return target


@contextmanager
def params_frozen(*nets: nn.Module) -> Iterator[None]:
    """Forward passes inside record no gradient for these nets' parameters; gradients still flow through
    them to their inputs. The actor's loss through a critic it does not train (DDPG, SAC) then skips the
    critic's weight gradients, about a tenth of a SAC update's arithmetic, with the same numbers."""
    params = [(p, p.requires_grad) for net in nets for p in net.parameters()]
    for p, _ in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, was in params:
            p.requires_grad_(was)


def mlp(sizes: list[int], activation: str, out_gain: float, orthogonal: bool = True) -> nn.Sequential:
    """Fully connected net; orthogonal init with gain sqrt(2) on hidden layers and ``out_gain`` on the
    output layer, zero biases (the init of the PPO reference code, Huang et al. 2022 detail 2)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        if orthogonal:
            nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2.0))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def numpy_forward(net: nn.Sequential) -> Callable[[np.ndarray], np.ndarray]:
    """A float32 NumPy snapshot of an MLP's forward pass, for acting one observation at a time.

    At 64-unit layers torch's per-call overhead is about five times the arithmetic, and acting is once per
    env step; the snapshot is taken once per rollout (the weights do not change during it).
    """
    layers: list[tuple[np.ndarray, np.ndarray] | Callable[[np.ndarray], np.ndarray]] = []
    for module in net:
        if isinstance(module, nn.Linear):
            layers.append((module.weight.detach().numpy().T.copy(), module.bias.detach().numpy().copy()))
        elif isinstance(module, nn.Tanh | nn.ReLU):
            layers.append(np.tanh if isinstance(module, nn.Tanh) else (lambda x: np.maximum(x, 0.0)))
        else:
            raise TypeError(f"numpy_forward: unsupported layer {module}")

    def forward(x: np.ndarray) -> np.ndarray:
        for layer in layers:
            x = x @ layer[0] + layer[1] if isinstance(layer, tuple) else layer(x)
        return x

    return forward


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(log_std))^2), summed over the last dimension."""
    z = (x - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)


def tanh_gaussian_log_prob(
    pre_tanh: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor, epsilon: float = 0.0
) -> torch.Tensor:
    """log pi(a|s) of a = tanh(u), u ~ N(mean, std^2): the change of variables
    log pi(a|s) = log N(u) - sum_i log(1 - tanh(u_i)^2)  (SAC, Haarnoja et al. 2018, Appendix C, eq. 21),
    with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) for numerical stability; with ``epsilon`` > 0,
    log(1 - tanh(u)^2 + epsilon) instead (SB3's and the SAC reference code's form, 1e-6 there)."""
    if epsilon > 0.0:
        correction = torch.log(1.0 - torch.tanh(pre_tanh).pow(2) + epsilon)
    else:
        correction = 2.0 * (math.log(2.0) - pre_tanh - torch.nn.functional.softplus(-2.0 * pre_tanh))
    return gaussian_log_prob(pre_tanh, mean, log_std) - correction.sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal Gaussian, summed over dimensions (independent of the mean)."""
    return (log_std + 0.5 * (1.0 + LOG_2PI)).sum(-1)


def gaussian_kl(
    mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor, log_std_q: torch.Tensor
) -> torch.Tensor:
    """KL(p || q) of diagonal Gaussians, summed over the last dimension."""
    var_p, var_q = torch.exp(2 * log_std_p), torch.exp(2 * log_std_q)
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q).pow(2)) / (2 * var_q) - 0.5).sum(-1)


class GaussianPolicy(nn.Module):
    """pi(a|s) = N(mu_theta(s), diag(exp(log_std))^2) with a state-independent log-std parameter."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...],
        activation: str,
        init_log_std: float,
        orthogonal: bool = True,
    ):
        super().__init__()
        self.mean = mlp([obs_dim, *hidden, act_dim], activation, out_gain=0.01, orthogonal=orthogonal)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))

    def act(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Sample a ~ pi(.|s) (unclipped)."""
        mean = self.mean(obs)
        return mean + torch.randn(mean.shape, generator=generator) * torch.exp(self.log_std)

    def numpy_actor(self, rng: np.random.Generator) -> Callable[[np.ndarray], Action]:
        """obs (obs_dim,) -> a ~ pi(.|s) as float32 NumPy, from a snapshot of the current parameters."""
        mean = numpy_forward(self.mean)
        std = np.exp(self.log_std.detach().numpy())
        return lambda obs: (mean(obs) + std * rng.standard_normal(std.shape)).astype(np.float32)

    def log_prob_entropy(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_std = self.log_std.expand(obs.shape[0], -1)
        return gaussian_log_prob(actions, self.mean(obs), log_std), gaussian_entropy(log_std)

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The distribution's parameters at ``obs``. The log-std is a view of the parameter: freeze pi_old with
        ``natural_gradient.policy_dist_params`` (copies), not ``detach`` (which shares the storage that the line
        search writes in place)."""
        return self.mean(obs), self.log_std.expand(obs.shape[0], -1)

    def kl_from(self, old: tuple[torch.Tensor, ...], obs: torch.Tensor) -> torch.Tensor:
        """KL(pi_old(.|s) || pi_theta(.|s)) per state, (B,)."""
        return gaussian_kl(*old, *self.dist_params(obs))


class CategoricalPolicy(nn.Module):
    """pi(a|s) = softmax(logits_theta(s)) for discrete action spaces."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...], activation: str, orthogonal: bool = True):
        super().__init__()
        self.logits = mlp([obs_dim, *hidden, n_actions], activation, out_gain=0.01, orthogonal=orthogonal)

    def act(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.multinomial(torch.softmax(self.logits(obs), -1), 1, generator=generator).squeeze(-1)

    def numpy_actor(self, rng: np.random.Generator) -> Callable[[np.ndarray], Action]:
        """obs (obs_dim,) -> a ~ softmax(logits(s)) as an int64 NumPy scalar (inverse-CDF sampling)."""
        logits = numpy_forward(self.logits)

        def act(obs: np.ndarray) -> Action:
            z = logits(obs).astype(np.float64)
            cdf = np.cumsum(np.exp(z - z.max()))
            return np.int64(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))

        return act

    def log_prob_entropy(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_p = torch.log_softmax(self.logits(obs), -1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        return log_p.gather(-1, actions.long()[:, None]).squeeze(-1), entropy

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (torch.log_softmax(self.logits(obs), -1),)

    def kl_from(self, old: tuple[torch.Tensor, ...], obs: torch.Tensor) -> torch.Tensor:
        """KL(pi_old(.|s) || pi_theta(.|s)) per state, (B,)."""
        (old_log_p,) = old
        return (old_log_p.exp() * (old_log_p - torch.log_softmax(self.logits(obs), -1))).sum(-1)


Policy = GaussianPolicy | CategoricalPolicy


def make_policy(
    obs_space: gym.Space,
    act_space: gym.Space,
    hidden: tuple[int, ...],
    activation: str,
    init_log_std: float,
    orthogonal: bool = True,
) -> Policy:
    obs_dim = _dim(obs_space)
    if isinstance(act_space, gym.spaces.Box):
        return GaussianPolicy(obs_dim, int(act_space.shape[0]), hidden, activation, init_log_std, orthogonal)
    if isinstance(act_space, gym.spaces.Discrete):
        return CategoricalPolicy(obs_dim, int(act_space.n), hidden, activation, orthogonal)
    raise TypeError(f"unsupported action space {act_space}")


def _dim(space: gym.Space) -> int:
    """The size of a flat (1-d) observation space."""
    if space.shape is None or len(space.shape) != 1:
        raise TypeError(f"unsupported observation space {space}: a flat Box is needed")
    return int(space.shape[0])


def make_value_function(
    obs_space: gym.Space, hidden: tuple[int, ...], activation: str, orthogonal: bool = True
) -> nn.Module:
    """V_phi(s): an MLP with a scalar output (output gain 1.0, as the reference code)."""
    net = mlp([_dim(obs_space), *hidden, 1], activation, out_gain=1.0, orthogonal=orthogonal)
    return nn.Sequential(net, nn.Flatten(0))
