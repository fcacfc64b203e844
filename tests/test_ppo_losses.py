import torch

from replications.ppo import clipped_surrogate_loss, value_loss


def test_clipped_loss_equals_policy_gradient_loss_at_ratio_one():
    torch.manual_seed(0)
    logp = torch.randn(32, requires_grad=True)
    adv = torch.randn(32)
    loss = clipped_surrogate_loss(logp, logp.detach(), adv, 0.2)
    (grad,) = torch.autograd.grad(loss, logp)
    pg_loss = -(logp * adv).mean()  # the plain likelihood-ratio policy-gradient loss
    (pg_grad,) = torch.autograd.grad(pg_loss, logp)
    assert torch.isclose(loss, -adv.mean())
    torch.testing.assert_close(grad, pg_grad)


def _grad(ratio: float, adv: float) -> tuple[float, float]:
    logp = torch.tensor([float(torch.log(torch.tensor(ratio)))], requires_grad=True)
    loss = clipped_surrogate_loss(logp, torch.zeros(1), torch.tensor([adv]), 0.2)
    (g,) = torch.autograd.grad(loss, logp)
    return float(loss.detach()), float(g)


def test_clipped_loss_is_flat_outside_the_clip_range_in_the_right_direction():
    # Positive advantage: no incentive to raise the ratio above 1 + eps; below 1 - eps the gradient stays.
    loss_hi, g_hi = _grad(1.5, 1.0)
    assert g_hi == 0.0 and abs(loss_hi + 1.2) < 1e-6  # loss = -(1 + eps) * A
    _, g_lo = _grad(0.5, 1.0)
    assert g_lo < 0.0  # descending the loss raises the ratio back up
    # Negative advantage: flat below 1 - eps, still pushing down above 1 + eps.
    loss_lo, g_lo = _grad(0.5, -1.0)
    assert g_lo == 0.0 and abs(loss_lo - 0.8) < 1e-6  # loss = -(1 - eps) * A
    _, g_hi = _grad(1.5, -1.0)
    assert g_hi > 0.0
    # Inside the range it is the unclipped objective.
    loss_in, g_in = _grad(1.1, 2.0)
    assert abs(loss_in + 2.2) < 1e-6 and abs(g_in + 2.2) < 1e-5


def test_value_loss_clipping_takes_the_pessimistic_branch():
    old, ret = torch.tensor([0.0]), torch.tensor([1.0])
    v = torch.tensor([0.5], requires_grad=True)
    # unclipped error 0.25, clipped prediction 0.2 -> error 0.64: the max is the clipped one
    loss = value_loss(v, old, ret, 0.2)
    assert abs(float(loss.detach()) - 0.5 * 0.64) < 1e-6
    (g,) = torch.autograd.grad(loss, v)
    assert g.item() == 0.0  # the clipped branch carries no gradient
    assert abs(float(value_loss(v.detach(), old, ret, None)) - 0.5 * 0.25) < 1e-6
