"""Open Inference Protocol v2 over gRPC (``inference.GRPCInferenceService``); translation only.

The servicer converts messages with :mod:`lossserve.api.oip_grpc_convert` and calls the same
:class:`~lossserve.core.dataplane.DataPlane` (and repository admin) as the REST routes.
Errors are raised as the core's :class:`~lossserve.core.errors.LossServeError` and turned into
gRPC statuses, with the same messages REST sends, by the wrapper every handler gets at registration
(:mod:`lossserve.api.grpc`).
``ModelStreamInfer`` answers each request of the stream in order; a request that fails
answers a response with ``error_message`` set, and the stream goes on (as Triton does). The
repository RPCs need the metadata ``authorization: Bearer <LOSSSERVE_ADMIN_TOKEN>``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict
from typing import Any, NamedTuple, cast

import grpc
from google.protobuf.descriptor import Descriptor

from lossserve_proto.inference import grpc_service_pb2 as pb
from lossserve_proto.inference import grpc_service_pb2_grpc as pb_grpc

from ..core.dataplane import model_lane
from ..core.errors import InvalidArgument, LossServeError
from ..core.offload import by_size
from ..core.state import ServiceState
from ..models.engine import InferRequest
from ..models.oip import raw_view
from . import oip_grpc_convert as convert
from .grpc_messages import (
    Undecodable,
    bytes_field,
    check_answer,
    decoded,
    field_header,
    split_bytes,
)
from .memo import Memo
from .oip_rest import SERVER_NAME, extensions, server_version
from .templates import Template, template_of

__all__ = [
    "INFERENCE_SERVICE",
    "PARSERS",
    "InferMessage",
    "InferenceServicer",
    "add_inference_servicer",
]

INFERENCE_SERVICE: str = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
"""``inference.GRPCInferenceService``."""

_RAW_INPUT_CONTENTS = pb.ModelInferRequest.DESCRIPTOR.fields_by_name["raw_input_contents"].number
_RAW_OUTPUT_CONTENTS = pb.ModelInferResponse.DESCRIPTOR.fields_by_name["raw_output_contents"].number
_INFER_RESPONSE = pb.ModelStreamInferResponse.DESCRIPTOR.fields_by_name["infer_response"].number


_RequestKey = tuple[bytes, tuple[int, ...]]
_requests: Memo[_RequestKey, tuple[pb.ModelInferRequest, Template]] = Memo()
"""Requests decoded before (:mod:`.templates`), by the message without its tensor bytes
(at most :data:`_MAX_KEPT` bytes of it) and the lengths of those."""
_MAX_KEPT = 4096


class InferMessage(NamedTuple):
    """A ``ModelInferRequest`` as parsed here: the message without its tensor bytes, and
    the tensor bytes (``raw_input_contents``) as views of the received bytes; the request
    decoded from the same message before, if any, else the key to keep this one's under."""

    message: pb.ModelInferRequest
    contents: Sequence[bytes | memoryview]
    template: Template | None = None
    key: _RequestKey | None = None

    def request(self, max_elements: int) -> InferRequest:
        """The inference request: from the kept template, or decoded (and then kept, when
        every input came from raw contents and is numeric)."""
        if self.template is not None:
            return self.template.request_of(self.contents)
        request = convert.decode_infer_request(
            self.message, max_elements=max_elements, contents=self.contents
        )
        if self.key is not None and self.contents:
            kept = template_of(request, [(index, 0) for index in range(len(self.contents))])
            if kept is not None:
                _requests.put(self.key, (self.message, kept))
        return request


def parse_infer_request(raw: bytes) -> InferMessage:
    """A ``ModelInferRequest`` from the wire, its tensor bytes not copied by protobuf (see
    :mod:`lossserve.api.grpc_messages`)."""
    split = split_bytes(raw, _RAW_INPUT_CONTENTS)
    if split is None:  # not plain wire format: protobuf parses it, and says what is wrong
        message = pb.ModelInferRequest.FromString(raw)
        return InferMessage(message, message.raw_input_contents)
    rest, contents = split
    key = None
    if len(rest) <= _MAX_KEPT:
        key = (bytes(rest), tuple(len(piece) for piece in contents))
        kept = _requests.get(key)
        if kept is not None:
            return InferMessage(kept[0], contents, kept[1])
    return InferMessage(pb.ModelInferRequest.FromString(rest), contents, key=key)


PARSERS: dict[str, tuple[Callable[[bytes], Any], Descriptor]] = {
    f"/{INFERENCE_SERVICE}/{name}": (parse_infer_request, pb.ModelInferRequest.DESCRIPTOR)
    for name in ("ModelInfer", "ModelStreamInfer")
}
"""The request parsers of the RPCs that carry tensors, in place of protobuf's."""


_HeadKey = tuple[str, str, str, tuple[tuple[str, str, tuple[int, ...]], ...]]
_heads: Memo[_HeadKey, bytes] = Memo()
"""Serialized answers without their tensor bytes, by model, version, id and each output's
name, dtype and shape: what decides them (a client asks the same again and again)."""


def _serialize_result(result: Any, *, stream: bool, limit: int) -> bytes:
    """A ``ModelInferResponse`` (in a ``ModelStreamInferResponse`` with ``stream``) on the
    wire, its tensor bytes written without protobuf; RESOURCE_EXHAUSTED above ``limit``."""
    outputs = result.outputs
    if result.shared:  # outputs in shared memory: their parameters say where (rare: no memo)
        message, contents = convert.encode_infer_result_parts(result)
        pieces = [message.SerializeToString(), *bytes_field(_RAW_OUTPUT_CONTENTS, contents)]
        return _framed(pieces, stream=stream, limit=limit)
    key = (
        result.model,
        result.version,
        result.id,
        tuple((name, array.dtype.str, array.shape) for name, array in outputs.items()),
    )
    head = _heads.get(key)
    if head is None:
        message, contents = convert.encode_infer_result_parts(result)
        head = message.SerializeToString()
        _heads.put(key, head)
    else:
        contents = [raw_view(array) for array in outputs.values()]
    pieces = [head, *bytes_field(_RAW_OUTPUT_CONTENTS, contents)]
    return _framed(pieces, stream=stream, limit=limit)


def _framed(pieces: list[Any], *, stream: bool, limit: int) -> bytes:
    size = sum(memoryview(piece).nbytes for piece in pieces)
    if stream:
        pieces.insert(0, field_header(_INFER_RESPONSE, size))
        size += len(pieces[0])
    check_answer(size, limit, "send fewer rows in a request")
    return b"".join(pieces)


Context = grpc.aio.ServicerContext[Any, Any]


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """``inference.GRPCInferenceService`` over the model engine of ``state``."""

    def __init__(self, state: ServiceState) -> None:
        self._plane = state.plane
        self._admin = state.admin
        self._settings = state.settings
        self._regions = state.regions

    @staticmethod
    def _authorization(context: Context) -> str | None:
        value = dict(context.invocation_metadata() or ()).get("authorization")
        return value if isinstance(value, str) else None

    async def ServerLive(  # noqa: N802 - the RPC's name
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(  # noqa: N802
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._plane.server_ready())

    async def ModelReady(  # noqa: N802
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self._plane.model_ready(request.name, request.version))

    async def ServerMetadata(  # noqa: N802
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name=SERVER_NAME, version=server_version(), extensions=extensions(self._settings)
        )

    async def ModelMetadata(  # noqa: N802
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        return convert.encode_metadata(self._plane.model_metadata(request.name, request.version))

    async def ModelConfig(  # noqa: N802
        self, request: pb.ModelConfigRequest, context: Context
    ) -> pb.ModelConfigResponse:
        return convert.encode_config(self._plane.model_config(request.name, request.version))

    async def ModelStatistics(  # noqa: N802
        self, request: pb.ModelStatisticsRequest, context: Context
    ) -> pb.ModelStatisticsResponse:
        return convert.encode_stats(self._plane.model_stats(request.name, request.version))

    async def _infer(
        self, message: InferMessage | Undecodable, context: Context, *, stream: bool
    ) -> bytes:
        """The serialized answer to one request (a ``ModelInferResponse``, or with
        ``stream`` a ``ModelStreamInferResponse`` holding one)."""
        parsed = decoded(message)
        request = parsed.message
        if not request.model_name:
            raise InvalidArgument("model_name: expected a model name, got ''")
        # the declared shapes tell the size (the bytes are checked against them in decoding)
        size = sum(math.prod(tensor.shape) for tensor in request.inputs) * 4
        # copies of the tensor bytes: off the loop when large
        infer_request = await by_size(size, parsed.request, self._settings.max_elements)
        del message, parsed
        with self._plane.admit(model_lane(request.model_name)):
            result = await self._plane.infer(infer_request, remaining=context.time_remaining())
        answer = sum(array.nbytes for array in result.outputs.values())
        limit = self._settings.grpc_max_message_bytes
        return await by_size(answer, _serialize_result, result, stream=stream, limit=limit)

    # The wrapper parses with PARSERS, and passes a servicer's bytes through as the
    # serialized answer: hence the signatures that differ from the generated base class.
    async def ModelInfer(  # type: ignore[override]  # noqa: N802
        self, request: InferMessage | Undecodable, context: Context
    ) -> bytes:
        return await self._infer(request, context, stream=False)

    async def ModelStreamInfer(  # type: ignore[override]  # noqa: N802
        self, request_iterator: AsyncIterator[InferMessage | Undecodable], context: Context
    ) -> AsyncIterator[bytes | pb.ModelStreamInferResponse]:
        async for request in request_iterator:
            try:
                response = await self._infer(request, context, stream=True)
            except LossServeError as exc:
                yield pb.ModelStreamInferResponse(error_message=exc.message)
                continue
            yield response

    async def RepositoryIndex(  # noqa: N802
        self, request: pb.RepositoryIndexRequest, context: Context
    ) -> pb.RepositoryIndexResponse:
        index = self._admin.index(self._authorization(context), ready_only=request.ready)
        return convert.encode_index(index)

    async def RepositoryModelLoad(  # noqa: N802
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> pb.RepositoryModelLoadResponse:
        await self._admin.load(self._authorization(context), request.model_name, request.parameters)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(  # noqa: N802
        self, request: pb.RepositoryModelUnloadRequest, context: Context
    ) -> pb.RepositoryModelUnloadResponse:
        await self._admin.unload(
            self._authorization(context), request.model_name, request.parameters
        )
        return pb.RepositoryModelUnloadResponse()

    async def SystemSharedMemoryStatus(  # noqa: N802
        self, request: pb.SystemSharedMemoryStatusRequest, context: Context
    ) -> pb.SystemSharedMemoryStatusResponse:
        answer = pb.SystemSharedMemoryStatusResponse()
        for region in self._regions.status(request.name):
            answer.regions[region.name].CopyFrom(
                pb.SystemSharedMemoryStatusResponse.RegionStatus(**asdict(region))
            )
        return answer

    async def SystemSharedMemoryRegister(  # noqa: N802
        self, request: pb.SystemSharedMemoryRegisterRequest, context: Context
    ) -> pb.SystemSharedMemoryRegisterResponse:
        self._regions.register(request.name, request.key, request.offset, request.byte_size)
        return pb.SystemSharedMemoryRegisterResponse()

    async def SystemSharedMemoryUnregister(  # noqa: N802
        self, request: pb.SystemSharedMemoryUnregisterRequest, context: Context
    ) -> pb.SystemSharedMemoryUnregisterResponse:
        self._regions.unregister(request.name)
        return pb.SystemSharedMemoryUnregisterResponse()


def add_inference_servicer(state: ServiceState, server: grpc.aio.Server) -> None:
    """Register ``inference.GRPCInferenceService`` on ``server``."""
    # protoc writes no annotations for *_grpc.py; mypy strict rejects an untyped call.
    register = cast(
        Callable[[InferenceServicer, grpc.aio.Server], None],
        pb_grpc.add_GRPCInferenceServiceServicer_to_server,
    )
    register(InferenceServicer(state), server)
