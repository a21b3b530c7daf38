"""The HTTP/1.1 connection: uvicorn's httptools protocol, with a timeout on each request's
head, and small requests to the hot routes answered from the parser's own callbacks.

uvicorn makes every request an ASGI call: a scope, a task reading the body through
``receive`` messages, an ``asyncio.Event``, ``send`` messages for the answer, Starlette's
``Request`` around them. For a one-row inference that costs about as much CPU as the data
plane and ONNX Runtime together: one core answered ~3,100 requests a second through a bare
ASGI handler on uvicorn, ~3,900 through the same handler called from the protocol (h2load,
32 clients; the naive FastAPI endpoint ~2,900 in the same runs).

So a request to a :class:`WholeRoute` (OIP inference) whose body is small is read whole
here and handed to the route as bytes; its answer is written to the transport. What is
read here: ``POST``, a path the route matches with no query or escapes, a plain
``Content-Length`` of at most :data:`WHOLE_MAX_BYTES` (and ``max_body_bytes``), no
``Transfer-Encoding``, no ``Content-Encoding``, no ``Expect``, no upgrade, and no earlier
request of the connection still unanswered. Everything else goes through uvicorn and the
ASGI app as before, to the same route code: both paths answer alike, with the same request
ID, metrics and debug log line (:mod:`.http`).

The connection's timer bounds the wait for a request's head, then for each piece of a body
read here (``body_timeout_s``): a client that stalls gets a 408 and the connection closes.
A second one bounds the wait for the client to read its answer, as nginx's
``send_timeout`` does: once the socket's buffers are full (the transport pauses writing),
the client must take some of the answer every ``send_timeout_s`` seconds, or the connection
is reset and the answer's bytes freed. Without it, a client that asks for a large answer
and never reads it holds those bytes for as long as it keeps the connection open. The
server sees a client's reads only as its receive window opens, which the client's kernel
does in steps of up to half its buffer: a slow reader shows progress seldom, hence a
timeout of a minute by default, not the body's.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import re
import socket
import struct
import sys
import termios
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ..core.errors import LossServeError
from ..observability import Metrics
from .http import (
    CLIENT_CLOSED_REQUEST,
    INTERNAL_ERROR,
    BodyTimeout,
    Deadline,
    PartsResponse,
    disconnected,
    log,
    observed,
    request_id_of,
)

__all__ = ["WHOLE_MAX_BYTES", "WholeBody", "WholeRoute", "http_protocol"]

WHOLE_MAX_BYTES = 64 * 1024
"""The largest body read by the protocol itself (about 250 rows of 64 float32 features,
with the binary extension); larger ones stream through the ASGI app."""

_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: closing the socket resets the connection and drops what it holds."""

WholeBody = Callable[[bytes, "str | None", dict[str, str]], Awaitable[Response]]
"""A route's answer to a body read whole: ``(body, the Inference-Header-Content-Length
header or None, the path's parameters)``, errors included in the answer."""


@dataclass(frozen=True)
class WholeRoute:
    """A route that also answers bodies read whole by the protocol."""

    label: str
    """The route's path template, as the ASGI app labels its metrics."""
    pattern: re.Pattern[bytes]
    """The request target it answers, the path parameters as named groups."""
    answer: WholeBody
    refuse: Callable[[LossServeError], Response]
    """The route's error answer (a stalled body's 408)."""


class _Whole:
    """A request read, then answered, by a :class:`WholeRoute`. It is the connection's
    ``cycle`` meanwhile, with the attributes uvicorn's protocol reads of one (a pipelined
    request waits until ``response_complete``; a shutdown clears ``keep_alive``)."""

    __slots__ = (
        "body",
        "disconnected",
        "header_length",
        "keep_alive",
        "params",
        "path",
        "request_id",
        "response_complete",
        "route",
        "start",
    )

    def __init__(
        self,
        route: WholeRoute,
        params: dict[str, str],
        header_length: str | None,
        request_id: str,
        path: str,
        keep_alive: bool,
    ) -> None:
        self.route = route
        self.params = params
        self.header_length = header_length
        self.request_id = request_id
        self.path = path
        self.keep_alive = keep_alive
        self.body: list[bytes] = []
        self.disconnected = False
        self.response_complete = False
        self.start = time.perf_counter()

    def observe(self, metrics: Metrics, status: int) -> None:
        elapsed = time.perf_counter() - self.start
        observed(metrics, self.request_id, self.route.label, "", status, elapsed, "POST", self.path)


def http_protocol(
    timeout: float,
    routes: Sequence[WholeRoute],
    metrics: Metrics,
    max_body_bytes: int,
    send_timeout: float = 60.0,
) -> type[Any]:
    """uvicorn's httptools protocol class with the head timeout, the send timeout and
    ``routes`` read whole (see the module)."""
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    limit = min(WHOLE_MAX_BYTES, max_body_bytes)
    # a Content-Length of more digits than this is above the limit
    digits = len(str(limit))

    class Protocol(HttpToolsProtocol):
        _reading: _Whole | None = None
        """The request whose body is being read here."""

        # -- the connection's Deadline: a request's head, then each piece of a body read
        # here (pushed back by each)
        _deadline: Deadline

        def _arm(self, expire: Callable[[], None]) -> None:
            self._deadline.arm(expire)

        def _disarm(self) -> None:
            self._deadline.disarm()

        def _head_timed_out(self) -> None:
            if not self.transport.is_closing():
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
                    b"connection: close\r\n\r\n"
                )
                self.transport.close()

        # -- the answer's reader: while writing is paused, some of what waits must leave
        # within each timeout
        _sending: Deadline
        _unsent = 0
        """What the client had not taken (:meth:`_unsent_bytes`) when the clock was last set."""

        def pause_writing(self) -> None:
            super().pause_writing()
            self._unsent = self._unsent_bytes()
            self._sending.arm(self._send_stalled)

        def _unsent_bytes(self) -> int:
            """The answer's bytes not yet taken by the client: the transport's buffer, and
            the socket's send queue (the kernel refills it only once half of it left, so
            the transport's buffer alone shows a slow reader no progress for long)."""
            queued = 0
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    packed = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
                    queued = int.from_bytes(packed, sys.byteorder, signed=True)
            return self.transport.get_write_buffer_size() + queued

        def resume_writing(self) -> None:
            super().resume_writing()
            self._sending.disarm()

        def _send_stalled(self) -> None:
            unsent = self._unsent_bytes()
            if unsent < self._unsent:  # the client read some: it has another timeout
                self._unsent = unsent
                self._sending.arm(self._send_stalled)
                return
            log.info(
                "client read none of its answer for the send timeout; connection reset",
                extra={"unsent_bytes": unsent, "timeout_s": send_timeout},
            )
            sock = self.transport.get_extra_info("socket")
            if sock is not None:  # a reset (RST) frees the socket's send queue too
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            self.transport.abort()

        def _body_timed_out(self) -> None:
            whole = self._reading
            if whole is None:  # pragma: no cover - the timer is disarmed with the read
                return
            self._reading = None
            whole.keep_alive = False
            stalled = BodyTimeout(
                f"body: expected the rest of the body within {timeout:g} s, got nothing "
                "more (LOSSSERVE_BODY_TIMEOUT_S)"
            )
            self._write(whole, whole.route.refuse(stalled))

        # -- uvicorn's callbacks

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline = Deadline(self.loop, timeout)
            self._sending = Deadline(self.loop, send_timeout)
            # the connection's ASGI cycles: the running one and those pipelined after it
            self._answering: list[Any] = []
            self._arm(self._head_timed_out)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(self._head_timed_out)

        def on_headers_complete(self) -> None:
            self._disarm()
            whole = self._whole()
            if whole is None:
                super().on_headers_complete()
                # uvicorn's ``cycle`` is now this request's, though the one before it may
                # still be answering (pipelining): keep both, to tell them of a disconnect
                self._answering = [c for c in self._answering if not c.response_complete]
                self._answering.append(self.cycle)
                return
            self._reading = whole
            self.cycle = whole  # type: ignore[assignment]
            self._arm(self._body_timed_out)

        def on_body(self, body: bytes) -> None:
            whole = self._reading
            if whole is None:
                super().on_body(body)
                return
            whole.body.append(body)
            self._arm(self._body_timed_out)

        def on_message_complete(self) -> None:
            whole = self._reading
            if whole is None:
                super().on_message_complete()
                return
            self._reading = None
            self._disarm()
            task = self.loop.create_task(self._answer(whole))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline.close()
            self._sending.close()
            whole = self._reading
            if whole is not None:  # gone in the middle of the body: nobody answers it
                self._reading = None
                disconnected(whole.request_id, whole.path)
                whole.observe(metrics, CLIENT_CLOSED_REQUEST)
            if isinstance(self.cycle, _Whole):
                self.cycle.disconnected = True
                self.cycle = None  # uvicorn's reads an ASGI cycle
            for cycle in self._answering:  # uvicorn tells only the last one
                if not cycle.response_complete:
                    cycle.disconnected = True
            super().connection_lost(exc)

        # -- requests read here

        def _whole(self) -> _Whole | None:
            """The request whose head just came, when it is one to read here."""
            cycle = self.cycle
            if (cycle is not None and not cycle.response_complete) or self.expect_100_continue:
                return None
            url = self.url
            if b"?" in url or b"%" in url or not url.isascii():
                return None
            if self.parser.get_method() != b"POST" or self.parser.should_upgrade():
                return None
            for route in routes:
                match = route.pattern.match(url)
                if match is not None:
                    break
            else:
                return None
            length: int | None = None
            header_length: str | None = None
            for name, value in self.headers:
                if name == b"content-length":
                    if length is not None or not value.isdigit() or len(value) > digits:
                        return None  # twice, odd, or too long: uvicorn's path refuses it
                    length = int(value)
                elif name == b"inference-header-content-length":
                    header_length = value.decode("latin-1")
                elif name in (b"transfer-encoding", b"content-encoding"):
                    return None
            if length is None or length > limit:
                return None
            params = {key: value.decode() for key, value in match.groupdict().items()}
            keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
            request_id = request_id_of(self.headers)
            return _Whole(route, params, header_length, request_id, url.decode(), keep_alive)

        async def _answer(self, whole: _Whole) -> None:
            try:
                response = await whole.route.answer(
                    b"".join(whole.body), whole.header_length, whole.params
                )
            except Exception:  # an unexpected bug: a 500, logged, never a crash
                log.exception("unhandled error", extra={"request_id": whole.request_id})
                response = Response(INTERNAL_ERROR, 500, media_type="application/json")
            self._write(whole, response)

        def _write(self, whole: _Whole, response: Response) -> None:
            """Write the answer, then go on as uvicorn does after one: the next pipelined
            request, or the keep-alive timer."""
            whole.response_complete = True
            if whole.disconnected or self.transport.is_closing():
                disconnected(whole.request_id, whole.path)
                whole.observe(metrics, CLIENT_CLOSED_REQUEST)
                return
            status = response.status_code
            parts: list[bytes | memoryview] = [STATUS_LINE[status]]
            for name, value in (*self.server_state.default_headers, *response.raw_headers):
                parts += (name, b": ", value, b"\r\n")
            parts += (b"x-request-id: ", whole.request_id.encode("latin-1"), b"\r\n")
            if not whole.keep_alive:
                parts.append(b"connection: close\r\n")
            parts.append(b"\r\n")
            if isinstance(response, PartsResponse):
                parts += response.parts
            else:
                parts.append(response.body)
            self.transport.write(b"".join(parts))
            whole.observe(metrics, status)
            if not whole.keep_alive:
                self.transport.close()
            self.on_response_complete()

    return Protocol
