"""Asymmetric loss (ASL; multilabel, binary): separate focusing for positives and negatives."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat
from torch import Tensor

from ._chunks import curvature_by_rows
from ._fused import fused
from ._reduction import Reduction, reduce_loss, scaled_derivatives
from ._registry import LossModule, LossSpec, element_wise
from ._stable import focused_curvature, log_sigmoid
from ._validation import Params, Task, check_params, prepare

__all__ = [
    "AsymmetricLoss",
    "AsymmetricParams",
    "asymmetric_hessian_diagonal",
    "asymmetric_loss",
]

NAME = "asymmetric"
TASKS = frozenset({Task.MULTILABEL, Task.BINARY})


class AsymmetricParams(Params):
    """Parameters of :func:`asymmetric_loss`."""

    gamma_pos: NonNegativeFloat = Field(
        0.0, le=20.0, description="Focusing exponent of the positive term; 0 is plain log-loss."
    )
    gamma_neg: NonNegativeFloat = Field(
        4.0, le=20.0, description="Focusing exponent of the negative term."
    )
    clip: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="Probability margin m: negatives use p_m = max(p - m, 0), so those with "
        "p <= m cost nothing; 0 disables it.",
    )


def asymmetric_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Asymmetric loss (ASL): focal-style focusing and a probability margin on negatives only.

    .. math::
        \ell = -y\,(1 - p)^{\gamma_+} \log p - (1 - y)\, p_m^{\gamma_-} \log(1 - p_m),
        \qquad p = \sigma(x),\ p_m = \max(p - m, 0)

    Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021,
    https://arxiv.org/abs/2009.14119.

    Args:
        logits: ``(N, C)`` multilabel or ``(N,)`` binary logits. Half precision is computed
            in float32 and the loss is returned in float32.
        targets: the logits' shape, values exactly 0 or 1.
        gamma_pos: focusing exponent of positives, ``0 <= gamma_pos <= 20``; default 0.
        gamma_neg: focusing exponent of negatives, ``0 <= gamma_neg <= 20``; default 4.
        clip: the probability margin ``m``, ``0 <= clip < 1``; default 0.05; 0 disables it.
        reduction: ``"mean"`` (over elements, weighted by ``sample_weight``), ``"sum"`` (the
            official code's ``-loss.sum()``) or ``"none"`` (the logits' shape).
        sample_weight: optional ``(N,)`` non-negative weights, broadcast over classes.

    Returns:
        The loss: a scalar, or the logits' shape for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets other than 0 and 1, a parameter out of its range.
        TypeError: non-floating logits.

    Example:
        >>> # a negative with p = sigmoid(-4) = 0.018 < clip costs nothing
        >>> asymmetric_loss(torch.tensor([[-4.0]]), torch.tensor([[0.0]])).item()
        0.0
        >>> # a positive with gamma_pos = 0 costs -log p: x = 0 gives log 2
        >>> round(asymmetric_loss(torch.tensor([[0.0]]), torch.tensor([[1.0]])).item(), 6)
        0.693147

    Note:
        ``gamma_pos = gamma_neg = 0`` and ``clip = 0`` is binary cross-entropy; with
        ``clip = 0`` and ``gamma_pos = gamma_neg`` it is the sigmoid focal loss without
        ``alpha``. The gradient is taken through the focusing weights (the official code
        can detach them, ``disable_torch_grad_focal_loss``). Logarithms come from
        ``logsigmoid`` (and, with the margin, ``log(1 - p + clip)``, at least ``log clip``;
        never ``log`` of a clamped probability), so value, gradient and second derivative
        are finite at logits of ``±1e4``. Value and gradient come from one pass, the
        gradient in closed form.
    """
    check_params(
        NAME, AsymmetricParams, {"gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip}
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, y = inputs.logits, inputs.targets

    def compute(z: Tensor, tracked: bool, t: Tensor) -> tuple[Tensor, Tensor]:
        return _value_and_grad(z, t, gamma_pos, gamma_neg, clip, tracked)

    return reduce_loss(fused(x, compute, y), reduction, inputs.sample_weight)


def _value_and_grad(
    x: Tensor, y: Tensor, gamma_pos: float, gamma_neg: float, clip: float, tracked: bool
) -> tuple[Tensor, Tensor]:
    """Each element's loss and its gradient in closed form (:func:`_terms`)."""
    value, slope, _ = _terms(x, y, gamma_pos, gamma_neg, clip, tracked=tracked)
    return value, slope


def _terms(
    x: Tensor,
    y: Tensor,
    gamma_pos: float,
    gamma_neg: float,
    clip: float,
    *,
    tracked: bool,
    curvature: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Each element's loss, its first derivative and (when asked) its second, in closed form.

    A positive's ``-q^g log p`` has ``d/dx = q^g (g p log p - q)`` and the second derivative
    of :func:`~losses._stable.focused_curvature`. A negative's term is ``f(r) = -r^g log(1 -
    r)`` at ``r = p - clip`` where ``p > clip`` (0 below; :class:`_Margin`); at ``clip = 0``
    it is the focal term with ``x`` negated. Both are computed for every element and mixed
    by the 0/1 target (``torch.lerp`` is exact at weights 0 and 1; no branch to gather).
    ``log p`` from ``logsigmoid`` (``tracked``: the form whose derivatives are accurate, for
    a double backward); at ``clip = 0`` ``log q`` too, not ``log p - x``, which rounds a
    tiny ``log q`` to 0 for ``x << 0``."""
    log_sigmoid_of = log_sigmoid if tracked else F.logsigmoid
    log_p = log_sigmoid_of(x)
    log_q_rounded = log_p - x  # accurate enough for q and for q^g of positives
    p, q = log_p.exp(), log_q_rounded.exp()
    g = gamma_neg
    negative_bend = None
    if clip == 0.0:
        log_q = log_sigmoid_of(-x)
        p_power = _power(p, log_p, g)
        negative = -p_power * log_q
        negative_slope = p_power * (p - g * q * log_q)
        if curvature:
            negative_bend = focused_curvature(q, p, p_power, log_q, g)
    else:
        margin = _Margin(p, q, clip, g)
        negative = margin.value
        negative_slope = margin.slope * (p * q)
        if curvature:
            negative_bend = margin.curvature(p, q)
    q_power = _power(q, log_q_rounded, gamma_pos)
    if gamma_pos == 0:
        positive, positive_slope = -log_p, -q
    else:
        positive = -q_power * log_p
        positive_slope = q_power * (gamma_pos * p * log_p - q)
    value = torch.lerp(negative, positive, y)
    slope = torch.lerp(negative_slope, positive_slope, y)
    if negative_bend is None:
        return value, slope, None
    positive_bend = focused_curvature(p, q, q_power, log_p, gamma_pos)
    return value, slope, torch.lerp(negative_bend, positive_bend, y)


def _power(base: Tensor, log_base: Tensor, g: float) -> Tensor:
    """``base^g``: a product for a whole ``g`` up to 8 (1 for ``g = 0``, whatever the base),
    else ``exp(g log base)``."""
    if _whole(g):
        return _whole_power(base, int(g))
    return torch.exp(g * log_base)


class _Margin:
    """A negative's clipped term ``f(r) = -r^g log(1 - r)``, ``r = p - clip`` where ``p >
    clip`` (``active``), 0 elsewhere: its ``value``, and ``slope = f'(r) = -g r^(g-1) log(1 -
    r) + r^g / (1 - r)`` (0 where not active; ``dr/dx = p q``). ``1 - r = q + clip``. The
    inactive elements are fed ``r = 1`` and masked by multiplying with the 0/1 ``active``,
    with no ``torch.where``: on the CPU a masked select costs several arithmetic passes.
    The powers of ``r`` are products for a small whole ``g`` (the paper's 4), else
    ``exp(g log r)``."""

    def __init__(self, p: Tensor, q: Tensor, clip: float, g: float) -> None:
        self.active = (p > clip).to(p.dtype)
        self.r = (p - clip) * self.active + (1.0 - self.active)
        self.log_r = None if _whole(g, lowest=2) else torch.log(self.r)  # r^(g-2) too
        self.rest = q + clip
        self.log_rest = torch.log(self.rest)
        self.g = g
        below = self.power_of_r(g - 1)
        self.power = below * self.r  # r^g
        self.value = -(self.active * self.power) * self.log_rest
        self.slope = self.active * (self.power / self.rest - g * below * self.log_rest)

    def power_of_r(self, exponent: float) -> Tensor:
        """``r^exponent`` (``r`` is 1 where not active)."""
        if self.log_r is None:
            return _whole_power(self.r, int(exponent))
        return torch.exp(exponent * self.log_r)

    def curvature(self, p: Tensor, q: Tensor) -> Tensor:
        """``f''(r) (p q)^2 + f'(r) p q (1 - 2p)``, ``f'' = -g (g-1) r^(g-2) log(1-r) + 2 g
        r^(g-1) / (1-r) + r^g / (1-r)^2``; 0 where not active."""
        g, rest = self.g, self.rest
        bend = (
            -g * (g - 1) * self.power_of_r(g - 2) * self.log_rest
            + 2 * g * self.power_of_r(g - 1) / rest
            + self.power / (rest * rest)
        )
        pq = p * q
        return self.active * bend * pq * pq + self.slope * pq * (1.0 - 2.0 * p)


def _whole(g: float, *, lowest: int = 0) -> bool:
    """A whole exponent from ``lowest`` to 8, whose powers are cheaper (and exact to a few
    roundings) as products than as ``exp(g log r)``."""
    return float(g).is_integer() and lowest <= g <= 8


def _whole_power(base: Tensor, exponent: int) -> Tensor:
    """``base^exponent`` for ``exponent >= 0``: the product of the squarings its bits pick."""
    factors, square = [], base
    while exponent:
        if exponent & 1:
            factors.append(square)
        exponent >>= 1
        if exponent:
            square = square * square
    return functools.reduce(torch.mul, factors) if factors else torch.ones_like(base)


def asymmetric_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """The exact Hessian diagonal of :func:`asymmetric_loss`, O(N C).

    A positive's term is the focal one (:func:`~losses._stable.focused_curvature`). A
    negative's is ``f(r) = -r^g log(1 - r)`` at ``r = p - clip`` where ``p > clip`` (0
    below): ``f''(r) (p q)^2 + f'(r) p q (1 - 2p)`` with ``f' = -g r^(g-1) log(1-r) + r^g /
    (1-r)`` and ``f'' = -g (g-1) r^(g-2) log(1-r) + 2 g r^(g-1) / (1-r) + r^g / (1-r)^2``,
    ``1 - r = q + clip``; at ``clip = 0``, the focal form with ``x`` negated.
    """
    return _derivatives(
        logits,
        targets,
        gamma_pos=gamma_pos,
        gamma_neg=gamma_neg,
        clip=clip,
        reduction=reduction,
        sample_weight=sample_weight,
    )[2]


def _derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Value, gradient and Hessian diagonal from one pass of :func:`_terms`, a block of rows
    at a time."""
    check_params(
        NAME, AsymmetricParams, {"gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip}
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, y = inputs.logits, inputs.targets

    def block(z: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        return _terms(z, t, gamma_pos, gamma_neg, clip, tracked=False, curvature=True)

    value, slope, bend = curvature_by_rows(block, x, y)
    return scaled_derivatives(value, slope, bend, reduction, inputs.sample_weight)


class AsymmetricLoss(LossModule):
    """Module form of :func:`asymmetric_loss`."""

    function = staticmethod(asymmetric_loss)
    params_model = AsymmetricParams
    loss_name = NAME

    def __init__(
        self,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        reduction: str = "mean",
    ) -> None:
        super().__init__(gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction=reduction)


SPECS = (
    LossSpec(
        name=NAME,
        function=asymmetric_loss,
        module=AsymmetricLoss,
        params=AsymmetricParams,
        tasks=TASKS,
        summary="Asymmetric loss: focal focusing and a probability margin that discards easy "
        "negatives, for multilabel data.",
        formula=r"\ell = -y (1 - p)^{\gamma_+} \log p - (1 - y)\, p_m^{\gamma_-} \log(1 - p_m),"
        r"\ p = \sigma(x),\ p_m = \max(p - m, 0)",
        reference="Ridnik et al., Asymmetric Loss For Multi-Label Classification, ICCV 2021, "
        "arXiv:2009.14119",
        when_to_use="Multilabel data with many negative labels per sample (and possibly "
        "missing positive labels); gamma_neg 4, gamma_pos 0, clip 0.05 is the paper's setting.",
        coupling=element_wise,
        hessian_diagonal=asymmetric_hessian_diagonal,
        derivatives=_derivatives,
    ),
)
