"""Open Inference Protocol v2 over gRPC (``inference.GRPCInferenceService``); translation only.

The servicer converts messages with :mod:`service.api.oip_grpc_convert` and calls the same
:class:`~service.models.engine.ModelEngine` as the REST routes. Errors are raised as the
core's :class:`~service.core.errors.LossServeError` and turned into gRPC statuses, with the
same messages REST sends, by the server's one interceptor (:mod:`service.api.grpc`).
``ModelStreamInfer`` answers each request of the stream in order; a request that fails
answers a response with ``error_message`` set, and the stream goes on (as Triton does). The
repository RPCs need the metadata ``authorization: Bearer <LOSSSERVE_ADMIN_TOKEN>``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import grpc
from lossserve_client.proto.inference import grpc_service_pb2 as pb
from lossserve_client.proto.inference import grpc_service_pb2_grpc as pb_grpc

from ..core.dataplane import model_lane
from ..core.errors import InvalidArgument, LossServeError
from ..core.state import ServiceState
from . import oip_grpc_convert as convert
from .grpc_messages import Undecodable, decoded
from .offload import by_size
from .oip_rest import EXTENSIONS, SERVER_NAME, server_version

__all__ = ["INFERENCE_SERVICE", "InferenceServicer", "add_inference_servicer"]

INFERENCE_SERVICE: str = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
"""``inference.GRPCInferenceService``."""

Context = grpc.aio.ServicerContext[Any, Any]


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """``inference.GRPCInferenceService`` over the model engine of ``state``."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state
        self._models = state.models
        self._plane = state.plane
        self._admin = state.admin
        self._settings = state.settings

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
        return pb.ServerReadyResponse(ready=self._state.ready())

    async def ModelReady(  # noqa: N802
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self._models.is_ready(request.name, request.version))

    async def ServerMetadata(  # noqa: N802
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name=SERVER_NAME, version=server_version(), extensions=list(EXTENSIONS)
        )

    async def ModelMetadata(  # noqa: N802
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        return convert.encode_metadata(self._models.metadata(request.name, request.version))

    async def ModelConfig(  # noqa: N802
        self, request: pb.ModelConfigRequest, context: Context
    ) -> pb.ModelConfigResponse:
        return convert.encode_config(self._models.config(request.name, request.version))

    async def ModelStatistics(  # noqa: N802
        self, request: pb.ModelStatisticsRequest, context: Context
    ) -> pb.ModelStatisticsResponse:
        return convert.encode_stats(self._models.stats(request.name, request.version))

    async def _infer(
        self, message: pb.ModelInferRequest | Undecodable, context: Context
    ) -> pb.ModelInferResponse:
        request = decoded(message)
        if not request.model_name:
            raise InvalidArgument("model_name: expected a model name, got ''")
        # the declared shapes tell the size; reading raw_input_contents here would copy the
        # bytes on the loop (about 30 ms for 51 MB), as would ByteSize (about 70 ms)
        size = sum(math.prod(tensor.shape) for tensor in request.inputs) * 4
        infer_request = await by_size(  # copies of the tensor bytes: off the loop when large
            size, convert.decode_infer_request, request, max_elements=self._settings.max_elements
        )
        with self._plane.admit(model_lane(request.model_name)):
            result = await self._plane.infer(infer_request, remaining=context.time_remaining())
        answer = sum(array.nbytes for array in result.outputs.values())
        return await by_size(answer, convert.encode_infer_result, result)

    async def ModelInfer(  # noqa: N802
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        return await self._infer(request, context)

    async def ModelStreamInfer(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: Context
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        async for request in request_iterator:
            try:
                response = await self._infer(request, context)
            except LossServeError as exc:
                yield pb.ModelStreamInferResponse(error_message=exc.message)
                continue
            yield pb.ModelStreamInferResponse(infer_response=response)

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


def add_inference_servicer(state: ServiceState, server: grpc.aio.Server) -> None:
    """Register ``inference.GRPCInferenceService`` on ``server``."""
    # protoc writes no annotations for *_grpc.py; mypy strict rejects an untyped call.
    register = cast(
        Callable[[InferenceServicer, grpc.aio.Server], None],
        pb_grpc.add_GRPCInferenceServiceServicer_to_server,
    )
    register(InferenceServicer(state), server)
