"""gRPC transport (grpcio, handlers on the event loop): decode, call the core, encode. No
behaviour lives here.

The servicer converts messages with :mod:`lossserve.api.grpc_convert` and calls the same core
objects as the REST routes. Every RPC's handler, unary and streaming, is wrapped once when
it is registered (in place of a per-call server interceptor): the wrapper maps each
:class:`~lossserve.core.errors.LossServeError` to a gRPC status with :data:`GRPC_STATUS` (the
error's message as the status details, its transport-neutral code
and details in the trailing metadata), turns any other exception into ``INTERNAL`` with a
generic message (logged), and records the request metrics with ``transport="grpc"``.
Standard health checking (``grpc.health.v1``) and server reflection are on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from typing import Any, cast

import grpc
import orjson
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from lossserve_proto.chunks import answer_bytes
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc

from ..core.admission import Ticket
from ..core.dataplane import INFERENCE, POOL, DataPlane
from ..core.errors import ErrorCode, LossServeError
from ..core.evaluator import EvaluationStream
from ..core.offload import by_size
from ..core.state import ServiceState
from ..observability import Metrics
from . import grpc_convert as convert
from .grpc_messages import ANSWER_OVERHEAD, check_answer, decoded, messages, parser
from .grpc_threads import ThreadedServer
from .oip_grpc import INFERENCE_SERVICE, PARSERS, add_inference_servicer

__all__ = [
    "ERROR_CODE_KEY",
    "ERROR_DETAILS_KEY",
    "GRPC_STATUS",
    "SERVICE_NAME",
    "create_grpc_server",
    "response_chunk_bytes",
]

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["LossService"].full_name
"""``lossserve.v1.LossService``."""

GRPC_STATUS: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.PAYLOAD_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}
"""The one table from the core's error codes to gRPC status codes."""

ERROR_CODE_KEY = "lossserve-error-code"
"""Trailing metadata: the transport-neutral code (tells PAYLOAD_TOO_LARGE from a full queue)."""
ERROR_DETAILS_KEY = "lossserve-error-details"
"""Trailing metadata: the error's details as a JSON list, when it has any."""

log = logging.getLogger("lossserve.grpc")

_ADMITTED: dict[str, str] = {
    "/lossserve.v1.LossService/ComputeLoss": POOL,
    "/lossserve.v1.LossService/ComputeLossChunked": POOL,
    "/lossserve.v1.LossService/StreamEvaluate": POOL,
    "/inference.GRPCInferenceService/ModelInfer": INFERENCE,
    "/inference.GRPCInferenceService/ModelStreamInfer": INFERENCE,
}
"""The RPCs that do work, and the lane each is admitted on before its message is parsed."""

_TOLERANT = {"/inference.GRPCInferenceService/ModelStreamInfer"}
"""Streams that answer a bad message and go on (Triton's ModelStreamInfer)."""


class _Call:
    """What the servicer and the interceptor share about the RPC in flight: the metrics
    label, and the admission ticket (None for RPCs that do no work)."""

    __slots__ = ("loss", "ticket")

    def __init__(self) -> None:
        self.loss = ""
        self.ticket: Ticket | None = None


_CALL: ContextVar[_Call | None] = ContextVar("lossserve_grpc_call", default=None)


def _label_loss(loss: str | None) -> None:
    call = _CALL.get()
    if call is not None:
        call.loss = loss or ""


def _ticket() -> Ticket | None:
    """The admission ticket of the RPC in flight."""
    call = _CALL.get()
    return None if call is None else call.ticket


def _failure(
    exc: Exception, method: str
) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """The status, details and trailing metadata an exception from a handler answers with."""
    if isinstance(exc, LossServeError):
        metadata = [(ERROR_CODE_KEY, exc.code.value)]
        if exc.details:
            metadata.append((ERROR_DETAILS_KEY, orjson.dumps(exc.details).decode()))
        return GRPC_STATUS[exc.code], exc.message, tuple(metadata)
    log.exception("unhandled error", extra={"method": method})
    return grpc.StatusCode.INTERNAL, "internal error", ((ERROR_CODE_KEY, ErrorCode.INTERNAL.value),)


class _StatusHandlers:
    """Maps errors to statuses and records metrics, once, for every RPC of the server: each
    method's handler is wrapped once, when it is registered (:class:`ThreadedServer`'s
    ``wrap``); grpcio's
    threaded server has no interceptors for coroutine handlers, and a wrapper made once
    costs nothing per call."""

    def __init__(self, metrics: Metrics, plane: DataPlane) -> None:
        self._metrics = metrics
        self._plane = plane

    def wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """``handler`` (the RPC ``method``'s) with statuses, metrics and admission."""
        lane = _ADMITTED.get(method)
        for kind, factory in _FACTORIES.items():
            behavior = getattr(handler, kind)
            if behavior is None:
                continue
            # every request is parsed in our code (off the loop when large), not by grpc
            parse = handler.request_deserializer
            if method in PARSERS:
                parse, descriptor = PARSERS[method]
                parse = parser(parse, method, descriptor)
            elif parse is not None:
                parse = parser(parse, method)
            if parse is None:  # no handler registered here lacks one
                return handler
            if kind.startswith("unary"):
                # admitted on the raw bytes, parsed after
                behavior = self._admit_raw(behavior, lane, parse)
            streams = kind.startswith("stream")
            return factory(
                self._wrap(
                    behavior,
                    method,
                    None if kind.startswith("unary") else lane,
                    None if not streams else (parse, method in _TOLERANT),
                ),
                request_deserializer=None,
                response_serializer=_serializer(handler.response_serializer),
            )
        return handler

    def _admit_raw(
        self, behavior: Any, lane: str | None, parse: Callable[[bytes], Any]
    ) -> Callable[[bytes, Any], Any]:
        """``behavior`` taking the raw request: admitted on ``lane`` (when it has one) before
        the message is parsed, then parsed (in a thread when large)."""
        plane = self._plane

        async def parsed(raw: bytes) -> Any:
            return decoded(await by_size(len(raw), parse, raw))

        if inspect.isasyncgenfunction(behavior):  # unary_stream: nothing to admit

            async def stream(raw: bytes, context: Any) -> AsyncIterator[Any]:
                request = await parsed(raw)
                async for response in behavior(request, context):
                    yield response

            return stream

        async def handle(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if lane is None:
                return await behavior(await parsed(raw), context)
            call = _CALL.get()
            ticket = plane.admit(lane, len(raw))
            if call is not None:
                call.ticket = ticket
            with ticket:
                request = await parsed(raw)
                del raw
                return await behavior(request, context)

        return handle

    def _wrap(
        self,
        behavior: Any,
        method: str,
        lane: str | None,
        stream: tuple[Callable[[bytes], Any], bool] | None,
    ) -> Any:
        """``lane``: a streaming RPC admitted on it when it starts (count only; its
        messages are bounded by the message limit and counted by the servicer).
        ``stream``: None for a unary request, else how its client stream is read: the
        parser of its messages and whether a bad one is answered (see :func:`messages`;
        each message within ``body_timeout_s`` of the last)."""
        if stream is not None:
            timeout = self._plane.settings.body_timeout_s
            inner, (parse, tolerant) = behavior, stream

            def with_stream(requests: Any, context: Any) -> Any:
                return inner(messages(requests, timeout, parse, tolerant=tolerant), context)

            if inspect.isasyncgenfunction(inner):

                async def generator(requests: Any, context: Any) -> AsyncIterator[Any]:
                    async for response in with_stream(requests, context):
                        yield response

                behavior = generator
            else:

                async def coroutine(requests: Any, context: Any) -> Any:
                    return await with_stream(requests, context)

                behavior = coroutine
        if inspect.isasyncgenfunction(behavior):
            return self._wrap_generator(behavior, method, lane)
        if inspect.iscoroutinefunction(behavior):
            return self._wrap_coroutine(behavior, method, lane)
        return behavior  # a synchronous handler (none is registered here): left alone

    def _observe(
        self, method: str, call: _Call, status: str, start: float, request_id: str
    ) -> None:
        elapsed = time.perf_counter() - start
        self._metrics.observe(method, call.loss, status, elapsed, transport="grpc")
        if not log.isEnabledFor(logging.DEBUG):
            return
        log.debug(
            "request",
            extra={
                "request_id": request_id,
                "method": method,
                "status": status,
                "duration_ms": round(elapsed * 1e3, 3),
                "loss": call.loss,
            },
        )

    def _wrap_coroutine(self, behavior: Any, method: str, lane: str | None) -> Any:
        plane = self._plane

        async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            call, start, status = _Call(), time.perf_counter(), "OK"
            _CALL.set(call)  # each RPC runs in a task of its own, so in a context of its own
            request_id = _echo_request_id(context)
            try:
                if lane is not None:
                    call.ticket = plane.admit(lane)
                return await behavior(request, context)
            except grpc.aio.AbortError:
                status = _code_name(context)
                raise
            except asyncio.CancelledError:
                status = grpc.StatusCode.CANCELLED.name
                raise
            except Exception as exc:
                code, details, metadata = _failure(exc, method)
                status = code.name
                metadata = (*metadata, (REQUEST_ID_KEY, request_id))  # abort replaces them
                await context.abort(code, details, trailing_metadata=metadata)
            finally:
                if call.ticket is not None:
                    call.ticket.release()
                self._observe(method, call, status, start, request_id)

        return handle

    def _wrap_generator(self, behavior: Any, method: str, lane: str | None) -> Any:
        plane = self._plane

        async def handle(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            call, start, status = _Call(), time.perf_counter(), "OK"
            _CALL.set(call)
            request_id = _echo_request_id(context)
            try:
                if lane is not None:
                    call.ticket = plane.admit(lane)
                async with contextlib.aclosing(behavior(request, context)) as responses:
                    async for response in responses:
                        yield response
            except grpc.aio.AbortError:
                status = _code_name(context)
                raise
            except (asyncio.CancelledError, GeneratorExit):
                status = grpc.StatusCode.CANCELLED.name
                raise
            except Exception as exc:
                code, details, metadata = _failure(exc, method)
                status = code.name
                metadata = (*metadata, (REQUEST_ID_KEY, request_id))  # abort replaces them
                await context.abort(code, details, trailing_metadata=metadata)
            finally:
                if call.ticket is not None:
                    call.ticket.release()
                self._observe(method, call, status, start, request_id)

        return handle


def _serializer(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """``serialize``, letting through an answer a servicer serialized itself (off the loop,
    with its tensor bytes written without protobuf: see :func:`grpc_messages.bytes_field`)."""
    if serialize is None:
        return None

    def serialize_or_pass(message: Any) -> bytes:
        return message if isinstance(message, bytes) else serialize(message)

    return serialize_or_pass


def _echo_request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's ``x-request-id`` (or a new one), sent back in the trailing metadata.

    Not in the initial metadata: headers sent before the answer commit the call, so that a
    replica dying under it leaves the client INTERNAL (a proxy can only reset the stream)
    rather than UNAVAILABLE, which a retry policy may send again. Without early headers, a
    unary answer leaves in one batch: headers, message and status together.
    """
    given = dict(context.invocation_metadata() or ()).get(REQUEST_ID_KEY)
    request_id = given if isinstance(given, str) and given else os.urandom(16).hex()
    context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
    return request_id


REQUEST_ID_KEY = "x-request-id"


def _code_name(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


_FACTORIES: dict[str, Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


class LossServicer(pb_grpc.LossServiceServicer):
    """``lossserve.v1.LossService`` over the core objects of ``state``."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state
        self._plane = state.plane
        self._settings = state.settings

    async def ListLosses(  # noqa: N802 - the RPC's name
        self,
        request: pb.ListLossesRequest,
        context: grpc.aio.ServicerContext[pb.ListLossesRequest, pb.ListLossesResponse],
    ) -> pb.ListLossesResponse:
        return convert.encode_list_losses(self._state.engine.list_losses())

    async def ComputeLoss(  # noqa: N802
        self,
        request: pb.ComputeLossRequest,
        context: grpc.aio.ServicerContext[pb.ComputeLossRequest, pb.ComputeLossResponse],
    ) -> pb.ComputeLossResponse:
        loss_request = convert.decode_compute_request(
            request, max_elements=self._settings.max_elements
        )
        _label_loss(loss_request.loss)
        answer = answer_bytes(
            loss_request.logits.shape,
            return_grad=loss_request.return_grad,
            return_hessian=loss_request.return_hessian,
            reduction=loss_request.reduction,
        )
        limit = self._settings.grpc_max_message_bytes
        check_answer(answer, limit, "use ComputeLossChunked", overhead=ANSWER_OVERHEAD)
        result = await self._plane.compute_loss(loss_request, remaining=context.time_remaining())
        return convert.encode_compute_response(result)

    async def ComputeLossChunked(  # noqa: N802
        self,
        request_iterator: AsyncIterator[pb.ComputeLossRequestChunk],
        context: grpc.aio.ServicerContext[pb.ComputeLossRequestChunk, pb.ComputeLossResponseChunk],
    ) -> AsyncIterator[pb.ComputeLossResponseChunk]:
        limit = self._settings.grpc_max_message_bytes
        # A whole streamed request is bounded as a REST body is; the message limit bounds
        # each chunk (grpcio enforces it) and the answer's chunks.
        assembler = convert.ComputeRequestAssembler(
            max_elements=self._settings.max_elements, max_bytes=self._settings.max_body_bytes
        )
        ticket = _ticket()
        async for chunk in request_iterator:
            started = assembler.loss is not None
            assembler.add(chunk)  # a bad chunk fails here, before the rest is read
            if not started and ticket is not None:
                ticket.grow(assembler.declared_bytes)  # 429 when the bodies in flight are full
            _label_loss(assembler.loss)
        loss_request = assembler.finish()
        result = await self._plane.compute_loss(loss_request, remaining=context.time_remaining())
        chunk_bytes = response_chunk_bytes(assembler.response_chunk_bytes, limit)
        for message in convert.encode_compute_response_chunks(result, chunk_bytes=chunk_bytes):
            yield message

    async def StreamEvaluate(  # noqa: N802
        self,
        request_iterator: AsyncIterator[pb.EvaluateBatch],
        context: grpc.aio.ServicerContext[pb.EvaluateBatch, pb.EvaluateUpdate],
    ) -> AsyncIterator[pb.EvaluateUpdate]:
        stream = EvaluationStream(self._settings.max_elements)
        beta, batches = 1.0, 0
        async for message in request_iterator:
            batch, batch_beta = convert.decode_evaluate_batch(
                message, max_elements=self._settings.max_elements
            )
            if batches == 0:
                _label_loss(batch.loss)
            if batch_beta is not None:
                beta = batch_beta
            self._plane.cost_evaluate(batch)
            # numpy/torch work off the event loop, so that other RPCs go on meanwhile
            remaining = context.time_remaining()
            metrics = await self._plane.in_thread(stream.add, batch, remaining=remaining)
            batches += 1
            yield convert.encode_update(metrics, batches=batches)
        final, fit = await self._plane.in_thread(
            stream.close, beta, remaining=context.time_remaining()
        )
        thresholds = await self._plane.fit_stream(fit)
        yield convert.encode_update(final, batches=batches, thresholds=thresholds)


def response_chunk_bytes(asked: int, message_limit: int) -> int:
    """The tensor bytes of each response chunk: what the client asked for (0: the default),
    kept within [MIN_CHUNK_BYTES, half the message limit] (the limit wins when it is tiny)."""
    chunk = asked or convert.DEFAULT_CHUNK_BYTES
    return max(1, min(max(chunk, convert.MIN_CHUNK_BYTES), message_limit // 2))


def create_grpc_server(
    state: ServiceState, options: Sequence[tuple[str, Any]] = ()
) -> ThreadedServer:
    """The gRPC server over ``state`` (no port bound: the caller adds one, then starts it).

    ``options`` are added to the channel arguments (``("grpc.so_reuseport", 0)`` for a
    server that must own its port alone). Call it in the event loop that runs the handlers
    (:class:`~lossserve.api.grpc_threads.ThreadedServer`).
    """
    settings = state.settings
    limit = settings.grpc_max_message_bytes
    server = ThreadedServer(
        asyncio.get_running_loop(),
        threads=settings.grpc_threads,
        wrap=_StatusHandlers(state.metrics, state.plane).wrap,
        options=[
            ("grpc.max_send_message_length", limit),
            ("grpc.max_receive_message_length", limit),
            *options,
        ],
    )
    # our servicers register as on a grpc.aio server; the server wraps each handler
    registrar = cast(grpc.aio.Server, server)
    # The generated registration has no annotations (protoc writes no .pyi for *_grpc.py);
    # give it its type here, since mypy strict rejects an untyped call from typed code.
    register = cast(
        Callable[[LossServicer, grpc.aio.Server], None], pb_grpc.add_LossServiceServicer_to_server
    )
    register(LossServicer(state), registrar)
    add_inference_servicer(state, registrar)  # inference.GRPCInferenceService (OIP v2)

    # grpcio's own servicers, on the server's threads
    checker = health.HealthServicer()  # "" is SERVING from the start
    checker.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server.threaded)

    async def not_serving() -> None:  # every service NOT_SERVING, for good
        checker.enter_graceful_shutdown()

    state.on_drain(not_serving)
    names = (SERVICE_NAME, INFERENCE_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server.threaded)
    return server
