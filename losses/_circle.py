"""Circle loss in its unified pair-wise form, for multilabel scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ._chunks import curvature_by_rows
from ._fused import fused
from ._reduction import Reduction, reduce_loss, scaled_derivatives
from ._registry import LossModule, LossSpec, per_sample
from ._stable import masked_logsumexp, softmax_and_complement
from ._validation import Params, Task, check_params, prepare

__all__ = ["CircleLoss", "CircleParams", "circle_hessian_diagonal", "circle_loss"]

NAME = "circle"
TASKS = frozenset({Task.MULTILABEL})


class CircleParams(Params):
    """Parameters of :func:`circle_loss`."""

    scale: float = Field(
        1.0,
        gt=0.0,
        le=1024.0,
        description="Scale gamma multiplying every score; the paper uses 64-256 on cosines.",
    )
    margin: float = Field(
        0.0,
        ge=-100.0,
        le=100.0,
        description="Margin m added to every negative score (in score units, before scale).",
    )
    threshold_class: bool = Field(
        True,
        description="Add a class of score 0 to both the positives and the negatives, so "
        "that positives are pushed above 0 and negatives below it (decision threshold 0).",
    )


def circle_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    scale: float = 1.0,
    margin: float = 0.0,
    threshold_class: bool = True,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Circle loss (unified form): a soft maximum over all (negative, positive) score gaps.

    .. math::
        \ell_i = \log\Bigl(1 + \sum_{n \in \Omega_i^-} \sum_{p \in \Omega_i^+}
                 e^{\gamma (s_{i,n} - s_{i,p} + m)}\Bigr)
               = \operatorname{softplus}\bigl(
                 \operatorname{LSE}_n \gamma (s_{i,n} + m) + \operatorname{LSE}_p (-\gamma s_{i,p})
                 \bigr)

    With ``threshold_class`` a class of score 0 joins both :math:`\Omega_i^+` and
    :math:`\Omega_i^-` (the pair of it with itself left out), which gives, with
    :math:`A = \sum_n e^{\gamma s_{i,n}}` and :math:`B = \sum_p e^{-\gamma s_{i,p}}`,

    .. math::
        \ell_i = \log\bigl(1 + e^{\gamma m} (A + B + A B)\bigr)
               = \operatorname{softplus}\bigl(\gamma m
                 + \operatorname{LSE}(\log A, \log B, \log A + \log B)\bigr)

    Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity Optimization",
    CVPR 2020, https://arxiv.org/abs/2002.10857 (eq. 1; the self-paced weights of eq. 4 are
    not applied).

    Args:
        logits: ``(N, C)`` unnormalised scores. Half precision is computed in float32 and the
            loss is returned in float32.
        targets: ``(N, C)`` multi-hot targets of exactly 0 or 1.
        scale: :math:`\gamma`, ``0 < scale <= 1024``; default 1.
        margin: :math:`m`, ``-100 <= margin <= 100``; default 0. Positive margins ask each
            positive to beat each negative by ``m``.
        threshold_class: add the class of score 0 (default ``True``).
        reduction: ``"mean"`` (over samples, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (shape ``(N,)``).
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        The loss: a scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets other than 0 and 1, a parameter out of its range.
        TypeError: non-floating logits.

    Example:
        >>> logits = torch.tensor([[1.0, -1.0]])
        >>> targets = torch.tensor([[1.0, 0.0]])
        >>> value = circle_loss(logits, targets, threshold_class=False)
        >>> round(value.item(), 4)  # log(1 + e^{-1 - 1})
        0.1269

    Note:
        ``scale=1, margin=0`` with the threshold class is the ZLPR loss
        (``multilabel_categorical_crossentropy``) exactly: :math:`(1 + A)(1 + B)`. The
        decision rule with the threshold class is ``s_c > 0``; without it the loss only ranks
        positives above negatives, and a sample with no positives or no negatives has no pair:
        its loss is 0 with a zero gradient. Written as above the loss needs neither
        ``expm1`` nor a branch, so it stays exact when all pairs are separated by far
        (``A = B = 0`` in floating point) and for any ``scale * margin``.
    """
    params = check_params(
        NAME,
        CircleParams,
        {"scale": scale, "margin": margin, "threshold_class": threshold_class},
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, positive = inputs.logits, inputs.targets.bool()

    def compute(z: Tensor, tracked: bool, members: Tensor) -> tuple[Tensor, Tensor]:
        loss, slope, _ = _terms(z, members, params, curvature=False)
        return loss, slope

    return reduce_loss(fused(x, compute, positive), reduction, inputs.sample_weight)


class _Pairs:
    """What the loss is made of: ``log A`` and ``log B`` (0 for an empty set, which
    ``has_neg`` and ``has_pos`` tell), ``gamma * m``, and with the threshold class the terms
    ``log A, log B, log A + log B`` of ``log(A + B + AB)`` with the ones ``present``."""

    def __init__(self, x: Tensor, positive: Tensor, params: CircleParams) -> None:
        self.gamma = params.scale
        self.shift = params.scale * params.margin
        self.has_neg = (~positive).any(dim=1)
        self.has_pos = positive.any(dim=1)
        zero = x.new_zeros(x.shape[0])
        # -inf with a zero gradient for an empty set, masked out
        log_a = masked_logsumexp(self.gamma * x, ~positive, dim=1)
        log_b = masked_logsumexp(-self.gamma * x, positive, dim=1)
        self.log_a = torch.where(self.has_neg, log_a, zero)
        self.log_b = torch.where(self.has_pos, log_b, zero)
        # log(A + B + AB): a log-sum-exp over the terms whose sets are not empty; C >= 1,
        # so at least one of A and B is
        self.terms = torch.stack([self.log_a, self.log_b, self.log_a + self.log_b], dim=1)
        self.present = torch.stack([self.has_neg, self.has_pos, self.has_neg & self.has_pos], dim=1)


def circle_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    scale: float = 1.0,
    margin: float = 0.0,
    threshold_class: bool = True,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""The exact Hessian diagonal of :func:`circle_loss` w.r.t. the logits, in O(N C).

    A negative's score enters only :math:`a = \log A` and a positive's only :math:`b =
    \log B`, with :math:`\partial a / \partial s_n = \gamma \pi_n` and
    :math:`\partial^2 a / \partial s_n^2 = \gamma^2 \pi_n (1 - \pi_n)` (:math:`\pi` the
    softmax of :math:`\gamma s` over the negatives; for :math:`b`, of :math:`-\gamma s`
    over the positives). So :math:`H_{nn} = \ell_{aa} \gamma^2 \pi_n^2 + \ell_a
    \gamma^2 \pi_n (1 - \pi_n)`, and alike for positives. The loss is
    :math:`\operatorname{softplus}(u)`: without the threshold class :math:`u = \gamma m
    + a + b`, :math:`\ell_a = \sigma(u)`, :math:`\ell_{aa} = \sigma(u) \sigma(-u)`;
    with it :math:`u = \gamma m + g`, :math:`g = \log(e^a + e^b + e^{a+b})`, whose
    :math:`g_a = w_0 + w_2` (:math:`w` the softmax of the three terms) has
    :math:`g_{aa} = g_a (1 - g_a)`: :math:`\ell_a = \sigma(u) g_a`, :math:`\ell_{aa} =
    \sigma(u) \sigma(-u) g_a^2 + \sigma(u) g_a (1 - g_a)`.
    """
    return _derivatives(
        logits,
        targets,
        scale=scale,
        margin=margin,
        threshold_class=threshold_class,
        reduction=reduction,
        sample_weight=sample_weight,
    )[2]


def _derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    scale: float = 1.0,
    margin: float = 0.0,
    threshold_class: bool = True,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Value, gradient and Hessian diagonal from one pass (see
    :func:`circle_hessian_diagonal`): the value ``softplus(u)``, and the gradient ``ell_a
    gamma pi_n`` for a negative, ``-ell_b gamma pi_p`` for a positive."""
    params = check_params(
        NAME,
        CircleParams,
        {"scale": scale, "margin": margin, "threshold_class": threshold_class},
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, positive = inputs.logits, inputs.targets.bool()

    loss, slope, bend = curvature_by_rows(lambda z, t: _terms(z, t, params), x, positive)
    return scaled_derivatives(loss, slope, bend, reduction, inputs.sample_weight)


def _terms(
    x: Tensor, positive: Tensor, params: CircleParams, *, curvature: bool = True
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Each sample's loss ``softplus(u)``, its gradient (``ell_a gamma pi_n`` for a negative,
    ``-ell_b gamma pi_p`` for a positive) and, when asked, its Hessian diagonal (see
    :func:`circle_hessian_diagonal`). Out of place: with a graph, autograd's derivatives of
    the gradient are the second ones (a double backward)."""
    pairs = _Pairs(x, positive, params)
    gamma = pairs.gamma
    if params.threshold_class:
        u = pairs.shift + masked_logsumexp(pairs.terms, pairs.present, dim=1)
        w = torch.softmax(pairs.terms.masked_fill(~pairs.present, float("-inf")), dim=1)
        g_a, one_minus_g_a = w[:, 0] + w[:, 2], w[:, 1]
        g_b, one_minus_g_b = w[:, 1] + w[:, 2], w[:, 0]
        loss = F.softplus(u)
    else:
        u = pairs.shift + pairs.log_a + pairs.log_b
        both = pairs.has_neg & pairs.has_pos
        g_a = g_b = torch.where(both, 1.0, 0.0).to(x.dtype)
        one_minus_g_a = one_minus_g_b = torch.zeros_like(g_a)
        loss = torch.where(both, F.softplus(u), torch.zeros_like(u))
    s = torch.sigmoid(u)
    first_a, first_b = s * g_a, s * g_b

    def softmax_terms(scores: Tensor, members: Tensor) -> tuple[Tensor, Tensor]:
        """pi and 1 - pi of the softmax over each row's members (pi 0 elsewhere)."""
        filled = scores.masked_fill(~members, float("-inf"))
        filled = filled.masked_fill(~members.any(dim=1, keepdim=True), 0.0)  # no members
        pi, complement = softmax_and_complement(filled)
        return pi * members, complement

    neg_pi, neg_rest = softmax_terms(gamma * x, ~positive)
    pos_pi, pos_rest = softmax_terms(-gamma * x, positive)
    slope = gamma * torch.where(
        positive, -first_b.unsqueeze(1) * pos_pi, first_a.unsqueeze(1) * neg_pi
    )
    if not curvature:
        return loss, slope, None
    s_bar = torch.sigmoid(-u)
    second_a = s * s_bar * g_a * g_a + s * g_a * one_minus_g_a
    second_b = s * s_bar * g_b * g_b + s * g_b * one_minus_g_b
    negative_h = second_a.unsqueeze(1) * neg_pi * neg_pi + first_a.unsqueeze(1) * neg_pi * neg_rest
    positive_h = second_b.unsqueeze(1) * pos_pi * pos_pi + first_b.unsqueeze(1) * pos_pi * pos_rest
    return loss, slope, gamma * gamma * torch.where(positive, positive_h, negative_h)


class CircleLoss(LossModule):
    """Module form of :func:`circle_loss`."""

    function = staticmethod(circle_loss)
    params_model = CircleParams
    loss_name = NAME

    def __init__(
        self,
        scale: float = 1.0,
        margin: float = 0.0,
        threshold_class: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            scale=scale, margin=margin, threshold_class=threshold_class, reduction=reduction
        )


SPECS = (
    LossSpec(
        name=NAME,
        function=circle_loss,
        module=CircleLoss,
        params=CircleParams,
        tasks=TASKS,
        summary="Circle loss (unified form): soft maximum of scaled negative-minus-positive "
        "score gaps, optional threshold class at 0.",
        formula=r"\ell_i = \log\bigl(1 + \sum_{n \in \Omega_i^-} \sum_{p \in \Omega_i^+}"
        r" e^{\gamma (s_{i,n} - s_{i,p} + m)}\bigr)",
        reference="Sun et al., Circle Loss: A Unified Perspective of Pair Similarity "
        "Optimization, CVPR 2020, arXiv:2002.10857",
        when_to_use="Multilabel ranking where every positive should beat every negative by a "
        "margin; scale 1, margin 0 with the threshold class is ZLPR.",
        coupling=per_sample,
        hessian_diagonal=circle_hessian_diagonal,
        derivatives=_derivatives,
    ),
)
