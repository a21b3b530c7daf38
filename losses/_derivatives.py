"""Value, gradient and exact Hessian diagonal of any registry loss w.r.t. the logits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._fused import gradient_into, overlaps, same_place
from ._reduction import Reduction
from ._registry import Coupling, LossSpec
from ._validation import as_float_logits, infer_task, params_trusted

__all__ = ["Derivatives", "derivatives_for"]

# Memory bound for one batched Hessian-vector product: directions * N * C floats.
_MAX_BATCHED_ELEMENTS = 1 << 25


@dataclass(frozen=True)
class Derivatives:
    """``value`` as the reduction gives it; ``grad`` and ``hessian_diag`` shaped as the logits.

    With ``reduction="none"`` the derivatives are those of the summed loss, which for a
    sample-separable loss are exactly each sample's own.
    """

    value: Tensor
    grad: Tensor
    hessian_diag: Tensor | None = None


def derivatives_for(
    spec: LossSpec,
    logits: Tensor,
    targets: Tensor,
    *,
    hessian: bool = False,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
    grad_out: Tensor | None = None,
    **params: Any,
) -> Derivatives:
    """Compute value, gradient and (when asked) the exact Hessian diagonal of ``spec``'s loss.

    ``grad_out``: a tensor shaped as the logits that receives the gradient (cast to its
    dtype), returned as ``grad``; a one-pass loss writes it there directly, others copy.

    A loss's own closed forms come first: value, gradient and diagonal from one pass
    (``spec.derivatives``), else autograd's value and gradient and the diagonal's closed
    form (``spec.hessian_diagonal``, O(N C); every registry loss has one). Otherwise (a
    loss registered without one): the Hessian of a sample-separable loss is block diagonal
    (one ``C x C`` block per sample), so its diagonal comes from ``C`` Hessian-vector
    products whose direction is class ``c`` in every sample at once, batched: O(N C^2);
    element-wise losses need one product. A loss that couples the batch without a closed
    form would need one product per logit, O((N C)^2); it is refused.
    """
    mode = Reduction.parse(reduction)
    validated = spec.validate(params)
    x = as_float_logits(logits).detach()
    if x.is_inference():  # made under torch.inference_mode: no gradient may be asked of it
        x = x.clone()
    if grad_out is not None and (grad_out.shape != x.shape or grad_out.device != x.device):
        raise ValueError(
            f"Expected grad_out shaped as the logits {tuple(x.shape)} on {x.device}, got "
            f"{tuple(grad_out.shape)} on {grad_out.device}"
        )
    task = infer_task(x, targets)
    coupling = spec.coupling(validated, task)
    if hessian and coupling is Coupling.BATCH and spec.hessian_diagonal is None:
        raise ValueError(
            f"Expected a loss whose exact Hessian diagonal is affordable, got {spec.name!r} "
            "with scope='batch': every logit's second derivative depends on the whole batch, "
            "so the exact diagonal costs one Hessian-vector product per logit, O((N*C)^2). "
            "Use scope='sample', or ask for the gradient only (hessian=False)."
        )
    if hessian and spec.derivatives is not None:  # all three from one closed-form pass
        with params_trusted():
            closed = spec.derivatives(
                x, targets, reduction=mode.value, sample_weight=sample_weight, **dict(validated)
            )
        if closed is not None:
            value, grad, diagonal = closed
            return Derivatives(value=value, grad=_placed(grad, grad_out), hessian_diag=diagonal)
    closed_form = spec.hessian_diagonal if hessian else None
    x.requires_grad_(True)
    with torch.enable_grad(), params_trusted():
        value = spec.function(
            x, targets, reduction=mode.value, sample_weight=sample_weight, **dict(validated)
        )
        total = value.sum() if mode is Reduction.NONE else value
        needs_graph = hessian and closed_form is None
        # written during the backward: not where an input lies that is read later
        inputs = (x, targets, sample_weight)
        into = None if needs_graph or overlaps(grad_out, *inputs) else grad_out
        with gradient_into(into, x):
            (grad,) = torch.autograd.grad(total, x, create_graph=needs_graph)
        hessian_diag = _hessian_diagonal(grad, x, coupling) if needs_graph else None
    if closed_form is not None:
        with params_trusted():
            hessian_diag = closed_form(
                x.detach(),
                targets,
                reduction=mode.value,
                sample_weight=sample_weight,
                **dict(validated),
            )
    return Derivatives(
        value=value.detach(),
        grad=_placed(grad.detach(), grad_out),
        hessian_diag=None if hessian_diag is None else hessian_diag.detach(),
    )


def _placed(grad: Tensor, target: Tensor | None) -> Tensor:
    """``grad``, in ``target`` when there is one (copied, unless it is there already)."""
    if target is None:
        return grad
    if not same_place(grad, target):
        target.copy_(grad)
    return target


def _hessian_diagonal(grad: Tensor, x: Tensor, coupling: Coupling) -> Tensor:
    if not grad.requires_grad:  # the gradient is constant (piecewise-linear losses)
        return torch.zeros_like(x)
    if coupling is Coupling.ELEMENT or x.dim() == 1:
        (h,) = torch.autograd.grad(grad, x, torch.ones_like(x), materialize_grads=True)
        return h
    num_classes = x.shape[-1]
    chunk = max(1, min(num_classes, _MAX_BATCHED_ELEMENTS // max(1, x.numel())))
    diag = torch.empty_like(x)
    eye = torch.eye(num_classes, dtype=x.dtype, device=x.device)
    for start in range(0, num_classes, chunk):
        stop = min(num_classes, start + chunk)
        # directions[j] selects class start + j in every sample.
        directions = eye[start:stop].unsqueeze(1).expand(stop - start, *x.shape)
        (hv,) = torch.autograd.grad(
            grad,
            x,
            directions.contiguous(),
            retain_graph=True,
            is_grads_batched=True,
            materialize_grads=True,
        )
        picked = torch.diagonal(hv[..., start:stop], dim1=0, dim2=-1)
        diag[..., start:stop] = picked
    return diag
