"""Domain types the core speaks: numpy tensors and plain dataclasses, no transport types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ClassMetrics",
    "EvaluateRequest",
    "EvaluateResult",
    "LossRequest",
    "LossResult",
    "ThresholdsRequest",
    "ThresholdsResult",
]


@dataclass(frozen=True)
class LossRequest:
    """``POST /loss`` and ``ComputeLoss``: one batch of logits and targets."""

    loss: str
    logits: np.ndarray
    targets: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    sample_weight: np.ndarray | None = None
    reduction: str = "mean"
    return_grad: bool = False
    return_hessian: bool = False
    out: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Where ``grad`` and ``hessian_diag`` are to be written (float32 arrays of the logits'
    shape: views of a client's shared memory), by name; the others are new arrays."""


@dataclass(frozen=True)
class LossResult:
    loss: str
    reduction: str
    value: np.ndarray
    grad: np.ndarray | None
    hessian_diag: np.ndarray | None
    device: str


@dataclass(frozen=True)
class ClassMetrics:
    label: int
    support: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class EvaluateRequest:
    """Logits and targets of a validation set (or one batch of it, streamed)."""

    logits: np.ndarray
    targets: np.ndarray
    loss: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    thresholds: np.ndarray | None = None


@dataclass(frozen=True)
class EvaluateResult:
    task: str
    num_samples: int
    loss: float | None
    confusion: np.ndarray
    """int64. Multiclass: C x C (row = true class). Binary/multilabel: per class
    [tn, fp, fn, tp] (C x 4). An array, not lists: a large one stays one buffer, encoded
    by orjson or protobuf without a Python object per count."""
    per_class: list[ClassMetrics]
    """Every class (both of a binary task: 0 and 1), as sklearn's ``average=None``."""
    macro_f1: float
    micro_f1: float
    f1_positive: float | None = None
    """A binary task's positive-class F1 (sklearn's ``average="binary"``); else None."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EvaluateResult):
            return NotImplemented
        return (
            self.task,
            self.num_samples,
            self.loss,
            self.per_class,
            self.macro_f1,
            self.micro_f1,
            self.f1_positive,
        ) == (
            other.task,
            other.num_samples,
            other.loss,
            other.per_class,
            other.macro_f1,
            other.micro_f1,
            other.f1_positive,
        ) and np.array_equal(self.confusion, other.confusion)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ThresholdsRequest:
    scores: np.ndarray
    targets: np.ndarray
    beta: float = 1.0


@dataclass(frozen=True)
class ThresholdsResult:
    task: str
    kind: str
    """``thresholds`` (binary/multilabel: predict c when score_c >= t_c) or ``offsets``
    (multiclass: predict argmax(score + offset))."""
    values: np.ndarray
    before: EvaluateResult
    after: EvaluateResult
