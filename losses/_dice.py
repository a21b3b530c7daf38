r"""Dice, Tversky and self-adjusting Dice losses (binary, multiclass, multilabel).

The three losses are one soft-overlap ratio computed by one core, :func:`_overlap_loss`:

.. math::
    \ell = 1 - \frac{k \sum \tilde p\, y + s}{D + s},
    \qquad \tilde p = (1 - p)^{\alpha} p

with ``D = Σ p̃ + Σ y`` (or ``Σ p̃² + Σ y²``) for Dice and self-adjusting Dice, and
``D = TP + α FP + β FN`` for Tversky. ``p`` is the sigmoid of the logits for binary and
multilabel targets and the softmax (with one-hot targets) for multiclass targets.

``scope`` says what the sums run over: ``"sample"`` sums over the class axis of each sample
(binary: the single element) and gives one loss per sample; ``"batch"`` sums over the
samples of each class (each sample's terms times its ``sample_weight``) and gives one loss
per class, which couples the whole batch.

The defaults follow the authors' released configuration, not the per-sample form: the
training scripts of Li et al. (https://github.com/ShannonAI/dice_loss_for_NLP,
``scripts/*/*_dice.sh``) all pass ``--dice_smooth 1 --dice_square --dice_alpha 0.01``, and
their ``DiceLoss`` on one logit per example (MRPC, NER, SQuAD) sums over the whole flattened
batch. So Dice and self-adjusting Dice default to ``smooth=1``, the squared denominator and
``scope="batch"`` (a set overlap per class), and self-adjusting Dice to ``alpha=0.01``.
Per sample, these losses are not set overlaps: a multiclass sample's Dice with one-hot
targets and the plain denominator is ``(2/3)(1 - p_y)`` at ``smooth=1``, a mean absolute
error on the true class's probability, and at ``alpha`` near 1 the self-adjusting Dice of
one example is degenerate (see :func:`self_adjusting_dice_loss`). The overlap is linear in
``p`` with the plain denominator (Tversky's always is); with the softmax of many classes that
trains slowly, as a mean absolute error does; the squared denominator does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ._fused import one_pass
from ._reduction import Reduction, reduce_loss, sample_scale
from ._registry import Coupling, LossModule, LossSpec
from ._stable import log_one_minus_softmax, log_sigmoid, softmax_and_complement
from ._validation import Params, Prepared, Task, check_params, prepare

__all__ = [
    "DiceLoss",
    "DiceParams",
    "SelfAdjustingDiceLoss",
    "SelfAdjustingDiceParams",
    "TverskyLoss",
    "TverskyParams",
    "dice_hessian_diagonal",
    "dice_loss",
    "self_adjusting_dice_hessian_diagonal",
    "self_adjusting_dice_loss",
    "tversky_hessian_diagonal",
    "tversky_loss",
]

DICE_NAME = "dice"
TVERSKY_NAME = "tversky"
SELF_ADJUSTING_DICE_NAME = "self_adjusting_dice"
TASKS = frozenset({Task.BINARY, Task.MULTICLASS, Task.MULTILABEL})

Scope = Literal["sample", "batch"]

_SMOOTH = "Added to the numerator and the denominator (Laplace smoothing); 0 disables it."
_SCOPE = (
    "'sample': sums over the classes of each sample, one loss per sample; 'batch': sums over "
    "the samples of each class, one loss per class (couples the batch)."
)
_SQUARE = "Use the squared denominator Σp² + Σy² (V-Net) instead of Σp + Σy."


class _OverlapParams(Params):
    """Fields shared by the three overlap losses."""

    smooth: float = Field(1.0, ge=0.0, allow_inf_nan=False, description=_SMOOTH)
    scope: Scope = Field("batch", description=_SCOPE)


class DiceParams(_OverlapParams):
    """Parameters of :func:`dice_loss`."""

    square_denominator: bool = Field(True, description=_SQUARE)


class TverskyParams(_OverlapParams):
    """Parameters of :func:`tversky_loss`."""

    alpha: float = Field(
        0.3, ge=0.0, allow_inf_nan=False, description="Weight of the false positives."
    )
    beta: float = Field(
        0.7, ge=0.0, allow_inf_nan=False, description="Weight of the false negatives."
    )


class SelfAdjustingDiceParams(_OverlapParams):
    """Parameters of :func:`self_adjusting_dice_loss`."""

    alpha: float = Field(
        0.01,
        ge=0.0,
        allow_inf_nan=False,
        description="Self-adjusting exponent: p is replaced by (1-p)^alpha p; 0 is Dice. The "
        "authors' released scripts use 0.01; near 1 the loss is degenerate (see the docstring).",
    )
    coefficient: float = Field(
        2.0,
        gt=0.0,
        allow_inf_nan=False,
        description="Factor of the intersection in the numerator: 2 as in the paper's eq. 11 "
        "(Dice), 1 as in its Table 2.",
    )
    square_denominator: bool = Field(True, description=_SQUARE)


# --- the shared core -------------------------------------------------------------------------


def _log_probabilities(inputs: Prepared) -> tuple[Tensor, Tensor, Tensor]:
    """``p``, ``log(1 - p)`` and the dense float targets, shaped as the logits.

    Sigmoid for binary and multilabel, softmax for multiclass (with one-hot targets). ``p`` is
    ``exp(logsigmoid(x))`` or ``softmax(x)``; ``log(1 - p)`` is ``logsigmoid(-x)`` or
    :func:`log_one_minus_softmax`, finite where ``p`` rounds to 1.
    """
    x = inputs.logits
    if inputs.task is Task.MULTICLASS:
        if x.shape[1] < 2:
            raise ValueError(
                f"Expected multiclass logits with at least 2 classes, got {x.shape[1]}"
            )
        p = torch.softmax(x, dim=1)
        log_q = log_one_minus_softmax(x, dim=1)
        y = F.one_hot(inputs.targets, x.shape[1]).to(x.dtype)
    else:
        p = torch.exp(log_sigmoid(x))
        log_q = log_sigmoid(-x)
        y = inputs.targets
    return p, log_q, y


def _scope_sum(terms: Tensor, scope: str, sample_weight: Tensor | None) -> Tensor:
    """Sum ``terms`` over the classes of each sample, or over the (weighted) samples."""
    if scope == "sample":
        return terms if terms.dim() == 1 else terms.sum(dim=1)
    if sample_weight is not None:
        terms = terms * sample_weight.reshape(sample_weight.shape + (1,) * (terms.dim() - 1))
    return terms.sum(dim=0)


def _one_minus_ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``1 - numerator / denominator``, where a zero numerator (only at ``smooth=0``) is ratio 0.

    At ``smooth=0`` an empty target gives ``0 / p`` = 0 for any predicted mass ``p > 0`` and
    ``0 / 0`` once ``p`` underflows; both read as ratio 0 (loss 1, as kornia's eps gives),
    which keeps the loss continuous in the logits. The division is skipped there: its
    gradient ``-0 / p^2`` would be NaN once ``p^2`` underflows, where the true one is 0.
    """
    zero = numerator == 0
    safe = torch.where(zero, torch.ones_like(denominator), denominator)
    return torch.where(zero, torch.ones_like(numerator), 1.0 - numerator / safe)


def _overlap_loss(
    name: str,
    logits: Tensor,
    targets: Tensor,
    sample_weight: Tensor | None,
    reduction: str | Reduction,
    **options: Any,
) -> Tensor:
    """The three losses' value, with a gradient from the closed form's one pass
    (:func:`_overlap_pass` without its diagonal; :func:`~losses._fused.one_pass`), autograd
    through :func:`_overlap_formula` for a double backward. The batch scope's ``"none"``
    (one loss per class, each depending on every row) and targets or weights that ask for
    a gradient take autograd."""
    mode = Reduction.parse(reduction)

    def formula(z: Tensor) -> Tensor:
        return _overlap_formula(name, z, targets, sample_weight, mode, **options)

    others = (targets, sample_weight)
    if (options["scope"] == "batch" and mode is Reduction.NONE) or any(
        isinstance(t, Tensor) and t.requires_grad for t in others
    ):
        return formula(logits)

    def value_and_grad(z: Tensor) -> tuple[Tensor, Tensor]:
        value, grad, _ = _overlap_pass(
            name, z, targets, sample_weight, mode, curvature=False, **options
        )
        return value, grad

    return one_pass(logits, value_and_grad, formula)


def _overlap_formula(
    name: str,
    logits: Tensor,
    targets: Tensor,
    sample_weight: Tensor | None,
    reduction: str | Reduction,
    *,
    scope: str,
    smooth: float,
    coefficient: float = 2.0,
    focus: float = 0.0,
    square_denominator: bool = False,
    tversky: tuple[float, float] | None = None,
) -> Tensor:
    """The one computation behind the three losses, in differentiable operations.

    ``1 - (coefficient TP + smooth) / (D + smooth)`` with ``TP = Σ p̃ y``, ``p̃ = (1-p)^focus p``
    and ``D = Σ p̃ + Σ y`` (squared: ``Σ p̃² + Σ y²``), or, when ``tversky = (α, β)``,
    ``D = TP + α Σ p (1-y) + β Σ (1-p) y``. Sums run as ``scope`` says.
    """
    mode = Reduction.parse(reduction)
    inputs = prepare(name, TASKS, logits, targets, sample_weight)
    weight = inputs.sample_weight
    p, log_q, y = _log_probabilities(inputs)
    if focus != 0.0:
        # (1 - p)^focus as exp(focus * log(1 - p)): finite value and gradients at p = 1.
        p = p * torch.exp(focus * log_q)
    tp = _scope_sum(p * y, scope, weight)
    if tversky is not None:
        alpha, beta = tversky
        fp = _scope_sum(p * (1.0 - y), scope, weight)
        fn = _scope_sum(torch.exp(log_q) * y, scope, weight)
        denominator = tp + alpha * fp + beta * fn
    elif square_denominator:
        denominator = _scope_sum(p * p, scope, weight) + _scope_sum(y * y, scope, weight)
    else:
        denominator = _scope_sum(p, scope, weight) + _scope_sum(y, scope, weight)
    loss = _one_minus_ratio(coefficient * tp + smooth, denominator + smooth)
    if scope == "sample":
        return reduce_loss(loss, mode, weight)
    # One loss per class (a 0-d tensor for binary); sample_weight is already in the sums.
    return reduce_loss(loss, mode, None)


def _overlap_pass(
    name: str,
    logits: Tensor,
    targets: Tensor,
    sample_weight: Tensor | None,
    reduction: str | Reduction,
    *,
    scope: str,
    smooth: float,
    coefficient: float = 2.0,
    focus: float = 0.0,
    square_denominator: bool = False,
    tversky: tuple[float, float] | None = None,
    curvature: bool = True,
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""The value of :func:`_overlap_formula`, its gradient and its exact Hessian diagonal
    w.r.t. the logits, in O(N C), in either scope (the batch scope too: each logit's own
    second derivative needs only its set's sums). The gradient is the Hessian's first-order
    part: :math:`w (L_N \zeta_n + L_D \zeta_d)` for a sigmoid, :math:`Z_c - p_c \sum_{a \ne
    c} Z_a / (1 - p_a)` for a softmax row.

    Each set's loss is :math:`L = 1 - (N + s) / (D + s)` with :math:`N = \sum_e n(p_e)`,
    :math:`D = \sum_e d(p_e)` over the set's elements :math:`e` (weighted by
    ``sample_weight`` in the batch scope), so :math:`L_N = -1/(D+s)`, :math:`L_D =
    (N+s)/(D+s)^2`, :math:`L_{ND} = 1/(D+s)^2`, :math:`L_{DD} = -2(N+s)/(D+s)^3`. Every
    element function :math:`h` (``n``, ``d``) enters through :math:`\zeta = h'(p)\, p (1-p)`
    and :math:`\psi = h''(p)\, p^2 (1-p)^2`, which stay finite where :math:`h'` does not
    (:math:`\tilde p = (1-p)^\alpha p` at :math:`p \to 1`).

    Sigmoid (binary, multilabel): a logit moves only its own :math:`p`, whose first and
    second derivatives are :math:`p(1-p)` and :math:`p(1-p)(1-2p)`: :math:`H = w (L_N
    \xi_n + L_D \xi_d) + w^2 (2 L_{ND} \zeta_n \zeta_d + L_{DD} \zeta_d^2)` with
    :math:`\xi = \psi + \zeta (1 - 2p)`. Softmax (multiclass): :math:`x_c` moves the whole
    row, :math:`\partial p_a / \partial x_c = p_a (\delta_{ac} - p_c)`. The set terms that
    couple two elements of one row (the sample scope's) are rank one in
    :math:`V_c = \zeta_c - p_c \sum_{a \ne c} \zeta_a / (1 - p_a)`; the rest is diagonal in
    :math:`p`, :math:`G_a`, and gives :math:`\Psi_c + Z_c (1 - 2 p_c) + p_c^2 \sum_{a \ne c}
    \Psi_a / (1-p_a)^2 + p_c (2 p_c - 1) \sum_{a \ne c} Z_a / (1 - p_a)` with :math:`Z =
    G_1 p (1-p)`, :math:`\Psi = G_2 p^2 (1-p)^2`. The sums leave out the row's argmax
    apart, as :func:`~losses._stable.softmax_and_complement` does. Computed in the logits'
    precision, the sums in float64. Without
    ``curvature`` the diagonal is None and its terms are not computed.
    """
    mode = Reduction.parse(reduction)
    inputs = prepare(name, TASKS, logits, targets, sample_weight)
    x = inputs.logits
    softmax = inputs.task is Task.MULTICLASS
    if softmax and x.shape[1] < 2:
        raise ValueError(f"Expected multiclass logits with at least 2 classes, got {x.shape[1]}")
    terms = _OverlapTerms(coefficient, focus, square_denominator, tversky, curvature)
    # In the input's precision: every term is bounded, (1 - p)^focus's derivatives too
    # (they enter times p (1 - p), never as a power of 1 - p below 0), and float32 keeps
    # float64's answer to a few float32 rounding errors at any logit (a test holds it)
    work = x.dtype
    weight = None if inputs.sample_weight is None else inputs.sample_weight.to(work)
    width = 1 if x.dim() == 1 else x.shape[1]
    step = max(1, _CHUNK_ELEMENTS // width)
    chunks = [slice(start, start + step) for start in range(0, x.shape[0], step)]

    def chunk_terms(rows: slice) -> tuple[Tensor, Tensor, _Element]:
        part = x[rows].to(work)
        if softmax:
            p, q = softmax_and_complement(part)
            y = F.one_hot(inputs.targets[rows], x.shape[1]).to(work)
        else:
            p, q = torch.sigmoid(part), torch.sigmoid(-part)
            y = inputs.targets[rows].to(work)
        return p, q, terms(p, q, y)

    def chunk_weight(rows: slice) -> Tensor | None:
        return None if weight is None else weight[rows]

    if scope == "batch":  # the sets' sums, over every row first
        sums = [x.new_zeros((), dtype=torch.float64)] * 2  # summed in float64
        for rows in chunks:
            element = chunk_terms(rows)[2]
            sums = [
                total + _scope_sum(v, scope, chunk_weight(rows)).double()
                for total, v in zip(sums, (element.n, element.d), strict=True)
            ]
        batch_derivatives = tuple(
            v.to(work) for v in _ratio_derivatives(sums[0] + smooth, sums[1] + smooth)
        )
        loss_count = 1 if x.dim() == 1 else x.shape[1]
        scale = x.new_full(
            (loss_count,), 1.0 / loss_count if mode is Reduction.MEAN else 1.0, dtype=work
        )
    else:
        per_sample = sample_scale(mode, weight, x.to(work))
    out = torch.empty_like(x) if curvature else None
    grad = torch.empty_like(x)
    losses: list[Tensor] = []  # the sample scope's, a chunk's rows at a time
    for rows in chunks:
        p, q, element = chunk_terms(rows)
        n, zeta_n, d, zeta_d = element.n, element.zeta_n, element.d, element.zeta_d
        if scope == "batch":
            l_n, l_d, l_nd, l_dd = batch_derivatives
            factor = scale
            w = x.new_ones(p.shape[0], dtype=work) if weight is None else weight[rows]
            w = w.unsqueeze(1) if x.dim() == 2 else w
        else:
            numerator = _scope_sum(n, scope, None) + smooth
            denominator = _scope_sum(d, scope, None) + smooth
            l_n, l_d, l_nd, l_dd = (
                v.unsqueeze(1) if x.dim() == 2 else v
                for v in _ratio_derivatives(numerator, denominator)
            )
            factor = per_sample[rows].unsqueeze(1) if x.dim() == 2 else per_sample[rows]
            w = torch.ones((), dtype=work)  # the sample weight is in the factor
            losses.append(_one_minus_ratio(numerator, denominator))
        first = w * (l_n * zeta_n + l_d * zeta_d)  # Z
        if out is None:  # the gradient only
            if not softmax:
                slope = first
            elif scope == "batch":
                slope = first - _Rows(p, q).others(first, 1)
            else:
                rows_of = _Rows(p, q)
                v_n = zeta_n - rows_of.others(zeta_n, 1)
                v_d = zeta_d - rows_of.others(zeta_d, 1)
                slope = l_n * v_n + l_d * v_d
            grad[rows] = factor * slope
            continue
        if element.psi_n is None or element.psi_d is None:
            raise RuntimeError("_OverlapTerms computes psi when asked")
        second = w * (l_n * element.psi_n + l_d * element.psi_d)  # Psi, diagonal in p
        coupled = w * w * (2.0 * l_nd * zeta_n * zeta_d + l_dd * zeta_d * zeta_d)
        if not softmax:
            bend = second + first * (1.0 - 2.0 * p) + coupled
            slope = first
        elif scope == "batch":
            rows_of = _Rows(p, q)
            bend = rows_of.diagonal(second + coupled, first)
            slope = first - rows_of.others(first, 1)
        else:
            rows_of = _Rows(p, q)
            bend = rows_of.diagonal(second, first)
            v_n = zeta_n - rows_of.others(zeta_n, 1)
            v_d = zeta_d - rows_of.others(zeta_d, 1)
            bend += 2.0 * l_nd * v_n * v_d + l_dd * v_d * v_d
            slope = l_n * v_n + l_d * v_d
        out[rows] = factor * bend
        grad[rows] = factor * slope
    if scope == "batch":
        value = reduce_loss(
            _one_minus_ratio(sums[0] + smooth, sums[1] + smooth).to(work), mode, None
        )
    else:
        value = reduce_loss(torch.cat(losses), mode, weight)
    return value.to(x.dtype), grad, out


def _overlap_derivatives(
    name: str,
    logits: Tensor,
    targets: Tensor,
    sample_weight: Tensor | None,
    reduction: str | Reduction,
    **options: Any,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`_overlap_pass` (``options``: its keywords) with its Hessian diagonal."""
    value, grad, diagonal = _overlap_pass(
        name, logits, targets, sample_weight, reduction, curvature=True, **options
    )
    if diagonal is None:
        raise RuntimeError("_overlap_pass computes the diagonal when asked")
    return value, grad, diagonal


_CHUNK_ELEMENTS = 1 << 18
"""Logits per chunk of rows in :func:`_overlap_pass` (its temporaries, about 30 of them, stay
near 30 MB in float32, 60 MB in float64, whatever the batch)."""


class _OverlapTerms:
    """Each element's numerator and denominator terms ``n``, ``d`` with their ``zeta =
    h'(p) p q`` and (with ``curvature``) ``psi = h''(p) p^2 q^2``, else None (see
    :func:`_overlap_derivatives`)."""

    def __init__(
        self,
        coefficient: float,
        focus: float,
        square_denominator: bool,
        tversky: tuple[float, float] | None,
        curvature: bool = True,
    ) -> None:
        self.coefficient, self.focus = coefficient, focus
        self.square_denominator, self.tversky = square_denominator, tversky
        self.curvature = curvature

    def __call__(self, p: Tensor, q: Tensor, y: Tensor) -> _Element:
        k, focus = self.coefficient, self.focus
        # p~ = (1 - p)^focus p, and its derivatives times p q and p^2 q^2
        t_2: Tensor | None = None
        if focus == 0.0:  # p~ = p: p q and 0
            t, t_1 = p, p * q
            if self.curvature:
                t_2 = torch.zeros_like(p)
        else:
            # torch.pow's general exponent (the default 0.01) costs twice exp(focus log q)
            power = q.pow(focus) if focus in (0.5, 1.0, 2.0) else torch.exp(focus * q.log())
            t = power * p
            t_1 = t * (q - focus * p)
            if self.curvature:
                t_2 = t * p * (focus * (focus - 1.0) * p - 2.0 * focus * q)
        psi_n = psi_d = None
        if self.tversky is not None:
            alpha, beta = self.tversky
            kept = y + alpha * (1.0 - y)
            d, zeta_d = kept * t + beta * q * y, kept * t_1 - beta * y * p * q
            psi_d = None if t_2 is None else kept * t_2
        elif self.square_denominator:
            d, zeta_d = t * t + y * y, 2.0 * t * t_1
            psi_d = None if t_2 is None else 2.0 * (t_1 * t_1 + t * t_2)
        else:
            d, zeta_d, psi_d = t + y, t_1, t_2
        if t_2 is not None:
            psi_n = k * y * t_2
        return _Element(k * y * t, k * y * t_1, psi_n, d, zeta_d, psi_d)


@dataclass(frozen=True)
class _Element:
    """:class:`_OverlapTerms`' answer: ``n``, ``zeta_n``, ``psi_n``, ``d``, ``zeta_d``,
    ``psi_d`` (the psi only with ``curvature``)."""

    n: Tensor
    zeta_n: Tensor
    psi_n: Tensor | None
    d: Tensor
    zeta_d: Tensor
    psi_d: Tensor | None


def _ratio_derivatives(numerator: Tensor, denominator: Tensor) -> tuple[Tensor, ...]:
    """``L_N, L_D, L_ND, L_DD`` of ``L = 1 - numerator / denominator`` (both smoothed); 0
    where the numerator is 0, the constant ratio 0 of :func:`_one_minus_ratio`."""
    live = numerator != 0
    inverse = torch.where(live, 1.0 / torch.where(live, denominator, 1.0), 0.0)
    return (
        -inverse,
        numerator * inverse * inverse,
        inverse * inverse,
        -2.0 * numerator * inverse**3,
    )


class _Rows:
    """A softmax chunk's rows, for sums over the other classes of each row: what every such
    sum shares (each row's argmax ``m``, ``1 / q`` and ``p / q_m``) computed once."""

    def __init__(self, p: Tensor, q: Tensor) -> None:
        tiny = torch.finfo(q.dtype).tiny
        top = p.argmax(dim=1, keepdim=True)
        self.top = top
        self.is_top = torch.zeros_like(p, dtype=torch.bool).scatter_(1, top, True)
        self.p = p
        self.inverse = 1.0 / q.clamp_min(tiny)
        self.ratio = p / q.gather(1, top).clamp_min(tiny)  # p_c / q_m <= 1

    def others(self, values: Tensor, power: int) -> Tensor:
        """``p_c^power * sum over a != c of values_a / q_a^power`` for every class ``c`` of
        each row, in O(C): the row's argmax ``m`` apart (``q_m`` may round to 0), its term
        taken as ``(p_c / q_m)^power values_m``."""
        inverse = self.inverse if power == 1 else self.inverse * self.inverse
        scaled = torch.where(self.is_top, 0.0, values * inverse)
        rest = scaled.sum(dim=1, keepdim=True)  # over a != m
        p_power = self.p if power == 1 else self.p * self.p
        ratio = self.ratio if power == 1 else self.ratio * self.ratio
        top_term = ratio * values.gather(1, self.top)
        return torch.where(self.is_top, p_power * rest, p_power * (rest - scaled) + top_term)

    def diagonal(self, second: Tensor, first: Tensor) -> Tensor:
        """``sum_a G2_a (dp_a/dx_c)^2 + G1_a d2p_a/dx_c^2`` of each softmax row, from
        ``second = G2 p^2 q^2`` and ``first = G1 p q`` (see :func:`_overlap_derivatives`)."""
        p = self.p
        own = second + first * (1.0 - 2.0 * p)
        return own + self.others(second, 2) + (2.0 * p - 1.0) * self.others(first, 1)


def _coupling(params: Params, task: Task) -> Coupling:
    """``scope='batch'`` couples the whole batch; ``scope='sample'`` couples one sample."""
    if isinstance(params, _OverlapParams) and params.scope == "batch":
        return Coupling.BATCH
    return Coupling.SAMPLE


# --- the three public losses -----------------------------------------------------------------


def dice_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    smooth: float = 1.0,
    square_denominator: bool = True,
    scope: Scope = "batch",
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Soft Dice loss: one minus the smoothed Sørensen-Dice coefficient of ``p`` and ``y``.

    .. math::
        \ell = 1 - \frac{2 \sum p\, y + s}{\sum p + \sum y + s}
        \quad\text{or, squared,}\quad
        1 - \frac{2 \sum p\, y + s}{\sum p^2 + \sum y^2 + s}

    Li et al., "Dice Loss for Data-imbalanced NLP Tasks", ACL 2020,
    https://arxiv.org/abs/1911.02855; squared denominator from Milletari et al., "V-Net",
    3DV 2016, https://arxiv.org/abs/1606.04797.

    Args:
        logits: unnormalised scores (see Shapes). Half precision is computed in float32 and
            the loss is returned in float32.
        targets: binary or multilabel targets in ``[0, 1]`` (soft allowed), or multiclass
            class indices.
        smooth: ``s >= 0`` added to numerator and denominator; default 1 (the authors'
            scripts).
        square_denominator: ``Σ p² + Σ y²`` in the denominator; default True (the authors'
            scripts' ``--dice_square``).
        scope: ``"batch"`` (default: the authors' sum over the whole batch, a set overlap
            per class) or ``"sample"``, see Shapes.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        sample_weight: optional ``(N,)`` non-negative weights.

    Shapes:
        binary: logits ``(N,)``, targets ``(N,)`` in ``[0, 1]`` (sigmoid). Multiclass: logits
        ``(N, C)``, ``C >= 2``, integer targets ``(N,)`` (softmax, one-hot targets).
        Multilabel: logits ``(N, C)``, targets ``(N, C)`` in ``[0, 1]`` (sigmoid).
        ``scope="sample"``: ``reduction="none"`` gives ``(N,)`` and ``"mean"`` is the
        ``sample_weight``-weighted average of the samples' losses. ``scope="batch"``:
        ``"none"`` gives ``(C,)`` (binary: 0-d), ``"mean"`` averages the classes, ``"sum"``
        adds them, and ``sample_weight`` multiplies each sample's terms inside the sums.

    Returns:
        The loss: a scalar, or per sample / per class for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets outside ``[0, 1]`` or a class index out of range, a
            parameter out of its range, an unknown ``scope`` or ``reduction``.
        TypeError: non-floating logits or non-integer multiclass targets.

    Example:
        >>> logits = torch.tensor([0.0, 0.0])
        >>> targets = torch.tensor([1.0, 0.0])
        >>> dice_loss(logits, targets)  # 1 - (2 * 1/2 + 1) / (1/4 + 1/4 + 1 + 1)
        tensor(0.2000)
        >>> dice_loss(logits, targets, scope="sample", square_denominator=False, reduction="none")
        tensor([0.2000, 0.3333])

    Note:
        ``smooth=0`` on a set with no target and no predicted mass is ``0 / 0``; it is read as
        ratio 0 (loss 1), the value the loss tends to as the predicted mass goes to 0, so the
        loss stays continuous in the logits; use ``smooth > 0`` to reward empty predictions.
        With soft targets the soft Dice is not minimised at ``p = y`` (``Σ p y`` is not ``Σ y``);
        this is the paper's formula, as MONAI's ``soft_label=False``. The self-adjusting Dice
        with ``alpha=0`` is this loss, and the Tversky loss with ``alpha=beta=0.5`` and
        ``smooth=s/2`` is this loss with ``square_denominator=False``. ``scope="batch"``
        couples the batch; its exact Hessian diagonal is still O(N C)
        (:func:`dice_hessian_diagonal`).
    """
    check_params(
        DICE_NAME,
        DiceParams,
        {"smooth": smooth, "square_denominator": square_denominator, "scope": scope},
    )
    return _overlap_loss(
        DICE_NAME,
        logits,
        targets,
        sample_weight,
        reduction,
        scope=scope,
        smooth=smooth,
        square_denominator=square_denominator,
    )


def tversky_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float = 0.3,
    beta: float = 0.7,
    smooth: float = 1.0,
    scope: Scope = "batch",
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Tversky loss: a soft overlap that weighs false positives and false negatives apart.

    .. math::
        \ell = 1 - \frac{TP + s}{TP + \alpha\, FP + \beta\, FN + s},\quad
        TP = \sum p\, y,\ FP = \sum p (1 - y),\ FN = \sum (1 - p)\, y

    Salehi et al., "Tversky loss function for image segmentation using 3D fully
    convolutional deep networks", MLMI 2017, https://arxiv.org/abs/1706.05721; as used in
    Li et al., ACL 2020, https://arxiv.org/abs/1911.02855.

    Args:
        logits: unnormalised scores (see Shapes). Half precision is computed in float32 and
            the loss is returned in float32.
        targets: binary or multilabel targets in ``[0, 1]`` (soft allowed), or multiclass
            class indices.
        alpha: ``>= 0``, weight of the false positives; default 0.3, the value Salehi et
            al. report best.
        beta: ``>= 0``, weight of the false negatives; default 0.7 (as ``alpha``).
        smooth: ``s >= 0`` added to numerator and denominator; default 1.
        scope: ``"batch"`` (default: the index over the whole batch, a set overlap per class,
            as the paper sums over the whole volume) or ``"sample"``, see Shapes.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        sample_weight: optional ``(N,)`` non-negative weights.

    Shapes:
        binary: logits ``(N,)``, targets ``(N,)`` in ``[0, 1]`` (sigmoid). Multiclass: logits
        ``(N, C)``, ``C >= 2``, integer targets ``(N,)`` (softmax, one-hot targets).
        Multilabel: logits ``(N, C)``, targets ``(N, C)`` in ``[0, 1]`` (sigmoid).
        ``scope="sample"``: ``reduction="none"`` gives ``(N,)`` and ``"mean"`` is the
        ``sample_weight``-weighted average of the samples' losses. ``scope="batch"``:
        ``"none"`` gives ``(C,)`` (binary: 0-d), ``"mean"`` averages the classes, ``"sum"``
        adds them, and ``sample_weight`` multiplies each sample's terms inside the sums.

    Returns:
        The loss: a scalar, or per sample / per class for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets outside ``[0, 1]`` or a class index out of range, a
            parameter out of its range, an unknown ``scope`` or ``reduction``.
        TypeError: non-floating logits or non-integer multiclass targets.

    Example:
        >>> logits = torch.tensor([0.0, 0.0])
        >>> targets = torch.tensor([1.0, 0.0])
        >>> tversky_loss(logits, targets)  # 1 - (1/2 + 1) / (1/2 + 0.3/2 + 0.7/2 + 1)
        tensor(0.2500)
        >>> tversky_loss(logits, targets, alpha=0.0, beta=1.0, scope="sample", reduction="none")
        tensor([0.2500, 0.0000])

    Note:
        The smoothing is the paper's and MONAI's: ``s`` is added once to numerator and
        denominator, so ``alpha=beta=0.5`` with ``smooth=s`` is exactly the Dice loss with
        ``smooth=2s`` and ``square_denominator=False`` (the same at ``s=0``), gradients
        included. ``alpha=beta=1`` is the soft Jaccard (Tanimoto) loss. ``1 - p`` is
        ``exp(logsigmoid(-x))`` or, for the softmax, taken in log space (the top class: the
        log-sum of the other classes), exact where ``p`` rounds to 1. ``0 / 0``
        (``smooth=0``, empty sets) reads as ratio 1, loss 0.
    """
    check_params(
        TVERSKY_NAME,
        TverskyParams,
        {"alpha": alpha, "beta": beta, "smooth": smooth, "scope": scope},
    )
    return _overlap_loss(
        TVERSKY_NAME,
        logits,
        targets,
        sample_weight,
        reduction,
        scope=scope,
        smooth=smooth,
        coefficient=1.0,
        tversky=(alpha, beta),
    )


def self_adjusting_dice_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float = 0.01,
    smooth: float = 1.0,
    coefficient: float = 2.0,
    square_denominator: bool = True,
    scope: Scope = "batch",
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Self-adjusting Dice loss: Dice with ``p`` scaled down by ``(1 - p)^alpha``.

    .. math::
        \ell = 1 - \frac{k \sum \tilde p\, y + s}{\sum \tilde p + \sum y + s},
        \qquad \tilde p = (1 - p)^{\alpha}\, p

    (the denominator ``Σ p̃² + Σ y² + s`` with ``square_denominator``). Li et al., "Dice Loss
    for Data-imbalanced NLP Tasks", ACL 2020, https://arxiv.org/abs/1911.02855, eq. 11
    (``k = 2``) and Table 2 (``k = 1``).

    Args:
        logits: unnormalised scores (see Shapes). Half precision is computed in float32 and
            the loss is returned in float32.
        targets: binary or multilabel targets in ``[0, 1]`` (soft allowed), or multiclass
            class indices.
        alpha: ``>= 0``, the self-adjusting exponent; default 0.01, the authors' released
            scripts' ``--dice_alpha`` (the paper's text discusses ``alpha = 1``; see Note).
        smooth: ``s >= 0`` added to numerator and denominator; default 1 (the scripts).
        coefficient: ``k > 0``, factor of the intersection; default 2.
        square_denominator: ``Σ p̃² + Σ y²`` in the denominator; default True (the
            scripts' ``--dice_square``).
        scope: ``"batch"`` (default: the scripts' sum over the whole batch) or
            ``"sample"``, see Shapes.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        sample_weight: optional ``(N,)`` non-negative weights.

    Shapes:
        binary: logits ``(N,)``, targets ``(N,)`` in ``[0, 1]`` (sigmoid). Multiclass: logits
        ``(N, C)``, ``C >= 2``, integer targets ``(N,)`` (softmax, one-hot targets).
        Multilabel: logits ``(N, C)``, targets ``(N, C)`` in ``[0, 1]`` (sigmoid).
        ``scope="sample"``: ``reduction="none"`` gives ``(N,)`` and ``"mean"`` is the
        ``sample_weight``-weighted average of the samples' losses. ``scope="batch"``:
        ``"none"`` gives ``(C,)`` (binary: 0-d), ``"mean"`` averages the classes, ``"sum"``
        adds them, and ``sample_weight`` multiplies each sample's terms inside the sums.

    Returns:
        The loss: a scalar, or per sample / per class for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets outside ``[0, 1]`` or a class index out of range, a
            parameter out of its range, an unknown ``scope`` or ``reduction``.
        TypeError: non-floating logits or non-integer multiclass targets.

    Example:
        >>> logits = torch.tensor([0.0, 0.0])
        >>> targets = torch.tensor([1.0, 0.0])
        >>> self_adjusting_dice_loss(logits, targets)  # p̃ = 2^-1.01, squared, over the batch
        tensor(0.2006)
        >>> paper = {"alpha": 1.0, "scope": "sample", "square_denominator": False}
        >>> self_adjusting_dice_loss(logits, targets, reduction="none", **paper)  # p̃ = 1/4
        tensor([0.3333, 0.2000])

    Note:
        At ``alpha`` near 1 the loss of one example is degenerate (figure:
        ``docs/figures/self_adjusting_dice.png``, from ``scripts/loss_figures.py``). For a
        positive, ``p̃ = (1 - p) p`` is largest at ``p = 1/2``, so its loss is lowest there and
        its gradient pushes the logit back towards 0 whenever ``p > 1/2``; for a negative,
        ``1 - s / (p̃ + s)`` is 0 both at ``p -> 0`` and at ``p -> 1``, so a negative can run to
        the wrong pole at no cost (a binary task trained per sample at ``alpha=1`` ended with
        99.7% of its negatives at logit > 2 in one fold). Over a whole batch the negatives
        still count through ``Σ p̃``, but with the same pull towards ``p = 1/2``. At the
        scripts' ``alpha = 0.01`` the factor only bends the curve near ``p = 1``.

        ``alpha=0`` with ``coefficient=2`` is the Dice loss exactly. ``(1 - p)^alpha`` is
        ``exp(alpha * logsigmoid(-x))`` or ``exp(alpha * log(1 - softmax))`` with
        ``log(1 - p)`` taken in log space (the top class: the log-sum of the other classes),
        so nothing is NaN where ``p`` rounds to 1. With ``coefficient=1`` the ratio is at most
        1/2 at ``smooth=0``, so the loss is at least 1/2 there. ``0 / 0`` (``smooth=0``,
        empty sets) reads as ratio 0, loss 1, as for the Dice loss.
    """
    check_params(
        SELF_ADJUSTING_DICE_NAME,
        SelfAdjustingDiceParams,
        {
            "alpha": alpha,
            "smooth": smooth,
            "coefficient": coefficient,
            "square_denominator": square_denominator,
            "scope": scope,
        },
    )
    return _overlap_loss(
        SELF_ADJUSTING_DICE_NAME,
        logits,
        targets,
        sample_weight,
        reduction,
        scope=scope,
        smooth=smooth,
        coefficient=coefficient,
        focus=alpha,
        square_denominator=square_denominator,
    )


# --- their value, gradient and exact Hessian diagonal in closed form -------------------------


def _dice_derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    smooth: float = 1.0,
    square_denominator: bool = True,
    scope: Scope = "batch",
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`dice_loss`'s value, gradient and exact Hessian diagonal w.r.t. the logits,
    in either scope, in O(N C) (see :func:`_overlap_derivatives`)."""
    check_params(
        DICE_NAME,
        DiceParams,
        {"smooth": smooth, "square_denominator": square_denominator, "scope": scope},
    )
    return _overlap_derivatives(
        DICE_NAME,
        logits,
        targets,
        sample_weight,
        reduction,
        scope=scope,
        smooth=smooth,
        square_denominator=square_denominator,
    )


def _tversky_derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float = 0.3,
    beta: float = 0.7,
    smooth: float = 1.0,
    scope: Scope = "batch",
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`tversky_loss`'s value, gradient and exact Hessian diagonal w.r.t. the logits,
    in either scope, in O(N C) (see :func:`_overlap_derivatives`)."""
    check_params(
        TVERSKY_NAME,
        TverskyParams,
        {"alpha": alpha, "beta": beta, "smooth": smooth, "scope": scope},
    )
    return _overlap_derivatives(
        TVERSKY_NAME,
        logits,
        targets,
        sample_weight,
        reduction,
        scope=scope,
        smooth=smooth,
        coefficient=1.0,
        tversky=(alpha, beta),
    )


def _self_adjusting_dice_derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float = 0.01,
    smooth: float = 1.0,
    coefficient: float = 2.0,
    square_denominator: bool = True,
    scope: Scope = "batch",
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`self_adjusting_dice_loss`'s value, gradient and exact Hessian diagonal w.r.t.
    the logits, in either scope, in O(N C) (see :func:`_overlap_derivatives`)."""
    check_params(
        SELF_ADJUSTING_DICE_NAME,
        SelfAdjustingDiceParams,
        {
            "alpha": alpha,
            "smooth": smooth,
            "coefficient": coefficient,
            "square_denominator": square_denominator,
            "scope": scope,
        },
    )
    return _overlap_derivatives(
        SELF_ADJUSTING_DICE_NAME,
        logits,
        targets,
        sample_weight,
        reduction,
        scope=scope,
        smooth=smooth,
        coefficient=coefficient,
        focus=alpha,
        square_denominator=square_denominator,
    )


def dice_hessian_diagonal(logits: Tensor, targets: Tensor, **params: Any) -> Tensor:
    """The exact Hessian diagonal of :func:`dice_loss` (its arguments), in O(N C)."""
    return _dice_derivatives(logits, targets, **params)[2]


def tversky_hessian_diagonal(logits: Tensor, targets: Tensor, **params: Any) -> Tensor:
    """The exact Hessian diagonal of :func:`tversky_loss` (its arguments), in O(N C)."""
    return _tversky_derivatives(logits, targets, **params)[2]


def self_adjusting_dice_hessian_diagonal(logits: Tensor, targets: Tensor, **params: Any) -> Tensor:
    """The exact Hessian diagonal of :func:`self_adjusting_dice_loss` (its arguments), in
    O(N C)."""
    return _self_adjusting_dice_derivatives(logits, targets, **params)[2]


# --- modules and registry entries ------------------------------------------------------------


class DiceLoss(LossModule):
    """Module form of :func:`dice_loss`."""

    function = staticmethod(dice_loss)
    params_model = DiceParams
    loss_name = DICE_NAME

    def __init__(
        self,
        smooth: float = 1.0,
        square_denominator: bool = True,
        scope: Scope = "batch",
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            smooth=smooth, square_denominator=square_denominator, scope=scope, reduction=reduction
        )


class TverskyLoss(LossModule):
    """Module form of :func:`tversky_loss`."""

    function = staticmethod(tversky_loss)
    params_model = TverskyParams
    loss_name = TVERSKY_NAME

    def __init__(
        self,
        alpha: float = 0.3,
        beta: float = 0.7,
        smooth: float = 1.0,
        scope: Scope = "batch",
        reduction: str = "mean",
    ) -> None:
        super().__init__(alpha=alpha, beta=beta, smooth=smooth, scope=scope, reduction=reduction)


class SelfAdjustingDiceLoss(LossModule):
    """Module form of :func:`self_adjusting_dice_loss`."""

    function = staticmethod(self_adjusting_dice_loss)
    params_model = SelfAdjustingDiceParams
    loss_name = SELF_ADJUSTING_DICE_NAME

    def __init__(
        self,
        alpha: float = 0.01,
        smooth: float = 1.0,
        coefficient: float = 2.0,
        square_denominator: bool = True,
        scope: Scope = "batch",
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            alpha=alpha,
            smooth=smooth,
            coefficient=coefficient,
            square_denominator=square_denominator,
            scope=scope,
            reduction=reduction,
        )


_WHEN_SCOPE = (
    "scope='batch' (default) is one overlap per class over the batch; scope='sample' one "
    "per sample (the form GBDT objectives take)."
)

SPECS = (
    LossSpec(
        name=DICE_NAME,
        function=dice_loss,
        hessian_diagonal=dice_hessian_diagonal,
        derivatives=_dice_derivatives,
        module=DiceLoss,
        params=DiceParams,
        tasks=TASKS,
        summary="Soft Dice loss: one minus the smoothed Sørensen-Dice overlap of p and y.",
        formula=r"\ell = 1 - \frac{2 \sum p y + s}{\sum p + \sum y + s}",
        reference="Li et al., Dice Loss for Data-imbalanced NLP Tasks, ACL 2020, "
        "arXiv:1911.02855; Milletari et al., V-Net, 3DV 2016, arXiv:1606.04797",
        when_to_use="Imbalanced data judged by F1, as a set overlap per class (the defaults: "
        "the authors' released scripts, batch-level, squared denominator); on the "
        f"project's benchmarks it is no better than tuned cross-entropy. {_WHEN_SCOPE}",
        sample_separable=False,
        coupling=_coupling,
    ),
    LossSpec(
        name=TVERSKY_NAME,
        function=tversky_loss,
        hessian_diagonal=tversky_hessian_diagonal,
        derivatives=_tversky_derivatives,
        module=TverskyLoss,
        params=TverskyParams,
        tasks=TASKS,
        summary="Tversky loss: a soft overlap weighing false positives (alpha) and false "
        "negatives (beta) apart.",
        formula=r"\ell = 1 - \frac{TP + s}{TP + \alpha FP + \beta FN + s}",
        reference="Salehi et al., Tversky loss function for image segmentation using 3D fully "
        "convolutional deep networks, MLMI 2017, arXiv:1706.05721",
        when_to_use="Imbalanced data where recall and precision are not worth the same: "
        "beta > alpha favours recall (default 0.3 / 0.7, Salehi et al.). Linear in p: with "
        f"the softmax of many classes it trains slowly. {_WHEN_SCOPE}",
        sample_separable=False,
        coupling=_coupling,
    ),
    LossSpec(
        name=SELF_ADJUSTING_DICE_NAME,
        function=self_adjusting_dice_loss,
        hessian_diagonal=self_adjusting_dice_hessian_diagonal,
        derivatives=_self_adjusting_dice_derivatives,
        module=SelfAdjustingDiceLoss,
        params=SelfAdjustingDiceParams,
        tasks=TASKS,
        summary="Self-adjusting Dice loss: Dice with p replaced by (1-p)^alpha p, "
        "down-weighting easy examples.",
        formula=r"\ell = 1 - \frac{k \sum (1-p)^{\alpha} p\, y + s}"
        r"{\sum (1-p)^{\alpha} p + \sum y + s}",
        reference="Li et al., Dice Loss for Data-imbalanced NLP Tasks, ACL 2020, arXiv:1911.02855",
        when_to_use="Imbalanced data dominated by easy negatives, judged by F1; alpha=0.01 as "
        "in the authors' released scripts (near 1 it is degenerate: see the docstring). "
        f"{_WHEN_SCOPE}",
        sample_separable=False,
        coupling=_coupling,
    ),
)
