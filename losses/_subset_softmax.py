"""Subset softmax: a softmax over all label sets of size k (or of size at most max_k)."""

from __future__ import annotations

import math

import torch
from pydantic import Field, model_validator
from torch import Tensor

from ._chunks import by_rows, curvature_by_rows
from ._fused import one_pass
from ._reduction import Reduction, reduce_loss, scaled_derivatives
from ._registry import LossModule, LossSpec, per_sample
from ._validation import Params, Task, check_params, prepare

__all__ = [
    "SubsetSoftmaxLoss",
    "SubsetSoftmaxParams",
    "log_elementary_symmetric",
    "subset_softmax_hessian_diagonal",
    "subset_softmax_loss",
]

NAME = "subset_softmax"
TASKS = frozenset({Task.MULTILABEL})


class SubsetSoftmaxParams(Params):
    """Parameters of :func:`subset_softmax_loss`: exactly one of ``k`` and ``max_k``."""

    k: int | None = Field(
        None,
        ge=1,
        strict=True,
        description="Every sample has exactly k positives; the softmax runs over all k-subsets.",
    )
    max_k: int | None = Field(
        None,
        ge=1,
        strict=True,
        description="Every sample has at most max_k positives; max_k padding classes of "
        "score 0 fill each label set up to max_k (decision threshold 0).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SubsetSoftmaxParams:
        if (self.k is None) == (self.max_k is None):
            raise ValueError("Expected exactly one of k and max_k to be set")
        return self


def log_elementary_symmetric(scores: Tensor, k: int, *, first_order: bool = False) -> Tensor:
    """``log e_j(exp(scores))`` for ``j = 0..k`` along the last axis, shape ``(..., k + 1)``.

    The O(C k) recursion ``log E_j(i) = logaddexp(log E_j(i-1), s_i + log E_{j-1}(i-1))``
    in log space, vectorised over the leading axes and ``j``; not Newton's identities, whose
    alternating sums cancel catastrophically. ``e_j`` for ``j`` above the number of classes
    is 0; it comes out as a large finite negative number (about ``finfo.min / 16``), never
    ``-inf``. Each ``logaddexp`` is a ``logsumexp`` over a stacked pair: ``torch.logaddexp``'s
    double backward is NaN once ``e^{|a - b|}`` overflows (a gap of about 88 in float32, and
    always at ``-inf``), while ``logsumexp``'s derivatives only take ``e^{x - max}`` and stay
    exact, ties (curvature 1/4) included. ``first_order``: only first derivatives will be
    taken, so each step is one ``torch.logaddexp`` (three times faster).
    """
    impossible = torch.finfo(scores.dtype).min / 16
    state = scores.new_full((*scores.shape[:-1], k + 1), impossible)
    state[..., 0] = 0.0
    for i in range(scores.shape[-1]):
        lower, added = state[..., 1:], state[..., :-1] + scores[..., i : i + 1]
        if first_order:
            grown = torch.logaddexp(lower, added)
        else:
            grown = torch.logsumexp(torch.stack([lower, added], dim=-1), dim=-1)
        state = torch.cat([state[..., :1], grown], dim=-1)
    return state


def subset_softmax_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    k: int | None = None,
    max_k: int | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Subset softmax: the negative log-likelihood of the label set among all sets of its size.

    .. math::
        \ell_i = \log e_k\bigl(e^{s_{i,1}}, \dots, e^{s_{i,C}}\bigr)
                 - \sum_{c \in \Omega_i^+} s_{i,c},
        \qquad e_k(z) = \sum_{|S| = k} \prod_{c \in S} z_c

    With ``max_k`` (at most ``max_k`` positives), ``max_k`` interchangeable padding classes
    of score 0 join the ``C`` classes and a sample with ``t`` positives targets them plus
    ``max_k - t`` paddings:

    .. math::
        \ell_i = \log e_{K}\bigl(e^{s_i} \cup 1^{K}\bigr) - \sum_{c \in \Omega_i^+} s_{i,c}
                 - \log \binom{K}{K - t_i},
        \qquad e_K(e^{s} \cup 1^K) = \sum_{j=0}^{K} \binom{K}{j} e_j(e^{s})

    ``log e_j`` comes from the O(C k) log-space recursion of
    :func:`log_elementary_symmetric`. The exactly-k distribution and its O(C k) normaliser:
    Ahmed, Zeng, Niepert, Van den Broeck, "SIMPLE: A Gradient Estimator for k-Subset
    Sampling", ICLR 2023, https://arxiv.org/abs/2210.01941; used here as a classification
    loss, the k-subset generalisation of softmax cross-entropy.

    Args:
        logits: ``(N, C)`` unnormalised scores. Half precision is computed in float32 and the
            loss is returned in float32.
        targets: ``(N, C)`` multi-hot targets of exactly 0 or 1.
        k: exact number of positives in every sample, ``1 <= k <= C``; default ``None``.
        max_k: largest number of positives in any sample, ``>= 1``; default ``None``.
            Exactly one of ``k`` and ``max_k`` must be given.
        reduction: ``"mean"`` (over samples, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (shape ``(N,)``).
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        The loss: a scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        ValueError: both or neither of ``k`` and ``max_k``; ``k > C``; a sample with other
            than ``k`` (or more than ``max_k``) positives; bad shapes or targets.
        TypeError: non-floating logits.

    Example:
        >>> logits = torch.zeros(1, 3)
        >>> targets = torch.tensor([[1.0, 1.0, 0.0]])
        >>> round(subset_softmax_loss(logits, targets, k=2).item(), 4)  # log C(3, 2) = log 3
        1.0986

    Note:
        ``k=1`` is the softmax cross-entropy on the single positive; ``max_k=1`` is the
        softmax cross-entropy over the ``C`` classes and one "none" class of score 0.
        Decision rule: with ``k``, the ``k`` highest scores; with ``max_k``, the classes whose
        score beats 0, at most the ``max_k`` highest (the most probable padded set). Scoring
        every positive far above 0 and every negative far below drives the ``max_k`` loss
        to 0.
    """
    params = check_params(NAME, SubsetSoftmaxParams, {"k": k, "max_k": max_k})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    y = inputs.targets
    counts = _checked_counts(inputs.logits, y, params)

    def formula(x: Tensor) -> Tensor:
        return _log_z(x, counts, params, first_order=False) - (x * y).sum(dim=1)

    def first(z: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        loss, slope, _ = _terms(z, t, params, curvature=False)
        return loss, slope

    def value_and_grad(x: Tensor) -> tuple[Tensor, Tensor]:
        loss, slope = by_rows(first, x, y, blocks=_BLOCKS)
        return loss, slope

    if y.requires_grad:
        loss = formula(inputs.logits)
    else:
        loss = one_pass(inputs.logits, value_and_grad, formula)
    return reduce_loss(loss, reduction, inputs.sample_weight)


def subset_softmax_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    k: int | None = None,
    max_k: int | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""The exact Hessian diagonal of :func:`subset_softmax_loss` w.r.t. the logits, in
    O(N C k): the cost of one gradient.

    :math:`Z` (``e_k``, or the padded sum of ``e_j``) is multilinear in the :math:`u_c =
    e^{x_c}`: :math:`Z = A_c + u_c B_c` with :math:`A_c, B_c` free of :math:`u_c`. So
    :math:`\partial \log Z / \partial x_c = \pi_c`, the probability that class
    :math:`c` is in the label set under the subset softmax, and :math:`\partial^2 \log Z /
    \partial x_c^2 = \pi_c (1 - \pi_c)`; the picked scores are linear. :math:`\pi` is
    the gradient of :math:`\log Z` (autograd through the recursion, in float64), times the
    reduction's factor.
    """
    return _derivatives(
        logits, targets, k=k, max_k=max_k, reduction=reduction, sample_weight=sample_weight
    )[2]


def _derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    k: int | None = None,
    max_k: int | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Value, gradient and Hessian diagonal from one recursion (in float64): ``log Z`` and
    its gradient, the inclusion probabilities ``pi``; the loss ``log Z - sum of picked
    scores``, its gradient ``pi - y`` and its diagonal ``pi (1 - pi)``."""
    params = check_params(NAME, SubsetSoftmaxParams, {"k": k, "max_k": max_k})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    _checked_counts(inputs.logits, inputs.targets, params)

    loss, slope, bend = curvature_by_rows(
        lambda z, t: _terms(z, t, params, curvature=True),
        inputs.logits,
        inputs.targets,
        blocks=_BLOCKS,
    )
    return scaled_derivatives(loss, slope, bend, reduction, inputs.sample_weight)


# The recursion loops over the classes: blocks four times the usual size spread its Python
# overhead.
_BLOCKS = 4


def _terms(
    scores: Tensor, labels: Tensor, params: SubsetSoftmaxParams, *, curvature: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Each sample's loss, its gradient ``pi - y`` and, when asked, its Hessian diagonal
    ``pi (1 - pi)``: ``log Z`` from one first-order recursion in float64 and its gradient,
    the inclusion probabilities ``pi``; returned in the logits' precision. The counts are
    the caller's to check (:func:`_checked_counts`, once for the batch)."""
    x = scores.detach().double().requires_grad_(True)
    y = labels.to(torch.float64)
    counts = y.sum(dim=1).round().long()
    with torch.enable_grad():
        log_z = _log_z(x, counts, params, first_order=True)
        (inclusion,) = torch.autograd.grad(log_z.sum(), x)
    dtype = scores.dtype
    loss = (log_z.detach() - (x.detach() * y).sum(dim=1)).to(dtype)
    slope = (inclusion - y).to(dtype)
    if not curvature:
        return loss, slope, None
    return loss, slope, (inclusion * (1.0 - inclusion)).clamp_min(0.0).to(dtype)


def _checked_counts(x: Tensor, y: Tensor, params: SubsetSoftmaxParams) -> Tensor:
    """Each sample's number of positives, checked against ``k`` (and ``k`` against the
    number of classes) or ``max_k``, over the whole batch."""
    counts = y.sum(dim=1).round().long()
    if params.k is not None:
        num_classes = x.shape[1]
        if params.k > num_classes:
            raise ValueError(
                f"Expected k <= the number of classes ({num_classes}), got k={params.k}"
            )
        _check_counts(counts, params.k, exact=True)
    elif params.max_k is not None:
        _check_counts(counts, params.max_k, exact=False)
    return counts


def _log_z(x: Tensor, counts: Tensor, params: SubsetSoftmaxParams, *, first_order: bool) -> Tensor:
    """``log Z`` per sample: ``log e_k(e^x)`` with ``k``; with ``max_k = K``, ``log Z - log C(K,
    K - t)`` for ``K`` padding classes of score 0 (``e_K(e^x, 1, ..., 1) = sum_j C(K, j)
    e_j(e^x)``: one recursion over the ``C`` classes gives every ``e_j``; the paddings enter
    through the binomials, not ``K`` more steps)."""
    if params.k is not None:
        return log_elementary_symmetric(x, params.k, first_order=first_order)[:, params.k]
    if params.max_k is None:  # the params model requires one of them
        raise ValueError("Expected exactly one of k and max_k to be set, got neither")
    size = params.max_k
    log_e = log_elementary_symmetric(x, size, first_order=first_order)
    j = torch.arange(size + 1, device=x.device)
    log_z = torch.logsumexp(log_e + _log_binomial(size, j).to(x.dtype), dim=1)
    return log_z - _log_binomial(size, size - counts).to(x.dtype)


def _log_binomial(n: int, j: Tensor) -> Tensor:
    """``log C(n, j)`` for an integer tensor ``j`` in ``[0, n]``, exact to rounding."""
    jf = j.double()
    return math.lgamma(n + 1) - torch.lgamma(jf + 1) - torch.lgamma(float(n) - jf + 1)


def _check_counts(counts: Tensor, size: int, *, exact: bool) -> None:
    bad = counts != size if exact else counts > size
    if counts.numel() and bool(bad.any()):
        sample = int(bad.nonzero()[0, 0])
        got = int(counts[sample])
        if exact:
            raise ValueError(
                f"Expected exactly k={size} positive labels per sample, got {got} in sample "
                f"{sample}"
            )
        raise ValueError(
            f"Expected at most max_k={size} positive labels per sample, got {got} in sample "
            f"{sample}"
        )


class SubsetSoftmaxLoss(LossModule):
    """Module form of :func:`subset_softmax_loss`."""

    function = staticmethod(subset_softmax_loss)
    params_model = SubsetSoftmaxParams
    loss_name = NAME

    def __init__(
        self, k: int | None = None, max_k: int | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(k=k, max_k=max_k, reduction=reduction)


SPECS = (
    LossSpec(
        name=NAME,
        function=subset_softmax_loss,
        module=SubsetSoftmaxLoss,
        params=SubsetSoftmaxParams,
        tasks=TASKS,
        summary="Softmax over all k-subsets of classes (or subsets of at most max_k, padded "
        "with threshold classes at 0).",
        formula=r"\ell_i = \log e_k(e^{s_{i,1}}, \dots, e^{s_{i,C}})"
        r" - \sum_{c \in \Omega_i^+} s_{i,c}",
        reference="Ahmed et al., SIMPLE: A Gradient Estimator for k-Subset Sampling, "
        "ICLR 2023, arXiv:2210.01941 (the exactly-k distribution and its normaliser)",
        when_to_use="Multilabel data where each sample has exactly k labels (or at most "
        "max_k): the label set is scored jointly, as softmax does for one label.",
        coupling=per_sample,
        hessian_diagonal=subset_softmax_hessian_diagonal,
        derivatives=_derivatives,
    ),
)
