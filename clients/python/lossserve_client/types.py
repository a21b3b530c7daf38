"""What :class:`~lossserve_client.LossClient` returns: the same types over REST and gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ClassMetrics",
    "EvaluateUpdate",
    "LossInfo",
    "LossResult",
    "LossServeError",
    "Metrics",
    "Prediction",
    "Thresholds",
]


class LossServeError(Exception):
    """The service's answer to a failed call, the same over REST and gRPC.

    ``code`` is the service's transport-neutral code (``INVALID_ARGUMENT``, ``NOT_FOUND``,
    ``PAYLOAD_TOO_LARGE``, ``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``, ...), ``message`` names the
    field and what was expected, ``status`` is the HTTP status or the gRPC status name.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | str,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details or []

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later (a full queue, a replaced worker)."""
        return self.code in ("RESOURCE_EXHAUSTED", "UNAVAILABLE")


@dataclass(frozen=True)
class LossInfo:
    """One registry loss: its tasks, formula, paper, and the JSON Schema of its params."""

    name: str
    tasks: list[str]
    summary: str
    formula: str
    reference: str
    when_to_use: str
    sample_separable: bool
    params_schema: dict[str, Any]


@dataclass(frozen=True)
class LossResult:
    """A loss's value (a scalar array for mean and sum, one per sample for none), and its
    gradient and Hessian diagonal w.r.t. the logits when asked for."""

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
class Metrics:
    """Classification metrics of a batch, or of every batch so far."""

    task: str
    num_samples: int
    loss: float | None
    confusion: list[list[int]]
    per_class: list[ClassMetrics]
    """Every class (a binary task: 0 and 1)."""
    macro_f1: float
    """scikit-learn's ``average="macro"``: both classes of a binary task."""
    micro_f1: float
    """scikit-learn's ``average="micro"`` (a binary task: the accuracy)."""
    f1_positive: float | None = None
    """A binary task's positive-class F1 (``average="binary"``); else None."""


@dataclass(frozen=True)
class Thresholds:
    """Fitted decision thresholds (binary/multilabel: predict c when score_c >= t_c) or
    multiclass logit offsets (predict argmax(score + offset)), with metrics before and after."""

    task: str
    kind: str
    values: np.ndarray
    before: Metrics
    after: Metrics


@dataclass(frozen=True)
class EvaluateUpdate:
    """One answer of a streamed evaluation: running metrics after ``batches`` batches; the
    final one (``final``) carries the fitted ``thresholds``."""

    batches: int
    metrics: Metrics
    final: bool = False
    thresholds: Thresholds | None = None


@dataclass(frozen=True)
class Prediction:
    """The labels a model's learned decision rule picks for one row, and every probability."""

    labels: list[str]
    probabilities: dict[str, float] = field(default_factory=dict)
