"""Circle loss in its unified pair-wise form, for multilabel scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ._reduction import Reduction, reduce_loss
from ._registry import LossModule, LossSpec, per_sample
from ._stable import masked_logsumexp
from ._validation import Params, Task, check_params, prepare

__all__ = ["CircleLoss", "CircleParams", "circle_loss"]

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
    gamma = params.scale
    shift = params.scale * params.margin
    has_neg = (~positive).any(dim=1)
    has_pos = positive.any(dim=1)
    # log A and log B; -inf with a zero gradient for an empty set, masked out below.
    log_a = masked_logsumexp(gamma * x, ~positive, dim=1)
    log_b = masked_logsumexp(-gamma * x, positive, dim=1)
    zero = torch.zeros_like(log_a)
    safe_a = torch.where(has_neg, log_a, zero)
    safe_b = torch.where(has_pos, log_b, zero)
    if params.threshold_class:
        # log(A + B + AB): a log-sum-exp over the terms whose sets are not empty; C >= 1, so
        # at least one of A and B is.
        terms = torch.stack([safe_a, safe_b, safe_a + safe_b], dim=1)
        present = torch.stack([has_neg, has_pos, has_neg & has_pos], dim=1)
        loss = F.softplus(shift + masked_logsumexp(terms, present, dim=1))
    else:
        both = has_neg & has_pos
        loss = torch.where(both, F.softplus(shift + safe_a + safe_b), zero)
    return reduce_loss(loss, reduction, inputs.sample_weight)


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
    ),
)
