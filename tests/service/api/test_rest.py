"""REST through an in-process httpx client: every encoding, every error path."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import httpx
import numpy as np
import pytest
import torch

import losses
from lossserve.api.rest import encode_loss_result
from lossserve.core.state import ServiceState
from lossserve.core.tensors import Encoding
from lossserve.core.types import LossResult

from .conftest import with_client

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(6, 4)).astype(np.float32)
TARGETS = np.array([0, 1, 2, 3, 0, 1], dtype=np.int64)


def b64(array: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "b64": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode(),
    }


def binary_body(
    document: dict[str, Any], tensors: list[np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(document).encode()
    payload = header + b"".join(t.tobytes() for t in tensors)
    return payload, {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def binary_tensor(array: np.ndarray) -> dict[str, Any]:
    return {"shape": list(array.shape), "dtype": array.dtype.name, "binary_data_size": array.nbytes}


def read_binary(response: httpx.Response) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.content[:length])
    offset, out = length, {}
    for name in ("value", "grad", "hessian_diag"):
        entry = header.get(name)
        if isinstance(entry, dict):
            size = entry["binary_data_size"]
            out[name] = np.frombuffer(
                response.content[offset : offset + size], dtype=entry["dtype"]
            ).reshape(entry["shape"])
            offset += size
    return header, out


def expected(**kwargs: Any) -> losses.Derivatives:
    return losses.derivatives(
        "focal", torch.from_numpy(LOGITS), torch.from_numpy(TARGETS), hessian=True, **kwargs
    )


def test_registry_lists_every_loss_with_its_schema() -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        body = (await client.get("/losses")).json()
        assert [entry["name"] for entry in body["losses"]] == losses.names()
        focal = (await client.get("/losses/focal")).json()
        assert focal["params_schema"] == losses.get("focal").json_schema()
        assert focal["tasks"] == ["multiclass"]
        missing = await client.get("/losses/focall")
        assert missing.status_code == 404
        assert "Did you mean 'focal'?" in missing.json()["error"]["message"]

    with_client(scenario)


@pytest.mark.parametrize("encoding", ["lists", "b64", "binary"])
def test_loss_value_gradient_and_hessian_in_every_encoding(encoding: str) -> None:
    reference = expected(gamma=1.5, reduction="sum")

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        document: dict[str, Any] = {
            "loss": "focal",
            "params": {"gamma": 1.5},
            "reduction": "sum",
            "return_grad": True,
            "return_hessian": True,
        }
        if encoding == "binary":
            document |= {"logits": binary_tensor(LOGITS), "targets": binary_tensor(TARGETS)}
            payload, headers = binary_body(document, [LOGITS, TARGETS])
            response = await client.post("/loss", content=payload, headers=headers)
            assert response.status_code == 200, response.content
            header, tensors = read_binary(response)
            value, grad, hess = header["value"], tensors["grad"], tensors["hessian_diag"]
        else:
            encode = (lambda a: a.tolist()) if encoding == "lists" else b64
            document |= {"logits": encode(LOGITS), "targets": encode(TARGETS)}
            response = await client.post("/loss", json=document)
            assert response.status_code == 200, response.text
            body = response.json()
            value = body["value"]
            if encoding == "lists":
                grad, hess = np.array(body["grad"]), np.array(body["hessian_diag"])
            else:
                grad, hess = (
                    np.frombuffer(base64.b64decode(body[k]["b64"]), dtype=body[k]["dtype"]).reshape(
                        body[k]["shape"]
                    )
                    for k in ("grad", "hessian_diag")
                )
            assert body["device"] == "cpu"
        assert value == pytest.approx(reference.value.item(), rel=1e-6)
        np.testing.assert_allclose(grad, reference.grad.numpy(), rtol=1e-5, atol=1e-7)
        assert reference.hessian_diag is not None
        np.testing.assert_allclose(hess, reference.hessian_diag.numpy(), rtol=1e-5, atol=1e-7)

    with_client(scenario)


def test_a_large_binary_answer_is_sent_in_parts_as_one_body() -> None:
    """Tensors of 256 KiB or more leave as views of their arrays, one body message each,
    not copied: the body is the header then every tensor's bytes, and its Content-Length
    their sum."""
    logits = RNG.normal(size=(1024, 128)).astype(np.float32)  # a 512 KiB gradient
    targets = RNG.integers(0, 128, size=1024)
    reference = losses.derivatives(
        "focal", torch.from_numpy(logits), torch.from_numpy(targets), reduction="none"
    )

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        document: dict[str, Any] = {
            "loss": "focal",
            "reduction": "none",
            "return_grad": True,
            "logits": binary_tensor(logits),
            "targets": binary_tensor(targets),
        }
        payload, headers = binary_body(document, [logits, targets])
        response = await client.post("/loss", content=payload, headers=headers)
        assert response.status_code == 200, response.content
        assert int(response.headers["content-length"]) == len(response.content)
        header, tensors = read_binary(response)
        assert header["grad"]["binary_data_size"] == logits.nbytes
        np.testing.assert_allclose(tensors["value"], reference.value.numpy(), rtol=1e-6)
        np.testing.assert_allclose(tensors["grad"], reference.grad.numpy(), rtol=1e-5, atol=1e-9)

    with_client(scenario)

    grad = reference.grad.numpy()
    result = LossResult("focal", "none", reference.value.numpy(), grad, None, "cpu")
    answer = encode_loss_result(result, Encoding.BINARY)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(answer({"type": "http"}, None, send))  # type: ignore[arg-type]
    start, *body = sent
    # the header, value and grad, then an empty last message (sent once the rest drained)
    assert [m["more_body"] for m in body] == [True, True, True, False]
    assert body[-1]["body"] == b""
    assert np.shares_memory(np.frombuffer(body[2]["body"], np.float32), grad), "copied"
    length = dict(start["headers"])[b"content-length"]
    assert int(length) == sum(len(m["body"]) for m in body)


def _post_error(document: dict[str, Any], **settings: object) -> httpx.Response:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> httpx.Response:
        return await client.post("/loss", json=document)

    return with_client(scenario, **settings)


GOOD: dict[str, Any] = {"loss": "focal", "logits": LOGITS.tolist(), "targets": TARGETS.tolist()}


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"loss": "focall"}, 400, "loss: unknown loss 'focall'.*Did you mean 'focal'"),
        ({"params": {"gamma": -1}}, 400, "gamma: Input should be greater than or equal to 0"),
        ({"params": {"gama": 1}}, 400, "gama: unknown parameter"),
        ({"targets": [0, 1]}, 400, "targets: Expected logits"),
        ({"targets": [0, 1, 2, 3, 0, 9]}, 400, r"class indices in \[0, 3\]"),
        ({"logits": {"shape": [6, 4], "dtype": "float128", "b64": ""}}, 400, "logits.dtype"),
        (
            {
                "logits": {
                    "shape": [6, 4],
                    "dtype": "float32",
                    "b64": base64.b64encode(b"abc").decode(),
                }
            },
            400,
            "logits: expected 96 bytes",
        ),
        ({"reduction": "avg"}, 400, "reduction: expected one of"),
        ({"extra": 1}, 400, "extra: unknown field"),
        ({"logits": [[1, 2], [3]]}, 400, "logits: expected rectangular"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    change: dict[str, Any], status: int, message: str
) -> None:
    response = _post_error({**GOOD, **change})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert re.search(message, error["message"]), error["message"]


def _post_raw(
    payload: str, headers: dict[str, str] | None = None, **settings: object
) -> httpx.Response:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> httpx.Response:
        return await client.post(
            "/loss",
            content=payload,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    return with_client(scenario, **settings)


def test_nan_logits_in_b64_are_refused() -> None:
    logits = LOGITS.copy()
    logits[2, 1] = np.nan
    response = _post_error({**GOOD, "logits": b64(logits)})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("logits: expected finite values")
    assert "[2, 1]" in response.json()["error"]["message"]


def test_body_over_the_limit_is_413() -> None:
    response = _post_error(GOOD, max_body_bytes=64)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_malformed_header_length_and_binary_sizes() -> None:
    response = _post_raw("{}", headers={"Inference-Header-Content-Length": "abc"})
    assert response.status_code == 400
    assert "Inference-Header-Content-Length" in response.json()["error"]["message"]
    document = {**GOOD, "logits": binary_tensor(LOGITS), "targets": binary_tensor(TARGETS)}
    payload, headers = binary_body(document, [LOGITS])  # the targets' bytes are missing

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> httpx.Response:
        return await client.post("/loss", content=payload, headers=headers)

    response = with_client(scenario)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("targets.binary_data_size")


def test_not_json_is_400() -> None:
    response = _post_raw("{not json")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("body: expected JSON")


def test_request_id_is_echoed_and_metrics_count_requests() -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        response = await client.post("/loss", json=GOOD, headers={"X-Request-ID": "abc-123"})
        assert response.headers["X-Request-ID"] == "abc-123"
        generated = await client.get("/v2/health/live")
        assert len(generated.headers["X-Request-ID"]) == 32
        text = (await client.get("/metrics")).text
        assert (
            'lossserve_requests_total{loss="focal",route="/loss",status="OK",transport="http"} 1.0'
            in text
        )
        assert "lossserve_worker_alive" in text

    with_client(scenario)


def test_health() -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        assert (await client.get("/v2/health/live")).json() == {"live": True}
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}

    with_client(scenario)


def test_class_weights() -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        response = await client.post(
            "/class-weights", json={"labels": [0, 0, 0, 1], "strategy": "balanced"}
        )
        body = response.json()
        assert body["strategy"] == "balanced"
        assert body["weights"] == pytest.approx([4 / 6, 2.0])  # n / (K n_c) = 4/(2*3), 4/(2*1)
        absent = await client.post("/class-weights", json={"counts": [3, 0]})
        assert absent.status_code == 400
        assert "class(es) [1]" in absent.json()["error"]["message"]

    with_client(scenario)


def test_unknown_route_is_a_json_404() -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> httpx.Response:
        return await client.get("/nope")

    response = with_client(scenario)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
