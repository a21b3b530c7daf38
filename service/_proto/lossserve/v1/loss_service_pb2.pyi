from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tensor(_message.Message):
    __slots__ = ("shape", "dtype", "data")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    data: bytes
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ListLossesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LossInfo(_message.Message):
    __slots__ = ("name", "tasks", "summary", "formula", "reference", "when_to_use", "sample_separable", "params_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    FORMULA_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    WHEN_TO_USE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SEPARABLE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    tasks: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    formula: str
    reference: str
    when_to_use: str
    sample_separable: bool
    params_schema: str
    def __init__(self, name: _Optional[str] = ..., tasks: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ..., formula: _Optional[str] = ..., reference: _Optional[str] = ..., when_to_use: _Optional[str] = ..., sample_separable: bool = ..., params_schema: _Optional[str] = ...) -> None: ...

class ListLossesResponse(_message.Message):
    __slots__ = ("losses",)
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    losses: _containers.RepeatedCompositeFieldContainer[LossInfo]
    def __init__(self, losses: _Optional[_Iterable[_Union[LossInfo, _Mapping]]] = ...) -> None: ...

class ComputeLossRequest(_message.Message):
    __slots__ = ("loss", "params_json", "logits", "targets", "sample_weight", "reduction", "return_grad", "return_hessian")
    LOSS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    LOGITS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_FIELD_NUMBER: _ClassVar[int]
    RETURN_GRAD_FIELD_NUMBER: _ClassVar[int]
    RETURN_HESSIAN_FIELD_NUMBER: _ClassVar[int]
    loss: str
    params_json: str
    logits: Tensor
    targets: Tensor
    sample_weight: Tensor
    reduction: str
    return_grad: bool
    return_hessian: bool
    def __init__(self, loss: _Optional[str] = ..., params_json: _Optional[str] = ..., logits: _Optional[_Union[Tensor, _Mapping]] = ..., targets: _Optional[_Union[Tensor, _Mapping]] = ..., sample_weight: _Optional[_Union[Tensor, _Mapping]] = ..., reduction: _Optional[str] = ..., return_grad: bool = ..., return_hessian: bool = ...) -> None: ...

class ComputeLossResponse(_message.Message):
    __slots__ = ("loss", "reduction", "value", "grad", "hessian_diag", "device")
    LOSS_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    GRAD_FIELD_NUMBER: _ClassVar[int]
    HESSIAN_DIAG_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    loss: str
    reduction: str
    value: Tensor
    grad: Tensor
    hessian_diag: Tensor
    device: str
    def __init__(self, loss: _Optional[str] = ..., reduction: _Optional[str] = ..., value: _Optional[_Union[Tensor, _Mapping]] = ..., grad: _Optional[_Union[Tensor, _Mapping]] = ..., hessian_diag: _Optional[_Union[Tensor, _Mapping]] = ..., device: _Optional[str] = ...) -> None: ...

class TensorChunk(_message.Message):
    __slots__ = ("field", "data")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    field: str
    data: bytes
    def __init__(self, field: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ComputeLossRequestChunk(_message.Message):
    __slots__ = ("header", "data", "response_chunk_bytes")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    header: ComputeLossRequest
    data: TensorChunk
    response_chunk_bytes: int
    def __init__(self, header: _Optional[_Union[ComputeLossRequest, _Mapping]] = ..., data: _Optional[_Union[TensorChunk, _Mapping]] = ..., response_chunk_bytes: _Optional[int] = ...) -> None: ...

class ComputeLossResponseChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ComputeLossResponse
    data: TensorChunk
    def __init__(self, header: _Optional[_Union[ComputeLossResponse, _Mapping]] = ..., data: _Optional[_Union[TensorChunk, _Mapping]] = ...) -> None: ...

class EvaluateBatch(_message.Message):
    __slots__ = ("logits", "targets", "loss", "params_json", "thresholds", "beta")
    LOGITS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    logits: Tensor
    targets: Tensor
    loss: str
    params_json: str
    thresholds: Tensor
    beta: float
    def __init__(self, logits: _Optional[_Union[Tensor, _Mapping]] = ..., targets: _Optional[_Union[Tensor, _Mapping]] = ..., loss: _Optional[str] = ..., params_json: _Optional[str] = ..., thresholds: _Optional[_Union[Tensor, _Mapping]] = ..., beta: _Optional[float] = ...) -> None: ...

class ClassMetrics(_message.Message):
    __slots__ = ("label", "support", "precision", "recall", "f1")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    label: int
    support: int
    precision: float
    recall: float
    f1: float
    def __init__(self, label: _Optional[int] = ..., support: _Optional[int] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ...) -> None: ...

class ConfusionRow(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, counts: _Optional[_Iterable[int]] = ...) -> None: ...

class EvaluateMetrics(_message.Message):
    __slots__ = ("task", "num_samples", "loss", "confusion", "per_class", "macro_f1", "micro_f1")
    TASK_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    MACRO_F1_FIELD_NUMBER: _ClassVar[int]
    MICRO_F1_FIELD_NUMBER: _ClassVar[int]
    task: str
    num_samples: int
    loss: float
    confusion: _containers.RepeatedCompositeFieldContainer[ConfusionRow]
    per_class: _containers.RepeatedCompositeFieldContainer[ClassMetrics]
    macro_f1: float
    micro_f1: float
    def __init__(self, task: _Optional[str] = ..., num_samples: _Optional[int] = ..., loss: _Optional[float] = ..., confusion: _Optional[_Iterable[_Union[ConfusionRow, _Mapping]]] = ..., per_class: _Optional[_Iterable[_Union[ClassMetrics, _Mapping]]] = ..., macro_f1: _Optional[float] = ..., micro_f1: _Optional[float] = ...) -> None: ...

class Thresholds(_message.Message):
    __slots__ = ("task", "kind", "values", "before", "after")
    TASK_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    task: str
    kind: str
    values: Tensor
    before: EvaluateMetrics
    after: EvaluateMetrics
    def __init__(self, task: _Optional[str] = ..., kind: _Optional[str] = ..., values: _Optional[_Union[Tensor, _Mapping]] = ..., before: _Optional[_Union[EvaluateMetrics, _Mapping]] = ..., after: _Optional[_Union[EvaluateMetrics, _Mapping]] = ...) -> None: ...

class EvaluateUpdate(_message.Message):
    __slots__ = ("batches", "metrics", "final", "thresholds")
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    batches: int
    metrics: EvaluateMetrics
    final: bool
    thresholds: Thresholds
    def __init__(self, batches: _Optional[int] = ..., metrics: _Optional[_Union[EvaluateMetrics, _Mapping]] = ..., final: bool = ..., thresholds: _Optional[_Union[Thresholds, _Mapping]] = ...) -> None: ...
