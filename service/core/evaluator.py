"""Evaluation and decision thresholds: metrics, exact F-beta sweeps, streaming.

The core behind ``POST /evaluate``, ``POST /thresholds`` and gRPC ``StreamEvaluate``. Pure
numpy (plus :mod:`losses` for the loss value); no transport and no event loop.

The task comes from the shapes, as in :func:`losses.infer_task`:

==============  ===========  =========================  ==========================
task            logits       targets                    decision
==============  ===========  =========================  ==========================
binary          ``(N,)``     ``(N,)`` of 0/1            ``logit >= t``
multiclass      ``(N, C)``   ``(N,)`` indices in [0,C)  ``argmax(logits + offsets)``
multilabel      ``(N, C)``   ``(N, C)`` of 0/1          ``logit_c >= t_c``
==============  ===========  =========================  ==========================

Thresholds are in the units of the scores given (default 0: a logit of 0 is a probability
of 0.5); for multiclass they are per-class additive offsets (default 0: plain argmax).

Metrics follow scikit-learn with ``zero_division=0``: a precision, recall or F1 whose
denominator is 0 is 0. ``macro_f1`` and ``micro_f1`` mean what sklearn's ``average="macro"``
and ``"micro"`` mean: over both classes of a binary task (labels 0 and 1; micro is then the
accuracy), over all ``C`` classes of the logits for multiclass and multilabel, present in
the data or not. A binary task's positive-class F1 (sklearn's ``average="binary"``) is
``f1_positive``. A binary confusion stays one row ``[tn, fp, fn, tp]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

import losses
from losses import LossParameterError, Task

from .errors import InvalidArgument, PayloadTooLarge, field_message, invalid_params
from .types import (
    ClassMetrics,
    EvaluateRequest,
    EvaluateResult,
    ThresholdsRequest,
    ThresholdsResult,
)

__all__ = [
    "EvaluationStream",
    "StreamFit",
    "best_threshold",
    "evaluate",
    "fit_stream",
    "fit_thresholds",
    "task_from_shapes",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.floating[Any]]

_MAX_SWEEPS = 20
"""Coordinate-ascent sweeps over the classes for multiclass offsets (stops earlier when a
sweep changes nothing)."""

_TOL = 1e-12


# ---------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Batch:
    """Checked inputs: the task, ``C`` (1 for binary), the scores and the truth.

    ``scores`` keep the caller's float dtype (native byte order) and shape; ``truth`` is
    ``(N,)`` int64 class indices for multiclass and ``(N, C)`` bool otherwise (binary as
    ``(N, 1)``).
    """

    task: Task
    num_classes: int
    scores: Floats
    truth: npt.NDArray[Any]

    @property
    def num_samples(self) -> int:
        return int(self.scores.shape[0])

    @property
    def columns(self) -> Floats:
        """The scores as ``(N, C)`` (binary as one column)."""
        return self.scores.reshape(self.num_samples, -1)


def _shape(value: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in value) + ("," if len(value) == 1 else "") + ")"


_MAX_SCORE = 1e30
"""Largest score magnitude accepted: far beyond any logit, far below float64 overflow."""
_MAX_BETA = 1e6
"""Largest F-beta accepted: beta^2 stays far from overflowing the F-beta arithmetic."""


def _check_scores(value: object, field: str) -> Floats:
    if not isinstance(value, np.ndarray):
        raise InvalidArgument(f"{field}: expected an array, got {type(value).__name__}")
    if value.dtype.kind != "f" or value.dtype.itemsize > 8:
        raise InvalidArgument(
            f"{field}: expected a floating dtype (float16, float32 or float64), got {value.dtype}"
        )
    if value.ndim not in (1, 2):
        raise InvalidArgument(f"{field}: expected shape (N,) or (N, C), got {_shape(value.shape)}")
    if value.shape[0] == 0:
        raise InvalidArgument(
            f"{field}: expected at least one sample, got shape {_shape(value.shape)}"
        )
    if value.ndim == 2 and value.shape[1] == 0:
        raise InvalidArgument(
            f"{field}: expected at least one class, got shape {_shape(value.shape)}"
        )
    scores: Floats = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("="))
    # Finite, and small enough that sums of two scores (offsets, midpoints) stay finite.
    finite = np.isfinite(scores) & (np.abs(scores, dtype=np.float64) <= _MAX_SCORE)
    if not bool(finite.all()):
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        index = where[0] if len(where) == 1 else where
        raise InvalidArgument(
            f"{field}: expected finite values within ±{_MAX_SCORE:g}, got "
            f"{scores[where].item()!r} at index {index}"
        )
    return scores


def _check(logits: object, targets: object, field: str) -> _Batch:
    """Validate a batch; ``field`` names the scores (``logits`` or ``scores``)."""
    scores = _check_scores(logits, field)
    if not isinstance(targets, np.ndarray):
        raise InvalidArgument(f"targets: expected an array, got {type(targets).__name__}")
    if targets.dtype.kind not in "biuf":
        raise InvalidArgument(
            f"targets: expected a bool, integer or float dtype, got {targets.dtype}"
        )
    n = scores.shape[0]
    if scores.ndim == 1:
        if targets.shape != scores.shape:
            raise InvalidArgument(
                f"targets: expected shape ({n},) to match {field} {_shape(scores.shape)}, "
                f"got {_shape(targets.shape)}"
            )
        task, num_classes = Task.BINARY, 1
    elif targets.shape == scores.shape:
        task, num_classes = Task.MULTILABEL, int(scores.shape[1])
    elif targets.shape == (n,):
        task, num_classes = Task.MULTICLASS, int(scores.shape[1])
    else:
        raise InvalidArgument(
            f"targets: expected shape ({n},) of class indices (multiclass) or "
            f"{_shape(scores.shape)} of 0/1 (multilabel) to match {field} "
            f"{_shape(scores.shape)}, got {_shape(targets.shape)}"
        )

    if task is Task.MULTICLASS:
        if targets.dtype.kind not in "iu":
            raise InvalidArgument(
                f"targets: expected integer class indices for multiclass, got {targets.dtype}"
            )
        bad = (targets < 0) | (targets >= num_classes)
        if bool(bad.any()):
            raise InvalidArgument(
                f"targets: expected class indices in [0, {num_classes - 1}] for "
                f"{num_classes} classes, got {targets[bad][0].item()!r}"
            )
        truth: npt.NDArray[Any] = targets.astype(np.int64)
    else:
        bad = (targets != 0) & (targets != 1)
        if bool(bad.any()):
            got = targets[bad][0].item()
            raise InvalidArgument(
                f"targets: expected {task.value} targets of exactly 0 or 1, got {got!r}"
            )
        truth = targets.astype(bool).reshape(n, num_classes)
    return _Batch(task, num_classes, scores, truth)


def _check_thresholds(value: object, batch: _Batch) -> F64:
    """Per-class thresholds (offsets for multiclass) as ``(C,)`` float64; default zeros."""
    c = batch.num_classes
    if value is None:
        return np.zeros(c)
    if not isinstance(value, np.ndarray):
        raise InvalidArgument(f"thresholds: expected an array, got {type(value).__name__}")
    if value.dtype.kind not in "iuf":
        raise InvalidArgument(f"thresholds: expected an integer or float dtype, got {value.dtype}")
    if value.shape not in ((), (c,)):
        what = "offsets" if batch.task is Task.MULTICLASS else "thresholds"
        raise InvalidArgument(
            f"thresholds: expected shape ({c},) (one of the {what} per class) or a scalar, "
            f"got {_shape(value.shape)}"
        )
    thresholds: F64 = np.broadcast_to(value.astype(np.float64), (c,)).copy()
    if batch.task is Task.MULTICLASS:
        bad = ~np.isfinite(thresholds)
        expected = "finite offsets"
    else:
        bad = np.isnan(thresholds)
        expected = "thresholds that are not NaN"
    if bool(bad.any()):
        raise InvalidArgument(f"thresholds: expected {expected}, got {thresholds[bad][0].item()!r}")
    return thresholds


def _check_beta(beta: object) -> float:
    if (
        isinstance(beta, bool)
        or not isinstance(beta, int | float)
        or not np.isfinite(beta)
        or beta <= 0
        or beta > _MAX_BETA
    ):
        raise InvalidArgument(f"beta: expected a number in (0, {_MAX_BETA:g}], got {beta!r}")
    return float(beta)


def task_from_shapes(
    logits: np.ndarray, targets: np.ndarray, *, field: str = "logits"
) -> tuple[Task, int]:
    """The task and number of classes (1 for binary) of ``logits`` and ``targets``.

    Validates them as :func:`evaluate` does: floating, finite logits of shape ``(N,)`` or
    ``(N, C)`` with ``N, C >= 1``; targets of a matching shape, 0/1 for binary and
    multilabel, integer indices in ``[0, C)`` for multiclass. Raises
    :class:`~lossserve.core.errors.InvalidArgument` naming the field (``field`` for the
    scores, ``targets``) and what was expected.
    """
    batch = _check(logits, targets, field)
    return batch.task, batch.num_classes


# ---------------------------------------------------------------------------- metrics


def _counts(batch: _Batch, thresholds: F64) -> I64:
    """Multiclass: the ``C x C`` confusion (row = true). Otherwise ``(C, 4)`` tn/fp/fn/tp."""
    c = batch.num_classes
    if batch.task is Task.MULTICLASS:
        pred = np.argmax(batch.scores.astype(np.float64) + thresholds, axis=1)
        flat = np.bincount(batch.truth * c + pred, minlength=c * c)
        return flat.reshape(c, c).astype(np.int64)
    pred = batch.columns >= thresholds
    truth = batch.truth
    tp = np.count_nonzero(pred & truth, axis=0)
    fp = np.count_nonzero(pred & ~truth, axis=0)
    fn = np.count_nonzero(~pred & truth, axis=0)
    tn = batch.num_samples - tp - fp - fn
    return np.stack([tn, fp, fn, tp], axis=1).astype(np.int64)


def _ratio(num: npt.NDArray[Any], den: npt.NDArray[Any]) -> F64:
    """``num / den``, 0 where ``den`` is 0 (sklearn's ``zero_division=0``)."""
    out = np.zeros(np.shape(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _result(task: Task, counts: I64, num_samples: int, loss: float | None) -> EvaluateResult:
    if task is Task.MULTICLASS:
        tp = np.diagonal(counts)
        support = counts.sum(axis=1)
        predicted = counts.sum(axis=0)
        micro = float(tp.sum() / num_samples)
    elif task is Task.BINARY:  # both classes: the negative one's tp is the tn
        tn, fp, fn, tp1 = counts[0]
        tp = np.array([tn, tp1])
        support = np.array([tn + fp, tp1 + fn])
        predicted = np.array([tn + fn, tp1 + fp])
        micro = float((tn + tp1) / num_samples)
    else:
        tp = counts[:, 3]
        support = tp + counts[:, 2]
        predicted = tp + counts[:, 1]
        micro = float(_ratio(np.asarray(2 * tp.sum()), np.asarray(support.sum() + predicted.sum())))
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    labels = list(range(len(tp)))
    per_class = [
        ClassMetrics(
            label=label,
            support=int(support[i]),
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
        )
        for i, label in enumerate(labels)
    ]
    return EvaluateResult(
        task=task.value,
        num_samples=num_samples,
        loss=loss,
        confusion=np.ascontiguousarray(counts, dtype=np.int64),
        per_class=per_class,
        macro_f1=float(f1.mean()),
        micro_f1=micro,
        f1_positive=float(f1[1]) if task is Task.BINARY else None,
    )


def _check_loss(name: object, params: object, task: Task) -> None:
    """Validate the loss name, its task and its params before anything is computed."""
    if not isinstance(params, dict):
        raise InvalidArgument(f"params: expected an object, got {type(params).__name__}")
    if name is None:
        if params:
            raise InvalidArgument(f"params: expected none without a loss, got {params!r}")
        return
    if not isinstance(name, str):
        raise InvalidArgument(f"loss: expected a loss name, got {type(name).__name__}")
    try:
        spec = losses.get(name)
    except ValueError as exc:
        raise InvalidArgument(field_message("loss", exc)) from None
    if task not in spec.tasks:
        allowed = ", ".join(sorted(t.value for t in spec.tasks))
        raise InvalidArgument(
            f"loss: expected a loss for {task.value} targets, got {name!r} which supports {allowed}"
        )
    try:
        spec.validate(params)
    except LossParameterError as exc:
        raise invalid_params(exc.errors) from None


def _mean_loss(name: str, params: dict[str, Any], batch: _Batch) -> float:
    """``losses.compute(name, logits, targets, reduction="mean", **params)`` on the CPU."""
    # torch.from_numpy warns on a read-only array (np.frombuffer, as the wire decodes).
    scores = batch.scores if batch.scores.flags.writeable else batch.scores.copy()
    logits = torch.from_numpy(scores)
    if batch.task is Task.MULTICLASS:
        targets = torch.from_numpy(batch.truth)
    else:
        targets = torch.from_numpy(
            batch.truth.reshape(batch.scores.shape).astype(batch.scores.dtype)
        )
    try:
        with torch.no_grad():
            value = losses.compute(name, logits, targets, reduction="mean", **params)
    except LossParameterError as exc:  # pragma: no cover - _check_loss validated them
        raise InvalidArgument(field_message("params", exc)) from None
    except (ValueError, TypeError) as exc:  # per-class params of the wrong length, etc.
        raise InvalidArgument(field_message("params", exc)) from None
    return float(value.item())


def evaluate(request: EvaluateRequest) -> EvaluateResult:
    """Metrics of ``request.logits`` against ``request.targets``, and the mean loss.

    Decisions: binary and multilabel predict class ``c`` when ``logit_c >= thresholds_c``;
    multiclass predicts ``argmax(logits + thresholds)`` (first index on ties). The default
    thresholds are 0. ``thresholds`` is ``(C,)`` (``(1,)`` for binary) or a scalar.

    Returns confusion counts (multiclass ``C x C`` with rows the true class; binary and
    multilabel ``[tn, fp, fn, tp]`` per class), per-class precision, recall and F1, and
    macro and micro F1; ``loss`` is ``losses.compute(request.loss, ...).item()`` with
    ``reduction="mean"`` when a loss is named, else None.

    Raises:
        InvalidArgument: bad logits, targets or thresholds; an unknown loss, one that does
            not support the task, or params that fail its schema.
    """
    batch = _check(request.logits, request.targets, "logits")
    thresholds = _check_thresholds(request.thresholds, batch)
    _check_loss(request.loss, request.params, batch.task)
    loss = None if request.loss is None else _mean_loss(request.loss, request.params, batch)
    return _result(batch.task, _counts(batch, thresholds), batch.num_samples, loss)


# ---------------------------------------------------------------------------- thresholds


def _fbeta(tp: I64, k: I64, positives: int, beta: float) -> F64:
    """F-beta of cuts predicting ``k`` positives of which ``tp`` are right.

    ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)``, whose denominator is ``b^2 P + k``.
    """
    b2 = beta * beta
    return _ratio((1.0 + b2) * tp, b2 * positives + k)


def _sweep(scores: Floats, truth: Bools, beta: float) -> tuple[float, float, int]:
    """The exact best cut of one class: ``(threshold, fbeta, number predicted)``.

    Sorts once (descending) and scores every cut ``k`` (the top ``k`` predicted) with
    cumulative counts; a cut between equal scores is not a cut, so only ``k = 0``,
    ``k = N`` and ``k`` with ``s_(k) > s_(k+1)`` count. Ties in F-beta go to the smallest
    ``k`` (the highest threshold). The threshold is the midpoint of the two scores around
    the cut, computed in the scores' dtype (so it is representable there and ``score >= t``
    selects exactly the cut); the extreme cuts use the next float above the highest / below
    the lowest score.
    """
    n = scores.shape[0]
    order = np.argsort(scores)[::-1]  # descending; the order within ties is irrelevant
    ordered = scores[order]
    tp = np.concatenate(([0], np.cumsum(truth[order], dtype=np.int64)))
    k = np.arange(n + 1, dtype=np.int64)
    fbeta = _fbeta(tp, k, int(tp[-1]), beta)
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = ordered[:-1] > ordered[1:]
    fbeta[~valid] = -1.0
    best = int(np.argmax(fbeta))
    dtype = ordered.dtype.type
    if best == 0:
        threshold = np.nextafter(ordered[0], dtype(np.inf))
    elif best == n:
        threshold = np.nextafter(ordered[-1], dtype(-np.inf))
    else:
        above, below = ordered[best - 1], ordered[best]
        threshold = above / dtype(2) + below / dtype(2)
        if not below < threshold <= above:  # rounding (subnormals, adjacent floats)
            threshold = above
    return float(threshold), float(fbeta[best]), best


def best_threshold(
    scores: np.ndarray, targets: np.ndarray, beta: float = 1.0
) -> tuple[float, float]:
    """The threshold that maximises F-beta for one class, and that F-beta.

    ``scores (N,)`` and 0/1 ``targets (N,)``; predicting ``scores >= threshold`` gives the
    best of all the cuts between distinct scores (an exact sweep, ``O(N log N)``).
    """
    batch = _check(scores, targets, "scores")
    if batch.task is not Task.BINARY:
        raise InvalidArgument(
            f"scores: expected shape (N,) for one class, got {_shape(batch.scores.shape)}"
        )
    threshold, fbeta, _ = _sweep(batch.scores, batch.truth[:, 0], _check_beta(beta))
    return threshold, fbeta


def _top2(z: F64) -> tuple[I64, F64, I64, F64]:
    """Per row: the argmax (first on ties) and its value, then the same among the others."""
    rows = np.arange(z.shape[0])
    i1 = np.argmax(z, axis=1)
    v1 = z[rows, i1]
    rest = z.copy()
    rest[rows, i1] = -np.inf
    i2 = np.argmax(rest, axis=1)
    return i1, v1, i2, rest[rows, i2]


def _macro_f1(truth: I64, pred: I64, support: I64, c: int) -> float:
    tp = np.bincount(truth[truth == pred], minlength=c)
    predicted = np.bincount(pred, minlength=c)
    return float(_ratio(2 * tp, support + predicted).sum() / c)


def _line_search(
    d: F64, other: I64, truth: I64, j: int, support: I64, current: float
) -> tuple[float, float]:
    """The offset of class ``j`` that maximises macro-F1, the others fixed; and that F1.

    Row ``i`` goes to class ``j`` once the offset passes ``d_i`` (until then it goes to
    ``other_i``, its argmax among the other classes). Sorting ``d`` once, every cut between
    distinct ``d`` values is scored with cumulative counts: a switch changes the F1 of class
    ``j`` and of the class it leaves only. Ties in macro-F1 go to the offset nearest
    ``current``.
    """
    n, c = d.shape[0], support.shape[0]
    pred0 = np.bincount(other, minlength=c)
    tp0 = np.bincount(other[truth == other], minlength=c)
    base = float(_ratio(2 * tp0, support + pred0).sum())  # class j: tp0 = pred0 = 0

    order = np.argsort(d)  # the order within ties is irrelevant: only cuts between them count
    ds, left, ys = d[order], other[order], truth[order]
    # Class j after m switches: tp = hits so far, predicted = m.
    tp_j = np.cumsum(ys == j, dtype=np.int64)
    f_j = _ratio(2 * tp_j, support[j] + np.arange(1, n + 1))
    # The class each switch leaves: its count of switches (g) and of lost hits (r) so far.
    small = np.int16 if c <= np.iinfo(np.int16).max else np.int64  # int16 sorts by radix
    by_class = np.argsort(left.astype(small), kind="stable")
    grouped = left[by_class]
    starts = (np.cumsum(pred0) - pred0)[grouped]
    hits = (ys[by_class] == grouped).astype(np.int64)
    cum_hits = np.cumsum(hits)
    g = np.empty(n, dtype=np.int64)
    r = np.empty(n, dtype=np.int64)
    g[by_class] = np.arange(n) - starts + 1
    r[by_class] = cum_hits - (cum_hits[starts] - hits[starts])
    tp_after, pred_after = tp0[left] - r, pred0[left] - g
    f_after = _ratio(2 * tp_after, support[left] + pred_after)
    f_before = _ratio(2 * (tp_after + (ys == left)), support[left] + pred_after + 1)
    totals = np.concatenate(([base], base + f_j + np.cumsum(f_after - f_before)))

    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = ds[:-1] < ds[1:]
    margin = max(1.0, float(ds[-1] - ds[0]))
    candidates = np.empty(n + 1)
    candidates[0] = ds[0] - margin
    candidates[n] = ds[-1] + margin
    candidates[1:n] = ds[:-1] / 2 + ds[1:] / 2
    best = float(totals[valid].max())
    near = valid & (totals >= best - _TOL)
    pick = np.flatnonzero(near)[np.argmin(np.abs(candidates[near] - current))]
    return float(candidates[pick]), best / c


def _fit_offsets(batch: _Batch) -> F64:
    """Per-class additive offsets maximising macro-F1 by coordinate ascent from 0.

    Each step is an exact line search for one class; a step is kept only when the macro-F1
    of the actual decisions (``argmax(logits + offsets)``, computed as :func:`evaluate`
    does) strictly improves, so the result is never worse than offsets 0.
    """
    c = batch.num_classes
    offsets = np.zeros(c)
    if c < 2:
        return offsets
    x = batch.scores.astype(np.float64)
    columns = np.ascontiguousarray(x.T)  # x[:, j], contiguous
    truth: I64 = batch.truth
    support = np.bincount(truth, minlength=c)
    z = x.copy()
    pred = np.argmax(z, axis=1)
    current = _macro_f1(truth, pred, support, c)
    i1, v1, i2, v2 = _top2(z)
    for _ in range(_MAX_SWEEPS):
        improved = False
        for j in range(c):
            is_top = i1 == j
            other = np.where(is_top, i2, i1)
            other_value = np.where(is_top, v2, v1)
            offset, predicted = _line_search(
                other_value - columns[j], other, truth, j, support, float(offsets[j])
            )
            if predicted <= current + _TOL:
                continue
            column = columns[j] + offset
            wins = (column > other_value) | ((column == other_value) & (j < other))
            new_pred = np.where(wins, j, other)
            score = _macro_f1(truth, new_pred, support, c)
            if score <= current + _TOL:
                continue
            changed = is_top | (i2 == j) | (column >= v2)
            offsets[j], pred, current, improved = offset, new_pred, score, True
            z[:, j] = column
            rows = np.flatnonzero(changed)
            if rows.size:
                i1[rows], v1[rows], i2[rows], v2[rows] = _top2(z[rows])
        if not improved:
            break
    return offsets


def _fit(batch: _Batch, beta: float) -> ThresholdsResult:
    if batch.task is Task.MULTICLASS:
        values, kind = _fit_offsets(batch), "offsets"
    else:
        columns = batch.columns
        values = np.array(
            [_sweep(columns[:, c], batch.truth[:, c], beta)[0] for c in range(batch.num_classes)]
        )
        kind = "thresholds"
    n = batch.num_samples
    before = _result(batch.task, _counts(batch, np.zeros(batch.num_classes)), n, None)
    after = _result(batch.task, _counts(batch, values), n, None)
    return ThresholdsResult(
        task=batch.task.value, kind=kind, values=values, before=before, after=after
    )


def fit_thresholds(request: ThresholdsRequest) -> ThresholdsResult:
    """Per-class decision thresholds (or multiclass offsets) fitted on ``request``.

    Binary and multilabel: for each class the threshold maximising F-beta
    (``beta = request.beta``, 1 by default) by an exact sweep over every cut between
    distinct scores, so ``score >= threshold`` reproduces the best cut (``values`` is
    ``(C,)``, ``(1,)`` for binary: the positive class's F-beta, ``f1_positive`` at beta 1,
    not the macro over both classes). Multiclass: additive offsets maximising macro-F1 (not
    F-beta) by coordinate ascent with exact line searches, never worse than offsets 0 on
    this data. ``before`` are the metrics at thresholds/offsets 0, ``after`` at the fitted
    ones, both as :func:`evaluate` computes them.

    Raises:
        InvalidArgument: bad scores, targets or beta.
    """
    batch = _check(request.scores, request.targets, "scores")
    return _fit(batch, _check_beta(request.beta))


# ---------------------------------------------------------------------------- streaming


class EvaluationStream:
    """Running metrics over a stream of batches, and thresholds fitted at its end.

    The first batch fixes the task, the number of classes, the loss and its params, and the
    thresholds; a later batch must agree, or leave ``loss`` (with empty ``params``) and
    ``thresholds`` unset to keep the first batch's. :meth:`add` answers the metrics over
    every batch so far: confusion counts summed, the loss as the mean of the batch losses
    weighted by their sizes (exactly the one-shot mean for a loss that is a mean over
    samples; for a batch-coupled loss such as Dice, the mean of the batch values). The
    scores are kept, at most ``max_elements`` logits in all, to fit thresholds in
    :meth:`finish`.
    """

    def __init__(self, max_elements: int) -> None:
        if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1:
            raise ValueError(f"max_elements: expected an integer >= 1, got {max_elements!r}")
        self._max_elements = max_elements
        self._task: Task | None = None
        self._num_classes = 0
        self._loss: str | None = None
        self._params: dict[str, Any] = {}
        self._thresholds: F64 = np.zeros(0)
        self._scores: list[Floats] = []
        self._truth: list[npt.NDArray[Any]] = []
        self._elements = 0
        self._samples = 0
        self._loss_sum = 0.0
        self._counts: I64 | None = None
        self._finished = False

    @property
    def num_samples(self) -> int:
        """Samples seen so far."""
        return self._samples

    def add(self, batch: EvaluateRequest) -> EvaluateResult:
        """Add one batch; the metrics over every batch so far.

        Raises:
            InvalidArgument: a bad batch, one that disagrees with the first, or a batch
                after :meth:`finish`; nothing is added then.
            PayloadTooLarge: the stream would keep more than ``max_elements`` logits.
        """
        if self._finished:
            raise InvalidArgument("stream: expected no batch after the end, got one")
        checked = _check(batch.logits, batch.targets, "logits")
        first = self._task is None
        if self._task is not None:
            if checked.task is not self._task:
                raise InvalidArgument(
                    f"targets: expected {self._task.value} batches as the first one, "
                    f"got {checked.task.value}"
                )
            if checked.num_classes != self._num_classes:
                raise InvalidArgument(
                    f"logits: expected {self._num_classes} classes as the first batch, "
                    f"got {checked.num_classes}"
                )
        loss, params = batch.loss, batch.params
        if not first and loss is None and not params:
            loss, params = self._loss, self._params
        elif not first and (loss != self._loss or params != self._params):
            raise InvalidArgument(
                f"loss: expected {self._loss!r} with params {self._params!r} as the first "
                f"batch (or none), got {loss!r} with params {params!r}"
            )
        if first or batch.thresholds is not None:
            thresholds = _check_thresholds(batch.thresholds, checked)
            if not first and not np.array_equal(thresholds, self._thresholds):
                raise InvalidArgument(
                    f"thresholds: expected {self._thresholds.tolist()} as the first batch "
                    f"(or none), got {thresholds.tolist()}"
                )
        else:
            thresholds = self._thresholds
        _check_loss(loss, params, checked.task)
        elements = self._elements + checked.scores.size
        if elements > self._max_elements:
            raise PayloadTooLarge(
                f"logits: expected at most {self._max_elements} elements over the stream, "
                f"got {elements}"
            )
        value = None if loss is None else _mean_loss(loss, params, checked)
        counts = _counts(checked, thresholds)

        if first:
            self._task, self._num_classes = checked.task, checked.num_classes
            self._loss, self._params, self._thresholds = loss, dict(params), thresholds
        kept = checked.scores
        self._scores.append(kept.copy() if np.may_share_memory(kept, batch.logits) else kept)
        self._truth.append(checked.truth)
        self._elements = elements
        self._samples += checked.num_samples
        if value is not None:
            self._loss_sum += value * checked.num_samples
        self._counts = counts if self._counts is None else self._counts + counts
        return self._current(checked.task, self._counts)

    def _current(self, task: Task, counts: I64) -> EvaluateResult:
        loss = None if self._loss is None else self._loss_sum / self._samples
        return _result(task, counts, self._samples, loss)

    def finish(self, beta: float = 1.0) -> tuple[EvaluateResult, ThresholdsResult]:
        """End the stream: the final metrics, and thresholds fitted on every batch.

        Raises:
            InvalidArgument: no batch was added, or a bad ``beta``.
        """
        final, fit = self.close(beta)
        return final, fit_stream(fit)

    def close(self, beta: float = 1.0) -> tuple[EvaluateResult, StreamFit]:
        """End the stream: the final metrics, and what :func:`fit_stream` fits thresholds
        on (every batch; a job for a worker process, where a fit past its deadline can be
        stopped).

        Raises:
            InvalidArgument: no batch was added, or a bad ``beta``.
        """
        checked_beta = _check_beta(beta)
        if self._task is None or self._counts is None:
            raise InvalidArgument("stream: expected at least one batch, got none")
        self._finished = True
        scores = np.concatenate(self._scores)
        truth = np.concatenate(self._truth)
        self._scores, self._truth = [scores], [truth]
        batch = _Batch(self._task, self._num_classes, scores, truth)
        return self._current(self._task, self._counts), StreamFit(batch, checked_beta)


@dataclass(frozen=True)
class StreamFit:
    """What a closed :class:`EvaluationStream` fits thresholds on: its batches, checked."""

    batch: _Batch
    beta: float

    @property
    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The scores' and targets' shapes, as ``/thresholds`` would have them."""
        scores = self.batch.scores.shape
        return scores, scores if self.batch.task is not Task.MULTICLASS else scores[:1]


def fit_stream(fit: StreamFit) -> ThresholdsResult:
    """:func:`fit_thresholds` on a closed stream's batches."""
    return _fit(fit.batch, fit.beta)
