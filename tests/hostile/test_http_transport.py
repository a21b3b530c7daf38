"""Hostile HTTP framing, over plain sockets: bodies above the limit (declared or chunked),
truncated bodies that stall, clients that disconnect mid-request, odd ``Content-Length``,
and rejected requests that would grow ``/metrics`` without bound.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import numpy as np
import orjson
import pytest

from ._harness import (
    BODY_TIMEOUT_S,
    CLIENT_TIMEOUT_S,
    DEADLINE_S,
    DEFAULTS,
    FEATURES,
    HEADER_LENGTH,
    MAX_BODY,
    SEND_TIMEOUT_S,
    SLACK_S,
    Harness,
    RawReply,
    b64,
    binary_body,
    chunked,
    log_problems,
    raw_http,
    request_head,
    tree_rss,
)

pytestmark = pytest.mark.slow

POST_ROUTES = [
    "/loss",
    "/class-weights",
    "/evaluate",
    "/thresholds",
    "/v2/models/digits/infer",
    "/models/digits/predict",
    "/v2/repository/index",
]
JSON = {"Content-Type": "application/json"}
INFLIGHT = DEFAULTS.max_inflight_bytes


@pytest.mark.parametrize("path", POST_ROUTES)
def test_declared_length_above_the_limit_is_refused_before_the_body(
    hostile: Harness, path: str
) -> None:
    head = request_head(path, {**JSON, "Content-Length": str(MAX_BODY + 1)})
    reply = raw_http(hostile.port, head, wait=DEADLINE_S + SLACK_S)
    # the repository API may refuse the caller first
    allowed = (401, 403, 413) if "repository" in path else (413,)
    assert reply.status in allowed, f"{path}: expected 413 without reading the body; " + (
        reply.describe()
    )


@pytest.mark.parametrize("path", ["/loss", "/v2/models/digits/infer", "/models/digits/predict"])
def test_chunked_body_above_the_limit_is_refused(hostile: Harness, path: str) -> None:
    head = request_head(path, {**JSON, "Transfer-Encoding": "chunked"})
    reply = raw_http(hostile.port, head, chunked(MAX_BODY + 8 * 1024 * 1024), wait=CLIENT_TIMEOUT_S)
    assert reply.status is not None and reply.status < 500, reply.describe()
    assert reply.status == 413, reply.describe()
    assert reply.elapsed <= DEADLINE_S + SLACK_S, reply.describe()


STALL_WAIT_S = BODY_TIMEOUT_S + SLACK_S
"""A stalled body or request line must be given up on (a 4xx, or the connection closed)
within the server's body timeout, plus slack."""


def _assert_gave_up(reply: RawReply, what: str) -> None:
    assert reply.status is None or 400 <= reply.status < 500, f"{what}: {reply.describe()}"
    assert reply.status is not None or reply.closed, (
        f"{what}: the server still waits (LOSSSERVE_BODY_TIMEOUT_S={BODY_TIMEOUT_S:g}); "
        f"{reply.describe()}"
    )
    assert reply.elapsed <= STALL_WAIT_S, f"{what}: {reply.describe()}"


@pytest.mark.parametrize("path", ["/loss", "/v2/models/digits/infer"])
def test_chunked_body_with_a_huge_chunk_size_is_refused(hostile: Harness, path: str) -> None:
    head = request_head(path, {**JSON, "Transfer-Encoding": "chunked"})
    reply = raw_http(hostile.port, head, [b"FFFFFFFFFFFFFFFF\r\n{}"], wait=STALL_WAIT_S + 1)
    _assert_gave_up(reply, path)


@pytest.mark.parametrize("path", ["/loss", "/v2/models/digits/infer", "/models/digits/predict"])
def test_truncated_body_does_not_hang_the_read(hostile: Harness, path: str) -> None:
    """Declared 100 000 bytes, sent 10, then silence: the server must give up on the read
    (answer a 4xx, or close) instead of waiting forever."""
    head = request_head(path, {**JSON, "Content-Length": "100000"})
    reply = raw_http(hostile.port, head, [b'{"loss": "'], wait=STALL_WAIT_S + 1)
    _assert_gave_up(reply, path)


@pytest.mark.parametrize("path", ["/loss", "/v2/models/loss.focal/infer"])
def test_declared_binary_bodies_take_memory_only_as_they_come(hostile: Harness, path: str) -> None:
    """A binary body of known length is read into one buffer of that length: 12 clients
    that each declare the largest body (64 MiB) and send 10 bytes must not make the server
    hold 64 MiB for each one admitted while it waits for the rest (4 are, with the budget
    here: 256 MiB if the buffers were filled ahead); then every read is given up on."""
    head = request_head(
        path,
        {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(MAX_BODY),
            HEADER_LENGTH: "100",
        },
    )
    before = tree_rss(hostile.pid)
    with ThreadPoolExecutor(12) as pool:
        replies = [
            pool.submit(raw_http, hostile.port, head, [b'{"loss": "'], wait=STALL_WAIT_S + 1)
            for _ in range(12)
        ]
        time.sleep(BODY_TIMEOUT_S / 2)
        grown = tree_rss(hostile.pid) - before
        for reply in replies:
            _assert_gave_up(reply.result(), path)
    assert grown < MAX_BODY, f"the server grew by {grown / 2**20:.0f} MiB"


def test_a_body_trickled_within_the_timeout_is_read(hostile: Harness) -> None:
    """The body timeout bounds the wait for each piece, not the whole body: pieces that
    come 0.6 timeouts apart, 1.8 timeouts in all, are read and answered."""
    body = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP32",
                    "shape": [1, FEATURES],
                    "data": [0.0] * FEATURES,
                }
            ]
        }
    )
    head = request_head("/v2/models/digits/infer", {**JSON, "Content-Length": str(len(body))})
    third = len(body) // 3

    def pieces() -> Iterator[bytes]:
        for start in (0, third, 2 * third):
            if start:
                time.sleep(0.6 * BODY_TIMEOUT_S)
            yield body[start : start + third] if start < 2 * third else body[start:]

    reply = raw_http(hostile.port, head, pieces(), wait=3 * BODY_TIMEOUT_S + SLACK_S)
    assert reply.status == 200, reply.describe()
    assert reply.elapsed >= 1.2 * BODY_TIMEOUT_S, reply.describe()


def test_stalled_headers_do_not_hang_the_connection(hostile: Harness) -> None:
    """Half a request line and silence (slowloris): the connection is dropped in time."""
    reply = raw_http(hostile.port, b"POST /loss HTTP/1.1\r\nHost: 1", wait=STALL_WAIT_S + 1)
    _assert_gave_up(reply, "a stalled request head")


def test_malformed_requests_are_logged_as_json_lines(hostile: Harness) -> None:
    """Every log line is one JSON object (DESIGN.md), a malformed request's included."""
    offset = hostile.log_offset()
    for head in (b"GARBAGE\r\n\r\n", b"POST /loss HTTP/1.1\r\nContent-Length: x\r\n\r\n"):
        reply = raw_http(hostile.port, head, wait=DEADLINE_S)
        assert reply.status is None or 400 <= reply.status < 500, reply.describe()
    time.sleep(0.3)
    problems = log_problems(hostile.log_since(offset))
    assert not problems, "log lines that are not JSON records:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "value", [b"\xc2\xb2", "²".encode("latin-1"), "١".encode(), b"-1", b"1e3", b"0x10", b"9" * 30]
)
def test_odd_content_length_is_refused(hostile: Harness, value: bytes) -> None:
    head = request_head("/loss", {**JSON, "Content-Length": value})
    reply = raw_http(hostile.port, head, [b"{}"], wait=DEADLINE_S + SLACK_S)
    assert reply.status is not None and 400 <= reply.status < 500, reply.describe()


def _heavy_loss_body() -> bytes:
    """A focal Hessian that takes seconds on one CPU thread (admitted today)."""
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(16, 512)).astype(np.float32)
    targets = rng.integers(0, 512, 16).astype(np.int64)
    return orjson.dumps(
        {
            "loss": "focal",
            "logits": b64(logits),
            "targets": b64(targets),
            "return_hessian": True,
        }
    )


def _big_infer_body() -> bytes:
    rows = np.zeros((4096, FEATURES), np.float32)
    return orjson.dumps(
        {
            "inputs": [
                {"name": "features", "shape": [4096, FEATURES], "datatype": "FP32",
                 "data": rows.ravel().tolist()}
            ]
        }
    )  # fmt: skip


def _small_infer_body() -> bytes:
    rows = np.zeros((2, FEATURES), np.float32)
    return orjson.dumps(
        {"inputs": [{"name": "features", "shape": [2, FEATURES], "datatype": "FP32",
                     "data": rows.ravel().tolist()}]}
    )  # fmt: skip


DISCONNECTS = {
    "loss-mid-body": ("/loss", 0.5),
    "infer-mid-body": ("/v2/models/digits/infer", 0.5),
    # a body this small is read by the HTTP protocol itself, not through the ASGI app
    "infer-small-mid-body": ("/v2/models/digits/infer", 0.5),
    "infer-small-while-computing": ("/v2/models/digits/infer", 1.0),
    "predict-mid-body": ("/models/digits/predict", 0.5),
    "evaluate-mid-body": ("/evaluate", 0.5),
    "loss-while-computing": ("/loss", 1.0),
}


@pytest.mark.parametrize("case", sorted(DISCONNECTS))
def test_client_disconnect_is_one_log_line_without_traceback(hostile: Harness, case: str) -> None:
    path, fraction = DISCONNECTS[case]
    if path == "/loss":
        body = _heavy_loss_body()
    else:
        body = _small_infer_body() if "small" in case else _big_infer_body()
    sent = body[: int(len(body) * fraction)]
    offset = hostile.log_offset()
    head = request_head(path, {**JSON, "Content-Length": str(len(body))})
    if fraction < 1.0:  # part of the body, then away
        raw_http(hostile.port, head, [sent], close=True)
    else:  # the whole body, then away while it computes
        raw_http(hostile.port, head, [body], wait=0.3)
    time.sleep(1.5)  # the server notices
    lines = hostile.log_since(offset)
    problems = log_problems(lines)
    assert not problems, f"{case}: the disconnect was logged with a traceback or an error:\n" + (
        "\n".join(problems)
    )
    about = [line for line in lines if "disconnect" in line.lower()]
    assert len(about) <= 1, f"{case}: the disconnect took {len(about)} lines:\n" + "\n".join(about)


def test_rejected_loss_names_do_not_grow_metrics(hostile: Harness) -> None:
    """3000 rejected requests, each with its own 10 KB loss name (gRPC: test_grpc.py)."""
    assert hostile.http is not None

    def metrics_size() -> int:
        size = 0
        with hostile.http.stream("GET", "/metrics", timeout=CLIENT_TIMEOUT_S) as response:  # type: ignore[union-attr]
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > 64 * 1024 * 1024:
                    break
        return size

    before = metrics_size()
    tail = b'","logits":[[1.0,2.0]],"targets":[0]}'
    for index in range(3000):
        name = f"{index:05d}".encode() + b"x" * 10240
        response = hostile.http.post(
            "/loss", content=b'{"loss":"' + name + tail, headers=JSON, timeout=CLIENT_TIMEOUT_S
        )
        assert 400 <= response.status_code < 500, response.text[:200]
        if index in (99, 999, 2999):
            grown = metrics_size() - before
            assert grown < 256 * 1024, (
                f"/metrics grew by {grown} bytes after {index + 1} rejected loss names "
                f"(from {before} bytes)"
            )


def test_metrics_scrape_is_bounded_after_rejections(hostile: Harness) -> None:
    reply = hostile.get("/metrics")
    assert reply.status == 200, reply.describe()
    assert len(reply.body) < 1024 * 1024, f"/metrics is {len(reply.body)} bytes"


def test_request_id_header_of_10kb_is_harmless(hostile: Harness) -> None:
    reply = hostile.post(
        "/loss", json={"loss": "nope", "logits": [[1.0]], "targets": [0]},
        headers={"X-Request-ID": "r" * 10240},
    )  # fmt: skip
    assert reply.status is not None and 400 <= reply.status < 500, reply.describe()


def test_http_client_helper_is_sane(hostile: Harness) -> None:
    """The suite's own plumbing: a raw-socket request answers like httpx's."""
    body = orjson.dumps({"loss": "nope", "logits": [[1.0]], "targets": [0]})
    head = request_head("/loss", {**JSON, "Content-Length": str(len(body))})
    reply = raw_http(hostile.port, head, [body])
    assert reply.status == 404 or reply.status == 400, reply.describe()
    with httpx.Client(base_url=f"http://127.0.0.1:{hostile.port}") as client:
        assert client.get("/v2/health/live").status_code == 200


def _reader(port: int) -> socket.socket:
    """A client socket connected to the server, with little room to receive on its side."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(CLIENT_TIMEOUT_S)
    sock.connect(("127.0.0.1", port))
    return sock


def _answer_length(data: bytes) -> int | None:
    """The bytes of the whole answer that ``data`` begins, head included, once the head has
    come."""
    top, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    for line in top.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(top) + len(sep) + int(value)
    return None


def _unread_answer(port: int, request: bytes, wait: float) -> tuple[int, int, bool]:
    """Send a request, read none of the answer for ``wait`` s, then all the server still
    sends: (bytes of the answer declared, bytes read, whether the connection was reset
    rather than closed)."""
    sock = _reader(port)
    try:
        sock.sendall(request)
        time.sleep(wait)
        data, reset = b"", False
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                reset = True
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    return _answer_length(data) or 0, len(data), reset


@dataclass(frozen=True)
class _Gradient:
    """A /loss request whose answer is a rows x 128 float32 gradient, binary both ways."""

    body: bytes
    headers: dict[str, str]

    @property
    def raw(self) -> bytes:
        """The whole request, as a socket sends it."""
        head = request_head("/loss", {**self.headers, "Content-Length": str(len(self.body))})
        return head + self.body


def _gradient_request(rows: int) -> _Gradient:
    rng = np.random.default_rng(11)
    logits = rng.normal(size=(rows, 128)).astype(np.float32)
    targets = rng.integers(0, 128, rows).astype(np.int64)
    header = {
        "loss": "focal",
        "return_grad": True,
        "logits": {"shape": [rows, 128], "dtype": "float32", "binary_data_size": logits.nbytes},
        "targets": {"shape": [rows], "dtype": "int64", "binary_data_size": targets.nbytes},
    }
    return _Gradient(*binary_body(header, logits.tobytes(), targets.tobytes()))


@contextlib.contextmanager
def _unread_answers(port: int, request: bytes, count: int) -> Iterator[None]:
    """``count`` clients that each send ``request`` and, once its answer has begun, read no
    more of it; they go at the end."""
    socks: list[socket.socket] = []
    try:
        for index in range(count):
            socks.append(_reader(port))
            socks[-1].sendall(request)
            assert socks[-1].recv(12) == b"HTTP/1.1 200", f"request {index}"
        yield
    finally:
        for sock in socks:
            sock.close()


def test_an_answer_nobody_reads_is_dropped_after_the_send_timeout(hostile: Harness) -> None:
    """Four clients each ask for an 8 MiB gradient and read none of it: after the send
    timeout the server resets their connections (nginx's send_timeout), instead of holding
    the bytes for as long as the clients keep them open; a client that reads gets it all."""
    request = _gradient_request(16384).raw
    offset = hostile.log_offset()
    with ThreadPoolExecutor(4) as pool:
        unread = [
            pool.submit(_unread_answer, hostile.port, request, SEND_TIMEOUT_S + SLACK_S + 1)
            for _ in range(4)
        ]
        results = [future.result() for future in unread]
    for declared, received, reset in results:
        assert declared > 16384 * 128 * 4, "no answer began"
        assert reset and received < declared, (
            f"the server kept the unread answer: {received} of {declared} bytes came after "
            f"{SEND_TIMEOUT_S + SLACK_S + 1:g} s"
        )
    lines = [line for line in hostile.log_since(offset) if "read none of its answer" in line]
    assert len(lines) == len(results), lines
    declared, received, reset = _unread_answer(hostile.port, request, 0)
    assert (received, reset) == (declared, False)


def test_an_answer_read_slowly_is_sent_whole(hostile: Harness) -> None:
    """A client that takes at most 256 KiB of its 4 MiB answer every 0.6 send timeouts
    (several timeouts in all) gets all of it: the timeout bounds a wait with no progress,
    not the answer."""
    sock = _reader(hostile.port)
    start = time.monotonic()
    data, length = b"", None
    try:
        sock.sendall(_gradient_request(8192).raw)
        while length is None or len(data) < length:
            time.sleep(0.6 * SEND_TIMEOUT_S)
            sip = len(data) + 256 * 1024
            while len(data) < min(sip, length or sip):
                chunk = sock.recv(sip - len(data))
                assert chunk, f"the server closed the connection after {len(data)} bytes"
                data += chunk
            length = _answer_length(data)
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert time.monotonic() - start > 3 * SEND_TIMEOUT_S  # it did wait on the client


def test_answers_not_yet_read_count_against_the_inflight_bytes(hostile: Harness) -> None:
    """A /loss request's bytes count against LOSSSERVE_MAX_INFLIGHT_BYTES until its answer
    has left, not until it is computed: with seven 32 MiB answers unread, an eighth request
    would pass the 256 MiB and is refused (429); once the send timeout has cut the idle
    readers off, it is answered."""
    request = _gradient_request(65536)
    held = -(-INFLIGHT // len(request.body)) - 1  # the most that fit
    with _unread_answers(hostile.port, request.raw, held):
        refused = hostile.post("/loss", content=request.body, headers=request.headers)
        assert refused.status == 429, refused.describe()
        time.sleep(SEND_TIMEOUT_S + SLACK_S)
        answered = hostile.post("/loss", content=request.body, headers=request.headers)
        assert answered.status == 200, answered.describe()


def test_answers_not_yet_read_hold_no_place_in_the_workers_lane(hostile: Harness) -> None:
    """Ten clients each leave an 8 MiB answer unread, one more than the worker's lane takes
    (one running and eight queued): their bytes stay counted, but a finished request gives
    its place back, so the next requests still get a worker."""
    request = _gradient_request(16384)
    with _unread_answers(hostile.port, request.raw, 10):
        answered = hostile.post("/loss", content=request.body, headers=request.headers)
        assert answered.status == 200, answered.describe()


def test_pipelined_answers_nobody_reads_are_dropped_without_an_error(hostile: Harness) -> None:
    """Three /loss requests pipelined on one connection whose client reads nothing: the
    reset after the timeout ends the answer being sent and the ones queued behind it
    quietly (a pipelined request replaces the running one as uvicorn's cycle, which then
    went on writing to the closed transport: a traceback and an error line)."""
    request = _gradient_request(16384)
    offset = hostile.log_offset()
    sock = _reader(hostile.port)
    sender = ThreadPoolExecutor(1)
    try:
        sent = sender.submit(sock.sendall, request.raw * 3)
        time.sleep(SEND_TIMEOUT_S + SLACK_S + 1)
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            sent.result(timeout=10)
        sender.shutdown()
    time.sleep(0.5)
    lines = hostile.log_since(offset)
    assert any("read none of its answer" in line for line in lines), lines
    problems = log_problems(lines)
    assert not problems, "\n".join(problems)
    answered = hostile.post("/loss", content=request.body, headers=request.headers)
    assert answered.status == 200, answered.describe()
