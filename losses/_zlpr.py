"""ZLPR: the multilabel categorical cross-entropy (zero-bounded log-sum-exp, pair-wise ranking)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._chunks import curvature_by_rows
from ._fused import fused
from ._reduction import Reduction, reduce_loss, scaled_derivatives
from ._registry import LossModule, LossSpec, per_sample
from ._stable import softmax_and_complement
from ._validation import Params, Task, check_params, prepare

__all__ = [
    "MultilabelCategoricalCrossentropyLoss",
    "MultilabelCategoricalCrossentropyParams",
    "multilabel_categorical_crossentropy_hessian_diagonal",
    "multilabel_categorical_crossentropy_loss",
]

NAME = "multilabel_categorical_crossentropy"
TASKS = frozenset({Task.MULTILABEL})


class MultilabelCategoricalCrossentropyParams(Params):
    """Parameters of :func:`multilabel_categorical_crossentropy_loss`: none.

    The decision threshold, 0, is built into the loss.
    """


def multilabel_categorical_crossentropy_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""ZLPR loss: every positive score above every negative one, and 0 in between.

    .. math::
        \ell_i = \log\Bigl(1 + \sum_{c \in \Omega_i^-} e^{s_{i,c}}\Bigr)
               + \log\Bigl(1 + \sum_{c \in \Omega_i^+} e^{-s_{i,c}}\Bigr)

    where :math:`\Omega_i^+` and :math:`\Omega_i^-` are sample :math:`i`'s positive and
    negative classes. Each term is a log-sum-exp over one set joined by a class of score 0,
    the built-in threshold.

    Su, "Extending softmax and cross-entropy to multi-label classification" (2020); Su et
    al., "ZLPR: A Novel Loss for Multi-label Classification", https://arxiv.org/abs/2208.02955.

    Args:
        logits: ``(N, C)`` unnormalised scores. Half precision is computed in float32 and the
            loss is returned in float32.
        targets: ``(N, C)`` multi-hot targets of exactly 0 or 1.
        reduction: ``"mean"`` (over samples, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (shape ``(N,)``).
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        The loss: a scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets other than 0 and 1, a bad ``reduction``.
        TypeError: non-floating logits.

    Example:
        >>> logits = torch.tensor([[0.0, 0.0]])
        >>> targets = torch.tensor([[1.0, 0.0]])
        >>> loss = multilabel_categorical_crossentropy_loss(logits, targets)
        >>> round(loss.item(), 4)  # log(1 + e^0) + log(1 + e^0) = 2 log 2
        1.3863

    Note:
        Decision rule: predict class ``c`` when ``s_c > 0``; the loss pushes every positive
        score above 0 and every negative one below 0, so no threshold needs tuning. A sample
        with no positives (or no negatives) keeps only the other term: the 0 class is always
        in each log-sum-exp, so neither is ever empty. With one positive per sample and the
        threshold class left out this is the softmax cross-entropy; the pair-wise form is
        :func:`losses.circle_loss` with ``scale=1, margin=0``.
    """
    check_params(NAME, MultilabelCategoricalCrossentropyParams, {})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, positive = inputs.logits, inputs.targets.bool()

    def compute(z: Tensor, tracked: bool, members: Tensor) -> tuple[Tensor, Tensor]:
        loss, slope, _ = _terms(z, members, curvature=False)
        return loss, slope

    return reduce_loss(fused(x, compute, positive), reduction, inputs.sample_weight)


def multilabel_categorical_crossentropy_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""The exact Hessian diagonal of :func:`multilabel_categorical_crossentropy_loss`.

    Each term is a log-sum-exp over one set and the 0 class, of the scores :math:`s_c`
    (negatives) or :math:`-s_c` (positives); a log-sum-exp's Hessian diagonal is
    :math:`\sigma_c (1 - \sigma_c)` with :math:`\sigma` its softmax, and the sign squares
    away. So :math:`H_{cc} = \sigma_c (1 - \sigma_c)` with :math:`\sigma` the softmax over
    class :math:`c`'s own set joined by the 0 class, times the reduction's factor: O(N C),
    with :math:`1 - \sigma` accurate as :math:`\sigma` nears 1
    (:func:`~losses._stable.softmax_and_complement`).
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
    check_params(NAME, MultilabelCategoricalCrossentropyParams, {})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, positive = inputs.logits, inputs.targets.bool()

    loss, slope, bend = curvature_by_rows(lambda z, t: _terms(z, t, curvature=True), x, positive)
    return scaled_derivatives(loss, slope, bend, reduction, inputs.sample_weight)


def _terms(x: Tensor, positive: Tensor, *, curvature: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    """Each sample's loss, its gradient and (when asked) its Hessian diagonal: each set's
    log-sum-exp with the 0 class (``logsumexp`` takes the ``-inf`` of the other set's
    entries, and the 0 class keeps every row's maximum finite), its softmax ``sigma`` (the
    gradient: ``sigma_c`` for a negative, ``-sigma_c`` for a positive, whose scores enter
    negated) and ``sigma (1 - sigma)``. Out of place: with a graph, autograd's derivatives
    of the gradient are the second ones (a double backward)."""
    zero = x.new_zeros(x.shape[0], 1)
    outside = torch.full_like(x, float("-inf"))

    def terms(scores: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        joined = torch.cat([scores, zero], dim=1)
        p, complement = softmax_and_complement(joined)
        p = p[:, :-1]
        bend = p * complement[:, :-1] if curvature else None
        return torch.logsumexp(joined, dim=1), p, bend

    lse_neg, p_neg, bend_neg = terms(torch.where(positive, outside, x))
    lse_pos, p_pos, bend_pos = terms(torch.where(positive, -x, outside))
    slope = torch.where(positive, -p_pos, p_neg)
    if bend_neg is None or bend_pos is None:
        return lse_neg + lse_pos, slope, None
    return lse_neg + lse_pos, slope, torch.where(positive, bend_pos, bend_neg)


class MultilabelCategoricalCrossentropyLoss(LossModule):
    """Module form of :func:`multilabel_categorical_crossentropy_loss`."""

    function = staticmethod(multilabel_categorical_crossentropy_loss)
    params_model = MultilabelCategoricalCrossentropyParams
    loss_name = NAME

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


SPECS = (
    LossSpec(
        name=NAME,
        function=multilabel_categorical_crossentropy_loss,
        module=MultilabelCategoricalCrossentropyLoss,
        params=MultilabelCategoricalCrossentropyParams,
        tasks=TASKS,
        summary="ZLPR multilabel cross-entropy: positives above 0 above negatives, "
        "threshold built in.",
        formula=r"\ell_i = \log\bigl(1 + \sum_{c \in \Omega_i^-} e^{s_{i,c}}\bigr)"
        r" + \log\bigl(1 + \sum_{c \in \Omega_i^+} e^{-s_{i,c}}\bigr)",
        reference="Su et al., ZLPR: A Novel Loss for Multi-label Classification, 2022, "
        "arXiv:2208.02955",
        when_to_use="Multilabel data with many classes and few positives per sample, where "
        "per-class sigmoid BCE drowns in negatives; predicts c when s_c > 0, no tuning.",
        coupling=per_sample,
        hessian_diagonal=multilabel_categorical_crossentropy_hessian_diagonal,
        derivatives=_derivatives,
    ),
)
