"""Sigmoid focal loss (binary, multilabel): RetinaNet's element-wise focal loss."""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat
from torch import Tensor

from ._chunks import curvature_by_rows
from ._fused import fused
from ._reduction import Reduction, element_scale, reduce_loss, scaled_derivatives
from ._registry import LossModule, LossSpec, element_wise
from ._stable import focused_curvature, log_sigmoid, logaddexp
from ._validation import Params, Task, all_hard, check_params, prepare

__all__ = [
    "SigmoidFocalLoss",
    "SigmoidFocalParams",
    "sigmoid_focal_hessian_diagonal",
    "sigmoid_focal_loss",
]

NAME = "sigmoid_focal"
TASKS = frozenset({Task.BINARY, Task.MULTILABEL})


class SigmoidFocalParams(Params):
    """Parameters of :func:`sigmoid_focal_loss`."""

    alpha: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        0.25,
        description="Weight of the positive term (1 - alpha weighs the negative term), "
        "in [0, 1]; None disables balancing.",
    )
    gamma: NonNegativeFloat = Field(2.0, le=20.0, description="Focusing exponent; 0 is BCE.")


def _log_one_minus_pt(log_p: Tensor, log_one_minus_p: Tensor, y: Tensor) -> Tensor:
    """``log(1 - p_t) = log(y sigmoid(-x) + (1 - y) sigmoid(x))``, stably for soft ``y``.

    Hard targets take ``logsigmoid(-x)`` (``y = 1``) or ``logsigmoid(x)`` (``y = 0``); soft
    ones a log-sum-exp of two finite terms. The soft branch is fed ``y = 1/2`` where the
    target is hard, so no ``log(0) = -inf`` reaches the log-sum-exp nor leaks a NaN gradient
    through the unused ``torch.where`` branch.
    """
    is_zero = y == 0
    is_one = y == 1
    y_soft = torch.where(is_zero | is_one, torch.full_like(y, 0.5), y)
    mixed = logaddexp(torch.log(y_soft) + log_one_minus_p, torch.log1p(-y_soft) + log_p)
    return torch.where(is_zero, log_p, torch.where(is_one, log_one_minus_p, mixed))


def sigmoid_focal_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Sigmoid focal loss: element-wise binary cross-entropy scaled down on easy elements.

    .. math::
        \ell = \alpha_t (1 - p_t)^{\gamma}\, \mathrm{BCE}(x, y), \quad
        p = \sigma(x),\ p_t = p\,y + (1 - p)(1 - y),\
        \alpha_t = \alpha\,y + (1 - \alpha)(1 - y)

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017,
    https://arxiv.org/abs/1708.02002. The same formula as torchvision's
    ``torchvision.ops.sigmoid_focal_loss``, soft targets included.

    Args:
        logits: ``(N,)`` binary or ``(N, C)`` multilabel logits. Half precision is computed in
            float32 and the loss is returned in float32.
        targets: the logits' shape, values in ``[0, 1]`` (soft targets allowed).
        alpha: weight of the positive term, ``0 <= alpha <= 1`` (``1 - alpha`` weighs the
            negative term); ``None`` disables balancing. Default 0.25.
        gamma: focusing exponent, ``0 <= gamma <= 20``; default 2.
        reduction: ``"mean"`` (over elements, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (the logits' shape, one value per element).
        sample_weight: optional ``(N,)`` non-negative weights, broadcast over classes.

    Returns:
        The loss: a scalar, or the logits' shape for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets outside ``[0, 1]``, a parameter out of its range.
        TypeError: non-floating logits.

    Example:
        >>> logits = torch.tensor([2.0, -1.0, 0.5])
        >>> targets = torch.tensor([1.0, 0.0, 1.0])
        >>> bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
        >>> torch.allclose(sigmoid_focal_loss(logits, targets, alpha=None, gamma=0.0), bce)
        True

    Note:
        ``gamma=0`` and ``alpha=None`` is binary cross-entropy exactly. ``(1 - p_t)^gamma``
        is computed as ``exp(gamma * log(1 - p_t))`` with ``log(1 - p_t)`` from
        ``logsigmoid``, so value, gradient and second derivative stay finite at logits of
        ``±1e4`` and for ``gamma < 1``. With 0/1 targets value and gradient come from one
        pass, the gradient in closed form.
    """
    check_params(NAME, SigmoidFocalParams, {"alpha": alpha, "gamma": gamma})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets
    if all_hard(y):  # hard targets: one pass, the gradient closed

        def compute(z: Tensor, tracked: bool, t: Tensor) -> tuple[Tensor, Tensor]:
            return _hard_value_and_grad(z, t, alpha, gamma, tracked)

        return reduce_loss(fused(x, compute, y), reduction, inputs.sample_weight)
    log_p, log_one_minus_p = log_sigmoid(x), log_sigmoid(-x)
    ce = -(y * log_p + (1.0 - y) * log_one_minus_p)
    log_one_minus_pt = _log_one_minus_pt(log_p, log_one_minus_p, y)
    loss = torch.exp(gamma * log_one_minus_pt) * ce
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return reduce_loss(loss, reduction, inputs.sample_weight)


def _hard_value_and_grad(
    x: Tensor, y: Tensor, alpha: float | None, gamma: float, tracked: bool
) -> tuple[Tensor, Tensor]:
    """Each element's loss and its gradient, for 0/1 targets (:func:`_hard_terms`)."""
    value, slope, _ = _hard_terms(x, y, alpha, gamma, tracked=tracked)
    return value, slope


def _hard_terms(
    x: Tensor,
    y: Tensor,
    alpha: float | None,
    gamma: float,
    *,
    tracked: bool,
    curvature: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Each element's ``-a_t (1 - p_t)^gamma log p_t``, its first derivative and (when
    asked) its second, for 0/1 targets.

    With ``t = 2y - 1``, ``u = t x``, ``p = p_t = sigmoid(u)``, ``q = 1 - p``: ``d/du = a_t
    q^gamma (gamma p log p - q)``, ``d/dx = t d/du``, and the second derivative is that of
    :func:`~losses._stable.focused_curvature` (``t^2 = 1``). ``log p`` from ``logsigmoid``
    (``tracked``: the form whose derivatives are accurate, for a double backward), ``log q
    = log p - u``, so nothing cancels."""
    sign = 2.0 * y - 1.0
    u = sign * x
    log_p = log_sigmoid(u) if tracked else F.logsigmoid(u)
    log_q = log_p - u
    p, q = log_p.exp(), log_q.exp()
    q_gamma = torch.exp(gamma * log_q) if gamma != 0 else torch.ones_like(log_p)
    weight = 1.0 if alpha is None else (2.0 * alpha - 1.0) * y + (1.0 - alpha)
    value = -weight * q_gamma * log_p
    slope = (sign * weight) * q_gamma * (gamma * p * log_p - q)
    if not curvature:
        return value, slope, None
    return value, slope, weight * focused_curvature(p, q, q_gamma, log_p, gamma)


def sigmoid_focal_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """The exact Hessian diagonal of :func:`sigmoid_focal_loss`, O(N C).

    Hard targets: a positive's term is ``-alpha q^gamma log p`` and a negative's ``-(1 -
    alpha) p^gamma log q``, each's second derivative in closed form (:func:`_hard_terms`).
    Soft targets mix both inside
    ``(1 - p_t)^gamma``: there it is one Hessian-vector product of the element-wise loss.
    """
    closed = _derivatives(
        logits, targets, alpha=alpha, gamma=gamma, reduction=reduction, sample_weight=sample_weight
    )
    if closed is not None:
        return closed[2]
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets
    z = x.detach().requires_grad_(True)
    with torch.enable_grad():
        total = sigmoid_focal_loss(z, y, alpha=alpha, gamma=gamma, reduction="sum")
        (grad,) = torch.autograd.grad(total, z, create_graph=True)
        (curvature,) = torch.autograd.grad(grad, z, torch.ones_like(z))
    return curvature.detach() * element_scale(reduction, inputs.sample_weight, x)


def _derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor] | None:
    """Value, gradient and Hessian diagonal from one pass for 0/1 targets (None for soft
    ones): in ``u = t x`` (``t = 2y - 1``), the focal term ``-a_t q^gamma log p`` of ``p =
    sigmoid(u)`` with its slope (:func:`_hard_value_and_grad`) and curvature
    (:func:`~losses._stable.focused_curvature`; ``t^2 = 1``)."""
    check_params(NAME, SigmoidFocalParams, {"alpha": alpha, "gamma": gamma})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets
    if not all_hard(y):
        return None

    def block(z: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        return _hard_terms(z, t, alpha, gamma, tracked=False, curvature=True)

    value, slope, bend = curvature_by_rows(block, x, y)
    return scaled_derivatives(value, slope, bend, reduction, inputs.sample_weight)


class SigmoidFocalLoss(LossModule):
    """Module form of :func:`sigmoid_focal_loss`."""

    function = staticmethod(sigmoid_focal_loss)
    params_model = SigmoidFocalParams
    loss_name = NAME

    def __init__(
        self,
        alpha: float | None = 0.25,
        gamma: float = 2.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(alpha=alpha, gamma=gamma, reduction=reduction)


SPECS = (
    LossSpec(
        name=NAME,
        function=sigmoid_focal_loss,
        module=SigmoidFocalLoss,
        params=SigmoidFocalParams,
        tasks=TASKS,
        summary="Sigmoid focal loss: element-wise BCE down-weighted on easy, confident elements.",
        formula=r"\ell = \alpha_t (1 - p_t)^{\gamma} \mathrm{BCE}(x, y),\ p = \sigma(x),\ "
        r"p_t = p y + (1 - p)(1 - y),\ \alpha_t = \alpha y + (1 - \alpha)(1 - y)",
        reference="Lin et al., Focal Loss for Dense Object Detection, ICCV 2017, arXiv:1708.02002",
        when_to_use="Binary or multilabel data dominated by easy negatives (dense detection, "
        "rare labels); gamma 2 with alpha 0.25 is RetinaNet's setting.",
        coupling=element_wise,
        hessian_diagonal=sigmoid_focal_hessian_diagonal,
        derivatives=_derivatives,
    ),
)
