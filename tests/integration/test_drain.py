"""SIGTERM drains a real ``lossserve serve`` process: in-flight HTTP and gRPC requests finish
(their queued jobs included), readiness reports not ready meanwhile, new connections are
refused, and the process exits 0 within the grace period; past it, requests are cut off
with a retryable status and the process still exits 0 at once.

The slow request is subset softmax's gradient and Hessian diagonal over a large batch, a
recursion over the classes with max_k terms (every other loss's diagonal is a closed form
of a few passes now), about rows x classes x max_k steps: on one CPU thread of this 2-core
machine, 100 000 x 20 logits with max_k=5 take 0.5 s, 100 000 x 40 with max_k=32 3.2 s,
50 000 x 64 with max_k=64 6.6 s. One worker runs them one after the other, on one thread
(``SLOW``), so that a machine with more cores is not faster; the tests that need a request
to outlast something leave a margin for a machine several times faster than this one (a
CI machine ran a 1.2 s job in under 1 s). Its estimated memory is above the default
per-request limit, which these servers raise (``SLOW``).
"""

from __future__ import annotations

import contextlib
import json
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._server import Server, start_server, stop_server, wait_ready
from lossserve.models.card import BatchingConfig
from lossserve_proto.inference import grpc_service_pb2 as oip
from lossserve_proto.inference import grpc_service_pb2_grpc as oip_grpc
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc
from tests.processes import SERVICE_ENV
from tests.service.models.builders import rows, write_model

from ._serving import (
    MODEL_QUEUE,
    MODEL_RUNNING,
    WORKER_QUEUE,
    batch,
    loss_body,
    loss_message,
    waiting,
)

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


@pytest.fixture
def start() -> Iterator[Callable[[dict[str, str]], Server]]:
    """Start a replica with extra environment; every one is stopped at the end."""
    with contextlib.ExitStack() as stack:

        def launch(env: dict[str, str]) -> Server:
            log = stack.enter_context(tempfile.TemporaryFile())
            server = start_server([], {**SERVICE_ENV, **env}, log)
            stack.callback(stop_server, server)
            wait_ready(server, ["/v2/health/ready"], timeout=60)
            return server

        yield launch


def _logs(server: Server) -> list[str]:
    server.log.seek(0)
    return server.log.read().decode(errors="replace").splitlines()


def _wait_until_queued(
    server: Server, jobs: int, gauge: str = WORKER_QUEUE, timeout: float = 30
) -> None:
    """Until ``jobs`` requests wait in the queues ``gauge`` counts (behind the running job,
    for the workers'): all those requests are in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if waiting(httpx.get(f"http://{server.http_url}/metrics").text, gauge) >= jobs:
            return
        time.sleep(0.02)
    pytest.fail(f"{jobs} requests never waited in {gauge}:\n{server.log_tail()}")


def _status(call: Callable[[], object]) -> grpc.StatusCode:
    """The status a gRPC call ends with."""
    try:
        call()
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def _timed(fn: Callable[[], Any]) -> Callable[[], tuple[Any, float]]:
    """``fn`` that also returns when it finished."""

    def call() -> tuple[Any, float]:
        result = fn()
        return result, time.monotonic()

    return call


SLOW = {
    "LOSSSERVE_WORKER_THREADS": "1",
    "LOSSSERVE_MAX_REQUEST_MEMORY_BYTES": str(64 << 30),
    "LOSSSERVE_MAX_REQUEST_WORK": "1e14",
    "LOSSSERVE_MAX_BODY_BYTES": str(256 << 20),
    "LOSSSERVE_MAX_JSON_BYTES": str(256 << 20),
    "LOSSSERVE_GRPC_MAX_MESSAGE_BYTES": str(256 << 20),
}
"""One worker thread, whatever the machine's cores; room for the slow requests' estimated
memory and work (their real peak is far below), their JSON bodies and gRPC messages."""


def slow_request(rows: int, max_k: int, columns: int = 20) -> tuple[dict[str, Any], Any]:
    """The REST body and the gRPC message of a slow subset softmax request: ``rows`` x
    ``columns`` logits, one positive a row."""
    logits, classes = batch(rows, columns)
    targets = np.eye(columns, dtype=np.float32)[classes]
    flags = {"return_grad": True, "return_hessian": True, "params": {"max_k": max_k}}
    return (
        loss_body("subset_softmax", logits, targets, **flags),
        loss_message("subset_softmax", logits, targets, **flags),
    )


def test_sigterm_lets_in_flight_requests_finish_then_exits_zero(
    start: Callable[[dict[str, str]], Server],
) -> None:
    grace, delay = 30, 1.0
    server = start(
        {
            "LOSSSERVE_SHUTDOWN_GRACE_S": str(grace),
            "LOSSSERVE_SHUTDOWN_DELAY_S": str(delay),
            **SLOW,
        }
    )
    url = f"http://{server.http_url}"
    # about 3 s each, one after another: the check that the drain is still going comes
    # about 1.5 s after the signal, with about 10 s of work left
    body, message = slow_request(100_000, 32, columns=40)
    channel = grpc.insecure_channel(server.grpc_url, options=GRPC_OPTIONS)
    stub = pb_grpc.LossServiceStub(channel)

    def rest() -> Any:
        return httpx.post(f"{url}/loss", json=body, timeout=60)

    def rpc() -> Any:
        return stub.ComputeLoss(message, timeout=60)

    with channel, ThreadPoolExecutor(4) as pool:
        calls = [pool.submit(_timed(call)) for call in (rest, rpc, rest, rpc)]
        _wait_until_queued(server, jobs=3)  # one running, three waiting: all four in flight
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        # Draining: still served, but not ready, on both transports.
        ready = httpx.get(f"{url}/v2/health/ready", timeout=5)
        assert (ready.status_code, ready.json()) == (503, {"ready": False})
        with grpc.insecure_channel(server.grpc_url) as fresh:
            checked = health_pb2_grpc.HealthStub(fresh).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
            assert checked.status == health_pb2.HealthCheckResponse.NOT_SERVING
            server_ready = oip_grpc.GRPCInferenceServiceStub(fresh).ServerReady(
                oip.ServerReadyRequest(), timeout=5
            )
            assert not server_ready.ready

        # Past the delay: new connections are refused while the old requests still run.
        refused = None
        while time.monotonic() < signalled + delay + 5 and refused is None:
            try:
                httpx.get(f"{url}/v2/health/live", timeout=1)
            except httpx.ConnectError:
                refused = time.monotonic()
            except (httpx.RemoteProtocolError, httpx.ReadError):
                pass  # accepted as the listener closed, then closed (or reset: ECONNRESET)
            time.sleep(0.05)
        assert refused is not None, "the HTTP listener was never closed"
        with grpc.insecure_channel(server.grpc_url) as fresh:
            with pytest.raises(grpc.RpcError) as raised:
                health_pb2_grpc.HealthStub(fresh).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2
                )
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert not all(call.done() for call in calls), "the drain was over before it was tested"

        results = [call.result() for call in calls]

    code = server.process.wait(timeout=grace + delay + 5)
    exited = time.monotonic()
    logs = _logs(server)
    assert code == 0, "\n".join(logs[-20:])
    assert exited - signalled < grace + delay
    for (response, _), (answer, _) in zip(results[::2], results[1::2], strict=True):
        assert response.status_code == 200, response.text
        value = np.frombuffer(answer.value.data, dtype=np.float32)
        assert response.json()["value"] == pytest.approx(value.item(), rel=1e-6)
        assert response.json()["hessian_diag"]["shape"] == [100_000, 40]
        assert list(answer.hessian_diag.shape) == [100_000, 40]
    after = [finished for _, finished in results if finished > signalled]
    assert len(after) >= 2, "most of the requests should have finished during the drain"
    records = [json.loads(line) for line in logs]  # structured logs, one object a line
    assert [r["message"] for r in records if r["logger"] == "lossserve"][-2:] == [
        "draining",
        "drained",
    ]


def test_a_request_longer_than_the_grace_period_is_cut_off(
    start: Callable[[dict[str, str]], Server],
) -> None:
    grace = 1
    server = start({"LOSSSERVE_SHUTDOWN_GRACE_S": str(grace), **SLOW})
    # about 6.6 s on one thread here: both must outlast the 1 s grace period
    body, message = slow_request(50_000, 64, columns=64)
    channel = grpc.insecure_channel(server.grpc_url, options=GRPC_OPTIONS)
    stub = pb_grpc.LossServiceStub(channel)

    with channel, ThreadPoolExecutor(2) as pool:
        posted = pool.submit(httpx.post, f"http://{server.http_url}/loss", json=body, timeout=60)
        called = pool.submit(_status, lambda: stub.ComputeLoss(message, timeout=60))
        _wait_until_queued(server, jobs=1)  # one running, one waiting
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = server.process.wait(timeout=grace + 10)
        exited = time.monotonic()
        response, status = posted.result(), called.result()

    logs = _logs(server)
    assert code == 0, "\n".join(logs[-20:])
    # cut off at the grace period, not after the seconds of work its thread cannot drop
    assert exited - signalled < grace + 3
    # both answer a retryable status rather than being dropped
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "UNAVAILABLE"
    assert status == grpc.StatusCode.UNAVAILABLE
    records = [json.loads(line) for line in logs]
    assert records[-1]["message"] == "drain cut off at the grace period; exiting"


def test_inferences_waiting_past_the_grace_period_answer_unavailable(
    start: Callable[[dict[str, str]], Server], tmp_path: Path
) -> None:
    """A slow model's run holds its batcher for seconds: at the grace period the predict
    (REST) and ModelInfer (gRPC) waiting behind it answer a retryable status, not a reset."""
    grace = 1
    # 30 000 rows through four 2048-wide layers: about 7 s on one thread of this 2-core machine.
    # (20 000 rows at width 1024 took 1.2 s here, and on a faster CI machine it ended inside
    # the grace period, so the requests behind it were answered 200.)
    write_model(tmp_path, "slow", hidden=2048, batching=BatchingConfig(max_batch_size=64))
    server = start(
        {"LOSSSERVE_SHUTDOWN_GRACE_S": str(grace), "LOSSSERVE_MODEL_REPOSITORY": str(tmp_path)}
    )
    features = rows(2)
    infer = oip.ModelInferRequest(
        model_name="slow",
        inputs=[
            oip.ModelInferRequest.InferInputTensor(name="features", datatype="FP32", shape=[2, 4])
        ],
        raw_input_contents=[features.tobytes()],
    )
    channel = grpc.insecure_channel(server.grpc_url)
    stub = oip_grpc.GRPCInferenceServiceStub(channel)

    url = f"http://{server.http_url}/models/slow/predict"
    running = {"instances": rows(30000).tolist()}  # one run of several seconds
    with channel, ThreadPoolExecutor(3) as pool:
        first = pool.submit(httpx.post, url, json=running, timeout=60)
        _wait_until_queued(server, jobs=1, gauge=MODEL_RUNNING)  # the long run has begun
        posted = pool.submit(httpx.post, url, json={"instances": features.tolist()}, timeout=60)
        called = pool.submit(_status, lambda: stub.ModelInfer(infer, timeout=60))
        _wait_until_queued(server, jobs=2, gauge=MODEL_QUEUE)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = server.process.wait(timeout=grace + 10)
        exited = time.monotonic()
        response, status = posted.result(), called.result()
        assert first.result().status_code in (200, 503)  # answered either way, never reset

    assert code == 0, "\n".join(_logs(server)[-20:])
    assert exited - signalled < grace + 3
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "UNAVAILABLE"
    assert status == grpc.StatusCode.UNAVAILABLE
