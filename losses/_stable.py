"""Numerically stable building blocks, each finite in value and gradient at the extremes."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "focused_curvature",
    "log_one_minus_softmax",
    "log_sigmoid",
    "logaddexp",
    "masked_logsumexp",
    "softmax_and_complement",
]


def masked_logsumexp(x: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Log-sum-exp of ``x`` over the entries where ``mask`` is true; ``-inf`` when none are.

    Rows with no entry give ``-inf`` with a zero (not NaN) gradient.
    """
    neg_inf = torch.tensor(float("-inf"), dtype=x.dtype, device=x.device)
    any_entry = mask.any(dim=dim, keepdim=True)
    filled = torch.where(mask, x, neg_inf)
    filled = torch.where(any_entry, filled, torch.zeros_like(x))
    out = torch.logsumexp(filled, dim=dim)
    return torch.where(any_entry.squeeze(dim), out, neg_inf)


def log_one_minus_softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """``log(1 - softmax(logits))`` for every class, in log space, in O(C).

    A class that is not the row's argmax has ``p_c <= 1/2``, where ``log1p(-p_c)`` is
    accurate. For the argmax class ``log(1 - p_c) = LSE_{c' != c}(x) - LSE(x)``, which stays
    exact when ``p_c`` rounds to 1 (where ``log1p(-p)`` gives ``-inf`` and a NaN gradient).
    """
    num_classes = logits.shape[dim]
    if num_classes < 2:
        raise ValueError(
            f"Expected logits with at least 2 classes for a softmax, got {num_classes}"
        )
    log_p = torch.log_softmax(logits, dim=dim)
    is_top = torch.zeros_like(logits, dtype=torch.bool).scatter_(
        dim, logits.argmax(dim=dim, keepdim=True), True
    )
    p_rest = torch.where(is_top, torch.zeros_like(log_p), log_p.exp())
    rest = torch.log1p(-p_rest)
    others = torch.logsumexp(logits.masked_fill(is_top, float("-inf")), dim=dim, keepdim=True)
    top = others - torch.logsumexp(logits, dim=dim, keepdim=True)
    return torch.where(is_top, top, rest)


def softmax_and_complement(logits: Tensor) -> tuple[Tensor, Tensor]:
    """``softmax(logits)`` and ``1 - softmax(logits)`` over the last axis of ``(N, C)``
    logits, each accurate to a few ulps, in a few passes over the data (for closed-form
    derivatives at large N x C).

    ``1 - p_c`` is accurate by subtraction wherever ``p_c <= 1/2``: every class but perhaps
    the row's argmax. For the argmax it is the sum of the other classes' probabilities, a
    sum of positive terms, exact as ``p`` rounds to 1.
    """
    p = torch.softmax(logits, dim=-1)
    top = logits.argmax(dim=-1, keepdim=True)
    rest = p.scatter(-1, top, 0.0).sum(dim=-1, keepdim=True)
    complement = torch.sub(1.0, p)
    return p, complement.scatter_(-1, top, rest.clamp_min(0.0))


def focused_curvature(p: Tensor, q: Tensor, q_gamma: Tensor, log_p: Tensor, gamma: float) -> Tensor:
    """The second derivative in ``x`` of ``-q^gamma log p`` (``p = sigmoid(x)``, ``q =
    sigmoid(-x)``): the focal term of a positive; a negative's is the same with ``x``
    negated (``p`` and ``q`` swapped). ``p q^gamma (gamma q log p - gamma^2 p log p + (2
    gamma + 1) q)``, from ``dp/dx = p q`` and ``d log p / dx = q``, from the parts at hand
    (``q^gamma`` and ``log p`` too); every factor bounded, so finite at any logit."""
    return p * q_gamma * (gamma * q * log_p - gamma * gamma * p * log_p + (2 * gamma + 1) * q)


def logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """``log(exp(a) + exp(b))`` whose double backward is finite for any finite inputs.

    ``torch.logaddexp``'s double backward is NaN once ``|a - b|`` exceeds about 88 in
    float32 (an ``exp`` underflows into ``0/0``). Here the larger argument is taken out and
    each ``torch.where`` branch gets its difference clamped to ``<= 0``; at a tie either
    branch has the exact derivatives (the first two are 1/2 and 1/4).
    """
    a_first = a >= b
    d_ab = (b - a).clamp(max=0.0)
    d_ba = (a - b).clamp(max=0.0)
    return torch.where(a_first, a + torch.log1p(torch.exp(d_ab)), b + torch.log1p(torch.exp(d_ba)))


class _Sigmoid(torch.autograd.Function):
    """``sigmoid`` whose derivative is ``sigmoid(z) sigmoid(-z)``: no ``1 - sigmoid`` cancels.
    (``setup_context`` apart from ``forward``, and a generated vmap rule: so that
    ``torch.func`` transforms take it.)"""

    generate_vmap_rule = True

    @staticmethod
    def forward(z: Tensor) -> Tensor:
        return torch.sigmoid(z)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (z,) = ctx.saved_tensors
        return grad * torch.sigmoid(z) * torch.sigmoid(-z)


class _LogSigmoid(torch.autograd.Function):
    """``log sigmoid(x)`` with derivative ``sigmoid(-x)`` taken through :class:`_Sigmoid`."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return F.logsigmoid(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        if not torch.is_grad_enabled():  # a first derivative only: no graph to build
            return grad * torch.sigmoid(-x)
        sigmoid_neg: Tensor = _Sigmoid.apply(-x)  # type: ignore[no-untyped-call]
        return grad * sigmoid_neg


def log_sigmoid(x: Tensor) -> Tensor:
    """``log sigmoid(x)`` whose first and second derivatives are accurate to a few ulps.

    ``F.logsigmoid``'s double backward computes ``sigmoid(x) (sigmoid(x) - 1)``, which loses
    all relative accuracy as ``sigmoid(x)`` rounds to 1 (x > 0: at x = 20 in float32 it
    gives 0 for ``-2.06e-9``). Here the first derivative is ``sigmoid(-x)`` and the second
    ``-sigmoid(x) sigmoid(-x)``, a product with no cancellation; the forward is
    ``F.logsigmoid`` itself, so the cost stays that of the built-in.
    """
    out: Tensor = _LogSigmoid.apply(x)  # type: ignore[no-untyped-call]
    return out
