"""Numerically stable building blocks, each finite in value and gradient at the extremes."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "log1mexp",
    "log_one_minus_softmax",
    "masked_logsumexp",
]


def log1mexp(a: Tensor) -> Tensor:
    """``log(1 - exp(a))`` for ``a <= 0``, accurate on both sides of ``-log 2``.

    Mächler (2012): ``log(-expm1(a))`` near 0, ``log1p(-exp(a))`` below ``-log 2``.
    ``a == 0`` gives ``-inf``; callers keep ``a`` strictly negative where they need a
    gradient.
    """
    near = a > -math.log(2.0)
    a_near = torch.where(near, a, torch.full_like(a, -1.0))
    a_far = torch.where(near, torch.full_like(a, -1.0), a)
    return torch.where(near, torch.log(-torch.expm1(a_near)), torch.log1p(-torch.exp(a_far)))


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
    """``log(1 - softmax(logits))`` for every class, in log space.

    ``log(1 - p_c) = LSE_{c' != c}(x) - LSE(x)``; the leave-one-out LSE comes from prefix and
    suffix ``logcumsumexp`` in O(C), so it stays exact when ``p_c`` rounds to 1 (where
    ``log1p(-p)`` gives ``-inf`` and a NaN gradient).
    """
    x = logits.movedim(dim, -1)
    num_classes = x.shape[-1]
    if num_classes < 2:
        raise ValueError(f"Expected at least 2 classes for a softmax, got {num_classes}")
    prefix = torch.logcumsumexp(x, dim=-1)
    suffix = torch.logcumsumexp(x.flip(-1), dim=-1).flip(-1)
    # The first class leaves the suffix after it, the last the prefix before it; the middle
    # ones combine both. No -inf padding: logaddexp's double backward is NaN at -inf.
    leave_one_out = torch.cat(
        [
            suffix[..., 1:2],
            torch.logaddexp(prefix[..., :-2], suffix[..., 2:]),
            prefix[..., -2:-1],
        ],
        dim=-1,
    )
    out = leave_one_out - prefix[..., -1:]
    return out.movedim(-1, dim)
