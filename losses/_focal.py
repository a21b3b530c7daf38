"""Softmax focal loss (multiclass)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field, NonNegativeFloat
from torch import Tensor

from ._chunks import LIGHT_BLOCKS
from ._fused import fused
from ._reduction import Reduction, reduce_loss, sample_scale
from ._registry import LossModule, LossSpec, per_sample
from ._stable import softmax_and_complement
from ._validation import (
    NonNegativePerClass,
    Params,
    Task,
    check_params,
    per_class_tensor,
    prepare,
)

__all__ = ["FocalLoss", "FocalParams", "focal_hessian_diagonal", "focal_loss"]

NAME = "focal"
TASKS = frozenset({Task.MULTICLASS})


class FocalParams(Params):
    """Parameters of :func:`focal_loss`."""

    gamma: NonNegativeFloat = Field(2.0, le=20.0, description="Focusing exponent; 0 is CE.")
    alpha: NonNegativeFloat | NonNegativePerClass | None = Field(
        None,
        description="Class balance: None, one scalar for all classes, or one value per class "
        "(indexed by the target class).",
    )


def focal_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | Tensor | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Softmax focal loss: cross-entropy scaled down on well-classified samples.

    .. math::
        \ell_i = -\alpha_{y_i} (1 - p_{i,y_i})^{\gamma} \log p_{i,y_i},
        \qquad p_i = \operatorname{softmax}(x_i)

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017,
    https://arxiv.org/abs/1708.02002.

    Args:
        logits: ``(N, C)`` unnormalised scores, ``C >= 2``. Half precision is computed in
            float32 and the loss is returned in float32.
        targets: ``(N,)`` integer class indices in ``[0, C)``.
        gamma: focusing exponent, ``0 <= gamma <= 20``; default 2.
        alpha: ``None`` (no balancing), a scalar ``>= 0`` applied to every sample, or a
            per-class sequence of length ``C`` indexed by the target class.
        reduction: ``"mean"`` (over samples, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (shape ``(N,)``).
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        The loss: a scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, a class index out of range, a parameter out of its range.
        TypeError: non-floating logits or non-integer targets.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> targets = torch.tensor([0, 0])
        >>> focal_loss(logits, targets, gamma=0.0).item() == torch.nn.functional.cross_entropy(
        ...     logits, targets).item()
        True

    Note:
        ``gamma=0`` and no ``alpha`` is cross-entropy exactly. ``1 - p_y`` is the summed
        probability of the other classes, and ``-log p_y`` is ``-log1p(-(1 - p_y))`` where
        ``p_y`` nears 1, so the loss and its gradient stay accurate when ``p_y`` rounds to 1.
        Value and gradient come from one softmax, the gradient in closed form (a custom
        autograd function whose backward is itself differentiable).
    """
    check_params(NAME, FocalParams, {"gamma": gamma, "alpha": alpha})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets
    if x.shape[1] < 2:
        raise ValueError(f"Expected logits with at least 2 classes, got {x.shape[1]}")

    def compute(z: Tensor, tracked: bool, t: Tensor) -> tuple[Tensor, Tensor]:
        return _focal_value_and_grad(z, t, float(gamma), tracked)

    loss = fused(x, compute, y, blocks=LIGHT_BLOCKS)
    if alpha is not None:
        loss = _alpha_of_target(alpha, x, y) * loss
    return reduce_loss(loss, reduction, inputs.sample_weight)


def _focal_value_and_grad(
    x: Tensor, y: Tensor, gamma: float, tracked: bool
) -> tuple[Tensor, Tensor]:
    r"""``(N,)`` losses :math:`q^\gamma L` and their ``(N, C)`` gradient
    :math:`h'\,(\delta_{yc} - p_c)`, :math:`h' = -q^\gamma (\gamma p L / q + 1)`, with
    :math:`p = p_y`, :math:`q = 1 - p` (the other classes' summed probabilities: exact as
    :math:`p` rounds to 1), :math:`L = -\log p` (from ``log1p(-q)`` there). Written
    without a negative power of :math:`q`, finite for every ``gamma >= 0``; the branches
    are masked so that their derivatives are finite too. ``tracked``: out of place (for a
    double backward); else one fused log-softmax and the rest in place."""
    index = y.unsqueeze(1)
    if tracked:
        log_p_all = torch.log_softmax(x, dim=1)
        p = log_p_all.exp()
        q = p.scatter(1, index, 0.0).sum(dim=1, keepdim=True)
        log_p = log_p_all.gather(1, index)
    else:  # the target's entries are N writes
        p = torch.log_softmax(x, dim=1)
        log_p = p.gather(1, index)
        p = p.exp_()
        p_target = p.gather(1, index)
        q = p.scatter_(1, index, 0.0).sum(dim=1, keepdim=True)
        p.scatter_(1, index, p_target)
    p_y = p.gather(1, index)
    near_one = q < 0.5
    positive = q > 0
    small_ell = -torch.log1p(-torch.where(near_one, q, 0.25))  # 0 at q = 0
    ell = torch.where(near_one, small_ell, -log_p)
    # L / q, which tends to 1 as q -> 0
    q_small = torch.where(near_one & positive, q, 0.25)
    q_large = torch.where(near_one, 0.5, q)
    ratio = torch.where(
        near_one, torch.where(positive, -torch.log1p(-q_small) / q_small, 1.0), ell / q_large
    )
    if gamma == 0:
        q_gamma = torch.ones_like(q)
    else:  # 0 at q = 0, with a finite (0) derivative there for any gamma > 0
        q_gamma = torch.where(positive, torch.where(positive, q, 1.0).pow(gamma), 0.0)
    slope = -q_gamma * (gamma * p_y * ratio + 1.0)
    grad = (p * -slope).scatter_(1, index, slope * q)
    return (q_gamma * ell).squeeze(1), grad


def _alpha_of_target(
    alpha: float | Sequence[float] | Tensor | None, x: Tensor, y: Tensor
) -> Tensor:
    """``alpha_{y_i}`` for every sample: 1 without ``alpha``."""
    if alpha is None:
        return x.new_ones(y.shape)
    if isinstance(alpha, (int, float)) or (isinstance(alpha, Tensor) and alpha.dim() == 0):
        return x.new_full(y.shape, float(alpha))
    return per_class_tensor("alpha", alpha, x)[y]


def focal_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | Tensor | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""The exact Hessian diagonal of :func:`focal_loss` w.r.t. the logits, in O(N C).

    With :math:`p = p_{i,y}`, :math:`q = 1 - p`, :math:`L = -\log p` and :math:`r_c =
    p_c / q` (class :math:`c`'s share of the mass off the target), the sample's loss
    :math:`-q^\gamma \log p` has

    .. math::
        H_{yy} = q^\gamma \left(\gamma^2 p^2 L - \gamma q p L + (2\gamma + 1) q p\right)

        H_{cc} = q^\gamma \left(\gamma(\gamma - 1) r_c^2 p^2 L - \gamma q r_c^2 p L
        + 2\gamma q r_c^2 p + \gamma r_c (1 - p_c) p L + p_c (1 - p_c)\right)

    (from :math:`\partial \log p / \partial x_c = \delta_{yc} - p_c` and
    :math:`\partial^2 \log p / \partial x_c^2 = -p_c (1 - p_c)`), times
    :math:`\alpha_{y}` and the reduction's factor. Written with :math:`q^\gamma` and
    :math:`r_c \le 1` only, it has no negative power of :math:`q`: finite for every
    ``gamma >= 0`` as :math:`p \to 1`. :math:`q`, :math:`L` and :math:`r_c` come from
    :func:`~losses._stable.softmax_and_complement`, accurate at both ends. ``gamma = 0``
    gives cross-entropy's :math:`p_c (1 - p_c)`.
    """
    check_params(NAME, FocalParams, {"gamma": gamma, "alpha": alpha})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets
    if x.shape[1] < 2:
        raise ValueError(f"Expected logits with at least 2 classes, got {x.shape[1]}")
    index = y.unsqueeze(1)
    p_c, one_minus = softmax_and_complement(x)
    p = p_c.gather(1, index)  # (N, 1)
    q = one_minus.gather(1, index)
    # p L = -p log p: from log1p(-q) where p is near 1 (log p has an absolute error there
    # that would swamp L ~ q); 0 where p underflows to 0
    pl = torch.where(q < 0.5, -p * torch.log1p(-q), -torch.xlogy(p, p))
    q_gamma = q.pow(gamma)  # 0^0 = 1
    target = gamma * gamma * p * pl - gamma * q * pl + (2 * gamma + 1) * q * p
    # H_cc = r (r A + (1 - p_c) B) + p_c (1 - p_c), with r = p_c / q and per-row A, B
    a = gamma * (gamma - 1) * p * pl - gamma * q * pl + 2 * gamma * q * p
    b = gamma * pl
    r = p_c / q.clamp_min(torch.finfo(x.dtype).tiny)
    curvature = r.mul(a).addcmul_(one_minus, b).mul_(r).addcmul_(p_c, one_minus)
    curvature.scatter_(1, index, target)
    scale = sample_scale(reduction, inputs.sample_weight, x) * _alpha_of_target(alpha, x, y)
    return curvature.mul_(scale.unsqueeze(1) * q_gamma)


class FocalLoss(LossModule):
    """Module form of :func:`focal_loss`; ``alpha`` as a per-class list is kept as a buffer."""

    function = staticmethod(focal_loss)
    params_model = FocalParams
    loss_name = NAME

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(gamma=gamma, alpha=alpha, reduction=reduction)


SPECS = (
    LossSpec(
        name=NAME,
        function=focal_loss,
        module=FocalLoss,
        params=FocalParams,
        tasks=TASKS,
        summary="Softmax focal loss: cross-entropy down-weighted on easy, well-classified samples.",
        formula=r"\ell_i = -\alpha_{y_i} (1 - p_{i,y_i})^{\gamma} \log p_{i,y_i}",
        reference="Lin et al., Focal Loss for Dense Object Detection, ICCV 2017, arXiv:1708.02002",
        when_to_use="Multiclass data where many easy majority samples swamp the gradient; "
        "gamma 1-2 is typical, alpha adds per-class balance.",
        coupling=per_sample,
        hessian_diagonal=focal_hessian_diagonal,
    ),
)
