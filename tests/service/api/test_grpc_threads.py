"""grpcio's threaded server running coroutine handlers on the event loop (grpc_threads)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from lossserve.api.grpc_threads import ThreadedServer

SERVICE = "test.Bridge"
_SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")


def with_server(
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]],
    scenario: Callable[[grpc.aio.Channel], Awaitable[Any]],
    threads: int = 8,
) -> Any:
    async def main() -> Any:
        server = ThreadedServer(asyncio.get_running_loop(), threads=threads, options=())
        server.add_registered_method_handlers(SERVICE, handlers)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await scenario(channel)
        finally:
            await server.stop(0)

    return asyncio.run(main())


def unary(channel: grpc.aio.Channel, name: str) -> Any:
    return channel.unary_unary(f"/{SERVICE}/{name}")


def test_a_unary_handler_runs_on_the_loop_and_answers() -> None:
    threads: list[str] = []

    async def echo(request: bytes, context: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return request[::-1]

    async def scenario(channel: grpc.aio.Channel) -> Any:
        return await unary(channel, "Echo")(b"abc")

    handlers = {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    assert with_server(handlers, scenario) == b"cba"
    assert threads == [threading.main_thread().name]


def test_abort_answers_its_status_details_and_trailing_metadata() -> None:
    async def refuse(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing", (("why", "gone"),))

    async def scenario(channel: grpc.aio.Channel) -> Any:
        call = unary(channel, "Refuse")(b"x")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        return raised.value

    error = with_server({"Refuse": grpc.unary_unary_rpc_method_handler(refuse)}, scenario)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such thing"
    assert ("why", "gone") in tuple(error.trailing_metadata())


def test_every_step_of_a_response_stream_shares_its_rpc_context_and_no_other() -> None:
    """A context variable set in a stream's first step is seen in its later steps (the
    gRPC wrapper keeps each RPC's ticket and metrics label so), and not by another RPC."""

    async def count(request: bytes, context: Any) -> AsyncIterator[bytes]:
        before = _SEEN.get()
        _SEEN.set(request.decode())
        for _ in range(3):
            await asyncio.sleep(0)
            yield f"{before}|{_SEEN.get()}".encode()

    async def scenario(channel: grpc.aio.Channel) -> Any:
        stream = channel.unary_stream(f"/{SERVICE}/Count")

        async def collect(tag: bytes) -> list[bytes]:
            return [item async for item in stream(tag)]

        return await asyncio.gather(collect(b"a"), collect(b"b"))

    handlers = {"Count": grpc.unary_stream_rpc_method_handler(count)}
    first, second = with_server(handlers, scenario)
    assert first == [b"|a"] * 3
    assert second == [b"|b"] * 3


def test_a_client_stream_is_read_as_an_async_iterator() -> None:
    async def total(requests: AsyncIterator[bytes], context: Any) -> bytes:
        return b"".join([item async for item in requests])

    async def scenario(channel: grpc.aio.Channel) -> Any:
        call = channel.stream_unary(f"/{SERVICE}/Total")
        return await call(iter([b"a", b"b", b"c"]))

    assert with_server({"Total": grpc.stream_unary_rpc_method_handler(total)}, scenario) == b"abc"


@pytest.mark.parametrize("kind", ["unary", "response-stream"])
def test_a_cancelled_call_cancels_its_handler_on_the_loop(kind: str) -> None:
    started, ended = asyncio.Event(), asyncio.Event()
    outcome: list[str] = []

    async def forever(request: bytes, context: Any) -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"tick"
                await asyncio.sleep(0.01)
        except (asyncio.CancelledError, GeneratorExit) as exc:
            outcome.append(type(exc).__name__)
            raise
        finally:
            ended.set()

    async def hang(request: bytes, context: Any) -> bytes:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            outcome.append("CancelledError")
            raise
        finally:
            ended.set()
        return b""

    async def scenario(channel: grpc.aio.Channel) -> None:
        if kind == "response-stream":
            call: Any = channel.unary_stream(f"/{SERVICE}/Forever")(b"")
            await call.read()
        else:
            call = unary(channel, "Hang")(b"")
            await started.wait()
        call.cancel()
        await asyncio.wait_for(ended.wait(), timeout=2)

    handlers = {
        "Forever": grpc.unary_stream_rpc_method_handler(forever),
        "Hang": grpc.unary_unary_rpc_method_handler(hang),
    }
    with_server(handlers, scenario)
    # a stream suspended at its yield is closed (GeneratorExit), one awaiting is cancelled
    assert outcome in (["CancelledError"], ["GeneratorExit"])


def test_calls_beyond_the_threads_are_refused_at_once() -> None:
    release = asyncio.Event()

    async def hold(request: bytes, context: Any) -> bytes:
        await release.wait()
        return b"done"

    async def scenario(channel: grpc.aio.Channel) -> Any:
        call = unary(channel, "Hold")
        held = [asyncio.ensure_future(call(b"")) for _ in range(2)]
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(b"", timeout=5)
        waited = loop.time() - began
        release.set()
        return raised.value.code(), waited, await asyncio.gather(*held)

    handlers = {"Hold": grpc.unary_unary_rpc_method_handler(hold)}
    code, waited, answers = with_server(handlers, scenario, threads=2)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert waited < 1
    assert answers == [b"done", b"done"]


def test_open_streams_take_at_most_half_the_threads() -> None:
    """Idle streams cannot take every thread: unary calls (and health checks) still get
    theirs, and a stream past half the threads is refused at once."""

    async def ticks(request: bytes, context: Any) -> AsyncIterator[bytes]:
        while True:
            yield b"tick"
            await asyncio.sleep(0.05)

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    async def scenario(channel: grpc.aio.Channel) -> Any:
        stream = channel.unary_stream(f"/{SERVICE}/Ticks")
        held = [stream(b"") for _ in range(2)]
        for call in held:
            await call.read()
        refused = stream(b"")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await refused.read()
        answered = await unary(channel, "Echo")(b"still here", timeout=2)
        for call in held:
            call.cancel()
        await asyncio.sleep(0.3)
        again = stream(b"")
        after_release = await again.read()
        again.cancel()
        return raised.value, answered, after_release

    handlers = {
        "Ticks": grpc.unary_stream_rpc_method_handler(ticks),
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
    }
    error, answered, after_release = with_server(handlers, scenario, threads=4)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "LOSSSERVE_GRPC_THREADS" in (error.details() or "")
    assert answered == b"still here"
    assert after_release == b"tick"
