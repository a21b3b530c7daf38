"""Small OIP inference requests answered by the HTTP protocol itself (``http_protocol``),
over real sockets to a real uvicorn server: answered without the ASGI app, byte for byte
as the ASGI app answers the same request streamed (chunked), in order when pipelined, with
keep-alive, ``Connection: close``, request IDs and a stalled body handled as uvicorn's path
handles them."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

from lossserve.api.http_protocol import WHOLE_MAX_BYTES, http_protocol
from lossserve.api.rest import create_app
from lossserve.core.state import ServiceState
from lossserve.settings import Settings

from .builders import reference, rows

BODY_TIMEOUT_S = 0.5


@dataclass
class Served:
    port: int
    state: ServiceState
    asgi_paths: list[str] = field(default_factory=list)
    """The paths of the requests that reached the ASGI app."""


def with_server(repository: Path, scenario: Callable[[Served], Awaitable[None]]) -> None:
    """A server wired as ``lossserve serve`` wires it (the app, the protocol over its
    routes), on a free loopback port, the ASGI app counting the requests it sees."""

    async def main() -> None:
        settings = Settings(
            devices=["cpu"], model_repository=repository, body_timeout_s=BODY_TIMEOUT_S
        )
        state = ServiceState.create(settings)
        await state.start()
        app = create_app(state)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        served = Served(sock.getsockname()[1], state)

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                served.asgi_paths.append(scope["path"])
            await app(scope, receive, send)

        protocol = http_protocol(
            settings.body_timeout_s, app.whole, state.metrics, settings.max_body_bytes
        )
        config = uvicorn.Config(
            counting, http=protocol, log_config=None, access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            await scenario(served)
        finally:
            server.should_exit = True
            await task
            await state.stop()

    asyncio.run(main())


async def exchange(port: int, data: bytes, answers: int = 1, wait: float = 10.0) -> list[Reply]:
    """Send ``data`` on a new connection; read ``answers`` answers (fewer when the server
    closes first)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    replies = []
    try:
        for _ in range(answers):
            reply = await asyncio.wait_for(Reply.read(reader), wait)
            if reply is None:
                break
            replies.append(reply)
        if replies:  # closed: the server ends the connection at once
            try:
                replies[-1].closed = await asyncio.wait_for(reader.read(1), 0.5) == b""
            except TimeoutError:
                replies[-1].closed = False
    finally:
        writer.close()
    return replies


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool = False

    @classmethod
    async def read(cls, reader: asyncio.StreamReader) -> Reply | None:
        lines = ["HTTP/1.1 100 Continue"]
        while lines[0].split()[1] == "100":  # an interim answer to Expect: 100-continue
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return None
            lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers["content-length"]))
        return cls(int(lines[0].split()[1]), headers, body)

    def same_answer(self) -> tuple[int, bytes, str | None, str | None]:
        """What two paths must answer alike (not the date, nor a new request ID)."""
        return (
            self.status,
            self.body,
            self.headers.get("content-type"),
            self.headers.get("inference-header-content-length"),
        )


def request(
    path: str, body: bytes, headers: dict[str, str] | None = None, *, chunked: bool = False
) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def json_body(features: np.ndarray, **extra: Any) -> bytes:
    tensor = {
        "name": "features",
        "shape": list(features.shape),
        "datatype": "FP32",
        "data": features.ravel().tolist(),
    }
    return json.dumps({"inputs": [tensor], **extra}).encode()


def binary_body(features: np.ndarray) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": list(features.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": features.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return header + features.tobytes(), {"Inference-Header-Content-Length": str(len(header))}


def cases() -> dict[str, tuple[str, bytes, dict[str, str]]]:
    features = rows(3)
    binary, binary_headers = binary_body(features)
    nan = features.copy()
    nan[1, 2] = np.nan
    return {
        "json": ("/v2/models/tiny/infer", json_body(features, id="a"), {}),
        "binary": ("/v2/models/tiny/infer", binary, binary_headers),
        "versioned": ("/v2/models/tiny/versions/1/infer", json_body(features), {}),
        "unknown-model": ("/v2/models/nope/infer", json_body(features), {}),
        "unknown-version": ("/v2/models/tiny/versions/9/infer", json_body(features), {}),
        "nan": ("/v2/models/tiny/infer", json_body(nan), {}),
        "nan-binary": ("/v2/models/tiny/infer", *binary_body(nan)),
        "bad-header-length": (
            "/v2/models/tiny/infer",
            binary,
            {"Inference-Header-Content-Length": "\u00b2".encode().decode("latin-1")},
        ),
        "not-json": ("/v2/models/tiny/infer", b"{nope", {}),
        "empty": ("/v2/models/tiny/infer", b"", {}),
        "unknown-field": ("/v2/models/tiny/infer", json_body(features, colour="red"), {}),
    }


@pytest.mark.parametrize("case", sorted(cases()))
def test_a_small_request_is_answered_without_asgi_as_asgi_answers_it(
    repository: Path, case: str
) -> None:
    path, body, headers = cases()[case]

    async def scenario(served: Served) -> None:
        (whole,) = await exchange(served.port, request(path, body, headers))
        assert served.asgi_paths == [], "a small body went through the ASGI app"
        (streamed,) = await exchange(served.port, request(path, body, headers, chunked=True))
        assert served.asgi_paths == [path], "a chunked body did not go through the ASGI app"
        assert whole.same_answer() == streamed.same_answer()
        assert whole.headers["x-request-id"] and whole.headers["server"] == "uvicorn"

    with_server(repository, scenario)


def test_the_answer_is_the_models(repository: Path) -> None:
    features = rows(3)
    body, headers = binary_body(features)
    expected = reference(repository / "tiny" / "2", features)

    async def scenario(served: Served) -> None:
        (reply,) = await exchange(served.port, request("/v2/models/tiny/infer", body, headers))
        assert reply.status == 200, reply.body
        split = int(reply.headers["inference-header-content-length"])
        outputs = json.loads(reply.body[:split])["outputs"]
        offset = split
        for output in outputs:
            size = output["parameters"]["binary_data_size"]
            raw = reply.body[offset : offset + size]
            offset += size
            dtype = {"FP32": np.float32, "INT64": np.int64}[output["datatype"]]
            got = np.frombuffer(raw, dtype).reshape(output["shape"])
            np.testing.assert_allclose(got, expected[output["name"]], rtol=1e-5, atol=1e-6)
        assert offset == len(reply.body)

    with_server(repository, scenario)


def test_pipelined_requests_are_answered_in_order(repository: Path) -> None:
    """Three requests in one write, the middle one for the ASGI app: three answers, in
    the order asked, on one connection kept alive."""
    first, second = json_body(rows(1), id="first"), json_body(rows(2), id="third")
    data = (
        request("/v2/models/tiny/infer", first)
        + b"GET /v2/models/tiny/ready HTTP/1.1\r\nHost: test\r\n\r\n"
        + request("/v2/models/tiny/infer", second)
    )

    async def scenario(served: Served) -> None:
        replies = await exchange(served.port, data, answers=3)
        assert [r.status for r in replies] == [200, 200, 200]
        assert json.loads(replies[0].body)["id"] == "first"
        assert json.loads(replies[1].body) == {"name": "tiny", "ready": True}
        assert json.loads(replies[2].body)["id"] == "third"
        assert not replies[2].closed
        # the third came while the second was queued: uvicorn's path, in its turn
        assert served.asgi_paths[0] == "/v2/models/tiny/ready"

    with_server(repository, scenario)


def test_connection_close_and_http_1_0_close_after_the_answer(repository: Path) -> None:
    body = json_body(rows(1))

    async def scenario(served: Served) -> None:
        close = request("/v2/models/tiny/infer", body, {"Connection": "close"})
        old = request("/v2/models/tiny/infer", body).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
        for data in (close, old):
            (reply,) = await exchange(served.port, data, answers=2)
            assert reply.status == 200, reply.body
            assert reply.headers["connection"] == "close"
            assert reply.closed
        assert served.asgi_paths == []

    with_server(repository, scenario)


def test_the_client_request_id_is_echoed(repository: Path) -> None:
    async def scenario(served: Served) -> None:
        headers = {"X-Request-ID": "trace-42"}
        (reply,) = await exchange(
            served.port, request("/v2/models/tiny/infer", json_body(rows(1)), headers)
        )
        assert reply.headers["x-request-id"] == "trace-42"

    with_server(repository, scenario)


def test_a_stalled_small_body_answers_408_and_closes(repository: Path) -> None:
    body = json_body(rows(1))
    head = request("/v2/models/tiny/infer", body)[: -len(body)]

    async def scenario(served: Served) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        (reply,) = await exchange(served.port, head + body[:10], wait=5 * BODY_TIMEOUT_S)
        elapsed = loop.time() - start
        assert reply.status == 408, reply.body
        assert "LOSSSERVE_BODY_TIMEOUT_S" in json.loads(reply.body)["error"]
        assert reply.closed
        assert BODY_TIMEOUT_S <= elapsed < 4 * BODY_TIMEOUT_S

    with_server(repository, scenario)


def test_what_the_protocol_leaves_to_asgi(repository: Path) -> None:
    """Large, compressed, queried and other requests take uvicorn's path, answered."""
    count = 1
    while len(big := json_body(rows(count))) <= WHOLE_MAX_BYTES:
        count *= 2
    small = json_body(rows(1))
    sent = {
        "large": request("/v2/models/tiny/infer", big),
        "query": request("/v2/models/tiny/infer?x=1", small),
        "escaped": request("/v2/models/t%69ny/infer", small),
        "expect": request("/v2/models/tiny/infer", small, {"Expect": "100-continue"}),
    }

    async def scenario(served: Served) -> None:
        for name, data in sent.items():
            (reply,) = await exchange(served.port, data)
            assert reply.status == 200, (name, reply.body)
        assert len(served.asgi_paths) == len(sent), served.asgi_paths
        assert all(re.fullmatch(r"/v2/models/tiny/infer", p) for p in served.asgi_paths)

    with_server(repository, scenario)


def test_a_repeated_header_is_decoded_once_and_each_body_read_anew(repository: Path) -> None:
    """The same binary-extension header with other tensors, and with a body of another
    length: each answer is the model's on that body's own rows."""

    async def scenario(served: Served) -> None:
        for seed in range(3):
            features = rows(3, seed=seed)
            body, headers = binary_body(features)
            (reply,) = await exchange(served.port, request("/v2/models/tiny/infer", body, headers))
            assert reply.status == 200, reply.body
            split = int(reply.headers["inference-header-content-length"])
            first = json.loads(reply.body[:split])["outputs"][0]
            size = first["parameters"]["binary_data_size"]
            got = np.frombuffer(reply.body[split : split + size], np.float32)
            expected = reference(repository / "tiny" / "2", features)[first["name"]]
            np.testing.assert_allclose(got.reshape(first["shape"]), expected, rtol=1e-5, atol=1e-6)
        # the header of three rows, the bytes of two: refused, as decoding refuses it
        short = body[: len(body) - features.itemsize * features.shape[1]]
        (reply,) = await exchange(served.port, request("/v2/models/tiny/infer", short, headers))
        assert reply.status == 400, reply.body
        assert b"binary_data_size" in reply.body

    with_server(repository, scenario)
