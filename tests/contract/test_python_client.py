"""``lossserve_client.LossClient``, over REST and over gRPC, against a real ``lossserve serve``.

The server runs as its own process on free loopback ports with a repository of two small
ONNX models (``tests/service/models/builders.py``). Every answer is checked against a
reference computed here without the service: torch's ``cross_entropy`` and autograd for
losses, scikit-learn's metrics for evaluations, in-process ONNX Runtime and the card's
decision rule for predictions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, f1_score

import losses
from bench._server import Server, running_server
from lossserve_client import LossClient, LossServeError
from lossserve_client import client as client_module
from lossserve_client.openapi import Client as RestApiClient
from lossserve_client.openapi.api.inference import model_infer, model_version_infer
from lossserve_client.openapi.models import (
    InferenceRequest,
    InferenceResponse,
    OIPError,
    RequestInput,
    RequestInputDatatype,
    RequestOutput,
)
from tests.processes import SERVICE_ENV
from tests.service.models.builders import LABELS, reference, rows, write_model

TRANSPORTS = ("rest", "grpc")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("models")
    write_model(repo, "tiny", 1, seed=1)
    write_model(repo, "tags", 1, task="multilabel", seed=3)
    write_model(repo, "spam", 1, task="binary", seed=4)
    return repo


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[Server]:
    with running_server(
        ["--model-repository", str(repository)], SERVICE_ENV, ["/v2/health/ready"]
    ) as running:
        yield running


def connect(server: Server, transport: str, **options: Any) -> LossClient:
    if transport == "rest":
        return LossClient.rest(f"http://{server.http_url}", **options)
    return LossClient.grpc(server.grpc_url, **options)


@pytest.fixture(params=TRANSPORTS)
def client(request: pytest.FixtureRequest, server: Server) -> Iterator[LossClient]:
    with connect(server, request.param) as connected:
        yield connected


def _batch(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)).astype(np.float32)
    targets = rng.integers(0, c, size=n)
    targets[:c] = np.arange(c)  # every class present
    return logits, targets


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    x = torch.from_numpy(logits.astype(np.float64)).requires_grad_()
    value = torch.nn.functional.cross_entropy(x, torch.from_numpy(targets))
    (grad,) = torch.autograd.grad(value, x)
    return float(value.detach()), grad.numpy()


def test_list_losses_is_the_registry(client: LossClient) -> None:
    infos = client.list_losses()
    assert [i.name for i in infos] == losses.names()
    focal = next(i for i in infos if i.name == "focal")
    assert focal.params_schema["properties"]["gamma"]["type"] == "number"
    assert "multiclass" in focal.tasks


def test_compute_loss_with_gradient(client: LossClient) -> None:
    logits, targets = _batch(16, 5, seed=0)
    result = client.compute_loss("cross_entropy", logits, targets, return_grad=True)
    value, grad = _cross_entropy(logits, targets)
    assert result.loss == "cross_entropy" and result.reduction == "mean"
    assert result.value.shape == ()
    assert float(result.value) == pytest.approx(value, rel=1e-5)
    assert result.grad is not None and result.grad.shape == logits.shape
    np.testing.assert_allclose(result.grad, grad, rtol=1e-4, atol=1e-7)
    assert result.hessian_diag is None
    assert result.device == "cpu"


def test_answers_of_16_to_64_kib_come_back_every_time(client: LossClient) -> None:
    """A 32 KiB gradient comes back from the worker inline, written as a length and then
    the bytes: on the server's uvloop, about one call in two hung until its deadline."""
    logits, targets = _batch(128, 64, seed=5)
    _, grad = _cross_entropy(logits, targets)
    for _ in range(20):
        result = client.compute_loss("cross_entropy", logits, targets, return_grad=True)
        assert result.grad is not None
        np.testing.assert_allclose(result.grad, grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_large_batches_take_the_binary_encoding(
    server: Server, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thresholds of 64 KiB make this 160 KiB batch go binary (REST) or chunked (gRPC):
    the path is seen taken, and its answer equals the small-message path's and the
    reference."""
    logits, targets = _batch(4096, 8, seed=1)
    value, grad = _cross_entropy(logits, targets)
    taken: list[str] = []
    spied = "binary_entry" if transport == "rest" else "split"
    original = getattr(client_module, spied)

    def spy(*args: Any, **kwargs: Any) -> Any:
        taken.append(spied)
        return original(*args, **kwargs)

    monkeypatch.setattr(client_module, spied, spy)
    small = {"binary_bytes": 64 * 1024} if transport == "rest" else {"chunk_bytes": 64 * 1024}
    answers = []
    for options in ({}, small):
        with connect(server, transport, **options) as client:
            answers.append(
                client.compute_loss(
                    "cross_entropy", logits, targets, reduction="none", return_hessian=True
                )
            )
        assert bool(taken) == bool(options), f"{spied} taken: {taken}, options: {options}"
    plain, large = answers
    assert large.value.shape == (4096,)
    for name in ("value", "grad", "hessian_diag"):
        np.testing.assert_array_equal(getattr(large, name), getattr(plain, name))
    assert float(large.value.mean()) == pytest.approx(value, rel=1e-5)
    assert large.grad is not None
    np.testing.assert_allclose(large.grad / 4096, grad, rtol=1e-4, atol=1e-8)


def test_large_evaluations_go_binary_over_rest(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    logits, targets = _batch(4096, 8, seed=2)
    entries: list[str] = []
    original = client_module.binary_entry
    monkeypatch.setattr(
        client_module, "binary_entry", lambda a: entries.append(a.dtype.name) or original(a)
    )
    with connect(server, "rest", binary_bytes=64 * 1024) as client:
        metrics = client.evaluate(logits, targets, loss="cross_entropy")
        fitted = client.fit_thresholds(logits, targets)
    assert entries == ["float32", "int64", "float32", "int64"]
    predicted = logits.argmax(axis=1)
    assert metrics.macro_f1 == pytest.approx(f1_score(targets, predicted, average="macro"))
    assert fitted.values.shape == (8,) and fitted.after.macro_f1 >= fitted.before.macro_f1


def test_evaluate_streams_running_metrics_then_thresholds(client: LossClient) -> None:
    batches = [_batch(50, 4, seed=s) for s in range(3)]
    updates = list(client.evaluate_stream(batches, loss="cross_entropy"))
    logits = np.concatenate([b[0] for b in batches])
    targets = np.concatenate([b[1] for b in batches])
    final = updates[-1]
    assert final.final and final.batches == 3
    assert all(not u.final for u in updates[:-1])
    predicted = logits.argmax(axis=1)
    assert final.metrics.num_samples == 150
    assert final.metrics.macro_f1 == pytest.approx(f1_score(targets, predicted, average="macro"))
    assert final.metrics.confusion == confusion_matrix(targets, predicted).tolist()
    assert final.metrics.loss == pytest.approx(_cross_entropy(logits, targets)[0], rel=1e-5)
    assert final.thresholds is not None
    assert final.thresholds.kind == "offsets" and final.thresholds.values.shape == (4,)
    assert final.thresholds.after.macro_f1 >= final.thresholds.before.macro_f1


def test_evaluate_over_grpc_answers_every_batch(server: Server) -> None:
    batches = [_batch(50, 4, seed=s) for s in range(3)]
    with connect(server, "grpc") as client:
        updates = list(client.evaluate_stream(batches))
    assert [u.batches for u in updates] == [1, 2, 3, 3]
    assert [u.metrics.num_samples for u in updates] == [50, 100, 150, 150]


def test_fit_thresholds_is_the_same_over_both_transports(server: Server) -> None:
    rng = np.random.default_rng(4)
    targets = rng.integers(0, 2, size=(200, 3))
    scores = (targets * 1.5 + rng.normal(size=(200, 3))).astype(np.float32)
    fitted = []
    for transport in TRANSPORTS:
        with connect(server, transport) as client:
            fitted.append(client.fit_thresholds(scores, targets, beta=2.0))
    rest, grpc = fitted
    assert rest.task == grpc.task == "multilabel" and rest.kind == "thresholds"
    np.testing.assert_allclose(rest.values, grpc.values)
    assert rest.after == grpc.after
    chosen = scores >= rest.values
    assert rest.after.micro_f1 == pytest.approx(f1_score(targets, chosen, average="micro"))


@pytest.mark.parametrize(
    ("model", "task"), [("tiny", "multiclass"), ("tags", "multilabel"), ("spam", "binary")]
)
def test_predict(client: LossClient, repository: Path, model: str, task: str) -> None:
    features = rows(7, seed=5)
    expected = reference(repository / model / "1", features)
    every = expected["probabilities"]
    if task == "binary":  # one column, the positive class's: the negative one is 1 - p
        every = np.concatenate([1 - every, every], axis=1)
    predictions = client.predict(model, features)
    labels = LABELS[task]
    assert len(predictions) == 7
    for prediction, decision, probabilities in zip(
        predictions, expected["decisions"], every, strict=True
    ):
        if task in ("multiclass", "binary"):
            assert prediction.labels == [labels[int(decision)]]
        else:
            assert prediction.labels == [labels[i] for i in np.flatnonzero(decision)]
        assert list(prediction.probabilities) == labels
        np.testing.assert_allclose(list(prediction.probabilities.values()), probabilities, 1e-5)


@pytest.mark.parametrize("version", [None, "1"])
def test_the_generated_rest_client_has_typed_inference_calls(
    server: Server, repository: Path, version: str | None
) -> None:
    """The Open Inference Protocol routes are in the OpenAPI document, so the generated
    client (openapi-python-client) calls infer with typed bodies and answers."""
    features = rows(3, seed=6)
    expected = reference(repository / "tiny" / "1", features)
    body = InferenceRequest(
        inputs=[
            RequestInput(
                name="features",
                shape=list(features.shape),
                datatype=RequestInputDatatype.FP32,
                data=features.ravel().tolist(),
            )
        ],
        outputs=[RequestOutput(name="decisions")],
    )
    with RestApiClient(base_url=f"http://{server.http_url}") as rest:
        if version is None:
            answer = model_infer.sync_detailed("tiny", client=rest, body=body)
        else:
            answer = model_version_infer.sync_detailed("tiny", version, client=rest, body=body)
        missing = model_infer.sync_detailed("no-such-model", client=rest, body=body)
    assert answer.status_code == 200, answer.content
    assert isinstance(answer.parsed, InferenceResponse)
    assert answer.parsed.model_name == "tiny"
    (output,) = answer.parsed.outputs
    assert (output.name, output.shape) == ("decisions", [3])
    np.testing.assert_array_equal(output.data, expected["decisions"])
    assert missing.status_code == 404
    assert isinstance(missing.parsed, OIPError)
    assert "no-such-model" in missing.parsed.error


def test_errors_are_the_same_over_both_transports(server: Server) -> None:
    logits, targets = _batch(4, 3, seed=0)
    raised = []
    for transport in TRANSPORTS:
        with connect(server, transport) as client, pytest.raises(LossServeError) as caught:
            client.compute_loss("focall", logits, targets)
        raised.append(caught.value)
    rest, grpc = raised
    assert rest.code == grpc.code == "INVALID_ARGUMENT"
    assert rest.message == grpc.message
    assert "focal" in rest.message  # the did-you-mean hint
    assert (rest.status, grpc.status) == (400, "INVALID_ARGUMENT")
    assert not rest.retryable


def test_an_unknown_model_is_not_found(client: LossClient) -> None:
    with pytest.raises(LossServeError) as caught:
        client.predict("nope", rows(1))
    assert caught.value.code == "NOT_FOUND"
    assert "nope" in caught.value.message


@pytest.fixture(scope="module")
def shm_server() -> Iterator[Server]:
    with running_server(["--allow-shared-memory"], SERVICE_ENV, ["/v2/health/ready"]) as running:
        yield running


def _segments() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith("psm_")}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_compute_loss_through_shared_memory(shm_server: Server, transport: str) -> None:
    """With shared_memory=True the tensors, gradient and Hessian go through a segment of the
    client's: the same answers as over the socket, the region registered once, and the
    segment and region gone after close."""
    rng = np.random.default_rng(4)
    before = _segments()
    with (
        connect(shm_server, transport, shared_memory=True) as shared,
        connect(shm_server, transport) as plain,
    ):
        for logits, targets, options in (
            (*_batch(64, 5, 1), {"return_grad": True, "return_hessian": True}),
            (*_batch(64, 5, 2), {"reduction": "none", "return_grad": True}),
            (  # larger than the first segment: a new one, registered anew
                rng.normal(size=(20000, 20)).astype(np.float32),
                rng.integers(0, 20, 20000),
                {"return_grad": True, "params": {"gamma": 1.0, "alpha": [1.0] * 20}},
            ),
        ):
            got = shared.compute_loss("focal", logits, targets, **options)  # type: ignore[arg-type]
            want = plain.compute_loss("focal", logits, targets, **options)  # type: ignore[arg-type]
            assert got.value.shape == want.value.shape
            np.testing.assert_allclose(got.value, want.value, rtol=1e-6)
            for name in ("grad", "hessian_diag"):
                expected = getattr(want, name)
                if expected is None:
                    assert getattr(got, name) is None
                else:
                    np.testing.assert_allclose(getattr(got, name), expected, rtol=1e-6)
        with pytest.raises(LossServeError) as caught:
            shared.compute_loss("focal", *_batch(4, 3, 3), params={"gamma": -1.0})
        assert caught.value.code == "INVALID_ARGUMENT"
        assert "params.gamma" in caught.value.message
        assert len(_segments() - before) == 1
        status = httpx.get(f"http://{shm_server.http_url}/v2/systemsharedmemory/status").json()
        assert len(status) == 1 and status[0]["name"].startswith("lossclient-")
    assert _segments() == before
    assert httpx.get(f"http://{shm_server.http_url}/v2/systemsharedmemory/status").json() == []


def test_shared_memory_needs_a_server_that_allows_it(server: Server) -> None:
    with (
        connect(server, "grpc", shared_memory=True) as client,
        pytest.raises(LossServeError) as caught,
    ):
        client.compute_loss("focal", *_batch(4, 3, 3))
    assert caught.value.code == "PERMISSION_DENIED"
    assert "LOSSSERVE_ALLOW_SHARED_MEMORY" in caught.value.message
