"""The training report: one HTML file beside ``card.json``, figures embedded as PNG.

What ``lossserve train`` wrote, to look at: per-class precision, recall, F1 and support on
the test split with the served decision rule; the confusion matrix (per label for a
multilabel model); each class's precision-recall curve on the test split with the point
the decision rule operates at; a reliability diagram; the training loss and the
validation macro-F1 per epoch; and, for ``--loss auto``, the cross-validated comparison of
the candidate losses with their intervals. Figures are drawn with matplotlib's own
``Figure`` objects (no pyplot: a caller's backend is left alone).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from losses import Task

from ..core.evaluator import evaluate
from ..core.types import EvaluateRequest, EvaluateResult
from ..models.card import ModelCard
from .selection import comparison
from .trainer import EpochRecord

__all__ = [
    "REPORT_FILE",
    "evaluation_sections",
    "figure_png",
    "html_page",
    "img",
    "per_class",
    "to_probabilities",
    "write_report",
]

REPORT_FILE = "report.html"
_MAX_CURVES = 20
"""Precision-recall curves drawn at most (the first classes); the table lists them all."""


def per_class(
    card_labels: Sequence[str], task: Task, result: EvaluateResult
) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each label (binary: both classes)."""
    return [
        {
            "label": card_labels[m.label],
            "precision": m.precision,
            "recall": m.recall,
            "f1": m.f1,
            "support": m.support,
        }
        for m in result.per_class
    ]


def _figure(width: float, height: float) -> Any:
    """A matplotlib figure of its own (no pyplot: the caller's backend is left alone)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def figure_png(figure: Any) -> str:
    """``figure`` as base64 PNG, for :func:`img`."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode()


def img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(cell(v) for v in row)}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def to_probabilities(task: Task, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    z = logits.astype(np.float64)
    if task is Task.MULTICLASS:
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _history(history: Sequence[EpochRecord], best_epoch: int) -> str:
    figure = _figure(7, 3.5)
    loss_axes = figure.subplots()
    epochs = [r.epoch for r in history]
    loss_axes.plot(epochs, [r.train_loss for r in history], color="tab:blue", label="train loss")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss", color="tab:blue")
    f1_axes = loss_axes.twinx()
    f1_axes.plot(
        epochs, [r.validation_macro_f1 for r in history], color="tab:orange", label="plain"
    )
    tuned = [r.validation_macro_f1_thresholds for r in history]
    known = [v for v in tuned if v is not None]
    if known and len(known) == len(tuned):
        f1_axes.plot(epochs, known, color="tab:green", label="with the decision rule")
    f1_axes.set_ylabel("validation macro-F1", color="tab:orange")
    f1_axes.axvline(best_epoch, color="grey", linestyle=":", label=f"kept: epoch {best_epoch}")
    f1_axes.legend(loc="lower right", fontsize=8)
    return figure_png(figure)


def _confusion(labels: Sequence[str], task: Task, result: EvaluateResult) -> str:
    counts = np.asarray(result.confusion)
    if task is Task.BINARY:
        tn, fp, fn, tp = counts[0]
        counts = np.array([[tn, fp], [fn, tp]])
    size = max(4.0, 0.45 * len(labels) + 2)
    figure = _figure(size, size)
    axes = figure.subplots()
    axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(labels) <= 20:
        for (i, j), value in np.ndenumerate(counts):
            axes.text(j, i, str(value), ha="center", va="center", fontsize=7)
    return figure_png(figure)


def _pr_curves(
    labels: Sequence[str],
    task: Task,
    probabilities: npt.NDArray[np.float64],
    targets: npt.NDArray[np.int64],
    result: EvaluateResult,
    where: str,
) -> str:
    from sklearn.metrics import precision_recall_curve

    figure = _figure(7, 5)
    axes = figure.subplots()
    columns = [1] if task is Task.BINARY else list(range(len(labels)))[:_MAX_CURVES]
    for column in columns:
        if task is Task.BINARY:
            truth, score = targets == 1, probabilities
        elif task is Task.MULTICLASS:
            truth, score = targets == column, probabilities[:, column]
        else:
            truth, score = targets[:, column] == 1, probabilities[:, column]
        if not truth.any():
            continue
        precision, recall, _ = precision_recall_curve(truth, score)
        line = axes.plot(recall, precision, linewidth=1, label=labels[column])[0]
        metrics = result.per_class[column]
        axes.plot(metrics.recall, metrics.precision, "o", color=line.get_color())
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title(f"{where}; dots: where the decision rule operates")
    axes.legend(fontsize=7, ncol=2)
    return figure_png(figure)


def _reliability(
    task: Task, probabilities: npt.NDArray[np.float64], targets: npt.NDArray[np.int64], where: str
) -> str:
    from sklearn.calibration import calibration_curve

    if task is Task.MULTICLASS:
        confidence = probabilities.max(axis=1)
        truth = probabilities.argmax(axis=1) == targets
        what = "top-class probability"
    else:
        confidence, truth = probabilities.reshape(-1), targets.reshape(-1) == 1
        what = "predicted probability"
    observed, predicted = calibration_curve(truth, confidence, n_bins=10, strategy="quantile")
    figure = _figure(4.5, 4.5)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes.plot(predicted, observed, "o-")
    axes.set_xlabel(what)
    axes.set_ylabel("observed frequency")
    axes.set_title(f"reliability, {where}")
    return figure_png(figure)


def _selection_table(selection: dict[str, Any]) -> str:
    rows = [
        [key, figures, delta, "chosen" if key == selection["chosen"] else ""]
        for key, figures, delta in comparison(selection)
    ]
    return (
        f"<p>Chosen by {html.escape(selection['metric'])} over {selection['folds']}-fold "
        f"cross-validation of the training rows; learning rate {selection['learning_rate']:g}."
        "</p>"
        + _table(["candidate", "mean ± std", f"Δ vs {selection['reference']} [95%]", ""], rows)
    )


def evaluation_sections(
    labels: Sequence[str],
    task: Task,
    result: EvaluateResult,
    probabilities: npt.NDArray[np.float64],
    targets: npt.NDArray[np.int64],
    where: str,
    level: int = 2,
) -> list[str]:
    """The HTML of one model's predictions on ``where`` (the test split, pooled outer
    folds): per-class metrics and the confusion of ``result`` (the decisions made), the
    precision-recall curves of ``probabilities`` with ``result``'s operating points, and
    their reliability diagram."""
    h = f"h{level}"
    rows = [
        [r["label"], r["precision"], r["recall"], r["f1"], r["support"]]
        for r in per_class(labels, task, result)
    ]
    parts = [
        f"<{h}>Per class, {html.escape(where)}, with the decision rule</{h}>",
        _table(["label", "precision", "recall", "F1", "support"], rows),
        f"<{h}>Confusion</{h}>",
    ]
    if task is Task.MULTILABEL:
        counts = np.asarray(result.confusion)
        parts.append(
            _table(
                ["label", "TN", "FP", "FN", "TP"],
                [[label, *map(int, counts[i])] for i, label in enumerate(labels)],
            )
        )
    else:
        parts.append(img(_confusion(labels, task, result), "confusion matrix"))
    pr = _pr_curves(labels, task, probabilities, targets, result, where)
    parts += [
        f"<{h}>Precision-recall, {html.escape(where)}</{h}>",
        img(pr, "PR curves"),
        f"<{h}>Reliability</{h}>",
        img(_reliability(task, probabilities, targets, where), "reliability diagram"),
    ]
    return parts


def html_page(title: str, parts: Sequence[str]) -> str:
    """A self-contained HTML page of ``parts`` (figures are embedded)."""
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
        "text-align:right}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>" + "\n".join(parts) + "</body></html>\n"
    )


def write_report(
    directory: Path,
    card: ModelCard,
    history: Sequence[EpochRecord],
    best_epoch: int,
    test_logits: npt.NDArray[np.float32],
    test_targets: npt.NDArray[np.int64],
) -> Path:
    """``directory/report.html`` for the model ``card`` describes; its path."""
    task = Task(card.task)
    result = evaluate(
        EvaluateRequest(
            logits=test_logits, targets=test_targets, thresholds=np.asarray(card.thresholds)
        )
    )
    parts = [
        f"<h1>{html.escape(card.name)} version {card.version}</h1>",
        f"<p>{html.escape(card.task)} on {html.escape(card.dataset)}; loss "
        f"{html.escape(card.loss)}; {html.escape(card.architecture)}; test macro-F1 "
        f"{card.test.macro_f1_thresholds:.3f} with the learned {card.threshold_kind}, "
        f"{card.test.macro_f1_argmax:.3f} plain.</p>",
        *evaluation_sections(
            card.labels,
            task,
            result,
            to_probabilities(task, test_logits),
            test_targets,
            "test split",
        ),
        "<h2>Training</h2>",
        img(_history(history, best_epoch), "training loss and validation macro-F1"),
    ]
    if card.selection is not None:
        parts += ["<h2>How the loss was chosen</h2>", _selection_table(card.selection)]
    path = directory / REPORT_FILE
    path.write_text(html_page(f"{card.name} v{card.version}", parts), encoding="utf-8")
    return path
