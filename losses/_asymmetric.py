"""Asymmetric loss (ASL; multilabel, binary): separate focusing for positives and negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat
from torch import Tensor

from ._fused import fused
from ._reduction import Reduction, element_scale, reduce_loss
from ._registry import LossModule, LossSpec, element_wise
from ._stable import focused_curvature, focused_log_sigmoid_curvature, log_sigmoid
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

    def compute(z: Tensor, tracked: bool) -> tuple[Tensor, Tensor]:
        return _value_and_grad(z, y, gamma_pos, gamma_neg, clip, tracked)

    return reduce_loss(fused(x, compute, y), reduction, inputs.sample_weight)


def _value_and_grad(
    x: Tensor, y: Tensor, gamma_pos: float, gamma_neg: float, clip: float, tracked: bool
) -> tuple[Tensor, Tensor]:
    """Each element's loss and its gradient in closed form: a positive's ``-q^g log p`` has
    ``d/dx = q^g (g p log p - q)``; a negative's ``f(r) = -r^g log(1 - r)`` at ``r = p -
    clip`` (``r = p`` at ``clip = 0``) has ``d/dx = f'(r) p q``, ``f'(r) = -g r^(g-1) log(1 -
    r) + r^g / (1 - r)``, 0 where ``p <= clip``. ``log p`` and ``log q`` from
    ``logsigmoid`` (``tracked``: the one whose derivatives are accurate, for a double
    backward)."""
    if not tracked:
        return _value_and_grad_in_place(x, y, gamma_pos, gamma_neg, clip)
    log_p = log_sigmoid(x)
    log_q = log_p - x
    p, q = log_p.exp(), log_q.exp()
    q_power = torch.exp(gamma_pos * log_q)
    positive = -q_power * log_p
    positive_slope = q_power * (gamma_pos * p * log_p - q)
    if clip == 0.0:
        p_power = torch.exp(gamma_neg * log_p)
        negative = -p_power * log_q
        negative_slope = p_power * (p - gamma_neg * q * log_q)
    else:
        margin = _Margin(p, q, clip, gamma_neg)
        negative = torch.where(margin.active, -margin.power * margin.log_rest, 0.0)
        negative_slope = torch.where(margin.active, margin.slope * p * q, 0.0)
    is_positive = y == 1
    value = torch.where(is_positive, positive, negative)
    return value, torch.where(is_positive, positive_slope, negative_slope)


def _value_and_grad_in_place(
    x: Tensor, y: Tensor, gamma_pos: float, gamma_neg: float, clip: float
) -> tuple[Tensor, Tensor]:
    """:func:`_value_and_grad` without a graph, in few full-size tensors: the negatives' term
    for every element, in place where it can, then the positives' (the few elements where
    ``y = 1``) written over it. Each full-size temporary costs its allocation's page faults
    as much as its arithmetic."""
    log_p = F.logsigmoid(x)
    p = log_p.exp()
    q = torch.sub(log_p, x).exp_()
    g = gamma_neg
    if clip == 0.0:  # -p^g log q, d/dx = p^g (p - g q log q)
        log_q = torch.sub(log_p, x)
        power = torch.mul(log_p, g).exp_()
        value = torch.mul(power, log_q).neg_()
        slope = log_q.mul_(q).mul_(-g).add_(p).mul_(power)
    else:  # -r^g log(1 - r) at r = p - clip where p > clip (see _Margin), 0 below
        inactive = p <= clip
        log_r = torch.sub(p, clip).masked_fill_(inactive, 1.0).log_()
        rest = torch.add(q, clip)
        log_rest = rest.log()
        power = torch.mul(log_r, g).exp_()
        slope = log_r.mul_(g - 1.0).exp_().mul_(log_rest).mul_(-g)
        slope.add_(rest.reciprocal_().mul_(power)).mul_(p).mul_(q).masked_fill_(inactive, 0.0)
        value = power.mul_(log_rest).neg_().masked_fill_(inactive, 0.0)
    where = (y == 1).nonzero(as_tuple=True)
    if where[0].numel():  # -q^g log p, d/dx = q^g (g p log p - q)
        lp, lq = log_p[where], log_p[where] - x[where]
        q_power = torch.exp(gamma_pos * lq)
        value[where] = -q_power * lp
        slope[where] = q_power * (gamma_pos * lp.exp() * lp - lq.exp())
    return value, slope


class _Margin:
    """A negative's clipped term ``f(r) = -r^g log(1 - r)``, ``r = p - clip`` where ``p >
    clip`` (``active``; elsewhere fed ``r = 1``, masked out by the caller): ``log r``,
    ``1 - r = q + clip`` and its log, ``r^g`` and ``f'(r) = -g r^(g-1) log(1 - r) + r^g /
    (1 - r)``."""

    def __init__(self, p: Tensor, q: Tensor, clip: float, g: float) -> None:
        self.active = p > clip
        self.log_r = torch.log(torch.where(self.active, p - clip, 1.0))
        self.rest = q + clip
        self.log_rest = torch.log(self.rest)
        self.power = torch.exp(g * self.log_r)
        slope = -g * torch.exp((g - 1) * self.log_r) * self.log_rest
        self.slope = slope + self.power / self.rest
        self.g = g

    def curvature(self, p: Tensor, q: Tensor) -> Tensor:
        """``f''(r) (p q)^2 + f'(r) p q (1 - 2p)``, ``f'' = -g (g-1) r^(g-2) log(1-r) + 2 g
        r^(g-1) / (1-r) + r^g / (1-r)^2`` (masked by the caller where not active)."""
        g, log_r, rest = self.g, self.log_r, self.rest
        bend = (
            -g * (g - 1) * torch.exp((g - 2) * log_r) * self.log_rest
            + 2 * g * torch.exp((g - 1) * log_r) / rest
            + self.power / (rest * rest)
        )
        pq = p * q
        return bend * pq * pq + self.slope * pq * (1.0 - 2.0 * p)


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

    A positive's term is the focal one (:func:`~losses._stable.focused_log_sigmoid_curvature`).
    A negative's is ``f(r) = -r^g log(1 - r)`` at ``r = p - clip`` where ``p > clip`` (0
    below): ``f''(r) (p q)^2 + f'(r) p q (1 - 2p)`` with ``f' = -g r^(g-1) log(1-r) +
    r^g / (1-r)`` and ``f'' = -g (g-1) r^(g-2) log(1-r) + 2 g r^(g-1) / (1-r) + r^g /
    (1-r)^2``, ``1 - r = q + clip``; at ``clip = 0``, the focal form with ``x`` negated.
    """
    check_params(
        NAME, AsymmetricParams, {"gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip}
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, y = inputs.logits, inputs.targets
    log_p, log_q = log_sigmoid(x), log_sigmoid(-x)
    positive = focused_log_sigmoid_curvature(log_p, log_q, gamma_pos)
    if clip == 0.0:
        negative = focused_log_sigmoid_curvature(log_q, log_p, gamma_neg)
    else:
        p, q = log_p.exp(), log_q.exp()
        margin = _Margin(p, q, clip, gamma_neg)
        negative = torch.where(margin.active, margin.curvature(p, q), 0.0)
    curvature = torch.where(y == 1, positive, negative)
    return curvature * element_scale(reduction, inputs.sample_weight, x)


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
    """Value, gradient and Hessian diagonal from one pass: the terms of
    :func:`_value_and_grad` and the curvatures of :func:`asymmetric_hessian_diagonal`
    from the same ``log p``, ``p``, ``q``, powers and margin."""
    check_params(
        NAME, AsymmetricParams, {"gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip}
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, y = inputs.logits, inputs.targets
    log_p = F.logsigmoid(x)
    log_q = F.logsigmoid(-x)  # not log p - x: that rounds a tiny log q to 0 for x << 0
    p, q = log_p.exp(), log_q.exp()
    if clip == 0.0:
        p_power = torch.exp(gamma_neg * log_p)
        value = -p_power * log_q
        slope = p_power * (p - gamma_neg * q * log_q)
        bend = focused_curvature(q, p, p_power, log_q, gamma_neg)
    else:
        margin = _Margin(p, q, clip, gamma_neg)
        value = torch.where(margin.active, -margin.power * margin.log_rest, 0.0)
        slope = torch.where(margin.active, margin.slope * p * q, 0.0)
        bend = torch.where(margin.active, margin.curvature(p, q), 0.0)
    where = (y == 1).nonzero(as_tuple=True)  # the few positives, written over
    if where[0].numel():
        lp, pp, qq = log_p[where], p[where], q[where]
        q_power = torch.exp(gamma_pos * log_q[where])
        value.index_put_(where, -q_power * lp)
        slope.index_put_(where, q_power * (gamma_pos * pp * lp - qq))
        bend.index_put_(where, focused_curvature(pp, qq, q_power, lp, gamma_pos))
    scale = element_scale(reduction, inputs.sample_weight, x)
    return reduce_loss(value, reduction, inputs.sample_weight), slope * scale, bend * scale


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
