"""The numerically stable building blocks in losses._stable."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losses._stable import log_one_minus_softmax, masked_logsumexp


def test_log_one_minus_softmax_values() -> None:
    x = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(log_one_minus_softmax(x, dim=1), torch.log1p(-x.softmax(1)))
    # p_0 rounds to 1: log(1 - p_0) = log(e^-1e4 + e^-2e4) - log(1 + ...) = -1e4 exactly here.
    extreme = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.float64)
    assert log_one_minus_softmax(extreme, dim=1)[0, 0].item() == -1e4


def test_log_one_minus_softmax_second_derivatives_with_one_hot_upstream() -> None:
    # A one-hot incoming gradient (sum (1 - p) y with one-hot y) is where a logcumsumexp-based
    # version breaks: its double backward takes log|grad|.
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    one_hot = F.one_hot(torch.tensor([0, 1, 2, 2]), 3).double().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda v: log_one_minus_softmax(v, dim=1), (z,), (one_hot,))
    hessian = torch.autograd.functional.hessian(
        lambda v: (log_one_minus_softmax(v, dim=1).exp() * one_hot.detach()).sum(), z.detach()
    )
    reference = torch.autograd.functional.hessian(
        lambda v: (-v.softmax(1) * one_hot.detach()).sum(), z.detach()
    )
    torch.testing.assert_close(hessian, reference)


def test_masked_logsumexp_empty_row_is_minus_inf_with_zero_gradient() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    mask = torch.tensor([[True, False], [False, False]])
    out = masked_logsumexp(x, mask, dim=1)
    assert out[0].item() == 1.0
    assert out[1].item() == float("-inf")
    (grad,) = torch.autograd.grad(out[0] + out[1].clamp_min(-1.0), x)
    torch.testing.assert_close(grad, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
