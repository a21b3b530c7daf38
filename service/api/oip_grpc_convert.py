"""Pure converters between the Open Inference Protocol's gRPC messages and the domain types.

The server uses the request decoders and the result encoders; the opposite pairs are what a
Python client needs and what ``tests/service/models/test_oip_grpc.py`` round-trips against
(``decode(encode(x)) == x`` for every datatype). Inputs come from ``raw_input_contents``
(one entry per input, in order) or, when that is empty, from each input's typed
``contents``; outputs always go out in ``raw_output_contents``. Bad input raises
:class:`~lossserve.core.errors.InvalidArgument` with the words the REST decoder uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from google.protobuf import json_format

from lossserve_proto.inference import grpc_service_pb2 as pb

from ..core.errors import InvalidArgument
from ..core.shm import PARAMETERS as SHARED_PARAMETERS
from ..core.shm import SharedInput, SharedRef, shared_parameters, shared_ref
from ..models.engine import (
    RESERVED_PARAMETERS,
    IndexEntry,
    InferRequest,
    InferResult,
    ModelMetadata,
    ModelStats,
    RequestedOutput,
)
from ..models.oip import (
    BYTES,
    check_datatype,
    datatype_of,
    decode_raw,
    decode_shape,
    encode_raw,
    from_elements,
    raw_view,
)

__all__ = [
    "CONTENTS_FIELD",
    "decode_infer_request",
    "decode_infer_result",
    "encode_config",
    "encode_index",
    "encode_infer_request",
    "encode_infer_result",
    "encode_infer_result_parts",
    "encode_metadata",
    "encode_stats",
    "parameter_value",
]

CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    BYTES: "bytes_contents",
}
"""The typed ``InferTensorContents`` field of each datatype (FP16 has none: raw only)."""


def parameter_value(parameter: pb.InferParameter) -> bool | int | float | str | None:
    """The value of an ``InferParameter``, whichever of its fields is set."""
    kind = parameter.WhichOneof("parameter_choice")
    return None if kind is None else getattr(parameter, kind)


def _set_parameter(parameter: pb.InferParameter, value: bool | int | float | str) -> None:
    if isinstance(value, bool):
        parameter.bool_param = value
    elif isinstance(value, int):
        parameter.int64_param = value
    elif isinstance(value, float):
        parameter.double_param = value
    else:
        parameter.string_param = value


def _classification(output: pb.ModelInferRequest.InferRequestedOutputTensor) -> int:
    for key in ("classification", "class_count"):
        if key in output.parameters:
            value = parameter_value(output.parameters[key])
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(
                    f"outputs: {output.name!r} parameters.classification: expected a "
                    f"non-negative integer, got {value!r}"
                )
            return value
    return 0


def decode_infer_request(
    request: pb.ModelInferRequest,
    *,
    max_elements: int,
    contents: Sequence[bytes | memoryview] | None = None,
) -> InferRequest:
    """An inference request from raw contents (or typed contents when there are none).
    ``contents``: the raw contents when they were taken out of ``request`` on the wire."""
    raw = request.raw_input_contents if contents is None else contents
    places = [_place(tensor.parameters, f"input {tensor.name!r}") for tensor in request.inputs]
    sent = sum(place is None for place in places)  # the inputs not in shared memory
    if raw and len(raw) != sent:
        raise InvalidArgument(
            f"raw_input_contents: expected one entry per input not in shared memory "
            f"({sent}), got {len(raw)}"
        )
    if not request.inputs:
        raise InvalidArgument("inputs: expected a non-empty list of input tensors")
    inputs: dict[str, np.ndarray] = {}
    shared: dict[str, SharedInput] = {}
    pieces = iter(raw)
    for index, (tensor, place) in enumerate(zip(request.inputs, places, strict=True)):
        if not tensor.name:
            raise InvalidArgument(f"inputs[{index}].name: expected a non-empty string, got ''")
        if tensor.name in inputs or tensor.name in shared:
            raise InvalidArgument(f"input {tensor.name!r}: given twice")
        label = f"input {tensor.name!r}"
        shape = decode_shape(list(tensor.shape), f"{label} shape", max_elements)
        if place is not None:
            shared[tensor.name] = SharedInput(place, check_datatype(tensor.datatype, label), shape)
            continue
        if raw:
            inputs[tensor.name] = decode_raw(next(pieces), tensor.datatype, shape, label)
            continue
        field = CONTENTS_FIELD.get(tensor.datatype)
        if field is None:
            check_datatype(tensor.datatype, label)
            raise InvalidArgument(f"{label}: {tensor.datatype} needs raw_input_contents")
        values = list(getattr(tensor.contents, field))
        inputs[tensor.name] = from_elements(values, tensor.datatype, shape, f"{label}.contents")
    outputs = tuple(
        RequestedOutput(
            output.name,
            _classification(output),
            _place(output.parameters, f"output {output.name!r}"),
        )
        for output in request.outputs
    )
    return InferRequest(
        model=request.model_name,
        version=request.model_version,
        inputs=inputs,
        outputs=outputs,
        id=request.id,
        parameters={
            key: parameter_value(value)
            for key, value in request.parameters.items()
            if key not in RESERVED_PARAMETERS
        },
        shared=shared,
    )


def _place(parameters: Mapping[str, pb.InferParameter], tensor: str) -> SharedRef | None:
    """A tensor's place in shared memory, from its parameters (None: sent or answered)."""
    if not any(name in parameters for name in SHARED_PARAMETERS):
        return None
    values = {name: parameter_value(parameters[name]) for name in parameters}
    return shared_ref(values, f"{tensor}: parameters.")


def encode_infer_request(request: InferRequest) -> pb.ModelInferRequest:
    """The message a client sends for ``request`` (raw contents)."""
    message = pb.ModelInferRequest(
        model_name=request.model, model_version=request.version, id=request.id
    )
    for name, array in request.inputs.items():
        message.inputs.add(name=name, datatype=datatype_of(array), shape=list(array.shape))
        message.raw_input_contents.append(encode_raw(array))
    for output in request.outputs:
        wanted = message.outputs.add(name=output.name)
        if output.classification:
            wanted.parameters["classification"].int64_param = output.classification
    for key, value in request.parameters.items():
        _set_parameter(message.parameters[key], value)
    return message


def encode_infer_result(result: InferResult) -> pb.ModelInferResponse:
    """The response for ``result``: every output's bytes in ``raw_output_contents``."""
    message, contents = encode_infer_result_parts(result)
    message.raw_output_contents.extend(bytes(content) for content in contents)
    return message


def encode_infer_result_parts(
    result: InferResult,
) -> tuple[pb.ModelInferResponse, list[bytes | memoryview]]:
    """The response for ``result`` without its ``raw_output_contents``, and those (the
    outputs' bytes, in order; views where the array's memory is already little-endian C
    order), for a caller that writes them on the wire itself."""
    message = pb.ModelInferResponse(
        model_name=result.model, model_version=result.version, id=result.id
    )
    contents: list[bytes | memoryview] = []
    for name, array in result.outputs.items():
        tensor = message.outputs.add(
            name=name, datatype=datatype_of(array), shape=list(array.shape)
        )
        place = result.shared.get(name)
        if place is None:
            contents.append(raw_view(array))
            continue
        for key, value in shared_parameters(place).items():
            _set_parameter(tensor.parameters[key], value)
        contents.append(b"")  # in shared memory; an empty entry keeps the others' positions
    return message, contents


def decode_infer_result(message: pb.ModelInferResponse) -> InferResult:
    """What a client reads from a response (raw contents)."""
    outputs = {
        tensor.name: decode_raw(
            message.raw_output_contents[index],
            tensor.datatype,
            tuple(tensor.shape),
            f"output {tensor.name!r}",
        )
        for index, tensor in enumerate(message.outputs)
    }
    return InferResult(
        model=message.model_name, version=message.model_version, id=message.id, outputs=outputs
    )


def encode_metadata(metadata: ModelMetadata) -> pb.ModelMetadataResponse:
    message = pb.ModelMetadataResponse(
        name=metadata.name, versions=list(metadata.versions), platform=metadata.platform
    )
    for spec in metadata.inputs:
        message.inputs.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
    for spec in metadata.outputs:
        message.outputs.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
    for key, value in metadata.parameters.items():
        _set_parameter(message.parameters[key], value)
    return message


def encode_config(config: Mapping[str, Any]) -> pb.ModelConfigResponse:
    """The engine's Triton-style configuration JSON as an ``inference.ModelConfig``."""
    message = pb.ModelConfigResponse()
    json_format.ParseDict(dict(config), message.config)
    return message


def encode_stats(stats: list[ModelStats]) -> pb.ModelStatisticsResponse:
    message = pb.ModelStatisticsResponse()
    for item in stats:
        entry = message.model_stats.add(
            name=item.name,
            version=item.version,
            last_inference=item.last_inference_ms,
            inference_count=item.inference_count,
            execution_count=item.execution_count,
        )
        entry.inference_stats.success.count = item.success_count
        entry.inference_stats.success.ns = item.success_ns
        entry.inference_stats.fail.count = item.fail_count
        entry.inference_stats.fail.ns = item.fail_ns
        entry.inference_stats.queue.count = item.queue_count
        entry.inference_stats.queue.ns = item.queue_ns
        entry.inference_stats.compute_infer.count = item.compute_count
        entry.inference_stats.compute_infer.ns = item.compute_ns
        for batch in item.batch_stats:
            added = entry.batch_stats.add(batch_size=batch.batch_size)
            added.compute_infer.count = batch.count
            added.compute_infer.ns = batch.ns
    return message


def encode_index(entries: list[IndexEntry]) -> pb.RepositoryIndexResponse:
    message = pb.RepositoryIndexResponse()
    for entry in entries:
        message.models.add(
            name=entry.name, version=entry.version, state=entry.state, reason=entry.reason
        )
    return message
