"""REST wire models: the documented JSON forms (the OpenAPI document is built from these).

Bodies are parsed by hand with orjson (large tensors would be slow through pydantic), so
these models document the contract and type the responses; ``tests/contract`` holds the
served document to them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "B64Tensor",
    "BinaryTensor",
    "ClassWeightsBody",
    "ClassWeightsResponse",
    "ErrorBody",
    "ErrorInfo",
    "EvaluateBody",
    "EvaluateResponse",
    "LossInfoBody",
    "LossListResponse",
    "LossRequestBody",
    "LossResponseBody",
    "ThresholdsBody",
    "ThresholdsResponse",
]


class B64Tensor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shape: list[int] = Field(description="Dimensions, e.g. [N, C].")
    dtype: Literal[
        "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"
    ]
    b64: str = Field(description="Base64 of the little-endian raw bytes, C order.")


class BinaryTensor(BaseModel):
    """Binary encoding only: the bytes follow the JSON header, in order of appearance."""

    model_config = ConfigDict(extra="forbid")
    shape: list[int]
    dtype: Literal[
        "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"
    ]
    binary_data_size: int = Field(ge=0)


NestedLists = list[Any]
Tensor = NestedLists | B64Tensor | BinaryTensor


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
    value: float | Tensor
    grad: Tensor | None
    hessian_diag: Tensor | None
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
    per_class: list[ClassMetricsBody]
    macro_f1: float
    micro_f1: float


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
