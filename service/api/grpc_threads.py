"""gRPC served by grpcio's threaded server, its handlers still coroutines on the event loop.

On one core under 32 clients, an empty unary handler answers about 2,600 calls a second on
grpc.aio (on uvloop: the stack KServe and MLServer use), 3,950 on grpcio's threaded server,
and 3,300 on the threaded server handing each call to an event loop in another thread
(``bench/grpc_floor.py``, one run). So the server is the threaded one, and
:class:`ThreadedServer` runs every coroutine handler registered on it (our servicers, each
wrapped once at registration by :mod:`lossserve.api.grpc`) on the event loop that serves
REST, while the server's thread waits for it:

- each RPC runs in a context of its own (``contextvars``), every step of it (a unary call's
  one coroutine; each item of a response stream) in that same context;
- the handler gets a :class:`LoopContext`, grpc.aio's ``ServicerContext`` over the threaded
  server's context: ``abort`` records the status and raises ``AbortError``, as in grpc.aio;
- a client stream reaches the handler as an async iterator, each message read in a thread
  of its own pool;
- when the RPC ends early (the client cancelled, its deadline passed, the server stops),
  the step running on the loop is cancelled.

Handlers that are plain functions (grpcio's own health and reflection servicers) are served
as they are. The server admits at most ``threads`` RPCs at once, each holding a thread, and
of them at most half streams (a stream holds its thread while open): the rest are refused
at once with RESOURCE_EXHAUSTED instead of waiting for one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

import grpc

__all__ = ["LoopContext", "ThreadedServer"]

T = TypeVar("T")

Wrap = Callable[[str, "grpc.RpcMethodHandler[Any, Any]"], "grpc.RpcMethodHandler[Any, Any]"]
"""A transport's wrapper of each method's handler (its name, its handler), applied once at
registration."""

_END = object()


class LoopContext(grpc.aio.ServicerContext[Any, Any]):
    """grpc.aio's view of one RPC of the threaded server, for a handler on the loop."""

    def __init__(self, context: grpc.ServicerContext) -> None:
        self._context = context
        self._code: grpc.StatusCode | None = None

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Any = (),
    ) -> NoReturn:
        self._code = code
        if trailing_metadata:
            self._context.set_trailing_metadata(tuple(trailing_metadata))
        # the threaded server's abort keeps the status and raises (in any thread) an
        # exception that says only "aborted"
        with contextlib.suppress(Exception):
            self._context.abort(code, details)
        raise grpc.aio.AbortError()

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        await self.abort(status.code, status.details, status.trailing_metadata)

    def code(self) -> grpc.StatusCode:
        """The status set by :meth:`abort` or :meth:`set_code` (UNKNOWN before)."""
        return grpc.StatusCode.UNKNOWN if self._code is None else self._code

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        self._context.set_trailing_metadata(trailing_metadata)

    def time_remaining(self) -> float:
        return self._context.time_remaining()

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code
        self._context.set_code(code)

    def set_details(self, details: str) -> None:
        self._context.set_details(details)

    def peer(self) -> str:
        return self._context.peer()

    def peer_identities(self) -> Any:
        return self._context.peer_identities()

    def peer_identity_key(self) -> str | None:
        return self._context.peer_identity_key()

    def auth_context(self) -> Any:
        return self._context.auth_context()

    def set_compression(self, compression: grpc.Compression) -> None:
        self._context.set_compression(compression)

    def disable_next_message_compression(self) -> None:
        self._context.disable_next_message_compression()

    async def send_initial_metadata(self, initial_metadata: Any) -> None:
        self._context.send_initial_metadata(initial_metadata)

    # Handlers here take a client stream as their request iterator and answer a stream by
    # yielding: nothing registered reads or writes through the context (grpc.aio's own
    # health servicer does, hence grpcio's threaded one here).
    async def read(self) -> NoReturn:
        raise RuntimeError("this server passes a client stream as the request iterator")

    async def write(self, message: Any) -> NoReturn:
        raise RuntimeError("this server sends a response stream from the handler's yields")


class _Rpc:
    """One RPC's steps, run on ``loop`` one at a time in one context, awaited by the
    server's thread; cancelled when the RPC ends before they do."""

    def __init__(self, loop: asyncio.AbstractEventLoop, context: grpc.ServicerContext) -> None:
        self._loop = loop
        self._vars = contextvars.Context()
        self._task: asyncio.Task[Any] | None = None
        self._running = False
        self._ended = False
        context.add_callback(self._end)

    def run(self, step: Coroutine[Any, Any, T], *, after_end: bool = False) -> T:
        """``step``'s result (or exception); CancelledError, without running it, once the
        RPC ended, unless ``after_end`` (closing a response stream)."""
        # the thread waits on a bare lock the loop releases once the step's task is done (a
        # concurrent Future's condition costs a small call a few us more)
        latch = threading.Lock()
        latch.acquire()
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:
            if self._ended and not after_end:
                step.close()
                latch.release()
                return
            task = self._loop.create_task(step, context=self._vars)
            self._task = task
            tasks.append(task)
            task.add_done_callback(lambda _: latch.release())

        self._running = True
        try:
            self._loop.call_soon_threadsafe(start)
            latch.acquire()
        finally:
            self._running = False
        if not tasks or tasks[0].cancelled():
            raise asyncio.CancelledError()
        return tasks[0].result()  # done: read from this thread, nothing changes it now

    def _end(self) -> None:  # the RPC ended (answered, cancelled, past its deadline)
        self._ended = True  # no step starts from now on
        if not self._running:  # an answered call: nothing to cancel, no wake-up of the loop
            return

        def cancel() -> None:
            if self._task is not None:
                self._task.cancel()  # nothing when it is done

        with contextlib.suppress(RuntimeError):  # a closed loop runs nothing any more
            self._loop.call_soon_threadsafe(cancel)


async def _next(responses: AsyncIterator[T]) -> T:
    return await responses.__anext__()


class ThreadedServer:
    """grpcio's threaded server, serving coroutine handlers on ``loop`` (see the module).

    It takes registrations as a ``grpc.aio.Server`` does (``add_generic_rpc_handlers``,
    ``add_registered_method_handlers``), each handler wrapped once by ``wrap`` when given,
    and starts and stops with coroutines.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        threads: int,
        options: Sequence[tuple[str, Any]],
        wrap: Wrap | None = None,
    ) -> None:
        self._loop = loop
        self._wrap = wrap
        self._streams = _Slots(max(1, threads // 2))
        self._readers = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="grpc-read"
        )
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="grpc"),
            options=list(options),
            maximum_concurrent_rpcs=threads,
        )

    def add_generic_rpc_handlers(self, generic_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_Bridged(h, self) for h in generic_handlers))

    def add_registered_method_handlers(
        self, service: str, method_handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        served = {n: self.serving(f"/{service}/{n}", h) for n, h in method_handlers.items()}
        self._server.add_registered_method_handlers(service, served)

    def serving(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """What the server runs for ``method``: ``handler`` wrapped (``wrap``), then bridged."""
        return self.bridge(handler if self._wrap is None else self._wrap(method, handler))

    @property
    def threaded(self) -> grpc.Server:
        """grpcio's server itself, for servicers written for it (plain-function handlers)."""
        return self._server

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    async def start(self) -> None:
        self._server.start()

    async def stop(self, grace: float | None) -> None:
        """Refuse new RPCs; those in flight get ``grace`` seconds, then are cancelled."""
        stopped = self._server.stop(grace)
        await self._loop.run_in_executor(None, stopped.wait)
        self._readers.shutdown(wait=False, cancel_futures=True)

    def bridge(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        """``handler`` served from the server's threads (a plain one as it is)."""
        behaviors = {
            "unary_unary": (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
            "unary_stream": (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
            "stream_unary": (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
            "stream_stream": (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
        }
        for kind, (behavior, factory) in behaviors.items():
            if behavior is None:
                continue
            generator = inspect.isasyncgenfunction(behavior)
            if not generator and not inspect.iscoroutinefunction(behavior):
                return handler
            streams_in = kind.startswith("stream")
            served = (
                self._stream(behavior, streams_in)
                if generator
                else self._unary(behavior, streams_in)
            )
            return factory(
                served,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _requests(self, iterator: Iterator[Any]) -> AsyncIterator[Any]:
        async def requests() -> AsyncIterator[Any]:
            while True:
                item = await self._loop.run_in_executor(self._readers, next, iterator, _END)
                if item is _END:
                    return
                yield item

        return requests()

    @contextlib.contextmanager
    def _stream_slot(self, context: grpc.ServicerContext) -> Iterator[None]:
        """One of the slots for streams (half the threads), or RESOURCE_EXHAUSTED: open
        streams never take the threads that unary calls and health checks need."""
        if not self._streams.take():
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"streams: {self._streams.limit} are open, the most a server process takes "
                "(half of LOSSSERVE_GRPC_THREADS); retry later",
            )
        try:
            yield
        finally:
            self._streams.give()

    def _unary(self, behavior: Callable[..., Any], streams_in: bool) -> Callable[..., Any]:
        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            rpc = _Rpc(self._loop, context)
            if not streams_in:
                return rpc.run(behavior(request, LoopContext(context)))
            with self._stream_slot(context):
                return rpc.run(behavior(self._requests(request), LoopContext(context)))

        return serve

    def _stream(self, behavior: Callable[..., Any], streams_in: bool) -> Callable[..., Any]:
        def serve(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with self._stream_slot(context):
                rpc = _Rpc(self._loop, context)
                if streams_in:
                    request = self._requests(request)
                responses = behavior(request, LoopContext(context))
                finished = False
                try:
                    while True:
                        try:
                            item = rpc.run(_next(responses))
                        except StopAsyncIteration:
                            finished = True
                            return
                        except BaseException:
                            finished = True  # it came out of the generator: that is closed
                            raise
                        yield item
                finally:
                    if not finished and not self._loop.is_closed():
                        rpc.run(responses.aclose(), after_end=True)

        return serve


class _Slots:
    """At most ``limit`` held at once, taken and given back from any thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._held >= self.limit:
                return False
            self._held += 1
            return True

    def give(self) -> None:
        with self._lock:
            self._held -= 1


class _Bridged(grpc.GenericRpcHandler):
    """A generic handler whose method handlers are wrapped and bridged once each, on first
    use."""

    def __init__(self, inner: grpc.GenericRpcHandler, server: ThreadedServer) -> None:
        self._inner = inner
        self._server = server
        self._bridged: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        bridged = self._bridged.get(method)
        if bridged is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None
            bridged = self._bridged[method] = self._server.serving(method, handler)
        return bridged
