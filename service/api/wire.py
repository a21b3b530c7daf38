"""REST wire models: the documented JSON forms (the OpenAPI document is built from these).

Bodies are parsed by hand with orjson (large tensors would be slow through pydantic), so
these models document the contract and type the responses; ``tests/contract`` holds the
served document to them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BINARY_CONTENT",
    "CLASS_WEIGHTS_EXAMPLES",
    "EVALUATE_EXAMPLES",
    "LOSS_EXAMPLES",
    "PREDICT_EXAMPLES",
    "THRESHOLDS_EXAMPLES",
    "B64Tensor",
    "BinaryTensor",
    "ClassWeightsBody",
    "ClassWeightsResponse",
    "ErrorBody",
    "ErrorInfo",
    "EvaluateBody",
    "EvaluateResponse",
    "LiveResponse",
    "LossInfoBody",
    "LossListResponse",
    "LossRequestBody",
    "LossResponseBody",
    "PredictBody",
    "PredictResponse",
    "PredictionBody",
    "ReadyResponse",
    "ThresholdsBody",
    "ThresholdsResponse",
    "body_schema",
    "example",
]


class B64Tensor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shape: list[Annotated[int, Field(ge=0)]] = Field(description="Dimensions, e.g. [N, C].")
    dtype: Literal[
        "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"
    ]
    b64: str = Field(description="Base64 of the little-endian raw bytes, C order.")


class BinaryTensor(BaseModel):
    """Binary encoding only: the bytes follow the JSON header, in order of appearance."""

    model_config = ConfigDict(extra="forbid")
    shape: list[Annotated[int, Field(ge=0)]]
    dtype: Literal[
        "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"
    ]
    binary_data_size: int = Field(ge=0)


Scalar = float | bool
NestedLists = list[Scalar] | list[list[Scalar]]
"""Rectangular nested lists of numbers (or booleans), one or two levels deep: (N,) or (N, C)."""
Tensor = NestedLists | B64Tensor | BinaryTensor

ResultLists = list[float | None] | list[list[float | None]]
"""A result tensor as nested lists: null where a value is not finite (JSON has no Inf/NaN)."""
ResultTensor = ResultLists | B64Tensor | BinaryTensor


class LossRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loss: str = Field(description="A registry name, see GET /losses.")
    params: dict[str, Any] = Field(default_factory=dict, description="The loss's parameters.")
    logits: Tensor
    targets: Tensor
    sample_weight: Tensor | None = None
    reduction: Literal["mean", "sum", "none"] = "mean"
    return_grad: bool = False
    return_hessian: bool = False


class LossResponseBody(BaseModel):
    loss: str
    reduction: str
    value: float | ResultTensor | None = Field(
        description="A number for reduction mean or sum, else a tensor in the request's "
        "encoding; null when the number is not finite (JSON has no Inf or NaN)."
    )
    grad: ResultTensor | None
    hessian_diag: ResultTensor | None
    device: str


class LossInfoBody(BaseModel):
    name: str
    tasks: list[str]
    summary: str
    formula: str
    reference: str
    when_to_use: str
    sample_separable: bool
    params_schema: dict[str, Any]


class LossListResponse(BaseModel):
    losses: list[LossInfoBody]


class ClassWeightsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[int] | None = Field(None, description="Class indices; or give counts.")
    counts: list[float] | None = Field(None, description="Per-class counts; or give labels.")
    strategy: Literal["balanced", "inverse", "inverse_sqrt", "effective_number", "log_ratio"] = (
        "balanced"
    )
    num_classes: int | None = Field(None, ge=1)
    beta: float = Field(0.999, ge=0.0, lt=1.0)


class ClassWeightsResponse(BaseModel):
    strategy: str
    weights: list[float]


class LiveResponse(BaseModel):
    live: bool


class ReadyResponse(BaseModel):
    ready: bool


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorInfo


class EvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    logits: Tensor
    targets: Tensor
    loss: str | None = Field(None, description="A registry loss whose mean to report.")
    params: dict[str, Any] = Field(default_factory=dict)
    thresholds: Tensor | None = Field(
        None,
        description="Binary/multilabel: per-class thresholds on the logits (predict when "
        "logit >= t; default 0); multiclass: per-class additive logit offsets.",
    )


class ClassMetricsBody(BaseModel):
    label: int
    support: int
    precision: float
    recall: float
    f1: float


class EvaluateResponse(BaseModel):
    task: str
    num_samples: int
    loss: float | None
    confusion: list[list[int]]
    per_class: list[ClassMetricsBody] = Field(
        description="Every class, as scikit-learn's average=None (a binary task: 0 and 1)."
    )
    macro_f1: float = Field(
        description="scikit-learn's average='macro': the mean F1 of every class (both, binary)."
    )
    micro_f1: float = Field(
        description="scikit-learn's average='micro' (a binary task: the accuracy)."
    )
    f1_positive: float | None = Field(
        None, description="A binary task's positive-class F1 (average='binary'); else null."
    )


class ThresholdsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scores: Tensor = Field(description="Logits or any monotone scores, (N,) or (N, C).")
    targets: Tensor
    beta: float = Field(1.0, gt=0, description="F-beta to maximise (binary, multilabel).")


class ThresholdsResponse(BaseModel):
    task: str
    kind: Literal["thresholds", "offsets"]
    values: list[float]
    before: EvaluateResponse
    after: EvaluateResponse


class PredictBody(BaseModel):
    """``POST /models/{model_name}/predict``: feature rows, as KServe's v1 ``instances``."""

    model_config = ConfigDict(extra="forbid")
    instances: list[list[float]] | list[dict[str, float | str | None]] = Field(
        description="Feature rows, each as long as the model's input (see its card), or "
        "objects keyed by feature name. A model trained on a table takes objects keyed by "
        "column name (its card's columns): numbers, strings for categories, null or an "
        "absent key for an empty cell."
    )


class PredictionBody(BaseModel):
    labels: list[str] = Field(
        description="The labels the learned decision rule picks: one for a binary or "
        "multiclass model, any number for a multilabel one."
    )
    probabilities: dict[str, float] = Field(description="Every label's probability.")


class PredictResponse(BaseModel):
    predictions: list[PredictionBody]


# -------------------------------------------------------------- hand-parsed request bodies

BINARY_CONTENT = {"schema": {"type": "string", "format": "binary"}}
"""A body, or an answer, of raw bytes (the binary tensor extension)."""
_HEADER_PARAMETER = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "schema": {"type": "integer", "minimum": 0},
    "description": "Binary tensor extension: the length of the JSON header at the start of "
    "the body; the raw little-endian bytes of its binary_data_size tensors follow it, in order.",
}


def body_schema(
    model: type[Any],
    examples: dict[str, dict[str, Any]],
    *,
    binary: bool = True,
    required: bool = True,
) -> dict[str, Any]:
    """An operation's ``openapi_extra`` for a body the endpoint parses itself: JSON
    (``model``, with ``examples``), and with ``binary`` the binary tensor extension too."""
    json_body = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}, "examples": examples}
    if not binary:
        return {"requestBody": {"required": required, "content": {"application/json": json_body}}}
    return {
        "parameters": [_HEADER_PARAMETER],
        "requestBody": {
            "required": required,
            "description": "JSON; or, with Inference-Header-Content-Length, a JSON header "
            "followed by raw tensor bytes (any content type).",
            "content": {"application/json": json_body, "application/octet-stream": BINARY_CONTENT},
        },
    }


# ---------------------------------------------------------------------------- examples
# Each example is a request that succeeds (tests/contract sends every one of them).


def example(summary: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary, "value": value}


LOSS_EXAMPLES: dict[str, dict[str, Any]] = {
    "lists": example(
        "Focal loss of a multiclass batch with its gradient, tensors as nested lists",
        {
            "loss": "focal",
            "params": {"gamma": 2.0},
            "logits": [[2.0, -1.0, 0.5], [0.1, 0.2, -0.3]],
            "targets": [0, 2],
            "reduction": "mean",
            "return_grad": True,
        },
    ),
    "b64": example(
        "Per-sample binary cross-entropy with gradient and Hessian diagonal, logits in base64",
        {
            "loss": "binary_cross_entropy",
            "logits": {"shape": [2], "dtype": "float32", "b64": "AAAAPwAAgL8="},
            "targets": [1, 0],
            "reduction": "none",
            "return_grad": True,
            "return_hessian": True,
        },
    ),
}

CLASS_WEIGHTS_EXAMPLES: dict[str, dict[str, Any]] = {
    "labels": example("Balanced weights from labels", {"labels": [0, 0, 0, 1, 2]}),
    "counts": example(
        "Effective-number weights from per-class counts",
        {"counts": [900, 90, 10], "strategy": "effective_number", "beta": 0.999},
    ),
}

EVALUATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "multiclass": example(
        "Multiclass metrics and the mean cross-entropy",
        {
            "logits": [[2.0, -1.0, 0.5], [0.1, 0.2, -0.3], [-1.0, 0.0, 1.5]],
            "targets": [0, 2, 2],
            "loss": "cross_entropy",
        },
    ),
    "binary": example(
        "Binary metrics at a threshold of 0.5 on the logits",
        {"logits": [1.2, -0.4, 0.3, -2.0], "targets": [1, 0, 0, 1], "thresholds": [0.5]},
    ),
}

PREDICT_EXAMPLES: dict[str, dict[str, Any]] = {
    "rows": example(
        "Two feature rows", {"instances": [[0.0, 1.0, 0.5, 2.0], [1.0, 0.0, 0.0, 0.0]]}
    ),
}

THRESHOLDS_EXAMPLES: dict[str, dict[str, Any]] = {
    "binary": example(
        "The F1-optimal threshold of one class",
        {"scores": [2.0, 1.0, 0.5, -0.3, -1.2], "targets": [1, 1, 0, 1, 0]},
    ),
    "multilabel": example(
        "Per-class F2-optimal thresholds",
        {
            "scores": [[1.5, -0.5], [0.2, 0.9], [-0.7, 0.1], [0.4, -1.1]],
            "targets": [[1, 0], [0, 1], [0, 1], [1, 0]],
            "beta": 2.0,
        },
    ),
    "multiclass": example(
        "Per-class logit offsets that maximise macro-F1",
        {
            "scores": [[2.0, 0.1, -1.0], [0.3, 0.2, 0.1], [0.5, 0.4, 0.45], [-0.2, 1.0, 0.0]],
            "targets": [0, 1, 2, 1],
        },
    ),
}
