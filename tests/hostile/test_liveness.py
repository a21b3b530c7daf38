"""Liveness under load: while the heaviest admitted request of each route is in flight,
``GET /v2/health/live`` and gRPC ``ServerLive`` each answer within 100 ms (every probe,
sent every 50 ms by a prober process of its own: ``_probe.py``).

The event loop must never do work that grows with a request (DESIGN.md): a parse, a
per-row Python loop or a metric computation on it stalls every other request, the health
checks a load balancer relies on included.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import orjson
import pytest

from lossserve_proto.inference import grpc_service_pb2 as oip
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb

from ._harness import (
    CLIENT_TIMEOUT_S,
    DEADLINE_S,
    FEATURES,
    LIVE_PROBE_S,
    MAX_GRPC_MESSAGE,
    SLACK_S,
    GReply,
    Harness,
    Reply,
    b64,
    binary_body,
    grpc_call,
    tensor,
)

pytestmark = pytest.mark.slow

RNG = np.random.default_rng(11)
GRPC_INFER_ROWS = (MAX_GRPC_MESSAGE - 1024) // (4 * FEATURES)
"""The most rows of digits features one ModelInfer message carries (65,532 at 16 MiB)."""


def _multiclass(rows: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    logits = RNG.normal(size=(rows, classes)).astype(np.float32)
    return logits, RNG.integers(0, classes, rows).astype(np.int64)


def _binary_request(fields: dict[str, np.ndarray], **extra: Any) -> tuple[bytes, dict[str, str]]:
    header: dict[str, Any] = dict(extra)
    chunks = []
    for name, array in fields.items():
        data = array.tobytes()
        header[name] = {
            "shape": list(array.shape),
            "dtype": array.dtype.name,
            "binary_data_size": len(data),
        }
        chunks.append(data)
    return binary_body(header, *chunks)


def _rest(path: str, body: tuple[bytes, dict[str, str]]) -> Callable[[Harness], Reply]:
    def send(harness: Harness) -> Reply:
        return harness.post(path, content=body[0], headers=body[1])

    return send


def _json(document: Any) -> tuple[bytes, dict[str, str]]:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), {
        "content-type": "application/json"
    }


def evaluate_load() -> Callable[[Harness], Reply]:
    logits, targets = _multiclass(4096, 2048)
    return _rest("/evaluate", _binary_request({"logits": logits, "targets": targets}))


def thresholds_load() -> Callable[[Harness], Reply]:
    scores, targets = _multiclass(20000, 64)
    return _rest("/thresholds", _binary_request({"scores": scores, "targets": targets}))


def hessian_load() -> Callable[[Harness], Reply]:
    logits, targets = _multiclass(16, 512)
    body = {"loss": "focal", "logits": b64(logits), "targets": b64(targets)}
    return _rest("/loss", _json({**body, "return_hessian": True}))


def lists_load() -> Callable[[Harness], Reply]:
    logits, targets = _multiclass(1900, 100)  # just under LOSSSERVE_MAX_JSON_VALUES
    return _rest("/loss", _json({"loss": "cross_entropy", "logits": logits, "targets": targets}))


def predict_load() -> Callable[[Harness], Reply]:
    rows = RNG.normal(size=(3_000, FEATURES)).astype(np.float32)  # under the JSON limit
    return _rest("/models/digits/predict", _json({"instances": rows}))


def infer_json_load() -> Callable[[Harness], Reply]:
    rows = RNG.normal(size=(3_000, FEATURES)).astype(np.float32)  # under the JSON limit
    entry = {"name": "features", "shape": list(rows.shape), "datatype": "FP32", "data": rows}
    return _rest("/v2/models/digits/infer", _json({"inputs": [entry]}))


def infer_binary_load() -> Callable[[Harness], Reply]:
    rows = RNG.normal(size=(200_000, FEATURES)).astype(np.float32)
    raw = rows.tobytes()
    entry = {
        "name": "features",
        "shape": list(rows.shape),
        "datatype": "FP32",
        "parameters": {"binary_data_size": len(raw)},
    }
    header = {"inputs": [entry], "parameters": {"binary_data_output": True}}
    return _rest("/v2/models/digits/infer", binary_body(header, raw))


def class_weights_load() -> Callable[[Harness], Reply]:
    labels = RNG.integers(0, 1000, 190_000).tolist()  # under the JSON limit
    return _rest("/class-weights", _json({"labels": labels, "strategy": "balanced"}))


def metrics_load() -> Callable[[Harness], Reply]:
    def scrape(harness: Harness) -> Reply:
        reply = harness.get("/metrics")
        for _ in range(30):
            reply = harness.get("/metrics")
        return reply

    return scrape


def grpc_hessian_load() -> Callable[[Harness], GReply]:
    logits, targets = _multiclass(16, 512)
    request = pb.ComputeLossRequest(
        loss="focal", logits=tensor(logits), targets=tensor(targets), return_hessian=True
    )

    def call(harness: Harness) -> GReply:
        return grpc_call(lambda: harness.loss_stub.ComputeLoss(request, timeout=CLIENT_TIMEOUT_S))

    return call


def grpc_stream_load() -> Callable[[Harness], GReply]:
    batches = []
    for _ in range(8):
        logits, targets = _multiclass(2048, 256)
        batches.append(pb.EvaluateBatch(logits=tensor(logits), targets=tensor(targets)))

    def call(harness: Harness) -> GReply:
        return grpc_call(
            lambda: list(harness.loss_stub.StreamEvaluate(iter(batches), timeout=CLIENT_TIMEOUT_S))
        )

    return call


def grpc_infer_load() -> Callable[[Harness], GReply]:
    # the largest message the server takes: grpcio copies it on the loop as it arrives
    rows = RNG.normal(size=(GRPC_INFER_ROWS, FEATURES)).astype(np.float32)
    request = oip.ModelInferRequest(model_name="digits")
    request.inputs.add(name="features", datatype="FP32", shape=list(rows.shape))
    request.raw_input_contents.append(rows.tobytes())

    def call(harness: Harness) -> GReply:
        return grpc_call(lambda: harness.oip_stub.ModelInfer(request, timeout=CLIENT_TIMEOUT_S))

    return call


LOADS: dict[str, Callable[[], Callable[[Harness], Any]]] = {
    "rest-evaluate-4096x2048": evaluate_load,
    "rest-thresholds-20000x64": thresholds_load,
    "rest-loss-focal-hessian-16x512": hessian_load,
    "rest-loss-json-lists-1900x100": lists_load,
    "rest-predict-3k-rows": predict_load,
    "rest-infer-json-3k-rows": infer_json_load,
    "rest-infer-binary-200k-rows": infer_binary_load,
    "rest-class-weights-190k-labels": class_weights_load,
    "rest-metrics-scrapes": metrics_load,
    "grpc-compute-loss-focal-hessian-16x512": grpc_hessian_load,
    "grpc-stream-evaluate-8x2048x256": grpc_stream_load,
    "grpc-model-infer-largest-message": grpc_infer_load,
}


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("load", sorted(LOADS))
def test_liveness_probes_answer_while_a_heavy_request_runs(hostile: Harness, load: str) -> None:
    send = LOADS[load]()
    outcome: dict[str, Any] = {}
    prober = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile._probe", f"http://127.0.0.1:{hostile.port}",
         hostile.srv.grpc_url],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert prober.stdout is not None and prober.stdin is not None
        assert prober.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        start = time.monotonic()
        outcome["reply"] = send(hostile)
        end = time.monotonic()
        prober.stdin.close()
        probes = orjson.loads(prober.stdout.readline())
    finally:
        if prober.poll() is None:
            prober.kill()
        prober.wait()
        if prober.stdout is not None:
            prober.stdout.close()
    during = {
        transport: [seconds for begun, seconds in probes[transport] if start <= begun <= end]
        for transport in ("rest", "grpc")
    }
    slow = {
        transport: [
            "failed" if seconds is None else f"{seconds * 1e3:.0f} ms"
            for seconds in times
            if seconds is None or seconds > LIVE_PROBE_S
        ]
        for transport, times in during.items()
    }
    assert not slow["rest"] and not slow["grpc"], (
        f"{load}: of {len(during['rest'])} probes each while it ran, /v2/health/live took "
        f"{slow['rest']} and ServerLive took {slow['grpc']} (limit {LIVE_PROBE_S * 1e3:.0f} ms)"
    )
    reply = outcome["reply"]  # admitted and answered: the load really ran
    if isinstance(reply, Reply):
        assert reply.status == 200, f"{load}: {reply.describe()}"
    else:
        assert reply.code is grpc.StatusCode.OK, f"{load}: {reply.describe()}"
    assert reply.elapsed <= DEADLINE_S + SLACK_S, f"{load}: {reply.describe()}"
