"""Tiny models in a model repository, exported the way training exports them.

A linear layer exported with ``torch.onnx.export`` (input ``features``, outputs ``logits``
and ``probabilities``, a dynamic batch axis) beside a :class:`~lossserve.models.card.ModelCard`
whose sha256 is :func:`~lossserve.models.card.sha256_of` the file. Independent of the training
code, so that serving is tested on its own.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
import torch

from lossserve.models.card import BatchingConfig, InputSpec, ModelCard, SplitMetrics, sha256_of

FEATURES = 4
LABELS: dict[str, list[str]] = {
    "multiclass": ["cat", "dog", "bird"],
    "multilabel": ["red", "green", "blue"],
    "binary": ["ham", "spam"],  # [negative, positive]: one output column, spam's
}
THRESHOLDS: dict[str, list[float]] = {
    "multiclass": [0.0, 0.75, -0.5],  # additive logit offsets
    "multilabel": [0.0, 0.3, -0.4],  # per-label logit thresholds
    "binary": [0.25],
}
Task = Literal["binary", "multiclass", "multilabel"]
HIDDEN_LAYERS = 4


class _Linear(torch.nn.Module):
    def __init__(self, labels: int, task: Task, seed: int, hidden: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        # ``hidden`` > 0: a slow model, HIDDEN_LAYERS square layers of that width first
        width = hidden or FEATURES
        layers: list[torch.nn.Module] = [torch.nn.Linear(FEATURES, width)] if hidden else []
        layers += [torch.nn.Linear(width, width) for _ in range(HIDDEN_LAYERS if hidden else 0)]
        self.hidden = torch.nn.Sequential(*layers)
        self.linear = torch.nn.Linear(width, labels)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(labels, width, generator=generator))
            self.linear.bias.copy_(torch.randn(labels, generator=generator))
        self.task = task

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.linear(self.hidden(features))
        if self.task == "multiclass":
            return logits, torch.softmax(logits, dim=-1)
        return logits, torch.sigmoid(logits)


def export(path: Path, labels: int, task: Task, seed: int, hidden: int = 0) -> None:
    """``torch.onnx.export`` of a seeded linear classifier with a dynamic batch axis
    (``hidden`` > 0: behind square hidden layers of that width, to make it slow)."""
    module = _Linear(labels, task, seed, hidden).eval()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which takes
        # seconds per model; for a linear layer both write the same graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (torch.zeros(2, FEATURES),),
            str(path),
            input_names=["features"],
            output_names=["logits", "probabilities"],
            dynamic_axes={name: {0: "batch"} for name in ("features", "logits", "probabilities")},
            dynamo=False,
        )


def write_model(
    repository: Path,
    name: str,
    version: int = 1,
    *,
    task: Task = "multiclass",
    seed: int = 0,
    batching: BatchingConfig | None = None,
    hidden: int = 0,
) -> Path:
    """Export a model and write its card into ``repository/name/version``; return that folder.

    ``hidden`` > 0 puts square layers of that width before the classifier: a model whose
    runs take long (about ``rows * 4 * hidden**2`` multiply-adds)."""
    directory = repository / name / str(version)
    directory.mkdir(parents=True)
    labels = LABELS[task]
    path = directory / "model.onnx"
    export(path, 1 if task == "binary" else len(labels), task, seed, hidden)
    metrics = SplitMetrics(macro_f1_argmax=0.5, macro_f1_thresholds=0.6, micro_f1_thresholds=0.6)
    ModelCard(
        name=name,
        version=version,
        task=task,
        labels=labels,
        loss="cross_entropy" if task == "multiclass" else "binary_cross_entropy",
        architecture="linear",
        thresholds=THRESHOLDS[task],
        threshold_kind="offsets" if task == "multiclass" else "thresholds",
        input=InputSpec(name="features", shape=[-1, FEATURES]),
        feature_names=[f"x{i}" for i in range(FEATURES)],
        validation=metrics,
        test=metrics,
        onnx_tolerance=1e-6,
        sha256=sha256_of(path),
        created_at="2026-01-01T00:00:00+00:00",
        dataset="synthetic",
        batching=batching or BatchingConfig(max_batch_size=16, max_queue_delay_us=500),
    ).write(directory)
    return directory


def reference(directory: Path, rows: np.ndarray) -> dict[str, np.ndarray]:
    """In-process ONNX Runtime on the same file, and the card's decision rule by hand."""
    session = ort.InferenceSession(
        str(directory / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    logits, probabilities = session.run(["logits", "probabilities"], {"features": rows})
    card = ModelCard.read(directory)
    thresholds = np.asarray(card.thresholds, dtype=np.float32)
    if card.task == "multiclass":
        decisions = np.argmax(logits + thresholds, axis=1).astype(np.int64)
    elif card.task == "binary":  # the class index: 1 where the positive logit passes
        decisions = (logits[:, 0] >= thresholds[0]).astype(np.int64)
    else:
        decisions = (logits >= thresholds).astype(np.int64)
    return {"logits": logits, "probabilities": probabilities, "decisions": decisions}


def rows(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, FEATURES)).astype(np.float32)
