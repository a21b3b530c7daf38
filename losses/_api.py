"""The registry-level entry points: ``names``, ``get``, ``compute``, ``derivatives``."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ._catalog import REGISTRY
from ._derivatives import Derivatives, derivatives_for
from ._reduction import Reduction
from ._registry import LossSpec
from ._validation import params_trusted

__all__ = ["compute", "derivatives", "get", "names"]


def names() -> list[str]:
    """The registry's loss names, sorted."""
    return sorted(REGISTRY)


def get(name: str) -> LossSpec:
    """The :class:`LossSpec` of ``name``; an unknown name raises ``ValueError`` with a hint."""
    return REGISTRY[name]


def compute(
    name: str,
    logits: Tensor,
    targets: Tensor,
    *,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
    **params: Any,
) -> Tensor:
    """Compute the loss ``name`` after validating ``params`` against its schema."""
    spec = get(name)
    validated = spec.validate(params)
    with params_trusted():
        return spec.function(
            logits, targets, reduction=reduction, sample_weight=sample_weight, **dict(validated)
        )


def derivatives(
    name: str,
    logits: Tensor,
    targets: Tensor,
    *,
    hessian: bool = False,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
    grad_out: Tensor | None = None,
    **params: Any,
) -> Derivatives:
    """Value, gradient and (``hessian=True``) exact Hessian diagonal w.r.t. ``logits``;
    ``grad_out``: a tensor shaped as the logits to receive the gradient (returned as
    ``grad``), where a one-pass loss writes it without a copy."""
    return derivatives_for(
        get(name),
        logits,
        targets,
        hessian=hessian,
        reduction=reduction,
        sample_weight=sample_weight,
        grad_out=grad_out,
        **params,
    )
