"""Squared error of the predicted probabilities: the Brier score (all three tasks)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._chunks import curvature_by_rows
from ._fused import fused
from ._reduction import Reduction, reduce_loss, scaled_derivatives
from ._registry import Coupling, LossModule, LossSpec
from ._validation import Params, Task, check_params, prepare

__all__ = [
    "SquaredErrorLoss",
    "SquaredErrorParams",
    "squared_error_hessian_diagonal",
    "squared_error_loss",
]

NAME = "squared_error"
TASKS = frozenset({Task.BINARY, Task.MULTICLASS, Task.MULTILABEL})


class SquaredErrorParams(Params):
    """Parameters of :func:`squared_error_loss` (it has none)."""


def squared_error_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Brier score: the squared error between predicted probabilities and the targets.

    .. math::
        \text{multiclass: } \ell_i = \sum_{c=1}^{C} \left(p_{i,c} - [y_i = c]\right)^2,
        \ p_i = \operatorname{softmax}(x_i);
        \qquad \text{binary, multilabel: } \ell_{ij} = \left(\sigma(x_{ij}) - y_{ij}\right)^2

    Brier, "Verification of Forecasts Expressed in Terms of Probability", Monthly Weather
    Review 1950 (no arXiv id). Unlike cross-entropy, the loss of one sample is bounded.

    Args:
        logits: ``(N,)`` (binary) or ``(N, C)`` (multiclass, multilabel) unnormalised scores.
            Half precision is computed in float32 and the loss is returned in float32.
        targets: binary and multilabel: the logits' shape, values in ``[0, 1]`` (soft targets
            allowed); multiclass: ``(N,)`` integer class indices in ``[0, C)``.
        reduction: ``"mean"`` (over samples for multiclass, over elements for binary and
            multilabel; weighted by ``sample_weight``), ``"sum"`` or ``"none"`` (``(N,)`` for
            multiclass, the logits' shape otherwise).
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        The loss: a scalar, or per sample / per element for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets out of range.
        TypeError: non-floating logits, non-integer multiclass targets.

    Example:
        >>> logits = torch.tensor([0.0, 0.0])
        >>> targets = torch.tensor([1.0, 0.0])
        >>> squared_error_loss(logits, targets).item()  # (0.5 - 1)^2 and (0.5 - 0)^2
        0.25

    Note:
        The binary score is the scikit-learn ``brier_score_loss`` of a binary problem; a
        multiclass score lies in ``[0, 2]`` (no halving). A two-class multiclass problem with
        logits ``(0, x)`` gives twice the binary score of logit ``x``. The loss is bounded, and
        its gradient vanishes on confidently wrong samples as it does on right ones.
    """
    check_params(NAME, SquaredErrorParams, {})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    multiclass = inputs.task is Task.MULTICLASS

    def compute(z: Tensor, tracked: bool, t: Tensor) -> tuple[Tensor, Tensor]:
        loss, slope, _ = _terms(z, t, multiclass, curvature=False)
        return loss, slope

    loss = fused(inputs.logits, compute, inputs.targets)
    return reduce_loss(loss, reduction, inputs.sample_weight)


def _terms(
    x: Tensor, y: Tensor, multiclass: bool, *, curvature: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Each sample's (softmax) or element's (sigmoid) loss, its gradient and, when asked,
    its Hessian diagonal (see :func:`squared_error_hessian_diagonal`); the softmax's
    gradient is ``p_c (g_c - S_1)``, the sigmoid's ``2 (p - y) p q``. Out of place: with a
    graph, autograd's derivatives of the gradient are the second ones."""
    if multiclass:
        p = torch.softmax(x, dim=1)
        g = 2.0 * p.scatter_add(1, y.unsqueeze(1), -torch.ones_like(p[:, :1]))
        s_1 = (g * p).sum(dim=1, keepdim=True)
        loss = 0.25 * (g * g).sum(dim=1)
        slope = p * (g - s_1)
        if not curvature:
            return loss, slope, None
        s_2 = 2.0 * (p * p).sum(dim=1, keepdim=True)
        bend = p * p * s_2 + p * (2.0 * p - 1.0) * s_1 + (1.0 - 2.0 * p) * (2.0 * p + g) * p
        return loss, slope, bend
    p, q = torch.sigmoid(x), torch.sigmoid(-x)
    miss = p - y
    slope = 2.0 * miss * p * q
    if not curvature:
        return miss * miss, slope, None
    return miss * miss, slope, 2.0 * p * q * (p * q + miss * (1.0 - 2.0 * p))


def squared_error_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""The exact Hessian diagonal of :func:`squared_error_loss` w.r.t. the logits, O(N C).

    Sigmoid (binary, multilabel), per element: :math:`2 p q (p q + (p - y)(1 - 2p))` with
    :math:`q = 1 - p`. Softmax: the loss is :math:`\sum_a (p_a - y_a)^2`, whose gradient
    and (diagonal) Hessian in :math:`p` are :math:`g_a = 2 (p_a - y_a)` and 2; through
    :math:`\partial p_a / \partial x_c = p_a (\delta_{ac} - p_c)` that gives
    :math:`H_c = p_c^2 S_2 + p_c (2 p_c - 1) S_1 + (1 - 2 p_c)(2 p_c^2 + g_c p_c)` with
    :math:`S_2 = 2 \sum_a p_a^2` and :math:`S_1 = \sum_a g_a p_a`. Times the reduction's
    factor.
    """
    return _derivatives(logits, targets, reduction=reduction, sample_weight=sample_weight)[2]


def _derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Value, gradient and Hessian diagonal from one pass of :func:`_terms`, a block of rows
    at a time."""
    check_params(NAME, SquaredErrorParams, {})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x = inputs.logits
    multiclass = inputs.task is Task.MULTICLASS

    loss, slope, bend = curvature_by_rows(
        lambda z, t: _terms(z, t, multiclass, curvature=True), x, inputs.targets
    )
    return scaled_derivatives(loss, slope, bend, reduction, inputs.sample_weight)


class SquaredErrorLoss(LossModule):
    """Module form of :func:`squared_error_loss`."""

    function = staticmethod(squared_error_loss)
    params_model = SquaredErrorParams
    loss_name = NAME

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


def _coupling(params: Params, task: Task) -> Coupling:
    return Coupling.SAMPLE if task is Task.MULTICLASS else Coupling.ELEMENT


SPECS = (
    LossSpec(
        name=NAME,
        function=squared_error_loss,
        module=SquaredErrorLoss,
        params=SquaredErrorParams,
        tasks=TASKS,
        summary="Brier score: squared error of the softmax (multiclass) or sigmoid (binary, "
        "multilabel) probabilities against the targets.",
        formula=r"\ell_i = \sum_c (p_{i,c} - [y_i = c])^2 \text{ (multiclass)},\ "
        r"\ell_{ij} = (\sigma(x_{ij}) - y_{ij})^2 \text{ (binary, multilabel)}",
        reference="Brier, Verification of Forecasts Expressed in Terms of Probability, Monthly "
        "Weather Review 1950 (no arXiv id)",
        when_to_use="When calibrated probabilities matter more than ranking, or labels are "
        "noisy: the loss is bounded, so outliers cannot dominate the gradient.",
        coupling=_coupling,
        hessian_diagonal=squared_error_hessian_diagonal,
        derivatives=_derivatives,
    ),
)
