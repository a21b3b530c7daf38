"""``LossClient`` when the other end is not a healthy lossserve: every failure is a
``LossServeError``, and gRPC calls that answered ``UNAVAILABLE`` are sent again.

The peers are real servers on loopback: nothing listening, an HTTP server that answers as a
proxy does when no replica is left (an HTML 502), and a gRPC server with the generated
``LossService`` base class whose ``ComputeLoss`` answers ``UNAVAILABLE`` the first time, as
nginx does for a call a dying replica held.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import numpy as np
import pytest

from bench._server import free_port
from lossserve_client import LossClient, LossServeError
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc
from lossserve_proto.tensors import encode_tensor

LOGITS = np.zeros((2, 3), dtype=np.float32)
TARGETS = np.array([0, 2])


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_nothing_listening_is_unavailable(transport: str) -> None:
    port = free_port()
    client = (
        LossClient.rest(f"http://127.0.0.1:{port}", timeout=5)
        if transport == "rest"
        else LossClient.grpc(f"127.0.0.1:{port}", timeout=5)
    )
    with client, pytest.raises(LossServeError) as caught:
        client.compute_loss("cross_entropy", LOGITS, TARGETS)
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.retryable


class _BadGateway(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        self.send_response(502)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's names

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bad_gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("binary_bytes", [1 << 20, 0], ids=["json", "binary"])
def test_a_proxys_html_error_page_is_a_loss_serve_error(
    bad_gateway: str, binary_bytes: int
) -> None:
    with LossClient.rest(bad_gateway, binary_bytes=binary_bytes) as client:
        for call in (
            lambda: client.compute_loss("cross_entropy", LOGITS, TARGETS),
            client.list_losses,
            lambda: client.predict("tiny", np.zeros((1, 4))),
        ):
            with pytest.raises(LossServeError) as caught:
                call()
            assert (caught.value.code, caught.value.status) == ("UNAVAILABLE", 502)
            assert "502 Bad Gateway" in caught.value.message


class _FailsOnce(pb_grpc.LossServiceServicer):
    def __init__(self) -> None:
        self.calls = 0

    def ComputeLoss(  # noqa: N802 - the generated name
        self, request: pb.ComputeLossRequest, context: grpc.ServicerContext
    ) -> pb.ComputeLossResponse:
        self.calls += 1
        if self.calls == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "lossserve: no replica answered")
        value = np.asarray(request.logits.shape[0], dtype=np.float32)
        return pb.ComputeLossResponse(
            loss=request.loss, reduction="mean", value=encode_tensor(value), device="cpu"
        )


@pytest.mark.parametrize("rows", [4, 65536], ids=["small", "1MiB"])
def test_grpc_sends_an_unavailable_call_again(rows: int) -> None:
    """Past gRPC's default 256 KiB retry buffer too (a 1 MiB request, still unary)."""
    servicer = _FailsOnce()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_LossServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        logits = np.zeros((rows, 4), dtype=np.float32)
        with LossClient.grpc(f"127.0.0.1:{port}", timeout=10) as client:
            result = client.compute_loss("cross_entropy", logits, np.zeros(rows, dtype=np.int64))
    finally:
        server.stop(None)
    assert servicer.calls == 2
    assert float(result.value) == rows  # the second attempt's answer
