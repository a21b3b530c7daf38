"""Softmax cross-entropy (multiclass), with class weights, label smoothing and ignore_index."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field
from torch import Tensor

from ._reduction import Reduction, reduce_loss
from ._registry import LossModule, LossSpec, per_sample
from ._stable import softmax_and_complement
from ._validation import (
    NonNegativePerClass,
    Params,
    Prepared,
    Task,
    check_params,
    per_class_tensor,
    prepare,
)

__all__ = [
    "CrossEntropyLoss",
    "CrossEntropyParams",
    "cross_entropy_hessian_diagonal",
    "cross_entropy_loss",
]

NAME = "cross_entropy"
TASKS = frozenset({Task.MULTICLASS})


class CrossEntropyParams(Params):
    """Parameters of :func:`cross_entropy_loss`."""

    weight: NonNegativePerClass | None = Field(
        None,
        description="Per-class weights (one finite value >= 0 per class, indexed by the target "
        "class); None weighs every class 1. The mean divides by the summed weights.",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Label smoothing epsilon in [0, 1]: the target is (1 - eps) one-hot + eps/C.",
    )
    ignore_index: int = Field(
        -100,
        description="Target value whose samples are skipped: loss 0, left out of the mean.",
    )


def cross_entropy_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    weight: Sequence[float] | Tensor | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Softmax cross-entropy, the same as ``torch.nn.functional.cross_entropy``.

    .. math::
        \ell_i = (1 - \varepsilon)\, w_{y_i} (-\log p_{i,y_i})
            + \frac{\varepsilon}{C} \sum_{c=1}^{C} w_c (-\log p_{i,c}),
        \qquad p_i = \operatorname{softmax}(x_i)

    and ``mean`` is :math:`\sum_i s_i \ell_i / \sum_i s_i w_{y_i}` over the samples that are
    not ignored (:math:`s_i` the sample weights, 1 when not given).

    Label smoothing: Szegedy et al., "Rethinking the Inception Architecture for Computer
    Vision", CVPR 2016, https://arxiv.org/abs/1512.00567.

    Args:
        logits: ``(N, C)`` unnormalised scores. Half precision is computed in float32 and the
            loss is returned in float32.
        targets: ``(N,)`` integer class indices in ``[0, C)``, or ``ignore_index``.
        weight: ``None`` (every class 1) or a per-class sequence of ``C`` finite values
            ``>= 0``, indexed by the class (``w_c`` above).
        label_smoothing: ``0 <= epsilon <= 1``; default 0 (no smoothing).
        ignore_index: target value whose samples contribute nothing: their loss is 0 and they
            are left out of the ``mean``'s denominator; default -100.
        reduction: ``"mean"`` (weighted by ``sample_weight`` and ``weight`` as above),
            ``"sum"`` or ``"none"`` (shape ``(N,)``, ignored samples 0).
        sample_weight: optional ``(N,)`` non-negative weights ``s_i``; each sample's loss is
            multiplied by its weight.

    Returns:
        The loss: a scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, a class index out of range (``ignore_index`` aside), a
            parameter out of its range.
        TypeError: non-floating logits or non-integer targets.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> targets = torch.tensor([0, 2])
        >>> ours = cross_entropy_loss(logits, targets, label_smoothing=0.1)
        >>> ref = torch.nn.functional.cross_entropy(logits, targets, label_smoothing=0.1)
        >>> torch.allclose(ours, ref)
        True

    Note:
        ``weight=None``, ``label_smoothing=0`` is the plain negative log-likelihood of the
        softmax. The ``mean`` of a batch whose samples are all ignored is 0, where torch
        returns NaN (0/0). With ``label_smoothing=1`` the target is uniform and the loss no
        longer depends on the labels (except through ``ignore_index``).
    """
    check_params(
        NAME,
        CrossEntropyParams,
        {"weight": weight, "label_smoothing": label_smoothing, "ignore_index": ignore_index},
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, ignore_index=ignore_index)
    x = inputs.logits
    num_classes = x.shape[1]
    valid, safe_y, class_weight, denominator = _target_weights(inputs, weight, ignore_index)
    log_p = torch.log_softmax(x, dim=1)
    nll = -log_p.gather(1, safe_y.unsqueeze(1)).squeeze(1)
    loss = (1.0 - label_smoothing) * class_weight * nll
    if label_smoothing > 0.0:
        smooth = -(log_p.sum(dim=1) if weight is None else (log_p * _weight(weight, x)).sum(dim=1))
        loss = loss + (label_smoothing / num_classes) * smooth
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    return reduce_loss(loss, reduction, inputs.sample_weight, denominator=denominator)


def _weight(weight: Sequence[float] | Tensor, x: Tensor) -> Tensor:
    return per_class_tensor("weight", weight, x)


def _target_weights(
    inputs: Prepared, weight: Sequence[float] | Tensor | None, ignore_index: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The valid mask, safe targets, ``w_{y_i}`` and the ``mean``'s denominator."""
    x, y = inputs.logits, inputs.targets
    valid = y != ignore_index
    safe_y = torch.where(valid, y, torch.zeros_like(y))
    class_weight = x.new_ones(y.shape) if weight is None else _weight(weight, x)[safe_y]
    counted = torch.where(valid, class_weight, torch.zeros_like(class_weight))
    if inputs.sample_weight is not None:
        counted = counted * inputs.sample_weight
    return valid, safe_y, class_weight, counted.sum()


def cross_entropy_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    weight: Sequence[float] | Tensor | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""The exact Hessian diagonal of :func:`cross_entropy_loss` w.r.t. the logits, in O(N C).

    Each :math:`-\log p_{i,c}` has the Hessian :math:`\operatorname{diag}(p_i) - p_i p_i^T`,
    whatever ``c``; so with :math:`A_i = (1-\varepsilon) w_{y_i} + \frac{\varepsilon}{C}
    \sum_c w_c` the diagonal is :math:`s_i A_i\, p_{i,c} (1 - p_{i,c})`, divided by the
    ``mean``'s denominator. :math:`1 - p` is the other classes' summed probability at the
    argmax (:func:`~losses._stable.softmax_and_complement`), accurate as ``p`` nears 1.
    ``losses.derivatives`` uses it in place of ``C`` Hessian-vector products.
    """
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, ignore_index=ignore_index)
    x = inputs.logits
    valid, _, class_weight, denominator = _target_weights(inputs, weight, ignore_index)
    total_weight = float(x.shape[1]) if weight is None else _weight(weight, x).sum()
    coefficient = (1.0 - label_smoothing) * class_weight + (
        label_smoothing / x.shape[1]
    ) * total_weight
    coefficient = torch.where(valid, coefficient, torch.zeros_like(coefficient))
    if inputs.sample_weight is not None:
        coefficient = coefficient * inputs.sample_weight
    if Reduction.parse(reduction) is Reduction.MEAN:
        coefficient = coefficient / denominator.clamp_min(torch.finfo(denominator.dtype).tiny)
    p, complement = softmax_and_complement(x)
    return p.mul_(complement).mul_(coefficient.unsqueeze(1))


class CrossEntropyLoss(LossModule):
    """Module form of :func:`cross_entropy_loss`; ``weight`` is kept as a buffer."""

    function = staticmethod(cross_entropy_loss)
    params_model = CrossEntropyParams
    loss_name = NAME

    def __init__(
        self,
        weight: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            weight=weight,
            label_smoothing=label_smoothing,
            ignore_index=ignore_index,
            reduction=reduction,
        )


SPECS = (
    LossSpec(
        name=NAME,
        function=cross_entropy_loss,
        module=CrossEntropyLoss,
        params=CrossEntropyParams,
        tasks=TASKS,
        summary="Softmax cross-entropy with optional class weights, label smoothing and "
        "ignore_index, identical to torch.nn.functional.cross_entropy.",
        formula=r"\ell_i = (1-\varepsilon) w_{y_i} (-\log p_{i,y_i}) + \frac{\varepsilon}{C} "
        r"\sum_c w_c (-\log p_{i,c}),\ p_i = \operatorname{softmax}(x_i)",
        reference="Label smoothing: Szegedy et al., Rethinking the Inception Architecture for "
        "Computer Vision, CVPR 2016, arXiv:1512.00567",
        when_to_use="The baseline for multiclass classification; per-class weights (e.g. "
        "inverse frequency) are the simplest answer to class imbalance.",
        coupling=per_sample,
        hessian_diagonal=cross_entropy_hessian_diagonal,
    ),
)
