"""Natural-gradient machinery, written once for NPG, TRPO and Q-Prop.

For a policy pi_theta with parameters theta (a flat vector of n entries) and a batch of states s:
    F v      = grad_theta( grad_theta( mean KL(pi_old(.|s) || pi_theta(.|s)) ) . v ) + damping v
               (the Fisher-vector product as the Hessian of the mean KL at theta = theta_old, double backprop)
    x        = F^-1 g                         by conjugate gradient from x0 = 0 (deterministic), k iterations
    step     = sqrt(2 delta / x^T F x) x      the step whose quadratic KL model equals delta
    accept   theta_old + beta^j step for the first j with  L(theta) > L(theta_old)  and  KL <= delta
             (backtracking line search; TRPO uses it, NPG takes the full step)
Shapes: every vector here is 1-D of length n (``flat_params`` order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Vector = torch.Tensor


def surrogate_objective(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """L(theta) = E[pi_theta(a|s) / pi_old(a|s) * A] (TRPO eq. 14, Kakade & Langford's CPI surrogate), to be
    maximised; its gradient at theta_old is the vanilla policy gradient."""
    return (torch.exp(log_probs - old_log_probs) * advantages).mean()


def flat_params(params: list[nn.Parameter]) -> Vector:
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_flat_params(params: list[nn.Parameter], flat: Vector) -> None:
    offset = 0
    with torch.no_grad():
        for p in params:
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()


def _flatten(grads: tuple[torch.Tensor | None, ...], params: list[nn.Parameter]) -> Vector:
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)]
    )


def flat_grad(
    output: torch.Tensor, params: list[nn.Parameter], create_graph: bool = False, retain_graph: bool | None = None
) -> Vector:
    grads = torch.autograd.grad(output, params, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True)
    return _flatten(grads, params)


def fisher_vector_product(
    mean_kl: Callable[[], torch.Tensor], params: list[nn.Parameter], damping: float
) -> Callable[[Vector], Vector]:
    """v -> (H_KL + damping I) v, with ``mean_kl()`` the mean KL(pi_old || pi_theta) over the batch.

    The KL's gradient graph is built once and reused for every product (double backprop)."""
    kl_grad = flat_grad(mean_kl(), params, create_graph=True)

    def product(v: Vector) -> Vector:
        return flat_grad(kl_grad @ v, params, retain_graph=True) + damping * v

    return product


def conjugate_gradient(avp: Callable[[Vector], Vector], b: Vector, iters: int, tol: float = 1e-10) -> Vector:
    """Solve A x = b for symmetric positive-definite A given only ``avp(v) = A v``, from x0 = 0."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr < tol:
            break
        ap = avp(p)
        alpha = rr / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def kl_scaled_step(x: Vector, fx: Vector, delta: float) -> Vector:
    """sqrt(2 delta / x^T F x) x: the step along x whose second-order KL estimate is delta."""
    return torch.sqrt(2.0 * delta / (x @ fx).clamp_min(1e-20)) * x


@dataclass(frozen=True)
class LineSearchResult:
    accepted: bool
    fraction: float  # of the full step taken (0 when rejected)
    improvement: float
    kl: float


def backtracking_line_search(
    params: list[nn.Parameter],
    full_step: Vector,
    surrogate: Callable[[], torch.Tensor],
    mean_kl: Callable[[], torch.Tensor],
    delta: float,
    shrink: float,
    max_backtracks: int,
) -> LineSearchResult:
    """Try theta_old + shrink^j * full_step, j = 0..max_backtracks-1; keep the first with a higher surrogate
    and mean KL <= delta. On rejection the parameters are restored exactly."""
    old = flat_params(params)
    with torch.no_grad():
        base = float(surrogate())
        for j in range(max_backtracks):
            fraction = shrink**j
            set_flat_params(params, old + fraction * full_step)
            improvement, kl = float(surrogate()) - base, float(mean_kl())
            if improvement > 0 and kl <= delta:
                return LineSearchResult(True, fraction, improvement, kl)
        set_flat_params(params, old)
    return LineSearchResult(False, 0.0, 0.0, 0.0)
