"""Natural-gradient machinery, written once for NPG, TRPO and Q-Prop.

For a policy pi_theta with parameters theta (a flat vector of n entries) and a batch of states s:
    F v      = grad_theta( grad_theta( mean KL(pi_old(.|s) || pi_theta(.|s)) ) . v ) + damping v
               (the Fisher-vector product as the Hessian of the mean KL at theta = theta_old, double backprop)
    x        = F^-1 g                         by conjugate gradient from x0 = 0 (deterministic), k iterations
    step     = sqrt(2 delta / x^T F x) x      the step whose quadratic KL model equals delta
    accept   theta_old + beta^j step for the first j with  L(theta) > L(theta_old)  and  KL <= delta
             (backtracking line search; TRPO uses it, NPG takes the full step)
Shapes: a vector is (n,) for one policy (``flat_params`` order), or (K, n) for K seeds trained together
(core/seeds.py: stacked parameters (K, ...)); then every dot product, step size, line-search decision and
CG coefficient is per row, so each seed follows exactly its own recursion. The shapes carry which: an
objective that is a scalar gives (n,) gradients, one value per seed ((K,)) gives (K, n).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from replications.core.networks import Policy

Vector = torch.Tensor


def surrogate_objective(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """L(theta) = E[pi_theta(a|s) / pi_old(a|s) * A] (TRPO eq. 14, Kakade & Langford's CPI surrogate), to be
    maximised; its gradient at theta_old is the vanilla policy gradient."""
    return (torch.exp(log_probs - old_log_probs) * advantages).mean()


# Per-seed functions of the policy and batch tensors (``SeedNets.fn(f, "policy")`` batches them over seeds).
def policy_surrogate(policy: Policy, obs, actions, old_log_probs, adv) -> torch.Tensor:  # noqa: ANN001
    """L(theta) of the current policy on a batch."""
    return surrogate_objective(policy.log_prob_entropy(obs, actions)[0], old_log_probs, adv)


def policy_dist_params(policy: Policy, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """pi_old's parameters at ``obs``, frozen: copies, not views. A Gaussian's log-std is the parameter
    expanded over the batch (a view of it), and the line search writes the parameters in place, so a view
    would move with the trial step and the KL would miss the log-std's change."""
    return tuple(t.detach().clone() for t in policy.dist_params(obs))


def policy_mean_kl(policy: Policy, old: tuple[torch.Tensor, ...], obs: torch.Tensor) -> torch.Tensor:
    """mean_s KL(pi_old(.|s) || pi_theta(.|s))."""
    return policy.kl_from(old, obs).mean()


def _dot(a: Vector, b: Vector) -> torch.Tensor:
    """a . b, per row for (K, n) vectors."""
    return a @ b if a.dim() == 1 else (a * b).sum(-1)


def _col(c: torch.Tensor) -> torch.Tensor:
    """A per-row coefficient (K,) as a column (K, 1), to scale (K, n) vectors row by row."""
    return c if c.dim() == 0 else c[:, None]


def flat_params(params: Sequence[torch.Tensor], per_seed: bool = False) -> Vector:
    """theta as one vector, or (K, n) rows of stacked parameters (``per_seed``)."""
    if per_seed:
        return torch.cat([p.detach().reshape(p.shape[0], -1) for p in params], dim=1)
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_flat_params(params: Sequence[torch.Tensor], flat: Vector) -> None:
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p[0].numel() if flat.dim() == 2 else p.numel()
            p.copy_(flat[..., offset : offset + n].reshape(p.shape))
            offset += n


def add_to_params(params: Sequence[torch.Tensor], step: Vector) -> None:
    """theta <- theta + step (per row for a (K, n) step)."""
    set_flat_params(params, flat_params(params, per_seed=step.dim() == 2) + step)


def _flatten(grads: tuple[torch.Tensor | None, ...], params: Sequence[torch.Tensor], per_seed: bool) -> Vector:
    whole = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
    if per_seed:
        return torch.cat([g.reshape(g.shape[0], -1) for g in whole], dim=1)
    return torch.cat([g.reshape(-1) for g in whole])


def flat_grad(
    output: torch.Tensor,
    params: Sequence[torch.Tensor],
    create_graph: bool = False,
    retain_graph: bool | None = None,
) -> Vector:
    """d output / d params, flattened: (n,) for a scalar ``output``; for K seeds' objectives ((K,)), row k is
    seed k's gradient, (K, n) (the gradient of their sum: the seeds share no parameter)."""
    grads = torch.autograd.grad(
        output.sum(), params, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True
    )
    return _flatten(grads, params, per_seed=output.dim() == 1)


def fisher_vector_product(
    mean_kl: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], damping: float
) -> Callable[[Vector], Vector]:
    """v -> (H_KL + damping I) v, with ``mean_kl()`` the mean KL(pi_old || pi_theta) over the batch ((K,)
    per-seed means for K seeds).

    The KL's gradient graph is built once and reused for every product (double backprop)."""
    kl_grad = flat_grad(mean_kl(), params, create_graph=True)

    def product(v: Vector) -> Vector:
        return flat_grad(_dot(kl_grad, v), params, retain_graph=True) + damping * v

    return product


def conjugate_gradient(avp: Callable[[Vector], Vector], b: Vector, iters: int, tol: float = 1e-10) -> Vector:
    """Solve A x = b for symmetric positive-definite A given only ``avp(v) = A v``, from x0 = 0.

    For (K, n) systems (block-diagonal A) each row has its own coefficients and stops on its own residual."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = _dot(r, r)
    for _ in range(iters):
        active = rr >= tol
        if not active.any():
            break
        ap = avp(p)
        alpha = torch.where(active, rr / _dot(p, ap), 0.0)
        x += _col(alpha) * p
        r -= _col(alpha) * ap
        rr_new = _dot(r, r)
        p = r + _col(rr_new / rr) * p
        rr = rr_new
    return x


def kl_scaled_step(x: Vector, fx: Vector, delta: float) -> Vector:
    """sqrt(2 delta / x^T F x) x: the step along x whose second-order KL estimate is delta."""
    return _col(torch.sqrt(2.0 * delta / _dot(x, fx).clamp_min(1e-20))) * x


@dataclass(frozen=True)
class LineSearchResult:
    """Scalars for one policy, (K,) tensors for K seeds."""

    accepted: torch.Tensor
    fraction: torch.Tensor  # of the full step taken (0 when rejected)
    improvement: torch.Tensor
    kl: torch.Tensor


def backtracking_line_search(
    params: Sequence[torch.Tensor],
    full_step: Vector,
    surrogate: Callable[[], torch.Tensor],
    mean_kl: Callable[[], torch.Tensor],
    delta: float,
    shrink: float,
    max_backtracks: int,
) -> LineSearchResult:
    """Try theta_old + shrink^j * full_step, j = 0..max_backtracks-1; keep the first with a higher surrogate
    and mean KL <= delta. On rejection the parameters are restored exactly.

    For K seeds (``full_step`` (K, n), ``surrogate()`` and ``mean_kl()`` (K,)), each seed keeps its own first
    acceptable j; seeds already accepted hold their step while the others keep shrinking."""
    old = flat_params(params, per_seed=full_step.dim() == 2)
    with torch.no_grad():
        base = surrogate().double()
        accepted = torch.zeros(base.shape, dtype=torch.bool)
        fraction, improvement, kl = (torch.zeros(base.shape, dtype=torch.float64) for _ in range(3))
        for j in range(max_backtracks):
            trial = torch.where(accepted, fraction, shrink**j)
            set_flat_params(params, old + _col(trial.float()) * full_step)
            gain, trial_kl = surrogate().double() - base, mean_kl().double()
            ok = ~accepted & (gain > 0) & (trial_kl <= delta)
            fraction = torch.where(ok, trial, fraction)
            improvement = torch.where(ok, gain, improvement)
            kl = torch.where(ok, trial_kl, kl)
            accepted = accepted | ok
            if accepted.all():
                break
        if not accepted.all():  # rejected seeds back to theta_old exactly, accepted ones at their step
            set_flat_params(params, torch.where(_col(accepted), old + _col(fraction.float()) * full_step, old))
    return LineSearchResult(accepted, fraction, improvement, kl)


def trust_region_step(
    params: Sequence[torch.Tensor],
    surrogate: Callable[[], torch.Tensor],
    mean_kl: Callable[[], torch.Tensor],
    fisher_kl: Callable[[], torch.Tensor],
    max_kl: float,
    cg_iters: int,
    cg_damping: float,
    shrink: float,
    max_backtracks: int,
) -> LineSearchResult:
    """TRPO's policy step (Schulman et al. 2015, App. C), used by TRPO and Q-Prop: g = grad L, x = F^-1 g by
    CG, the KL-scaled full step, the backtracking line search on L and the mean KL. ``fisher_kl`` is the mean
    KL the Fisher-vector products differentiate (a subsample of the batch, or all of it). For K seeds every
    callable returns one value per seed."""
    g = flat_grad(surrogate(), params)
    fvp = fisher_vector_product(fisher_kl, params, cg_damping)
    x = conjugate_gradient(fvp, g, cg_iters)
    step = kl_scaled_step(x, fvp(x), max_kl)
    return backtracking_line_search(params, step, surrogate, mean_kl, max_kl, shrink, max_backtracks)
