"""One autograd function for losses whose value and gradient come from one pass.

:func:`fused` takes a ``compute(x, tracked, *rows)`` that returns each term's value (per
element, or per sample) and the gradient of their sum w.r.t. ``x``; ``rows`` are the other
tensors it reads that share ``x``'s rows (the targets). The forward runs it once, without a
graph (``tracked=False``: it may work in place), a block of rows at a time on the CPU
(:func:`~losses._chunks.by_rows`); the backward multiplies the kept gradient by the
upstream one. When a graph is asked of the backward (a double backward: autograd's
Hessians), it runs ``compute`` again with ``tracked=True``, out of place, so the second
derivatives are autograd's own. Where the one-pass function cannot serve, the tracked
formula runs as plain autograd operations: under ``torch.func`` transforms and
forward-mode AD (which a custom function would need rules for), and where another input
(soft targets, say) asks for its own gradient.

:func:`one_pass` serves a loss whose closed form takes the whole batch at once (it blocks
rows itself, or cannot: the Dice family's batch scope): its ``value_and_grad`` runs in the
forward, and autograd through its ``formula`` serves a double backward and the cases above.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch import Tensor

from ._chunks import by_rows

__all__ = ["Compute", "fused", "gradient_into", "one_pass", "overlaps", "same_place"]

_INTO: ContextVar[tuple[Tensor, Tensor] | None] = ContextVar("_INTO", default=None)
_TAKE = threading.Lock()  # two backwards of one kept graph take its gradient once


@contextmanager
def gradient_into(target: Tensor | None, logits: Tensor) -> Iterator[None]:
    """The one-pass backward run inside whose input is ``logits`` itself writes its gradient
    into ``target`` (shaped, typed and placed as ``logits``; no input's memory), the scaling
    and the write one pass: a caller that wants the gradient in a place of its own (a
    worker, in a client's shared memory) then finds it there when that function is the
    loss's only path to the logits (see :func:`losses.derivatives`)."""
    token = _INTO.set(None if target is None else (target, logits))
    try:
        yield
    finally:
        _INTO.reset(token)


Compute = Callable[..., tuple[Tensor, Tensor]]
"""``(x, tracked, *rows) -> (values, gradient)``; values per element (shaped as ``x``) or
per sample (``(N,)``), each row's from the same rows of ``x`` and ``rows``."""


class _Fused(torch.autograd.Function):
    """``first(x, *rows) -> (value, gradient)`` in the forward; in a double backward,
    ``again(x, *rows)``: the gradient as a differentiable function of ``x``.

    The backward scales the kept gradient by the upstream one in place and hands it on: a
    fresh tensor of the logits' size would cost an allocation and, with glibc's defaults,
    a page fault per 4 KiB (20 of focal's 60 ms at 65536 x 128). A second backward through
    a kept graph (``retain_graph``) finds it spent and runs ``first`` again. So the
    gradient is kept on the context, not saved (``save_on_cpu`` and checkpointing hooks
    do not see it)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        first: Callable[..., tuple[Tensor, Tensor]],
        again: Callable[..., Tensor],
        *rows: Tensor,
    ) -> Tensor:
        value, grad = first(x, *rows)
        ctx.save_for_backward(x, *rows)
        ctx.grad = grad  # not saved: the first backward writes it
        ctx.first = first
        ctx.again = again
        return value

    @staticmethod
    def backward(ctx: Any, upstream: Tensor) -> tuple[Tensor | None, ...]:
        x, *rows = ctx.saved_tensors
        with _TAKE:
            grad, ctx.grad = ctx.grad, None
        if torch.is_grad_enabled():  # a double backward: the gradient as a function of x
            grad = ctx.again(x, *rows)
        elif grad is None:  # spent by an earlier backward of this graph
            grad = ctx.first(x, *rows)[1]
        if upstream.dim() < grad.dim():  # per-sample values
            upstream = upstream.reshape(upstream.shape + (1,) * (grad.dim() - upstream.dim()))
        nones = (None, None, *(None for _ in rows))
        if grad.requires_grad or not _own(grad, upstream, x, *rows):
            return (upstream * grad, *nones)
        into = _INTO.get()
        if into is not None and same_place(x, into[1]) and into[0].dtype == grad.dtype:
            _INTO.set(None)  # one function's gradient: another path's is added to it
            return (torch.mul(grad, upstream, out=into[0]), *nones)
        return (grad.mul_(upstream), *nones)


def overlaps(target: Tensor | None, *inputs: Tensor | None) -> bool:
    """Whether ``target``'s memory shares bytes with any input's (writing it would change
    that input)."""
    if target is None:
        return False
    a = target.untyped_storage()
    for t in inputs:
        if t is not None and t.device == target.device:
            b = t.untyped_storage()
            if (
                a.data_ptr() < b.data_ptr() + b.nbytes()
                and b.data_ptr() < a.data_ptr() + a.nbytes()
            ):
                return True
    return False


def same_place(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` and ``b`` are the same values in the same place (one tensor, or
    another object over the same memory, as ``detach`` gives)."""
    return (
        a.data_ptr() == b.data_ptr()
        and a.shape == b.shape
        and a.stride() == b.stride()
        and a.dtype == b.dtype
        and a.device == b.device
    )


def _own(grad: Tensor, upstream: Tensor, *inputs: Tensor) -> bool:
    """Whether ``grad`` may take ``grad * upstream`` in place: a whole tensor of its own
    (no view, no input's memory) that the product keeps the shape and dtype of, times a
    plain upstream (not one of a batched backward's, ``is_grads_batched``)."""
    if grad._base is not None or not grad.is_contiguous() or upstream.dtype != grad.dtype:
        return False
    if not _plain(upstream):
        return False
    try:  # a batched backward's upstream (is_grads_batched) has no storage
        upstream.untyped_storage()
    except (NotImplementedError, RuntimeError):
        return False
    if upstream.dim() != grad.dim() or any(
        u not in (1, g) for u, g in zip(upstream.shape, grad.shape, strict=True)
    ):
        return False
    return not overlaps(grad, upstream, *inputs)


def fused(x: Tensor, compute: Compute, *rows: Tensor, blocks: int = 1) -> Tensor:
    """``compute``'s values, with its gradient (see the module docstring); ``rows``: the
    other tensors ``compute`` reads, row by row with ``x`` (a gradient asked for any of
    them takes autograd). ``blocks``: :func:`~losses._chunks.by_rows`' block size (a
    ``compute`` of few operations, which works in place, gains from larger blocks)."""
    if not _plain(x) or any(t.requires_grad for t in rows):
        return compute(x, True, *rows)[0]

    def first(z: Tensor, *others: Tensor) -> tuple[Tensor, Tensor]:
        value, grad = by_rows(
            lambda *block: compute(block[0], False, *block[1:]), z, *others, blocks=blocks
        )
        return value, grad

    def again(z: Tensor, *others: Tensor) -> Tensor:
        return compute(z, True, *others)[1]

    out: Tensor = _Fused.apply(x, first, again, *rows)  # type: ignore[no-untyped-call]
    return out


def one_pass(
    x: Tensor,
    value_and_grad: Callable[[Tensor], tuple[Tensor, Tensor]],
    formula: Callable[[Tensor], Tensor],
) -> Tensor:
    """A loss computed over the whole batch at once: ``value_and_grad(x)`` gives its value
    (reduced, or one per sample) and the gradient of the value's sum, from one closed-form
    pass; ``formula(x)`` is the same value in differentiable operations, which autograd
    takes where the one pass cannot serve (no gradient asked, a ``torch.func`` transform,
    a double backward). Per-sample values must each depend on their own row only."""
    if not (torch.is_grad_enabled() and x.requires_grad and _plain(x)):
        return formula(x)

    def again(z: Tensor) -> Tensor:
        (grad,) = torch.autograd.grad(formula(z).sum(), z, create_graph=True)
        return grad

    out: Tensor = _Fused.apply(x, value_and_grad, again)  # type: ignore[no-untyped-call]
    return out


def _plain(x: Tensor) -> bool:
    """Neither wrapped by a ``torch.func`` transform nor carrying a forward-mode tangent."""
    from torch.autograd import forward_ad

    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    if wrapped is not None and wrapped(x):
        return False
    dual = forward_ad.unpack_dual(x)  # type: ignore[no-untyped-call]
    return dual.tangent is None
