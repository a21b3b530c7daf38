"""Mixed load through nginx, shared by the replica tests on processes
(``tests/integration/test_replicas.py``) and on containers (``tests/deploy``): 300 calls
from 8 clients, interleaving REST ``/loss``, ``/models/tiny/predict`` and ``/losses``, gRPC
``ComputeLoss`` and OIP ``ModelInfer``, each answer checked against in-process references,
with a hook that runs once a third of the calls are done (to kill or stop a replica).

The model is ``tiny`` of :func:`tests.service.models.builders.write_model` (labels cat, dog,
bird). gRPC goes through the client's channel options (``lossserve_client.client``: the
retry policy resends a pure call answered UNAVAILABLE); an HTTP call whose connection broke
mid-answer is sent once more, as a client does with an idempotent call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import torch

import losses
from lossserve.api.oip_grpc_convert import decode_infer_result
from lossserve.models.oip import datatype_of, encode_raw
from lossserve_client.client import GRPC_OPTIONS
from lossserve_proto.inference import grpc_service_pb2 as oip
from lossserve_proto.inference import grpc_service_pb2_grpc as oip_grpc
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc
from tests.service.models.builders import reference, rows

from ._serving import batch, loss_body, loss_message

CALLS = 300
CLIENTS = 8


@dataclass
class Outcome:
    failures: list[str]
    """Each failed call: its kind and the error."""
    calls: int
    interrupted_at: int
    """Calls done when the hook started."""
    http_retries: int
    """HTTP calls sent twice because the connection broke mid-answer."""

    def survived(self, log: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        """Check what every replica-loss test holds, given nginx's access log entries of
        the load: no call failed, the replica went during the load, nginx resent all but
        at most two HTTP calls itself, and what it answered other than 200 was a gRPC
        call's UNAVAILABLE (logged as 204 on HTTP/2, for the retry policy to resend).
        Returns the entries nginx sent on to a second replica, and those non-200 ones."""
        # A gRPC call failing with INTERNAL (RST_STREAM) had its response headers sent before
        # its replica died, which commits a call: neither nginx nor a retry policy may
        # resend it.
        failed = self.failures
        assert failed == [], f"{len(failed)} of {self.calls} requests failed: {failed[:5]}"
        assert self.interrupted_at < self.calls, "the replica was killed after the load"
        # nginx retries all but a call whose answer had begun when the replica died (rare)
        assert self.http_retries <= 2, f"{self.http_retries} HTTP requests needed a retry"
        retried = [entry for entry in log if "," in entry["upstream"]]
        unavailable = [entry for entry in log if entry["status"] != 200]
        assert all(e["status"] == 204 and e["protocol"] == "HTTP/2.0" for e in unavailable), (
            unavailable
        )
        return retried, unavailable


def mixed_load(
    http_url: str, grpc_url: str, model_dir: Path, at_one_third: Callable[[], None]
) -> Outcome:
    """:data:`CALLS` calls from :data:`CLIENTS` threads to nginx at ``http_url`` (with the
    scheme) and ``grpc_url`` (host:port); ``model_dir`` is tiny's version folder (for the
    reference answers). ``at_one_third`` runs once, when a third of the calls are done; the
    last third wait until it has returned, so that however fast the machine, calls meet the
    deployment it changed."""
    features = rows(3, seed=4)
    expected = reference(model_dir, features)
    labels = ["cat", "dog", "bird"]
    logits, targets = batch(64, 5, seed=2)
    value = losses.compute(
        "focal", torch.from_numpy(logits), torch.from_numpy(targets), gamma=2.0
    ).item()
    body = loss_body("focal", logits, targets)
    body["params"] = {"gamma": 2.0}
    message = loss_message("focal", logits, targets)
    message.params_json = '{"gamma": 2.0}'
    infer = oip.ModelInferRequest(model_name="tiny")
    infer.inputs.add(name="features", datatype=datatype_of(features), shape=list(features.shape))
    infer.raw_input_contents.append(encode_raw(features))

    with grpc.insecure_channel(grpc_url, options=GRPC_OPTIONS) as channel:
        loss_stub = pb_grpc.LossServiceStub(channel)
        oip_stub = oip_grpc.GRPCInferenceServiceStub(channel)
        local = threading.local()
        clients = contextlib.ExitStack()

        def client() -> httpx.Client:  # one per thread, each keeping its connection
            if not hasattr(local, "client"):
                local.client = clients.enter_context(httpx.Client(base_url=http_url, timeout=30))
            return local.client  # type: ignore[no-any-return]

        http_retries = 0
        lock = threading.Lock()

        def send(method: str, path: str, **kwargs: Any) -> httpx.Response:
            nonlocal http_retries
            try:
                return client().request(method, path, **kwargs)
            except httpx.TransportError:
                with lock:
                    http_retries += 1
                return client().request(method, path, **kwargs)

        def rest_loss() -> None:
            response = send("POST", "/loss", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["value"] == pytest.approx(value, rel=1e-5)

        def rest_predict() -> None:
            response = send("POST", "/models/tiny/predict", json={"instances": features.tolist()})
            assert response.status_code == 200, response.text
            decided = [p["labels"] for p in response.json()["predictions"]]
            assert decided == [[labels[i]] for i in expected["decisions"]]

        def rest_losses() -> None:
            response = send("GET", "/losses")
            assert response.status_code == 200, response.text
            assert "focal" in response.text

        def grpc_loss() -> None:
            answer = loss_stub.ComputeLoss(message, timeout=30)
            got = np.frombuffer(answer.value.data, dtype=np.float32).item()
            assert got == pytest.approx(value, rel=1e-5)

        def grpc_infer() -> None:
            outputs = decode_infer_result(oip_stub.ModelInfer(infer, timeout=30)).outputs
            np.testing.assert_array_equal(outputs["decisions"], expected["decisions"])

        kinds: list[Callable[[], None]] = [rest_loss, rest_predict, rest_losses, grpc_loss]
        calls = [*kinds, grpc_infer] * (CALLS // 5)  # the kinds interleaved
        failures: list[str] = []
        done = 0
        third, changed = threading.Event(), threading.Event()

        def run(call: Callable[[], None], last_third: bool) -> None:
            nonlocal done
            if last_third:
                changed.wait(timeout=120)
            try:
                call()
            except Exception as exc:  # every failure is collected, none stops the load
                with lock:
                    failures.append(f"{call.__name__}: {type(exc).__name__}: {exc}")
            with lock:
                done += 1
                if done == len(calls) // 3:
                    third.set()

        with clients, ThreadPoolExecutor(CLIENTS) as pool:
            for index, call in enumerate(calls):
                pool.submit(run, call, index >= 2 * len(calls) // 3)
            assert third.wait(timeout=60), "the load stalled"
            with lock:
                interrupted_at = done  # before the hook, which takes its time
            try:
                at_one_third()
            finally:
                changed.set()
    return Outcome(failures, len(calls), interrupted_at, http_retries)
