"""Hinge loss (binary, multiclass): the SVM margin loss, Crammer-Singer or Weston-Watkins."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, StrictBool
from torch import Tensor

from ._reduction import Reduction, reduce_loss, sample_scale
from ._registry import Coupling, LossModule, LossSpec
from ._validation import Params, Task, check_params, prepare

__all__ = ["HingeLoss", "HingeParams", "hinge_hessian_diagonal", "hinge_loss"]

NAME = "hinge"
TASKS = frozenset({Task.BINARY, Task.MULTICLASS})

Variant = Literal["crammer_singer", "weston_watkins"]


class HingeParams(Params):
    """Parameters of :func:`hinge_loss`."""

    margin: float = Field(1.0, gt=0.0, description="The margin the correct score must clear.")
    squared: StrictBool = Field(False, description="Square each hinge term (L2-SVM).")
    variant: Variant = Field(
        "crammer_singer",
        description="Multiclass form: 'crammer_singer' (the largest violating class) or "
        "'weston_watkins' (the sum over every other class); binary ignores it.",
    )


def hinge_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    margin: float = 1.0,
    squared: bool = False,
    variant: Variant = "crammer_singer",
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Hinge loss: zero once the correct score clears the others by ``margin``, linear before.

    .. math::
        \text{binary: } \ell_i = [m - t_i x_i]_+,\ t_i = 2 y_i - 1; \quad
        \text{CS: } \ell_i = [m + \max_{c \ne y_i} x_{ic} - x_{iy_i}]_+; \quad
        \text{WW: } \ell_i = \sum_{c \ne y_i} [m - x_{iy_i} + x_{ic}]_+

    and each ``[.]_+`` squared when ``squared``. Crammer & Singer, "On the Algorithmic
    Implementation of Multiclass Kernel-based Vector Machines", JMLR 2001; Weston & Watkins,
    "Support Vector Machines for Multi-Class Pattern Recognition", ESANN 1999 (neither has an
    arXiv id).

    Args:
        logits: ``(N,)`` binary scores or ``(N, C)`` multiclass scores, ``C >= 2``. Half
            precision is computed in float32 and the loss is returned in float32.
        targets: binary: ``(N,)`` labels exactly 0 or 1 (read as -1 and +1); multiclass:
            ``(N,)`` integer class indices in ``[0, C)``.
        margin: ``m > 0``; default 1.
        squared: square each hinge term (the L2-SVM loss); default False.
        variant: ``"crammer_singer"`` (default) or ``"weston_watkins"``; binary ignores it
            (on two classes both are the binary hinge).
        reduction: ``"mean"`` (over samples, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (shape ``(N,)``).
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        The loss: a scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, binary targets other than 0 and 1, a class index out of
            range, fewer than 2 classes, a parameter out of its range.
        TypeError: non-floating logits, non-integer multiclass targets.

    Example:
        >>> # binary: t = +1, x = 0.25 -> 1 - 0.25; t = -1, x = -3 -> 0
        >>> hinge_loss(torch.tensor([0.25, -3.0]), torch.tensor([1.0, 0.0]), reduction="none")
        tensor([0.7500, 0.0000])
        >>> # Crammer-Singer: 1 + max(2, 0.5) - 1.5 = 1.5
        >>> hinge_loss(torch.tensor([[1.5, 2.0, 0.5]]), torch.tensor([0])).item()
        1.5

    Note:
        Binary hinge equals Crammer-Singer and Weston-Watkins on two classes with scores
        ``(0, x)`` (so ``margin - t x``). At a kink (a hinge argument exactly 0) autograd
        returns the zero subgradient (``relu``'s convention); Crammer-Singer splits the
        gradient evenly between tied largest other classes (``amax``). The unsquared loss is
        piecewise linear, so its second derivative is 0 everywhere.
    """
    check_params(NAME, HingeParams, {"margin": margin, "squared": squared, "variant": variant})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, y = inputs.logits, inputs.targets
    if inputs.task is Task.BINARY:
        loss = torch.relu(margin - (2.0 * y - 1.0) * x)
        if squared:
            loss = loss * loss
        return reduce_loss(loss, reduction, inputs.sample_weight)
    num_classes = x.shape[1]
    if num_classes < 2:
        raise ValueError(f"Expected at least 2 classes for a multiclass hinge, got {num_classes}")
    is_target = F.one_hot(y, num_classes).bool()
    correct = x.gather(1, y.unsqueeze(1))
    if variant == "crammer_singer":
        others = x.masked_fill(is_target, float("-inf")).amax(dim=1, keepdim=True)
        terms = torch.relu(margin + others - correct)
    else:
        terms = torch.relu(margin + x - correct).masked_fill(is_target, 0.0)
    if squared:
        terms = terms * terms
    return reduce_loss(terms.sum(dim=1), reduction, inputs.sample_weight)


def hinge_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    margin: float = 1.0,
    squared: bool = False,
    variant: Variant = "crammer_singer",
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """The exact Hessian diagonal of :func:`hinge_loss` w.r.t. the logits, O(N C).

    Piecewise linear: 0, unless ``squared``. Then each active term ``relu(u)^2`` adds
    ``2 (du/dx_c)^2``: binary ``2`` where ``u > 0``; Weston-Watkins ``2`` to each active
    wrong class and ``2`` per active term to the true class; Crammer-Singer ``2`` to the
    true class and ``2 / k^2`` to each of the ``k`` tied best wrong classes (the share of
    the maximum's gradient autograd gives each), where the term is active.
    """
    check_params(NAME, HingeParams, {"margin": margin, "squared": squared, "variant": variant})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight, hard=True)
    x, y = inputs.logits, inputs.targets
    scale = sample_scale(reduction, inputs.sample_weight, x)
    if not squared:
        return torch.zeros_like(x)
    if inputs.task is Task.BINARY:
        active = (margin - (2.0 * y - 1.0) * x) > 0
        return 2.0 * active.to(x.dtype) * scale
    num_classes = x.shape[1]
    if num_classes < 2:
        raise ValueError(f"Expected at least 2 classes for a multiclass hinge, got {num_classes}")
    is_target = F.one_hot(y, num_classes).bool()
    correct = x.gather(1, y.unsqueeze(1))
    index = y.unsqueeze(1)
    if variant == "crammer_singer":
        masked = x.masked_fill(is_target, float("-inf"))
        others = masked.amax(dim=1, keepdim=True)
        active = ((margin + others - correct) > 0).to(x.dtype)
        tied = (masked == others).to(x.dtype)
        share = tied / tied.sum(dim=1, keepdim=True)
        curvature = 2.0 * active * share * share
        curvature = curvature.scatter(1, index, 2.0 * active)
    else:
        active = ((margin + x - correct) > 0) & ~is_target
        curvature = 2.0 * active.to(x.dtype)
        curvature = curvature.scatter(1, index, curvature.sum(dim=1, keepdim=True))
    return curvature * scale.unsqueeze(1)


class HingeLoss(LossModule):
    """Module form of :func:`hinge_loss`."""

    function = staticmethod(hinge_loss)
    params_model = HingeParams
    loss_name = NAME

    def __init__(
        self,
        margin: float = 1.0,
        squared: bool = False,
        variant: Variant = "crammer_singer",
        reduction: str = "mean",
    ) -> None:
        super().__init__(margin=margin, squared=squared, variant=variant, reduction=reduction)


def _coupling(params: Params, task: Task) -> Coupling:
    return Coupling.ELEMENT if task is Task.BINARY else Coupling.SAMPLE


SPECS = (
    LossSpec(
        name=NAME,
        function=hinge_loss,
        module=HingeLoss,
        params=HingeParams,
        tasks=TASKS,
        summary="Hinge (SVM margin) loss: binary, or multiclass Crammer-Singer / "
        "Weston-Watkins, optionally squared.",
        formula=r"\text{binary: } [m - t x]_+;\ \text{CS: } [m + \max_{c \ne y} x_c - x_y]_+;\ "
        r"\text{WW: } \sum_{c \ne y} [m - x_y + x_c]_+",
        reference="Crammer & Singer, JMLR 2001; Weston & Watkins, ESANN 1999 (no arXiv ids)",
        when_to_use="Margin-based training of linear or kernel-style scorers when calibrated "
        "probabilities are not needed; the squared form is smooth and often trains faster.",
        coupling=_coupling,
        hessian_diagonal=hinge_hessian_diagonal,
    ),
)
