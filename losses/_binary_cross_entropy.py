"""Sigmoid binary cross-entropy from logits (binary and multilabel), with ``pos_weight``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ._chunks import LIGHT_BLOCKS
from ._fused import fused
from ._reduction import Reduction, element_scale, reduce_loss
from ._registry import LossModule, LossSpec, element_wise
from ._stable import log_sigmoid
from ._validation import (
    Params,
    PositivePerClass,
    Task,
    check_params,
    check_per_class,
    prepare,
)

__all__ = [
    "BinaryCrossEntropyLoss",
    "BinaryCrossEntropyParams",
    "binary_cross_entropy_hessian_diagonal",
    "binary_cross_entropy_loss",
]

NAME = "binary_cross_entropy"
TASKS = frozenset({Task.BINARY, Task.MULTILABEL})

PositiveFinite = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class BinaryCrossEntropyParams(Params):
    """Parameters of :func:`binary_cross_entropy_loss`."""

    pos_weight: PositiveFinite | PositivePerClass | None = Field(
        None,
        description="Weight of the positive term: None (1), one finite scalar > 0, or one value "
        "> 0 per class (multilabel). Above 1 raises recall, below 1 precision.",
    )


def binary_cross_entropy_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    pos_weight: float | Sequence[float] | Tensor | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Sigmoid binary cross-entropy from logits, per element.

    .. math::
        \ell_{ij} = -\left[ w^{+}_{j}\, y_{ij} \log \sigma(x_{ij})
            + (1 - y_{ij}) \log \sigma(-x_{ij}) \right]

    The same as ``torch.nn.functional.binary_cross_entropy_with_logits``; the positive
    weight is the one of its ``pos_weight`` argument. Cox, "The Regression Analysis of
    Binary Sequences", JRSS B 1958 (logistic regression; no arXiv id).

    Args:
        logits: ``(N,)`` (binary) or ``(N, C)`` (multilabel) unnormalised scores. Half
            precision is computed in float32 and the loss is returned in float32.
        targets: the logits' shape, values in ``[0, 1]`` (soft targets allowed).
        pos_weight: ``None`` (1), a finite scalar ``> 0`` for every element (a 0-d tensor
            too), or a per-class sequence of ``C`` values ``> 0`` (multilabel; length 1 for
            binary).
        reduction: ``"mean"`` (over elements; with ``sample_weight`` it is
            :math:`\sum_{ij} s_i \ell_{ij} / (C \sum_i s_i)`), ``"sum"`` or ``"none"`` (the
            logits' shape).
        sample_weight: optional ``(N,)`` non-negative weights, broadcast over the classes.

    Returns:
        The loss: a scalar, or the logits' shape for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets outside ``[0, 1]``, multiclass targets, a parameter out
            of its range.
        TypeError: non-floating logits.

    Example:
        >>> logits = torch.tensor([1.0, -2.0, 0.5])
        >>> targets = torch.tensor([1.0, 0.0, 0.3])
        >>> ours = binary_cross_entropy_loss(logits, targets, pos_weight=2.0)
        >>> ref = torch.nn.functional.binary_cross_entropy_with_logits(
        ...     logits, targets, pos_weight=torch.tensor(2.0))
        >>> torch.allclose(ours, ref)
        True

    Note:
        ``pos_weight=1`` is the plain loss. The loss is computed with ``logsigmoid`` on both
        terms, so it is finite (and so are its first and second derivatives) for logits of any
        size; value and gradient come from one pass, the gradient in closed form. With soft
        targets the minimum over the logits is the binary entropy of the target, not 0.
    """
    check_params(NAME, BinaryCrossEntropyParams, {"pos_weight": pos_weight})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets
    weight = _pos_weight(pos_weight, x)

    def compute(z: Tensor, tracked: bool, t: Tensor) -> tuple[Tensor, Tensor]:
        return _value_and_grad(z, t, weight, tracked)

    return reduce_loss(fused(x, compute, y, blocks=LIGHT_BLOCKS), reduction, inputs.sample_weight)


def _pos_weight(pos_weight: float | Sequence[float] | Tensor | None, x: Tensor) -> Tensor | None:
    """``pos_weight`` as a tensor for ``x`` (a scalar, or one value per class, checked)."""
    if pos_weight is None:
        return None
    weight = torch.as_tensor(pos_weight, dtype=x.dtype, device=x.device)
    return weight if weight.dim() == 0 else check_per_class("pos_weight", weight, x)


def _value_and_grad(
    x: Tensor, y: Tensor, weight: Tensor | None, tracked: bool
) -> tuple[Tensor, Tensor]:
    """Each element's ``-(w y log s + (1 - y) log(1 - s))`` and its gradient ``(1 - y) s -
    w y (1 - s)``, ``s = sigmoid(x)``: ``log s`` from ``logsigmoid``, ``s`` and ``1 - s`` as
    ``exp(log s)`` and ``exp(log s - x)`` (no ``1 - s`` cancels). ``tracked``: out of place
    (for a double backward); else in place where it can."""
    log_s = log_sigmoid(x) if tracked else F.logsigmoid(x)  # the same values
    one_minus_y = 1.0 - y
    positive = y if weight is None else weight * y
    if tracked:  # log_sigmoid's derivatives are accurate to a few ulps at any logit
        value = -(positive * log_s + one_minus_y * (log_s - x))
        grad = one_minus_y * log_s.exp() - positive * (log_s - x).exp()
        return value, grad
    if weight is None:  # w y + 1 - y = 1
        value = torch.addcmul(log_s, one_minus_y, x, value=-1.0).neg_()
    else:
        value = torch.addcmul(-(positive + one_minus_y) * log_s, one_minus_y, x)
    s = log_s.exp()
    grad = s.mul_(one_minus_y).addcmul_(positive, log_s.sub_(x).exp_(), value=-1.0)
    return value, grad


def binary_cross_entropy_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    pos_weight: float | Sequence[float] | Tensor | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """The exact Hessian diagonal of :func:`binary_cross_entropy_loss`: ``(w y + 1 - y)
    sigmoid(x) sigmoid(-x)`` per element (``w`` the positive weight), times the reduction's
    factor; no cancellation at any logit."""
    check_params(NAME, BinaryCrossEntropyParams, {"pos_weight": pos_weight})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets
    weight = _pos_weight(pos_weight, x)
    positive = y if weight is None else weight * y
    curvature = (positive + 1.0 - y) * torch.sigmoid(x) * torch.sigmoid(-x)
    return curvature * element_scale(reduction, inputs.sample_weight, x)


class BinaryCrossEntropyLoss(LossModule):
    """Module form of :func:`binary_cross_entropy_loss`; a per-class ``pos_weight`` is a buffer."""

    function = staticmethod(binary_cross_entropy_loss)
    params_model = BinaryCrossEntropyParams
    loss_name = NAME

    def __init__(
        self,
        pos_weight: float | Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(pos_weight=pos_weight, reduction=reduction)


SPECS = (
    LossSpec(
        name=NAME,
        function=binary_cross_entropy_loss,
        module=BinaryCrossEntropyLoss,
        params=BinaryCrossEntropyParams,
        tasks=TASKS,
        summary="Sigmoid binary cross-entropy from logits, per element, with an optional "
        "positive-class weight.",
        formula=r"\ell_{ij} = -\left[w^{+}_j y_{ij} \log\sigma(x_{ij}) "
        r"+ (1-y_{ij}) \log\sigma(-x_{ij})\right]",
        reference="Cox, The Regression Analysis of Binary Sequences, JRSS B 1958 (no arXiv id)",
        when_to_use="The baseline for binary and multilabel classification; pos_weight "
        "(e.g. negatives/positives per class) counters a rare positive class.",
        coupling=element_wise,
        hessian_diagonal=binary_cross_entropy_hessian_diagonal,
    ),
)
