"""CR-CNN pair-wise ranking loss (multiclass), with an optional artificial "Other" class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ._reduction import Reduction, reduce_loss, sample_scale
from ._registry import LossModule, LossSpec, per_sample
from ._validation import Params, Task, check_params, prepare

__all__ = ["RankingLoss", "RankingParams", "ranking_hessian_diagonal", "ranking_loss"]

NAME = "ranking"
TASKS = frozenset({Task.MULTICLASS})


class RankingParams(Params):
    """Parameters of :func:`ranking_loss`."""

    gamma: float = Field(
        2.0, gt=0.0, le=100.0, description="Scale gamma: how sharply the margins are enforced."
    )
    margin_pos: float = Field(
        2.5,
        ge=-100.0,
        le=100.0,
        description="Margin m+: the true class's score is pushed above it.",
    )
    margin_neg: float = Field(
        0.5,
        ge=-100.0,
        le=100.0,
        description="Margin m-: the best wrong class's score is pushed below -m-.",
    )
    other_class: int | None = Field(
        None,
        ge=0,
        strict=True,
        description='Index of an artificial "Other" class, or None. Its score is never used: '
        "a sample of that class only pushes the other scores down, and it is predicted when "
        "every other score is below 0.",
    )


def ranking_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma: float = 2.0,
    margin_pos: float = 2.5,
    margin_neg: float = 0.5,
    other_class: int | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""CR-CNN ranking loss: the true score above ``m+``, the best wrong score below ``-m-``.

    .. math::
        \ell_i = \log\bigl(1 + e^{\gamma (m^+ - s_{i,y_i})}\bigr)
               + \log\bigl(1 + e^{\gamma (m^- + s_{i,c^-})}\bigr),
        \qquad c^- = \operatorname*{arg\,max}_{c \ne y_i} s_{i,c}

    both terms written with ``softplus``. With ``other_class`` the first term is dropped for
    samples of that class, and its column never acts as :math:`c^-`.

    dos Santos, Xiang, Zhou, "Classifying Relations by Ranking with Convolutional Neural
    Networks", ACL 2015, https://arxiv.org/abs/1504.06580.

    Args:
        logits: ``(N, C)`` unnormalised scores. Half precision is computed in float32 and the
            loss is returned in float32.
        targets: ``(N,)`` integer class indices in ``[0, C)``.
        gamma: scale, ``0 < gamma <= 100``; default 2.
        margin_pos: :math:`m^+`, in ``[-100, 100]``; default 2.5.
        margin_neg: :math:`m^-`, in ``[-100, 100]``; default 0.5.
        other_class: ``None`` (default) or a class index in ``[0, C)`` whose score is ignored.
        reduction: ``"mean"`` (over samples, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (shape ``(N,)``).
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        The loss: a scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, a class index or ``other_class`` out of range, a parameter
            out of its range.
        TypeError: non-floating logits or non-integer targets.

    Example:
        >>> logits = torch.tensor([[2.5, -0.5, -3.0]])
        >>> value = ranking_loss(logits, torch.tensor([0]), gamma=2.0)
        >>> round(value.item(), 4)  # both margins met exactly: 2 log 2
        1.3863

    Note:
        Decision rule: the class of highest score; with ``other_class``, predict it when
        every other score is below 0, else the highest of the others. Only two scores per
        sample get a gradient (:math:`y_i` and :math:`c^-`); the ``other_class`` column gets
        none. At ties for :math:`c^-` one of the tied classes is taken (as ``argmax`` does),
        so the loss is continuous but not differentiable there. A sample with no candidate
        :math:`c^-` (``C = 1``, or ``C = 2`` with an ``other_class`` that is not its class)
        keeps only the first term. With ``gamma=1`` and both margins 0 the loss is
        ``softplus(-s_y) + softplus(s_{c^-})``: for ``C = 2`` the summed binary cross-entropy
        of the two scores against the one-hot target.
    """
    params = check_params(
        NAME,
        RankingParams,
        {
            "gamma": gamma,
            "margin_pos": margin_pos,
            "margin_neg": margin_neg,
            "other_class": other_class,
        },
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    terms = _Terms(inputs.logits, inputs.targets, params)
    pos_term = F.softplus(terms.z_pos)
    neg_term = F.softplus(terms.z_neg)
    zero = torch.zeros_like(pos_term)
    neg_term = torch.where(terms.has_negative, neg_term, zero)
    pos_term = torch.where(terms.has_positive, pos_term, zero)
    return reduce_loss(pos_term + neg_term, reduction, inputs.sample_weight)


class _Terms:
    """The two margins' arguments ``z+ = gamma (m+ - s_y)`` and ``z- = gamma (m- + s_c-)``
    with ``c-`` the best-scoring wrong class (held fixed: the loss is piecewise in it), and
    whether each term counts."""

    def __init__(self, x: Tensor, y: Tensor, params: RankingParams) -> None:
        num_classes = x.shape[1]
        self.index = y.unsqueeze(1)
        classes = torch.arange(num_classes, device=x.device)
        excluded = classes.unsqueeze(0) == self.index
        if params.other_class is not None:
            if params.other_class >= num_classes:
                raise ValueError(
                    f"Expected other_class in [0, {num_classes - 1}] for {num_classes} "
                    f"classes, got {params.other_class}"
                )
            excluded = excluded | (classes == params.other_class).unsqueeze(0)
        # c-: argmax over the candidates; rows without one pick an arbitrary column (finite
        # score, no -inf in the graph) whose term is masked out.
        candidates = x.detach().masked_fill(excluded, float("-inf"))
        self.hardest = candidates.argmax(dim=1, keepdim=True)
        self.gamma = params.gamma
        self.z_pos = params.gamma * (params.margin_pos - x.gather(1, self.index).squeeze(1))
        self.z_neg = params.gamma * (params.margin_neg + x.gather(1, self.hardest).squeeze(1))
        self.has_negative = (~excluded).any(dim=1)
        self.has_positive = (
            torch.ones_like(self.has_negative)
            if params.other_class is None
            else y != params.other_class
        )


def ranking_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma: float = 2.0,
    margin_pos: float = 2.5,
    margin_neg: float = 0.5,
    other_class: int | None = None,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""The exact Hessian diagonal of :func:`ranking_loss` w.r.t. the logits, in O(N C).

    Each term is a softplus of one score, so only the true class and the best wrong class
    have curvature: :math:`\gamma^2 \sigma(z) \sigma(-z)` of their term (0 where the
    term does not count), times the reduction's factor. The best wrong class is held fixed,
    as autograd holds it.
    """
    params = check_params(
        NAME,
        RankingParams,
        {
            "gamma": gamma,
            "margin_pos": margin_pos,
            "margin_neg": margin_neg,
            "other_class": other_class,
        },
    )
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x = inputs.logits
    terms = _Terms(x, inputs.targets, params)
    zero = torch.zeros_like(terms.z_pos)

    def curvature(z: Tensor, counts: Tensor) -> Tensor:
        value = terms.gamma**2 * torch.sigmoid(z) * torch.sigmoid(-z)
        return torch.where(counts, value, zero).unsqueeze(1)

    scale = sample_scale(reduction, inputs.sample_weight, x).unsqueeze(1)
    diagonal = torch.zeros_like(x)
    diagonal.scatter_add_(1, terms.index, curvature(terms.z_pos, terms.has_positive) * scale)
    diagonal.scatter_add_(1, terms.hardest, curvature(terms.z_neg, terms.has_negative) * scale)
    return diagonal


class RankingLoss(LossModule):
    """Module form of :func:`ranking_loss`."""

    function = staticmethod(ranking_loss)
    params_model = RankingParams
    loss_name = NAME

    def __init__(
        self,
        gamma: float = 2.0,
        margin_pos: float = 2.5,
        margin_neg: float = 0.5,
        other_class: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            gamma=gamma,
            margin_pos=margin_pos,
            margin_neg=margin_neg,
            other_class=other_class,
            reduction=reduction,
        )


SPECS = (
    LossSpec(
        name=NAME,
        function=ranking_loss,
        module=RankingLoss,
        params=RankingParams,
        tasks=TASKS,
        summary="CR-CNN ranking loss: true score above m+, hardest wrong score below -m-, "
        'optional score-less "Other" class.',
        formula=r"\ell_i = \log(1 + e^{\gamma (m^+ - s_{i,y_i})})"
        r" + \log(1 + e^{\gamma (m^- + s_{i,c^-})}),"
        r" \quad c^- = \arg\max_{c \ne y_i} s_{i,c}",
        reference="dos Santos, Xiang, Zhou, Classifying Relations by Ranking with "
        "Convolutional Neural Networks, ACL 2015, arXiv:1504.06580",
        when_to_use='Multiclass data dominated by a catch-all "Other" class (relation '
        "extraction): other_class removes its score, so it is predicted only when nothing "
        "else scores above 0.",
        coupling=per_sample,
        hessian_diagonal=ranking_hessian_diagonal,
    ),
)
