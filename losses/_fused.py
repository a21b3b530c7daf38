"""One autograd function for losses whose value and gradient come from one pass.

:class:`Fused` takes a ``compute(x, tracked)`` that returns each term's value (per element,
or per sample) and the gradient of their sum w.r.t. ``x``. The forward runs it once, without
a graph (``tracked=False``: it may work in place); the backward multiplies the kept
gradient by the upstream one. When a graph is asked of the backward (a double backward:
autograd's Hessians), it runs ``compute`` again with ``tracked=True``, out of place, so
the second derivatives are autograd's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["Compute", "fused"]

Compute = Callable[[Tensor, bool], tuple[Tensor, Tensor]]
"""``(x, tracked) -> (values, gradient)``; values per element (shaped as ``x``) or per
sample (``(N,)``)."""


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, compute: Compute) -> Tensor:
        value, grad = compute(x, False)
        ctx.save_for_backward(x, grad)
        ctx.compute = compute
        return value

    @staticmethod
    def backward(ctx: Any, upstream: Tensor) -> tuple[Tensor, None]:
        x, grad = ctx.saved_tensors
        if torch.is_grad_enabled():  # a double backward: the gradient as a function of x
            grad = ctx.compute(x, True)[1]
        if upstream.dim() < grad.dim():  # per-sample values
            upstream = upstream.reshape(upstream.shape + (1,) * (grad.dim() - upstream.dim()))
        return upstream * grad, None


def fused(x: Tensor, compute: Compute) -> Tensor:
    """``compute``'s values, with its gradient (see the module docstring)."""
    out: Tensor = _Fused.apply(x, compute)  # type: ignore[no-untyped-call]
    return out
