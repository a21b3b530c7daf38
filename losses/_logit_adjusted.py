"""Logit-adjusted softmax cross-entropy for long-tailed multiclass data (Menon et al., 2021)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field, NonNegativeFloat
from torch import Tensor

from ._cross_entropy import cross_entropy_hessian_diagonal
from ._reduction import Reduction, reduce_loss
from ._registry import LossModule, LossSpec, per_sample
from ._validation import (
    Params,
    PositivePerClass,
    Task,
    check_params,
    per_class_tensor,
    prepare,
)

__all__ = [
    "LogitAdjustedCrossEntropyLoss",
    "LogitAdjustedCrossEntropyParams",
    "logit_adjusted_cross_entropy_loss",
]

NAME = "logit_adjusted_cross_entropy"
TASKS = frozenset({Task.MULTICLASS})


class LogitAdjustedCrossEntropyParams(Params):
    """Parameters of :func:`logit_adjusted_cross_entropy_loss`."""

    class_prior: PositivePerClass = Field(
        description="Required. The training label distribution: one finite value > 0 per class "
        "(frequencies or counts; normalised to sum 1 inside).",
    )
    tau: NonNegativeFloat = Field(
        1.0,
        allow_inf_nan=False,
        description="Scale of the adjustment tau * log(prior); 0 is cross-entropy, 1 is the "
        "paper's default.",
    )


def logit_adjusted_cross_entropy_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    class_prior: Sequence[float] | Tensor,
    tau: float = 1.0,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Logit-adjusted cross-entropy: softmax cross-entropy on logits shifted by the log prior.

    .. math::
        \ell_i = -\log \frac{\exp(x_{i,y_i} + \tau \log \pi_{y_i})}
            {\sum_{c=1}^{C} \exp(x_{i,c} + \tau \log \pi_c)},
        \qquad \pi = \text{class\_prior} / \textstyle\sum_c \text{class\_prior}_c

    Menon et al., "Long-tail learning via logit adjustment", ICLR 2021,
    https://arxiv.org/abs/2007.07314 (their logit-adjusted softmax cross-entropy). Training with
    it makes the plain ``argmax`` of the logits approximate the balanced-error-optimal
    classifier; predict with the unadjusted logits.

    Args:
        logits: ``(N, C)`` unnormalised scores. Half precision is computed in float32 and the
            loss is returned in float32.
        targets: ``(N,)`` integer class indices in ``[0, C)``.
        class_prior: required; ``C`` finite values ``> 0``, the training class frequencies or
            counts (normalised to sum 1 here).
        tau: adjustment scale, ``tau >= 0``; default 1.
        reduction: ``"mean"`` (over samples, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (shape ``(N,)``).
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        The loss: a scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, a class index out of range, a ``class_prior`` of the wrong
            length or with a value ``<= 0``, ``tau < 0``.
        TypeError: non-floating logits, non-integer targets, ``class_prior`` not given.

    Example:
        >>> logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
        >>> targets = torch.tensor([2, 1])
        >>> prior = torch.tensor([0.7, 0.2, 0.1])
        >>> ours = logit_adjusted_cross_entropy_loss(logits, targets, class_prior=prior)
        >>> ref = torch.nn.functional.cross_entropy(logits + prior.log(), targets)
        >>> torch.allclose(ours, ref)
        True

    Note:
        ``tau=0`` and a uniform ``class_prior`` are both plain cross-entropy (a constant shift
        of every logit leaves the softmax unchanged). The shift is added before
        ``log_softmax``, so the loss stays finite for logits of any size.
    """
    check_params(NAME, LogitAdjustedCrossEntropyParams, {"class_prior": class_prior, "tau": tau})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets
    log_p = torch.log_softmax(_adjusted(x, class_prior, tau), dim=1)
    loss = -log_p.gather(1, y.unsqueeze(1)).squeeze(1)
    return reduce_loss(loss, reduction, inputs.sample_weight)


def _adjusted(x: Tensor, class_prior: Sequence[float] | Tensor, tau: float) -> Tensor:
    prior = per_class_tensor("class_prior", class_prior, x)
    return x + tau * (torch.log(prior) - torch.log(prior.sum()))


def logit_adjusted_cross_entropy_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    class_prior: Sequence[float] | Tensor,
    tau: float = 1.0,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """The exact Hessian diagonal: cross-entropy's at the adjusted logits (a constant shift)."""
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    return cross_entropy_hessian_diagonal(
        _adjusted(inputs.logits, class_prior, tau),
        inputs.targets,
        reduction=reduction,
        sample_weight=inputs.sample_weight,
    )


class LogitAdjustedCrossEntropyLoss(LossModule):
    """Module form of :func:`logit_adjusted_cross_entropy_loss`; the prior is a buffer."""

    function = staticmethod(logit_adjusted_cross_entropy_loss)
    params_model = LogitAdjustedCrossEntropyParams
    loss_name = NAME

    def __init__(
        self,
        class_prior: Sequence[float],
        tau: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(class_prior=class_prior, tau=tau, reduction=reduction)


SPECS = (
    LossSpec(
        name=NAME,
        function=logit_adjusted_cross_entropy_loss,
        module=LogitAdjustedCrossEntropyLoss,
        params=LogitAdjustedCrossEntropyParams,
        tasks=TASKS,
        summary="Softmax cross-entropy on logits shifted by tau times the log class prior, "
        "for long-tailed multiclass data.",
        formula=r"\ell_i = -\log \frac{e^{x_{i,y_i} + \tau \log \pi_{y_i}}}"
        r"{\sum_c e^{x_{i,c} + \tau \log \pi_c}}",
        reference="Menon et al., Long-tail learning via logit adjustment, ICLR 2021, "
        "arXiv:2007.07314",
        when_to_use="Long-tailed multiclass data where balanced accuracy matters: give the "
        "training class counts as class_prior; tau=1 is the paper's default.",
        coupling=per_sample,
        hessian_diagonal=logit_adjusted_cross_entropy_hessian_diagonal,
    ),
)
