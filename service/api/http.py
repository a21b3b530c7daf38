"""What every REST route shares: the status table, the body reader, the request observer.

- :data:`HTTP_STATUS` maps the core's transport-neutral error codes to HTTP statuses (the
  one table; the gRPC transport has its own).
- :func:`read_body` reads a request body within its limits before anything parses it: a
  ``Content-Length`` above ``max_body_bytes`` is refused before one byte is read; a chunked
  or compressed body is counted as it streams in and as it inflates; each piece must come
  within ``body_timeout_s`` (a stalled or truncated body answers 408, it never holds the
  request forever); its bytes are charged to the request's admission ticket.
- :class:`ObserveMiddleware` (plain ASGI, no per-request task) sets ``X-Request-ID``,
  records the metrics and logs each request at debug level; a client that went away is
  one info line, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import numpy as np
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.admission import Ticket
from ..core.documents import ascii_count, load_json_object
from ..core.errors import ErrorCode, InvalidArgument, LossServeError, PayloadTooLarge
from ..core.offload import by_size
from ..observability import Metrics

__all__ = [
    "CLIENT_CLOSED_REQUEST",
    "HEADER_LENGTH",
    "HTTP_STATUS",
    "INTERNAL_ERROR",
    "BodyTimeout",
    "Deadline",
    "ObserveMiddleware",
    "PartsResponse",
    "binary_response",
    "declared_size",
    "disconnected",
    "held_until_sent",
    "json_response",
    "observed",
    "read_body",
    "request_id_of",
    "split_body",
    "status_name",
    "when_sent",
]

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}
"""The one table from the core's error codes to HTTP statuses."""

_HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    413: "RESOURCE_EXHAUSTED",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(status: int) -> str:
    """An HTTP status as the gRPC status code the same outcome answers over gRPC (2xx
    ``OK``; as gRPC's own HTTP mapping, 400 ``INVALID_ARGUMENT``, 429 ``RESOURCE_EXHAUSTED``,
    499 ``CANCELLED``, 503 ``UNAVAILABLE``...; any other ``UNKNOWN``): the metrics' status
    label, one name per outcome on both transports."""
    if 200 <= status < 300:
        return "OK"
    return _HTTP_CODES.get(status, "UNKNOWN")


HEADER_LENGTH = "Inference-Header-Content-Length"
CLIENT_CLOSED_REQUEST = 499
"""The status logged for a client that went away (nginx's convention); nobody receives it."""

log = logging.getLogger("lossserve.http")


class BodyTimeout(InvalidArgument):
    """The body stopped arriving (a stalled or truncated upload): 408 on REST."""


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


class PartsResponse(Response):
    """An answer whose body is ``parts`` sent one after the other, each as it lies: a large
    tensor's bytes (a view of its array) are written to the socket without being joined
    into one copy with the rest (at 32 MiB each such copy costs ~15 ms of fresh pages)."""

    on_sent: Callable[[], None] | None = None
    """Called once the answer has left (all but what the socket's buffers hold: the last
    message waits while the transport's writing is paused), or could not be sent."""

    def __init__(
        self, parts: Iterable[bytes | memoryview], *, headers: dict[str, str], media_type: str
    ) -> None:
        self.parts = tuple(memoryview(part).cast("B") for part in parts)
        length = str(sum(part.nbytes for part in self.parts))
        super().__init__(b"", headers={**headers, "content-length": length}, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            for part in self.parts:
                await send({"type": "http.response.body", "body": part, "more_body": True})
            # empty: uvicorn waits for the transport to drain before it takes a message
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if self.on_sent is not None:
                self.on_sent()


async def held_until_sent(ticket: Ticket, answer: Awaitable[Response]) -> Response:
    """``answer``'s response; ``ticket``'s place in its lane is given back once it is ready,
    its bytes once it has left (:func:`when_sent`), or both at once when there is none."""
    try:
        response = await answer
    except BaseException:
        ticket.release()
        raise
    ticket.leave_lane()
    return when_sent(response, ticket.release)


def when_sent(response: Response, release: Callable[[], None]) -> Response:
    """``response``, calling ``release`` once it has left (:attr:`PartsResponse.on_sent`),
    not when the handler returns: the bytes of an answer a client is slow to read stay
    counted (a client that reads none of it is cut off after the send timeout)."""
    if not isinstance(response, PartsResponse):
        parts = PartsResponse((response.body,), headers={}, media_type="")
        parts.status_code = response.status_code
        parts.raw_headers = response.raw_headers
        response = parts
    response.on_sent = release
    return response


PARTS_MIN_BYTES = 256 * 1024
"""Tensors of fewer bytes in all are joined with the header into one body (one write);
more are sent as they lie (:class:`PartsResponse`)."""


def binary_response(header: dict[str, Any], tensors: Sequence[bytes | memoryview]) -> Response:
    """The binary tensor extension's answer: the JSON ``header`` (its length in
    ``Inference-Header-Content-Length``), then the ``tensors``' bytes (not copied when
    large)."""
    head = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {HEADER_LENGTH: str(len(head))}
    if sum(memoryview(t).nbytes for t in tensors) < PARTS_MIN_BYTES:
        body = b"".join((head, *tensors))
        return Response(body, headers=headers, media_type="application/octet-stream")
    return PartsResponse((head, *tensors), headers=headers, media_type="application/octet-stream")


def declared_size(request: Request) -> int:
    """``Content-Length`` when it is a plain number, else 0 (a chunked body, or one that
    :func:`read_body` refuses)."""
    return ascii_count(request.headers.get("content-length", "").strip()) or 0


def declared_length(request: Request, max_bytes: int) -> int | None:
    """``Content-Length`` as a number (None when absent: a chunked body), refused above
    ``max_bytes`` before the body is read."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    size = ascii_count(declared.strip())
    if size is None:
        raise InvalidArgument(f"Content-Length: expected a non-negative integer, got {declared!r}")
    if size > max_bytes:
        raise PayloadTooLarge(f"body: expected at most {max_bytes} bytes, got {size}")
    return size


class Deadline:
    """Calls the armed ``expire`` once ``timeout`` seconds pass without another
    :meth:`arm`: one timer, pushed back rather than re-armed (a timer a piece of a body, or
    a request and a piece on a connection, cost a small request a few % of its CPU). It
    fires at the earliest due time, then re-arms at the latest, or does nothing once
    disarmed."""

    __slots__ = ("_due", "_expire", "_loop", "_timeout", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._due = 0.0
        self._expire: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, expire: Callable[[], None]) -> None:
        """``expire`` is due ``timeout`` seconds from now (replacing what was armed)."""
        self._due = self._loop.time() + self._timeout
        self._expire = expire
        if self._timer is None:
            self._timer = self._loop.call_at(self._due, self._fire)

    def disarm(self) -> None:
        self._expire = None

    def close(self) -> None:
        self._expire = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        expire = self._expire
        if expire is None:
            return
        if self._loop.time() < self._due:  # armed again since the timer was set
            self._timer = self._loop.call_at(self._due, self._fire)
            return
        self._expire = None
        expire()


class _BodyClock:
    """Cancels the task reading a body once no piece of it has come for ``timeout`` seconds
    (a :class:`Deadline`, pushed back by each piece)."""

    __slots__ = ("_deadline", "_on_expire", "_task", "expired")

    def __init__(self, timeout: float) -> None:
        task = asyncio.current_task()
        assert task is not None, "a body is read in a task"
        self._task = task
        self.expired = False
        self._on_expire = self._expired
        self._deadline = Deadline(asyncio.get_running_loop(), timeout)
        self._deadline.arm(self._on_expire)

    def _expired(self) -> None:
        self.expired = True
        self._task.cancel()

    def piece(self) -> None:
        """A piece came: the next one is due ``timeout`` seconds from now."""
        self._deadline.arm(self._on_expire)

    def forgive(self) -> None:
        """Take back the cancellation this clock made (the task goes on, to answer 408)."""
        self._task.uncancel()

    def close(self) -> None:
        self._deadline.close()


_INFLATE = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_body(
    request: Request,
    *,
    max_bytes: int,
    timeout: float,
    ticket: Ticket | None = None,
    compressed: bool = False,
    max_values: int = 200_000,
    max_json_bytes: int = 24 * 1024 * 1024,
) -> tuple[dict[str, Any], memoryview | None]:
    """The JSON document and, with the binary tensor extension, the bytes after it.

    An empty body is ``{}``. ``compressed`` accepts ``Content-Encoding: gzip`` or ``deflate``
    (inflated within ``max_bytes``). The bytes received beyond ``Content-Length`` (a chunked
    body) are added to ``ticket`` as they come. A JSON document of more than ``max_values``
    values or ``max_json_bytes`` bytes is refused before it is parsed.

    A binary body of known length is read into one array of that length, allocated by
    numpy: its pages are taken as the bytes come (not before, whatever the client
    declared) and, for large bodies, as huge pages; no growing buffer copies what came.
    """
    declared = declared_length(request, max_bytes)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    inflater = None
    if encoding not in ("", "identity"):
        if not compressed or encoding not in _INFLATE:
            allowed = "gzip, deflate or identity" if compressed else "identity"
            raise InvalidArgument(f"Content-Encoding: expected {allowed}, got {encoding!r}")
        inflater = zlib.decompressobj(_INFLATE[encoding])
    body = bytearray()
    whole = None  # a binary body of known length: its bytes' place
    if declared is not None and inflater is None and HEADER_LENGTH in request.headers:
        whole = np.empty(declared, dtype=np.uint8).data
    received = 0
    receive = request.receive
    clock = _BodyClock(timeout)
    try:
        more = True
        while more:
            message = await receive()
            clock.piece()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            more = message.get("more_body", False)
            piece = message.get("body", b"")
            if not piece:
                continue
            received += len(piece)
            if received > max_bytes:
                raise PayloadTooLarge(f"body: expected at most {max_bytes} bytes, got more")
            if inflater is not None:
                try:
                    piece = inflater.decompress(piece, max_bytes + 1 - len(body))
                except zlib.error as exc:
                    raise InvalidArgument(
                        f"body: expected {encoding} data, got a decoding error: {exc}"
                    ) from None
                if len(body) + len(piece) > max_bytes or inflater.unconsumed_tail:
                    raise PayloadTooLarge(f"body: expected at most {max_bytes} bytes once inflated")
            if ticket is not None and (declared is None or inflater is not None):
                ticket.grow(len(piece))
            if whole is None:
                body += piece
            elif received <= len(whole):
                whole[received - len(piece) : received] = piece
    except asyncio.CancelledError:
        if not clock.expired:
            raise
        clock.forgive()
        raise BodyTimeout(
            f"body: expected the rest of the body within {timeout:g} s, got nothing more "
            "(LOSSSERVE_BODY_TIMEOUT_S)"
        ) from None
    finally:
        clock.close()
    if declared is not None and received != declared:
        raise InvalidArgument(f"body: expected {declared} bytes (Content-Length), got {received}")
    data = body if whole is None else whole
    return await split_body(data, request.headers.get(HEADER_LENGTH), max_values, max_json_bytes)


async def split_body(
    body: bytes | bytearray | memoryview,
    header_length: str | None,
    max_values: int,
    max_json_bytes: int,
) -> tuple[dict[str, Any], memoryview | None]:
    """A whole body's JSON document and, when ``header_length`` (the value of
    ``Inference-Header-Content-Length``) is given, the binary bytes after it."""
    binary: memoryview | None = None
    if header_length is None:
        data = bytes(body) if isinstance(body, memoryview) else body
    else:
        split = ascii_count(header_length.strip())
        if split is None or split > len(body):
            raise InvalidArgument(
                f"{HEADER_LENGTH}: expected an integer in [0, {len(body)}] (the body's length), "
                f"got {header_length!r}"
            )
        view = memoryview(body)
        data, binary = bytes(view[:split]), view[split:]
    if len(data) <= 64 and not bytes(data).strip():
        return {}, binary
    # every JSON value but the last in a list or object is followed by a comma, and base64
    # has none: the commas bound the values to parse, before one is parsed
    if len(data) > max_json_bytes:
        raise PayloadTooLarge(
            f"body: expected a JSON document of at most {max_json_bytes} bytes, got "
            f"{len(data)}; send large tensors with the binary tensor extension "
            "(LOSSSERVE_MAX_JSON_BYTES)"
        )
    values = data.count(b",")
    if values > max_values:
        raise PayloadTooLarge(
            f"body: expected at most {max_values} JSON values, got about {values}; send large "
            "tensors as {shape, dtype, b64} or with the binary tensor extension "
            "(LOSSSERVE_MAX_JSON_VALUES)"
        )
    return await by_size(len(data), load_json_object, data, "body"), binary


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` (at most 128 characters), else a new random one."""
    for key, value in headers:
        if key == b"x-request-id":
            request_id = value.decode("latin-1")[:128]
            if request_id:
                return request_id
            break
    return os.urandom(16).hex()


INTERNAL_ERROR = orjson.dumps(
    {"error": {"code": "INTERNAL", "message": "internal error", "details": []}}
)
"""The body of a 500: an unexpected bug, logged with its traceback where it happened."""


def observed(
    metrics: Metrics,
    request_id: str,
    route: str,
    loss: str,
    status: int,
    elapsed: float,
    method: str,
    path: str,
) -> None:
    """One HTTP request's metrics and, at debug level, its log line."""
    metrics.observe(route, loss, status_name(status), elapsed)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "request",
            extra={
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(elapsed * 1e3, 3),
                "loss": loss,
            },
        )


def disconnected(request_id: str, path: str) -> None:
    """A client that went away before its answer: one info line, never a traceback."""
    extra = {"request_id": request_id, "path": path}
    log.info("client disconnected before the answer", extra=extra)


class ObserveMiddleware:
    """Request ID, metrics and a debug log line for every HTTP request (plain ASGI).

    The route and loss labels come from the scope (``route`` once matched; the loss the
    route saw, a registry name or ``unknown``); the metrics' label sets stay bounded.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        status = 0
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status = CLIENT_CLOSED_REQUEST
            disconnected(request_id, scope.get("path", ""))
        except Exception:  # an unexpected bug: a 500, logged, never a crash
            log.exception("unhandled error", extra={"request_id": request_id})
            if status == 0:
                status = 500
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(INTERNAL_ERROR)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": INTERNAL_ERROR})
        route = scope.get("route")
        observed(
            self.metrics,
            request_id,
            getattr(route, "path", "unmatched"),
            scope.get("lossserve.loss", ""),
            status,
            time.perf_counter() - start,
            scope.get("method", ""),
            scope.get("path", ""),
        )


def error_status(exc: LossServeError) -> int:
    """The HTTP status of ``exc`` (a stalled body is 408)."""
    return 408 if isinstance(exc, BodyTimeout) else HTTP_STATUS[exc.code]
