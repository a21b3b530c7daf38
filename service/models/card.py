"""``card.json``: what makes a model in the repository self-describing.

``<repo>/<model>/<version>/model.onnx`` lies beside ``card.json``; nothing about a model lives
only in server memory. Training writes the card; serving reads and validates it (the sha256
of the ONNX file and its input spec) before a version goes live.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CATEGORICAL_INPUT",
    "MODEL_NAME",
    "NUMERIC_INPUT",
    "BatchingConfig",
    "ColumnSpec",
    "InputSpec",
    "ModelCard",
    "SplitMetrics",
    "category",
    "sha256_of",
]

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A model name: a path segment that cannot climb out of the repository."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "features"
    shape: list[int] = Field(description="-1 for the dynamic batch axis, e.g. [-1, 64].")
    dtype: Literal["float32"] = "float32"


class ColumnSpec(BaseModel):
    """One raw column of a model trained on a user's table (its preprocessing is inside
    the ONNX graph): a number (an empty cell is NaN) or a category (a string; an empty
    cell is ``""``; a category not in ``categories`` counts as none of them)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["number", "category"]
    categories: list[str] = Field(default_factory=list, description="Seen in training.")


NUMERIC_INPUT = "numeric"
CATEGORICAL_INPUT = "categorical"


def category(value: str) -> str:
    """A category as training saw it: an empty or blank cell is ``""``; any other string
    is itself (not stripped), on every path (training, ``/predict``, BYTES tensors)."""
    return value if value.strip() else ""


class SplitMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")
    macro_f1_argmax: float = Field(description="Argmax (multiclass) or threshold 0 decisions.")
    macro_f1_thresholds: float = Field(description="Decisions after the learned thresholds.")
    micro_f1_thresholds: float
    loss: float | None = None


class BatchingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_batch_size: int = Field(64, ge=1)
    max_queue_delay_us: int = Field(500, ge=0)
    queue_depth: int = Field(256, ge=1)


class ModelCard(BaseModel):
    """The model's card; ``thresholds`` are per-class logit thresholds (binary, multilabel)
    or additive logit offsets (multiclass), as ``POST /thresholds`` fits them: one per
    column of the model's outputs (:attr:`columns`). A binary model has two labels,
    ``[negative, positive]``, and one column, the positive class's logit."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=MODEL_NAME.pattern)
    version: int = Field(ge=1)
    task: Literal["binary", "multiclass", "multilabel"]
    labels: list[str]
    loss: str
    loss_params: dict[str, Any] = Field(default_factory=dict)
    architecture: Literal["linear", "mlp"]
    thresholds: list[float]
    threshold_kind: Literal["thresholds", "offsets"]
    input: InputSpec | None = Field(
        None, description="The one FP32 input of a model on numeric features; else null."
    )
    columns: list[ColumnSpec] = Field(
        default_factory=list,
        description="A model on raw table columns: its inputs are 'numeric' (FP32, the "
        "number columns in this order, NaN a missing cell) and 'categorical' (BYTES, the "
        "category columns), each [batch, columns], the ones it has.",
    )
    feature_names: list[str]
    outputs: list[str] = Field(default_factory=lambda: ["logits", "probabilities"])
    validation: SplitMetrics
    test: SplitMetrics
    onnx_tolerance: float = Field(description="Max |ORT - torch| on the test split at export.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: str = Field(description="ISO 8601, UTC.")
    dataset: str
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    training: dict[str, Any] | None = Field(
        None,
        description="How it was trained: the options (seed, learning rate, epochs, ...), the "
        "rows of each split, and the epoch kept.",
    )
    per_class: list[dict[str, Any]] | None = Field(
        None,
        description="Test split, with the decision rule: each label's precision, recall, F1 "
        "and support (binary: both classes).",
    )
    selection: dict[str, Any] | None = Field(
        None,
        description="lossserve train --loss auto: how the loss was chosen (the protocol, "
        "every candidate's mean macro-F1 over the folds and its difference from "
        "cross-entropy with a 95% interval, the winner and its learning rate).",
    )

    @model_validator(mode="after")
    def _one_kind_of_input(self) -> ModelCard:
        if (self.input is None) == (not self.columns):
            got = "both" if self.input is not None else "neither"
            raise ValueError(f"expected either input or columns, got {got}")
        return self

    def inputs(self) -> list[tuple[str, str, list[int]]]:
        """The model's inputs as ``(name, OIP datatype, shape)``."""
        if self.input is not None:
            return [(self.input.name, "FP32", list(self.input.shape))]
        numbers = sum(1 for c in self.columns if c.kind == "number")
        categories = len(self.columns) - numbers
        inputs = [(NUMERIC_INPUT, "FP32", [-1, numbers])] if numbers else []
        if categories:
            inputs.append((CATEGORICAL_INPUT, "BYTES", [-1, categories]))
        return inputs

    @property
    def output_columns(self) -> int:
        """The columns of ``logits`` and ``probabilities``: one for a binary model (the
        positive class, ``labels[1]``; ``labels[0]`` is the negative one), else one per label."""
        return 1 if self.task == "binary" else len(self.labels)

    @property
    def output_labels(self) -> list[str]:
        """The label of each column of ``logits`` and ``probabilities``."""
        return self.labels[1:] if self.task == "binary" else self.labels

    @property
    def class_index(self) -> bool:
        """Whether ``decisions`` is one class index a row (binary, multiclass) rather than
        one 0/1 a label (multilabel)."""
        return self.task != "multilabel"

    def write(self, directory: Path) -> Path:
        path = directory / "card.json"
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def read(cls, directory: Path) -> ModelCard:
        return cls.model_validate_json((directory / "card.json").read_text())
