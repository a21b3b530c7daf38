"""lossserve's loss library: every loss used against class imbalance, with derivatives.

>>> import losses, torch
>>> "focal" in losses.names()
True
>>> logits, targets = torch.zeros(4, 3), torch.tensor([0, 1, 2, 0])
>>> round(losses.compute("cross_entropy", logits, targets).item(), 4)
1.0986
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ._catalog import REGISTRY
from ._class_weights import class_weights
from ._derivatives import Derivatives, derivatives_for
from ._focal import FocalLoss, FocalParams, focal_loss
from ._reduction import Reduction
from ._registry import Coupling, LossModule, LossSpec
from ._validation import LossParameterError, Task, infer_task

__all__ = [
    "Coupling",
    "Derivatives",
    "FocalLoss",
    "FocalParams",
    "LossModule",
    "LossParameterError",
    "LossSpec",
    "Reduction",
    "Task",
    "class_weights",
    "compute",
    "derivatives",
    "focal_loss",
    "get",
    "infer_task",
    "names",
]


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
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
    **params: Any,
) -> Tensor:
    """Compute the loss ``name`` after validating ``params`` against its schema."""
    spec = get(name)
    validated = spec.validate(params)
    return spec.function(
        logits, targets, reduction=reduction, sample_weight=sample_weight, **dict(validated)
    )


def derivatives(
    name: str,
    logits: Tensor,
    targets: Tensor,
    *,
    hessian: bool = False,
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
    **params: Any,
) -> Derivatives:
    """Value, gradient and (``hessian=True``) exact Hessian diagonal w.r.t. ``logits``."""
    return derivatives_for(
        get(name),
        logits,
        targets,
        hessian=hessian,
        reduction=reduction,
        sample_weight=sample_weight,
        **params,
    )
