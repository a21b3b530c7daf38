"""The Open Inference Protocol's REST bodies, as the OpenAPI document publishes them.

The protocol's own schemas (KServe's ``open_inference_rest.yaml``) with Triton's extensions
that lossserve serves (binary tensor data, classification, statistics, model repository). As
with :mod:`.wire`, bodies are parsed by hand (:mod:`.oip_rest`) and these models document the
contract, so that the generated Python and TypeScript clients have typed inference calls;
``tests/contract`` holds the served answers to them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from .wire import example

__all__ = [
    "INDEX_EXAMPLES",
    "INFER_EXAMPLES",
    "MODEL_EXAMPLES",
    "InferenceRequest",
    "InferenceResponse",
    "ModelMetadataResponse",
    "ModelReadyResponse",
    "ModelStatisticsResponse",
    "OIPError",
    "RepositoryIndexBody",
    "RepositoryIndexEntry",
    "RepositoryModelBody",
    "RepositoryResponse",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerMetadataResponse",
    "SharedMemoryRegion",
    "SharedMemoryRegisterBody",
    "TensorMetadata",
]

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
"""The protocol's tensor datatypes: the keys of :data:`lossserve.models.oip.DATATYPES`."""
Parameters = dict[str, Any]
Data = list[Any]
"""Row-major elements, flat or nested as the shape: numbers, booleans, or strings (BYTES)."""


class OIPError(BaseModel):
    """Every ``/v2`` error: the protocol's body, which its clients (tritonclient) read."""

    error: str


class ServerMetadataResponse(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int] = Field(description="-1 for the batch axis.")


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: Parameters = Field(
        description="execution_provider, task, labels (a JSON list), loss, threshold_kind."
    )


class ModelReadyResponse(BaseModel):
    name: str
    ready: bool


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = Field(
        None,
        description="binary_data_size: this input's raw bytes follow the JSON header "
        "(the binary tensor extension) instead of data.",
    )
    data: Data | SkipJsonSchema[None] = None
    """Absent (never null) where the bytes follow the header."""


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        description="logits, probabilities, or decisions (after the card's thresholds)."
    )
    parameters: Parameters | None = Field(
        None,
        description="binary_data: answer this output as raw bytes; classification: the top "
        "N classes as strings instead of the values.",
    )


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | SkipJsonSchema[None] = None  # absent, never null
    parameters: Parameters | None = Field(
        None, description="binary_data_output: answer every output as raw bytes."
    )
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = Field(None, description="Default: every output.")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = Field(
        None, description="binary_data_size, for an output answered as raw bytes."
    )
    data: Data | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class Duration(BaseModel):
    count: int
    ns: int


class InferenceStatistics(BaseModel):
    success: Duration
    fail: Duration
    queue: Duration
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration


class BatchStatistics(BaseModel):
    batch_size: int
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration


class ModelStatistics(BaseModel):
    name: str
    version: str
    last_inference: int = Field(description="Milliseconds since the epoch; 0: never.")
    inference_count: int
    execution_count: int
    inference_stats: InferenceStatistics
    batch_stats: list[BatchStatistics]


class ModelStatisticsResponse(BaseModel):
    """Triton's statistics extension."""

    model_stats: list[ModelStatistics]


class RepositoryIndexBody(BaseModel):
    ready: bool | None = Field(None, description="Only the models that are ready.")


class RepositoryIndexEntry(BaseModel):
    name: str
    version: str
    state: str
    reason: str


class RepositoryModelBody(BaseModel):
    parameters: Parameters | None = None


class RepositoryResponse(BaseModel):
    """A load or unload that succeeded: an empty object."""

    model_config = ConfigDict(extra="forbid")


class SharedMemoryRegisterBody(BaseModel):
    """A region to register: ``byte_size`` bytes from ``offset`` of the POSIX shared-memory
    object ``key`` on the server's host (system shared memory extension)."""

    key: str = Field(description="The object's name, as shm_open takes it: '/input0'.")
    offset: int = Field(0, ge=0)
    byte_size: int = Field(gt=0)


class SharedMemoryRegion(SharedMemoryRegisterBody):
    """A registered region."""

    name: str


SHM_EXAMPLES: dict[str, dict[str, Any]] = {
    "region": example(
        "The first MiB of the object /example-region",
        {"key": "/example-region", "offset": 0, "byte_size": 1 << 20},
    ),
}

INFER_EXAMPLES: dict[str, dict[str, Any]] = {
    "json": example(
        "Two feature rows of a four-feature model, every output as JSON",
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "data": [0.0, 1.0, 0.5, 2.0, 1.0, 0.0, 0.0, 0.0],
                }
            ]
        },
    ),
    "decisions": example(
        "One row, only the decisions after the model's thresholds",
        {
            "id": "request-1",
            "inputs": [
                {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [[0, 1, 0.5, 2]]}
            ],
            "outputs": [{"name": "decisions"}],
        },
    ),
}

INDEX_EXAMPLES: dict[str, dict[str, Any]] = {
    "ready": example("The models that are ready", {"ready": True}),
}

MODEL_EXAMPLES: dict[str, dict[str, Any]] = {
    "plain": example("No parameters", {"parameters": {}}),
}
