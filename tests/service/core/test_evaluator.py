"""The evaluator core: metrics against scikit-learn, exact threshold sweeps, streaming."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    multilabel_confusion_matrix,
    precision_score,
    recall_score,
)

import losses
from losses import Task
from lossserve.core.errors import InvalidArgument, PayloadTooLarge
from lossserve.core.evaluator import (
    EvaluationStream,
    best_threshold,
    evaluate,
    fit_thresholds,
    task_from_shapes,
)
from lossserve.core.types import EvaluateRequest, EvaluateResult, ThresholdsRequest

Array = npt.NDArray[Any]


def _binary(rng: np.random.Generator, n: int = 200) -> tuple[Array, Array]:
    y = (rng.random(n) < 0.2).astype(np.int64)
    return (rng.normal(size=n) + 1.5 * y - 1.0).astype(np.float32), y


def _multiclass(rng: np.random.Generator, n: int = 300, c: int = 5) -> tuple[Array, Array]:
    prior = np.exp(-np.arange(c, dtype=np.float64))
    y = rng.choice(c, size=n, p=prior / prior.sum())
    x = rng.normal(size=(n, c))
    x[np.arange(n), y] += 1.0
    return x.astype(np.float32), y


def _multilabel(rng: np.random.Generator, n: int = 300, c: int = 4) -> tuple[Array, Array]:
    y = (rng.random((n, c)) < np.linspace(0.05, 0.5, c)).astype(np.int64)
    return (rng.normal(size=(n, c)) + 1.5 * y - 1.0).astype(np.float64), y


def _fbeta(pred: Array, truth: Array, beta: float) -> float:
    """Textbook F-beta, 0 when undefined."""
    tp = int(np.sum(pred & truth))
    fp = int(np.sum(pred & ~truth))
    fn = int(np.sum(~pred & truth))
    den = (1 + beta**2) * tp + beta**2 * fn + fp
    return 0.0 if den == 0 else (1 + beta**2) * tp / den


def _brute_best(scores: Array, truth: Array, beta: float) -> float:
    """The best F-beta of ``scores >= t`` over every distinct score and +inf."""
    cuts = [*np.unique(scores).tolist(), np.inf]
    return max(_fbeta(scores >= t, truth, beta) for t in cuts)


def _same_metrics(a: EvaluateResult, b: EvaluateResult) -> None:
    assert (a.task, a.num_samples, a.confusion.tolist()) == (
        b.task,
        b.num_samples,
        b.confusion.tolist(),
    )
    assert a.per_class == b.per_class
    assert a.macro_f1 == pytest.approx(b.macro_f1)
    assert a.micro_f1 == pytest.approx(b.micro_f1)


# ---------------------------------------------------------------- task and sklearn parity


def test_task_from_shapes() -> None:
    assert task_from_shapes(np.zeros(3), np.array([0, 1, 1])) == (Task.BINARY, 1)
    assert task_from_shapes(np.zeros((3, 4)), np.array([0, 3, 1])) == (Task.MULTICLASS, 4)
    assert task_from_shapes(np.zeros((3, 4)), np.zeros((3, 4), bool)) == (Task.MULTILABEL, 4)


def _same_as_sklearn(
    result: EvaluateResult, y: np.ndarray, pred: np.ndarray, labels: list[int] | None = None
) -> None:
    """Per-class precision, recall and F1, and macro and micro F1, as sklearn computes them
    (``zero_division=0``; ``labels``: every class, present or not)."""
    kw: dict[str, Any] = {"zero_division": 0, **({"labels": labels} if labels else {})}
    for metric, score in (("precision", precision_score), ("recall", recall_score),
                          ("f1", f1_score)):  # fmt: skip
        got = [getattr(m, metric) for m in result.per_class]
        np.testing.assert_allclose(got, score(y, pred, average=None, **kw), err_msg=metric)
    assert result.macro_f1 == pytest.approx(f1_score(y, pred, average="macro", **kw))
    assert result.micro_f1 == pytest.approx(f1_score(y, pred, average="micro", **kw))


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_matches_sklearn(seed: int) -> None:
    x, y = _binary(np.random.default_rng(seed))
    for t in (0.0, -0.5, 1.0):
        result = evaluate(EvaluateRequest(x, y, thresholds=np.array([t])))
        pred = (x >= t).astype(np.int64)
        assert result.task == "binary"
        assert result.confusion.tolist() == [
            confusion_matrix(y, pred, labels=[0, 1]).ravel().tolist()
        ]
        assert [m.label for m in result.per_class] == [0, 1]
        assert [m.support for m in result.per_class] == np.bincount(y, minlength=2).tolist()
        _same_as_sklearn(result, y, pred, labels=[0, 1])
        assert result.micro_f1 == pytest.approx(accuracy_score(y, pred))
        assert result.f1_positive == pytest.approx(f1_score(y, pred, zero_division=0))


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = _multiclass(rng, c=6)
    y[y == 5] = 0  # class 5 absent: its precision, recall and F1 are 0
    labels = list(range(6))
    for offsets in (None, rng.normal(size=6)):
        result = evaluate(EvaluateRequest(x, y, thresholds=offsets))
        shift = np.zeros(6) if offsets is None else offsets
        pred = np.argmax(x.astype(np.float64) + shift, axis=1)
        assert result.task == "multiclass"
        assert result.confusion.tolist() == confusion_matrix(y, pred, labels=labels).tolist()
        assert [m.support for m in result.per_class] == np.bincount(y, minlength=6).tolist()
        _same_as_sklearn(result, y, pred, labels=labels)
        assert result.f1_positive is None


@pytest.mark.parametrize("seed", [0, 1])
def test_multilabel_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = _multilabel(rng)
    y[:, 0] = 0  # a class with no positives
    for thresholds in (None, rng.normal(size=4)):
        result = evaluate(EvaluateRequest(x, y, thresholds=thresholds))
        pred = (x >= (0.0 if thresholds is None else thresholds)).astype(np.int64)
        expected = multilabel_confusion_matrix(y, pred).reshape(4, 4).tolist()
        assert result.task == "multilabel"
        assert result.confusion.tolist() == expected
        _same_as_sklearn(result, y, pred)


def test_thresholds_default_to_zero_and_ties_go_to_the_positive() -> None:
    x = np.array([-1.0, 0.0, 1.0])
    result = evaluate(EvaluateRequest(x, np.array([0, 1, 1])))
    assert result.confusion.tolist() == [[1, 0, 0, 2]]  # a logit of exactly 0 predicts positive
    # Multiclass argmax ties go to the first class, as numpy's argmax.
    tie = evaluate(EvaluateRequest(np.zeros((2, 3)), np.array([0, 2])))
    assert tie.confusion.tolist() == [[1, 0, 0], [0, 0, 0], [1, 0, 0]]
    # A scalar threshold applies to every class.
    scalar = evaluate(EvaluateRequest(np.eye(3), np.eye(3, dtype=int), thresholds=np.array(2.0)))
    assert [row[3] for row in scalar.confusion.tolist()] == [0, 0, 0]


@pytest.mark.parametrize(
    ("name", "params", "task", "dtype"),
    [
        ("cross_entropy", {}, Task.MULTICLASS, np.float32),
        ("focal", {"gamma": 1.5, "alpha": [0.5, 1.0, 2.0, 1.0]}, Task.MULTICLASS, np.float64),
        ("binary_cross_entropy", {}, Task.BINARY, np.float32),
        ("binary_cross_entropy", {}, Task.BINARY, np.float16),
        ("sigmoid_focal", {"alpha": 0.5}, Task.MULTILABEL, np.float32),
        ("dice", {}, Task.MULTILABEL, np.float64),
        ("hinge", {}, Task.BINARY, np.float64),
    ],
)
def test_loss_equals_losses_compute(
    name: str, params: dict[str, Any], task: Task, dtype: type[np.floating[Any]]
) -> None:
    rng = np.random.default_rng(0)
    if task is Task.MULTICLASS:
        x, y = _multiclass(rng, n=50, c=4)
        targets = torch.from_numpy(y)
    elif task is Task.BINARY:
        x, y = _binary(rng, n=50)
        targets = torch.from_numpy(y.astype(dtype))
    else:
        x, y = _multilabel(rng, n=50)
        targets = torch.from_numpy(y.astype(dtype))
    x = x.astype(dtype)
    result = evaluate(EvaluateRequest(x, y, loss=name, params=params))
    expected = losses.compute(name, torch.from_numpy(x), targets, **params).item()
    assert result.loss == expected
    assert evaluate(EvaluateRequest(x, y)).loss is None


def test_read_only_arrays_from_the_wire() -> None:
    x, y = _multiclass(np.random.default_rng(1), n=20, c=3)
    logits = np.frombuffer(x.tobytes(), dtype=np.float32).reshape(x.shape)
    targets = np.frombuffer(y.tobytes(), dtype=y.dtype)
    assert not logits.flags.writeable
    result = evaluate(EvaluateRequest(logits, targets, loss="cross_entropy"))
    assert result.loss == evaluate(EvaluateRequest(x, y, loss="cross_entropy")).loss
    big_endian = evaluate(EvaluateRequest(x.astype(">f4"), y.astype(">i8")))
    _same_metrics(big_endian, evaluate(EvaluateRequest(x, y)))


def test_stream_keeps_its_own_copy_of_the_scores() -> None:
    x, y = _binary(np.random.default_rng(2), n=30)
    expected = fit_thresholds(ThresholdsRequest(x.copy(), y)).values
    stream = EvaluationStream(max_elements=100)
    stream.add(EvaluateRequest(x, y))
    x[:] = 0.0  # the caller reuses its buffer
    np.testing.assert_array_equal(stream.finish()[1].values, expected)


# ---------------------------------------------------------------- the exact sweep

_tied_scores = st.lists(st.integers(-3, 3), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    values=_tied_scores,
    beta=st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.0]),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
)
def test_sweep_equals_brute_force_over_every_cut(
    data: st.DataObject, values: list[int], beta: float, dtype: type[np.floating[Any]]
) -> None:
    scores = (np.array(values) / 4).astype(dtype)  # few distinct values: many ties
    truth = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))))
    threshold, fbeta = best_threshold(scores, truth, beta)
    best = _brute_best(scores, truth, beta)
    assert fbeta == pytest.approx(best)
    # The threshold reproduces the best cut, in float64 and in the scores' own dtype.
    assert _fbeta(scores >= threshold, truth, beta) == pytest.approx(best)
    assert float(dtype(threshold)) == threshold
    # Strictly between two distinct scores or outside them all (these midpoints are exact).
    assert threshold not in set(scores.tolist())


@settings(max_examples=100, deadline=None)
@given(values=_tied_scores, data=st.data())
def test_higher_beta_never_raises_the_threshold(values: list[int], data: st.DataObject) -> None:
    scores = np.array(values, dtype=np.float64)
    truth = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))))
    t1, _ = best_threshold(scores, truth, 1.0)
    t2, _ = best_threshold(scores, truth, 2.0)
    assert t2 <= t1


def test_fbeta_beta_two_trades_precision_for_recall() -> None:
    scores = np.arange(8, 0, -1).astype(np.float64)  # 8, 7, ..., 1
    targets = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    one = fit_thresholds(ThresholdsRequest(scores, targets))
    two = fit_thresholds(ThresholdsRequest(scores, targets, beta=2.0))
    assert one.kind == two.kind == "thresholds"
    assert one.values.tolist() == [6.5]  # top 2: F1 = 4/5 beats top 6 (2/3)
    assert two.values.tolist() == [2.5]  # top 6: F2 = 15/18 beats top 2 (10/14)
    assert best_threshold(scores, targets, 1.0) == pytest.approx((6.5, 0.8))
    assert best_threshold(scores, targets, 2.0) == pytest.approx((2.5, 15 / 18))
    assert one.after.per_class[1].recall == pytest.approx(2 / 3)  # the positive class
    assert two.after.per_class[1].recall == 1.0
    assert one.after.per_class[1].precision == 1.0


def test_extreme_cuts_lie_just_outside_the_scores() -> None:
    scores = np.array([0.25, -1.0, 3.0], dtype=np.float32)
    none, _ = best_threshold(scores, np.array([0, 0, 0]))
    assert none == float(np.nextafter(np.float32(3.0), np.float32(np.inf)))
    every, fbeta = best_threshold(scores, np.array([1, 1, 1]))
    assert every == float(np.nextafter(np.float32(-1.0), np.float32(-np.inf)))
    assert fbeta == 1.0
    # Equal scores are never split: all or none of the tied samples are predicted.
    tied, _ = best_threshold(np.array([1.0, 1.0, 0.0]), np.array([1, 0, 0]))
    assert tied < 1.0


def test_multilabel_fit_is_the_per_class_sweep() -> None:
    x, y = _multilabel(np.random.default_rng(3))
    result = fit_thresholds(ThresholdsRequest(x, y, beta=0.5))
    assert result.task == "multilabel" and result.values.shape == (4,)
    for c in range(4):
        threshold, fbeta = best_threshold(x[:, c], y[:, c], 0.5)
        assert result.values[c] == threshold
        assert fbeta == pytest.approx(_brute_best(x[:, c], y[:, c].astype(bool), 0.5))
    _same_metrics(result.before, evaluate(EvaluateRequest(x, y)))
    _same_metrics(result.after, evaluate(EvaluateRequest(x, y, thresholds=result.values)))
    assert result.after.macro_f1 >= result.before.macro_f1


def test_binary_fit_improves_f1_on_imbalanced_data() -> None:
    x, y = _binary(np.random.default_rng(4), n=500)
    result = fit_thresholds(ThresholdsRequest(x, y))
    assert result.task == "binary" and result.values.shape == (1,)
    # the threshold maximises the positive class's F-beta, reported as f1_positive
    assert result.after.f1_positive is not None and result.before.f1_positive is not None
    assert result.after.f1_positive > result.before.f1_positive
    assert result.after.f1_positive == pytest.approx(_brute_best(x, y.astype(bool), 1.0))


# ---------------------------------------------------------------- multiclass offsets


@pytest.mark.parametrize("seed", range(4))
def test_offsets_never_reduce_macro_f1(seed: int) -> None:
    x, y = _multiclass(np.random.default_rng(seed), n=200, c=4)
    result = fit_thresholds(ThresholdsRequest(x, y))
    assert result.kind == "offsets" and result.values.shape == (4,)
    assert result.after.macro_f1 >= result.before.macro_f1
    pred = np.argmax(x.astype(np.float64) + result.values, axis=1)
    expected = f1_score(y, pred, average="macro", labels=list(range(4)), zero_division=0)
    assert result.after.macro_f1 == pytest.approx(expected)
    _same_metrics(result.after, evaluate(EvaluateRequest(x, y, thresholds=result.values)))


def test_offsets_improve_macro_f1_when_imbalanced() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=600, p=[0.8, 0.15, 0.05])
    x = rng.normal(size=(600, 3))
    x[np.arange(600), y] += 1.0
    x[:, 0] += 1.5  # a model biased towards the majority class
    result = fit_thresholds(ThresholdsRequest(x, y))
    assert result.after.macro_f1 > result.before.macro_f1 + 0.1
    assert result.values[0] < min(result.values[1], result.values[2])


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 25))
def test_two_class_offsets_reach_the_brute_force_optimum(data: st.DataObject, n: int) -> None:
    values = data.draw(st.lists(st.integers(-2, 2), min_size=2 * n, max_size=2 * n))
    x = np.array(values, dtype=np.float64).reshape(n, 2) / 2
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    result = fit_thresholds(ThresholdsRequest(x, y))
    # With two classes only the difference of offsets matters: try every cut of it.
    d = x[:, 0] - x[:, 1]
    cuts = np.unique(d)
    candidates = [cuts[0] - 1, cuts[-1] + 1, *((cuts[:-1] + cuts[1:]) / 2)]
    best = max(
        f1_score(y, (d < o).astype(int), average="macro", labels=[0, 1], zero_division=0)
        for o in candidates
    )
    assert result.after.macro_f1 == pytest.approx(best)
    assert result.after.macro_f1 >= result.before.macro_f1


# ---------------------------------------------------------------- streaming


def _split(arrays: tuple[Array, Array], k: int) -> list[tuple[Array, Array]]:
    x, y = arrays
    cuts = np.linspace(0, len(y), k + 1).astype(int)[1:-1]
    return list(zip(np.split(x, cuts), np.split(y, cuts), strict=True))


@pytest.mark.parametrize(
    ("make", "loss"),
    [
        (_binary, "binary_cross_entropy"),
        (_multiclass, "cross_entropy"),
        (_multilabel, "sigmoid_focal"),
    ],
)
def test_stream_equals_one_shot(
    make: Callable[[np.random.Generator], tuple[Array, Array]], loss: str
) -> None:
    x, y = make(np.random.default_rng(5))
    stream = EvaluationStream(max_elements=x.size)
    seen = 0
    for i, (bx, by) in enumerate(_split((x, y), 4)):
        running = stream.add(EvaluateRequest(bx, by, loss=loss if i == 0 else None))
        seen += len(by)
        assert running.num_samples == stream.num_samples == seen
        _same_metrics(running, evaluate(EvaluateRequest(x[:seen], y[:seen])))
    final, fitted = stream.finish(beta=2.0)
    one_shot = evaluate(EvaluateRequest(x, y, loss=loss))
    _same_metrics(final, one_shot)
    assert final.loss == pytest.approx(one_shot.loss, rel=1e-5)
    expected = fit_thresholds(ThresholdsRequest(x, y, beta=2.0))
    np.testing.assert_array_equal(fitted.values, expected.values)
    _same_metrics(fitted.after, expected.after)


def test_stream_keeps_the_first_batch_settings() -> None:
    x, y = _multiclass(np.random.default_rng(6), n=40, c=3)
    offsets = np.array([0.5, 0.0, -0.5])
    stream = EvaluationStream(max_elements=1000)
    stream.add(EvaluateRequest(x[:20], y[:20], thresholds=offsets))
    running = stream.add(EvaluateRequest(x[20:], y[20:], thresholds=offsets.copy()))
    _same_metrics(running, evaluate(EvaluateRequest(x, y, thresholds=offsets)))
    with pytest.raises(InvalidArgument, match=r"^thresholds: expected \[0.5, 0.0, -0.5\]"):
        stream.add(EvaluateRequest(x, y, thresholds=np.zeros(3)))
    with pytest.raises(InvalidArgument, match=r"^loss: expected None"):
        stream.add(EvaluateRequest(x, y, loss="cross_entropy"))


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (
            EvaluateRequest(np.zeros((2, 3)), np.zeros((2, 3), int)),
            r"^targets: expected multiclass",
        ),
        (EvaluateRequest(np.zeros((2, 4)), np.array([0, 1])), r"^logits: expected 3 classes"),
        (
            EvaluateRequest(np.zeros((2, 3)), np.array([0, 1]), loss="focal"),
            r"^loss: expected 'cross_entropy'",
        ),
        (
            EvaluateRequest(np.zeros((2, 3)), np.array([0, 1]), params={"gamma": 1.0}),
            r"^loss: expected 'cross_entropy'",
        ),
        (EvaluateRequest(np.zeros((2, 3)), np.array([0, 3])), r"^targets: expected class"),
    ],
)
def test_stream_rejects_a_disagreeing_batch(second: EvaluateRequest, message: str) -> None:
    stream = EvaluationStream(max_elements=100)
    first = stream.add(EvaluateRequest(np.eye(3), np.arange(3), loss="cross_entropy"))
    with pytest.raises(InvalidArgument, match=message):
        stream.add(second)
    final, _ = stream.finish()
    assert final == first  # the rejected batch left nothing behind


def test_stream_limits_the_scores_it_keeps() -> None:
    stream = EvaluationStream(max_elements=10)
    stream.add(EvaluateRequest(np.zeros(6), np.zeros(6, int)))
    with pytest.raises(PayloadTooLarge, match=r"^logits: expected at most 10 elements.*got 12"):
        stream.add(EvaluateRequest(np.zeros(6), np.zeros(6, int)))
    assert stream.add(EvaluateRequest(np.zeros(4), np.zeros(4, int))).num_samples == 10
    assert issubclass(PayloadTooLarge, InvalidArgument)


def test_stream_ends_once_and_not_empty() -> None:
    with pytest.raises(InvalidArgument, match=r"^stream: expected at least one batch"):
        EvaluationStream(max_elements=10).finish()
    stream = EvaluationStream(max_elements=10)
    stream.add(EvaluateRequest(np.zeros(2), np.array([0, 1])))
    with pytest.raises(InvalidArgument, match=r"^beta: expected a number in \(0, 1e\+06\]"):
        stream.finish(beta=0.0)
    stream.finish()
    with pytest.raises(InvalidArgument, match=r"^stream: expected no batch after the end"):
        stream.add(EvaluateRequest(np.zeros(2), np.array([0, 1])))
    with pytest.raises(ValueError, match="max_elements"):
        EvaluationStream(max_elements=0)


# ---------------------------------------------------------------- bad input

_X2 = np.zeros((4, 3))
_Y2 = np.array([0, 1, 2, 0])


def _nan() -> Array:
    x: Array = _X2.copy()
    x[2, 1] = np.nan
    return x


_BAD_EVALUATE: list[tuple[str, EvaluateRequest, str]] = [
    (
        "nan",
        EvaluateRequest(_nan(), _Y2),
        r"^logits: expected finite values within ±1e\+30, got .*\(2, 1\)",
    ),
    (
        "inf",
        EvaluateRequest(np.array([0.0, np.inf]), np.array([0, 1])),
        r"^logits: expected finite",
    ),
    (
        "int logits",
        EvaluateRequest(np.zeros(3, int), np.zeros(3, int)),
        r"^logits: expected a float",
    ),
    ("3-d", EvaluateRequest(np.zeros((2, 2, 2)), np.zeros(2, int)), r"^logits: expected shape"),
    (
        "no samples",
        EvaluateRequest(np.zeros((0, 3)), np.zeros(0, int)),
        r"^logits: expected at least one sample",
    ),
    (
        "no classes",
        EvaluateRequest(np.zeros((2, 0)), np.zeros(2, int)),
        r"^logits: expected at least one class",
    ),
    (
        "list",
        EvaluateRequest([0.0, 1.0], np.zeros(2, int)),  # type: ignore[arg-type]
        r"^logits: expected an array, got list",
    ),
    (
        "binary shape",
        EvaluateRequest(np.zeros(3), np.zeros(4, int)),
        r"^targets: expected shape \(3,\)",
    ),
    (
        "2-d shape",
        EvaluateRequest(_X2, np.zeros((4, 2), int)),
        r"^targets: expected shape \(4,\) .* or \(4, 3\)",
    ),
    (
        "range",
        EvaluateRequest(_X2, np.array([0, 1, 3, 0])),
        r"^targets: expected class indices in \[0, 2\] .* got 3",
    ),
    (
        "negative",
        EvaluateRequest(_X2, np.array([0, -1, 2, 0])),
        r"^targets: expected class indices .* got -1",
    ),
    (
        "float classes",
        EvaluateRequest(_X2, _Y2.astype(float)),
        r"^targets: expected integer class indices",
    ),
    (
        "soft binary",
        EvaluateRequest(np.zeros(2), np.array([0.5, 1.0])),
        r"^targets: expected binary targets of exactly 0 or 1, got 0.5",
    ),
    (
        "multilabel 2",
        EvaluateRequest(_X2, np.full((4, 3), 2)),
        r"^targets: expected multilabel targets of exactly 0 or 1, got 2",
    ),
    (
        "strings",
        EvaluateRequest(np.zeros(2), np.array(["a", "b"])),
        r"^targets: expected a bool, integer or float dtype",
    ),
    (
        "thresholds shape",
        EvaluateRequest(_X2, _Y2, thresholds=np.zeros(2)),
        r"^thresholds: expected shape \(3,\)",
    ),
    (
        "thresholds nan",
        EvaluateRequest(np.zeros(2), np.array([0, 1]), thresholds=np.array([np.nan])),
        r"^thresholds: expected thresholds that are not NaN",
    ),
    (
        "offsets inf",
        EvaluateRequest(_X2, _Y2, thresholds=np.array([0, np.inf, 0])),
        r"^thresholds: expected finite offsets",
    ),
    (
        "unknown loss",
        EvaluateRequest(_X2, _Y2, loss="focall"),
        r"^loss: unknown loss 'focall'.*Did you mean 'focal'\?",
    ),
    (
        "wrong task",
        EvaluateRequest(_X2, _Y2, loss="binary_cross_entropy"),
        r"^loss: expected a loss for multiclass targets, got 'binary_cross_entropy'",
    ),
    (
        "bad param",
        EvaluateRequest(_X2, _Y2, loss="focal", params={"gamma": -1.0}),
        r"^params\.gamma: .*greater than or equal to 0, got -1.0",
    ),
    (
        "unknown param",
        EvaluateRequest(_X2, _Y2, loss="focal", params={"gama": 1.0}),
        r"^params\.gama: unknown parameter; expected one of: alpha, gamma",
    ),
    (
        "per-class param",
        EvaluateRequest(_X2, _Y2, loss="focal", params={"alpha": [1.0, 2.0]}),
        r"^params: expected alpha with one value per class \(3\), got shape \(2,\)",
    ),
    (
        "params without loss",
        EvaluateRequest(_X2, _Y2, params={"gamma": 1.0}),
        r"^params: expected none without a loss",
    ),
]


@pytest.mark.parametrize(
    ("request_", "message"),
    [pytest.param(r, m, id=i) for i, r, m in _BAD_EVALUATE],
)
def test_bad_evaluate_input_names_the_field(request_: EvaluateRequest, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        evaluate(request_)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ThresholdsRequest(_nan(), _Y2), r"^scores: expected finite values"),
        (
            ThresholdsRequest(np.zeros(3), np.zeros(2, int)),
            r"^targets: expected shape \(3,\) to match scores",
        ),
        (
            ThresholdsRequest(np.zeros(2), np.array([0, 1]), beta=0.0),
            r"^beta: expected a number in \(0, 1e\+06\], got 0.0",
        ),
        (
            ThresholdsRequest(np.zeros(2), np.array([0, 1]), beta=-1.0),
            r"^beta: expected a number in \(0, 1e\+06\]",
        ),
        (
            ThresholdsRequest(np.zeros(2), np.array([0, 1]), beta=float("nan")),
            r"^beta: expected a number in \(0, 1e\+06\]",
        ),
        (
            ThresholdsRequest(np.zeros(2), np.array([0, 1]), beta=True),
            r"^beta: expected a number in \(0, 1e\+06\], got True",
        ),
    ],
)
def test_bad_thresholds_input_names_the_field(request_: ThresholdsRequest, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        fit_thresholds(request_)


def test_best_threshold_wants_one_class() -> None:
    with pytest.raises(InvalidArgument, match=r"^scores: expected shape \(N,\) for one class"):
        best_threshold(np.zeros((2, 2)), np.zeros((2, 2), int))


def test_param_errors_carry_details() -> None:
    with pytest.raises(InvalidArgument) as info:
        evaluate(EvaluateRequest(_X2, _Y2, loss="focal", params={"gamma": -1.0, "x": 1}))
    assert {d["field"] for d in info.value.details} == {"params.gamma", "params.x"}
    assert info.value.message.startswith("params.")
