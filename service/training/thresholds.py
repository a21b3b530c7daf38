"""The decision rule, fitted on the validation split with the code of ``POST /thresholds``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from losses import Task

from ..core.evaluator import evaluate, fit_thresholds
from ..core.types import EvaluateRequest, EvaluateResult, ThresholdsRequest
from ..models.card import SplitMetrics

__all__ = ["DecisionRule", "fit_decision_rule", "keeps_zero_threshold", "split_metrics"]


@dataclass(frozen=True)
class DecisionRule:
    """Per-class thresholds (binary, multilabel) or offsets (multiclass), as the card has.

    ``fitted`` is False when the loss's own threshold 0 was kept; ``before`` and ``after``
    are the validation metrics at 0 and at ``values``.
    """

    values: npt.NDArray[np.float64]
    kind: str
    fitted: bool
    before: EvaluateResult
    after: EvaluateResult


def keeps_zero_threshold(loss: str, params: Mapping[str, Any]) -> bool:
    """Losses that learn threshold 0 themselves: ZLPR, and circle with its threshold class.

    ``multilabel_categorical_crossentropy`` (ZLPR) and ``circle`` with
    ``threshold_class=True`` train positives above 0 and negatives below it against an
    extra class of score 0; the decision threshold 0 is part of the loss.
    """
    return loss == "multilabel_categorical_crossentropy" or (
        loss == "circle" and bool(params.get("threshold_class", True))
    )


def fit_decision_rule(
    task: Task,
    scores: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    *,
    loss: str | None = None,
    params: Mapping[str, Any] | None = None,
    beta: float = 1.0,
    refit: bool = False,
) -> DecisionRule:
    """Fit thresholds (F-beta per class) or offsets (macro-F1) on validation scores.

    The same :func:`~lossserve.core.evaluator.fit_thresholds` as ``POST /thresholds``; for a
    loss that :func:`keeps_zero_threshold`, thresholds stay 0 unless ``refit``.
    """
    if loss is not None and keeps_zero_threshold(loss, params or {}) and not refit:
        before = evaluate(EvaluateRequest(logits=scores, targets=targets))
        zeros = np.zeros(1 if task is Task.BINARY else scores.shape[1])
        kind = "offsets" if task is Task.MULTICLASS else "thresholds"
        return DecisionRule(zeros, kind, False, before, before)
    result = fit_thresholds(ThresholdsRequest(scores=scores, targets=targets, beta=beta))
    values = np.asarray(result.values, dtype=np.float64)
    return DecisionRule(values, result.kind, True, result.before, result.after)


def split_metrics(
    scores: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    rule: DecisionRule,
    *,
    loss: str,
    params: dict[str, Any],
) -> SplitMetrics:
    """Macro-F1 with argmax (logit 0) and with ``rule``, micro-F1 with it, and the loss."""
    plain = evaluate(EvaluateRequest(logits=scores, targets=targets, loss=loss, params=params))
    tuned = evaluate(EvaluateRequest(logits=scores, targets=targets, thresholds=rule.values))
    return SplitMetrics(
        macro_f1_argmax=plain.macro_f1,
        macro_f1_thresholds=tuned.macro_f1,
        micro_f1_thresholds=tuned.micro_f1,
        loss=plain.loss,
    )
