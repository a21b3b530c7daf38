"""OIP v2 over REST in process: JSON and binary tensors, the protocol's errors, the repository
API behind its token, and ``POST /models/{name}/predict``."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from lossserve.api.rest import create_app
from lossserve.core.state import ServiceState
from lossserve.settings import Settings

from .builders import reference, rows
from .conftest import TOKEN

T = TypeVar("T")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def with_client(
    repository: Path | None,
    scenario: Callable[[httpx.AsyncClient, ServiceState], Awaitable[T]],
    **settings: Any,
) -> T:
    async def main() -> T:
        options: dict[str, Any] = {"devices": ["cpu"], "model_repository": repository, **settings}
        state = ServiceState.create(Settings(**options))
        await state.start()
        try:
            transport = httpx.ASGITransport(app=create_app(state))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await scenario(client, state)
        finally:
            await state.stop()

    return asyncio.run(main())


def json_input(array: np.ndarray, name: str = "features") -> dict[str, Any]:
    return {"name": name, "shape": list(array.shape), "datatype": "FP32", "data": array.tolist()}


def binary_request(
    document: dict[str, Any], tensors: list[np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(document).encode()
    return header + b"".join(t.tobytes() for t in tensors), {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def read_outputs(response: httpx.Response) -> dict[str, np.ndarray]:
    length = response.headers.get("Inference-Header-Content-Length")
    header = json.loads(response.content[: int(length)] if length else response.content)
    offset = int(length or 0)
    dtypes = {"FP32": np.float32, "INT64": np.int64}
    outputs = {}
    for entry in header["outputs"]:
        size = entry.get("parameters", {}).get("binary_data_size")
        if size is None:
            outputs[entry["name"]] = np.array(entry["data"], dtype=dtypes[entry["datatype"]])
        else:
            raw = response.content[offset : offset + size]
            outputs[entry["name"]] = np.frombuffer(raw, dtype=dtypes[entry["datatype"]])
            offset += size
        outputs[entry["name"]] = outputs[entry["name"]].reshape(entry["shape"])
    assert offset == len(response.content) or not length
    return outputs


def test_json_infer_equals_onnxruntime(repository: Path) -> None:
    features = rows(5)
    expected = reference(repository / "tiny" / "2", features)

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        response = await client.post(
            "/v2/models/tiny/infer", json={"id": "x", "inputs": [json_input(features)]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model_name"], body["model_version"], body["id"]) == ("tiny", "2", "x")
        outputs = read_outputs(response)
        for name, values in expected.items():
            np.testing.assert_allclose(outputs[name], values, atol=1e-6)

    with_client(repository, scenario)


def test_binary_infer_with_mixed_output_encodings(repository: Path) -> None:
    features = rows(3)
    expected = reference(repository / "tags" / "1", features)

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        document = {
            "inputs": [
                {"name": "features", "shape": [3, 4], "datatype": "FP32",
                 "parameters": {"binary_data_size": features.nbytes}}
            ],
            "outputs": [
                {"name": "logits", "parameters": {"binary_data": True}},
                {"name": "decisions", "parameters": {"binary_data": False}},
            ],
        }  # fmt: skip
        body, headers = binary_request(document, [features])
        response = await client.post("/v2/models/tags/infer", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
        outputs = read_outputs(response)
        assert list(outputs) == ["logits", "decisions"]
        np.testing.assert_allclose(outputs["logits"], expected["logits"], atol=1e-6)
        np.testing.assert_array_equal(outputs["decisions"], expected["decisions"])
        # binary_data_output answers every output in binary; gzip bodies are inflated
        document = {"inputs": [json_input(features)], "parameters": {"binary_data_output": True}}
        response = await client.post(
            "/v2/models/tags/versions/1/infer",
            content=gzip.compress(json.dumps(document).encode()),
            headers={"Content-Encoding": "gzip"},
        )
        assert response.status_code == 200, response.text
        assert "Inference-Header-Content-Length" in response.headers
        np.testing.assert_allclose(
            read_outputs(response)["probabilities"], expected["probabilities"], atol=1e-6
        )

    with_client(repository, scenario)


def _features(**extra: Any) -> dict[str, Any]:
    return {"inputs": [{**json_input(rows(2)), **extra}]}


BAD = [
    ("/v2/models/tiny/infer", {"content": b"{", "headers": {}}, 400, "body: expected JSON"),
    ("/v2/models/tiny/infer", {"json": {"inputs": [], "extra": 1}}, 400,
     "extra: unknown field; expected one of ['id', 'parameters', 'inputs', 'outputs']"),
    ("/v2/models/tiny/infer", {"json": {"inputs": []}}, 400,
     "inputs: expected a non-empty list of input tensors"),
    ("/v2/models/tiny/infer", {"json": _features(datatype="FP16")}, 400,
     "input 'features': expected datatype FP32, got FP16"),
    ("/v2/models/tiny/infer", {"json": _features(shape=[2, 5])}, 400,
     "input 'features'.data: expected 10 elements for shape [2, 5], got 8"),
    ("/v2/models/tiny/infer",
     {"json": _features(parameters={"binary_data_size": 32}, data=None)}, 400,
     "input 'features': binary_data_size needs the Inference-Header-Content-Length header"),
    ("/v2/models/tiny/infer",
     {"content": b'{"inputs": []}', "headers": {"Inference-Header-Content-Length": "x"}}, 400,
     "Inference-Header-Content-Length: expected an integer in [0, 14] (the body's length), "
     "got 'x'"),
    ("/v2/models/tiny/infer", {"content": b"junk", "headers": {"Content-Encoding": "br"}}, 400,
     "Content-Encoding: expected gzip, deflate or identity, got 'br'"),
    ("/v2/models/nosuch/infer", {"json": _features()}, 404, "unknown model 'nosuch'"),
    ("/v2/models/tiny/versions/1/infer", {"json": _features()}, 404,
     "model 'tiny' has no version 1 being served (serving 2)"),
    ("/v2/models/.env/infer", {"json": _features()}, 400, "model name: expected 1-64 letters, "
     "digits, '_', '.' or '-', starting with a letter or digit, got '.env'"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "kwargs", "status", "message"), BAD)
def test_errors_answer_the_protocols_body(
    repository: Path, path: str, kwargs: dict[str, Any], status: int, message: str
) -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        response = await client.post(path, **kwargs)
        assert response.status_code == status
        body = response.json()
        assert list(body) == ["error"]
        assert body["error"].startswith(message), body

    with_client(repository, scenario)


def test_binary_byte_counts_must_add_up(repository: Path) -> None:
    features = rows(2)

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        entry = {"name": "features", "shape": [2, 4], "datatype": "FP32"}
        for size, tail, message in [
            (28, features.tobytes()[:28],
             "input 'features': expected 32 bytes for shape [2, 4] of FP32, got 28"),
            (40, features.tobytes(),
             "input 'features': binary_data_size is 40, only 32 bytes are left after the header"),
            (32, features.tobytes() + b"xx",
             "body: the binary_data_size of the inputs add up to 32 bytes, 34 follow the header"),
        ]:  # fmt: skip
            document = {"inputs": [{**entry, "parameters": {"binary_data_size": size}}]}
            header = json.dumps(document).encode()
            response = await client.post(
                "/v2/models/tiny/infer",
                content=header + tail,
                headers={"Inference-Header-Content-Length": str(len(header))},
            )
            assert (response.status_code, response.json()) == (400, {"error": message})

    with_client(repository, scenario)


def test_metadata_readiness_config_and_stats(repository: Path) -> None:
    async def scenario(client: httpx.AsyncClient, state: ServiceState) -> None:
        server = (await client.get("/v2")).json()
        assert server["name"] == "lossserve" and "classification" in server["extensions"]
        metadata = (await client.get("/v2/models/tiny/versions/2")).json()
        assert metadata["versions"] == ["2"]
        assert metadata["parameters"]["execution_provider"] == state.models.model("tiny").provider
        assert (await client.get("/v2/models/tiny/ready")).json() == {"name": "tiny", "ready": True}
        not_ready = await client.get("/v2/models/tiny/versions/1/ready")
        assert (not_ready.status_code, not_ready.json()) == (503, {"name": "tiny", "ready": False})
        unknown = await client.get("/v2/models/nosuch/ready")
        assert (unknown.status_code, unknown.json()) == (404, {"error": "unknown model 'nosuch'"})
        config = (await client.get("/v2/models/tiny/config")).json()
        assert (config["name"], config["platform"]) == ("tiny", "onnxruntime_onnx")
        await client.post("/v2/models/tiny/infer", json=_features())
        stats = (await client.get("/v2/models/tiny/stats")).json()["model_stats"][0]
        assert (stats["inference_count"], stats["inference_stats"]["success"]["count"]) == (2, 1)
        every = (await client.get("/v2/models/stats")).json()["model_stats"]
        assert [s["name"] for s in every] == ["spam", "tags", "tiny"]
        metrics = (await client.get("/metrics")).text
        provider = state.models.model("tiny").provider
        assert (
            f'lossserve_model_info{{model="tiny",provider="{provider}",version="2"}} 1.0' in metrics
        )

    with_client(repository, scenario)


def test_repository_api_is_off_without_a_token(repository: Path) -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        for method, path in [
            ("GET", "/v2/repository/index"),
            ("POST", "/v2/repository/index"),
            ("POST", "/v2/repository/models/tiny/unload"),
            ("POST", "/v2/repository/models/tiny/load"),
        ]:
            response = await client.request(method, path, headers=AUTH)
            assert response.status_code == 403
            assert response.json() == {
                "error": "the model repository API is disabled: start the server with "
                "LOSSSERVE_ADMIN_TOKEN set to enable it"
            }

    with_client(repository, scenario)


def test_repository_api_with_a_token(repository: Path) -> None:
    async def scenario(client: httpx.AsyncClient, state: ServiceState) -> None:
        missing = await client.post("/v2/repository/index")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        wrong = await client.post(
            "/v2/repository/models/tiny/unload", headers={"Authorization": "Bearer no"}
        )
        assert wrong.json() == {"error": "the model repository API: the bearer token is not valid"}
        assert state.models.is_ready("tiny")
        index = (await client.post("/v2/repository/index", headers=AUTH)).json()
        assert index[-1] == {"name": "tiny", "version": "2", "state": "READY", "reason": ""}
        unload = await client.post(
            "/v2/repository/models/tiny/unload",
            json={"parameters": {"unload_dependents": False}},
            headers=AUTH,
        )
        assert (unload.status_code, unload.json()) == (200, {})
        ready_only = await client.post("/v2/repository/index", json={"ready": True}, headers=AUTH)
        assert [m["name"] for m in ready_only.json()] == ["spam", "tags"]
        refused = await client.post(
            "/v2/repository/models/tiny/load", json={"parameters": {"config": "{}"}}, headers=AUTH
        )
        assert refused.status_code == 400
        assert refused.json()["error"].startswith("parameters.config: not supported")
        assert (
            await client.post("/v2/repository/models/tiny/load", headers=AUTH)
        ).status_code == 200
        assert state.models.is_ready("tiny")
        traversal = await client.post("/v2/repository/models/..%2Ftiny/load", headers=AUTH)
        assert traversal.status_code in (400, 404)

    with_client(repository, scenario, admin_token=TOKEN)


def test_predict_returns_labels_and_the_apps_error_body(repository: Path) -> None:
    features = rows(2, seed=5)
    expected = reference(repository / "tiny" / "2", features)

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        response = await client.post("/models/tiny/predict", json={"instances": features.tolist()})
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        labels = ["cat", "dog", "bird"]
        assert [p["labels"] for p in predictions] == [[labels[i]] for i in expected["decisions"]]
        assert list(predictions[0]["probabilities"]) == labels
        bad = await client.post("/models/tiny/predict", json={"instances": [[1, 2]]})
        assert bad.status_code == 400
        assert bad.json() == {
            "error": {
                "code": "INVALID_ARGUMENT",
                "message": "instances[0]: expected a row of 4 numbers, got 2",
                "details": [],
            }
        }
        unknown = await client.post("/models/nosuch/predict", json={"instances": [[1, 2, 3, 4]]})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"] == "unknown model 'nosuch'"

    with_client(repository, scenario)


def test_inference_served_directly_answers_as_through_fastapi(repository: Path) -> None:
    """The app serves ``/v2/models/{m}[/versions/{v}]/infer`` from its ASGI call (its hot
    path skips FastAPI's machinery); FastAPI's own route for it must answer the same bytes,
    statuses and headers, and both count in the route's metrics."""
    features = rows(3)
    good = {"inputs": [json_input(features)]}
    calls: list[tuple[str, str, Any, dict[str, str]]] = [
        ("POST", "/v2/models/tiny/infer", good, {}),
        ("POST", "/v2/models/tiny/versions/2/infer", good, {"x-request-id": "given"}),
        ("POST", "/v2/models/tiny/versions/9/infer", good, {}),
        ("POST", "/v2/models/nope/infer", good, {}),
        ("POST", "/v2/models/tiny/infer", {"inputs": [json_input(features, "other")]}, {}),
        ("POST", "/v2/models/tiny/infer", "not json", {}),
        ("GET", "/v2/models/tiny/infer", None, {}),  # not the direct route's method: 405
    ]

    async def scenario(client: httpx.AsyncClient, state: ServiceState) -> list[Any]:
        app = client._transport.app  # type: ignore[attr-defined]
        answers = []
        served = app.observed
        seen: list[str] = []

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["path"])
            await served(scope, receive, send)

        for direct in (True, False):
            observed = app.observed
            app.observed = counted if direct else None  # None: all through FastAPI's routes
            try:
                for method, path, body, headers in calls:
                    content = body if isinstance(body, str) else json.dumps(body)
                    response = await client.request(
                        method, path, content=None if body is None else content, headers=headers
                    )
                    answers.append(
                        (
                            response.status_code,
                            response.content,
                            response.headers.get("content-type"),
                            response.headers.get("x-request-id") == "given",
                        )
                    )
            finally:
                app.observed = observed
        metrics = (await client.get("/metrics")).text
        return [answers, metrics, seen]

    answers, metrics, seen = with_client(repository, scenario)
    assert seen == [path for method, path, *_ in calls if method == "POST"]
    direct, fastapi = answers[: len(calls)], answers[len(calls) :]
    assert direct == fastapi
    assert [status for status, *_ in direct] == [200, 200, 404, 404, 400, 400, 405]
    assert direct[1][3] and not direct[0][3]
    label = 'route="/v2/models/{model_name}/infer",status="OK",transport="http"'
    count = next(
        line
        for line in metrics.splitlines()
        if line.startswith("lossserve_requests_total{") and label in line
    )
    assert count.endswith(" 2.0"), count


def test_stats_and_metrics_count_queue_compute_and_batch_sizes(repository: Path) -> None:
    """Triton's statistics fields and the per-model Prometheus counters come from the same
    numbers: requests that reached a run, their queue and run time, rows a run."""

    async def scenario(client: httpx.AsyncClient, state: ServiceState) -> None:
        for count in (1, 3, 1):
            body = {"inputs": [json_input(rows(count))]}
            response = await client.post("/v2/models/tiny/infer", json=body)
            assert response.status_code == 200
        narrow = {"inputs": [json_input(np.zeros((1, 3), np.float32))]}
        failed = await client.post("/v2/models/tiny/infer", json=narrow)
        assert failed.status_code == 400  # refused before the batcher: not a run
        stats = (await client.get("/v2/models/tiny/stats")).json()["model_stats"][0]
        inference = stats["inference_stats"]
        assert inference["success"]["count"] == 3
        assert inference["queue"]["count"] == inference["compute_infer"]["count"] == 3
        assert inference["compute_infer"]["ns"] > 0 and inference["queue"]["ns"] >= 0
        sizes = {b["batch_size"]: b["compute_infer"]["count"] for b in stats["batch_stats"]}
        assert sizes == {1: 2, 3: 1}
        assert sum(sizes.values()) == stats["execution_count"]
        metrics = (await client.get("/metrics")).text
        model = 'model="tiny",version="2"'
        success = 'model="tiny",outcome="success",version="2"'
        assert f"lossserve_model_requests_total{{{success}}} 3.0" in metrics
        assert f"lossserve_model_inference_rows_total{{{model}}} 5.0" in metrics
        assert f'lossserve_model_batch_size_bucket{{le="2",{model}}} 2.0' in metrics
        assert f'lossserve_model_batch_size_bucket{{le="4",{model}}} 3.0' in metrics
        assert f"lossserve_model_batch_size_count{{{model}}} 3.0" in metrics
        assert f"lossserve_model_batch_size_sum{{{model}}} 5.0" in metrics
        compute = float(
            next(
                line.split()[-1]
                for line in metrics.splitlines()
                if line.startswith(f"lossserve_model_compute_infer_duration_us_total{{{model}}}")
            )
        )
        assert compute == pytest.approx(inference["compute_infer"]["ns"] / 1e3)
        assert "process_cpu_seconds_total" in metrics and "python_info" in metrics
        assert 'status="INVALID_ARGUMENT",transport="http"' in metrics

    with_client(repository, scenario)


def test_bytes_inputs_are_costed_as_the_strings_they_become(repository: Path) -> None:
    """A BYTES element becomes Python objects (bytes, str) and ONNX Runtime's copy: ~150
    bytes of memory for a 2-byte element, not the 8 a number costs."""

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        count = 8_000  # 64 KB as floats; about 1.2 MB as strings
        entry = {"name": "features", "shape": [count // 4, 4], "datatype": "BYTES"}
        response = await client.post(
            "/v2/models/tiny/infer", json={"inputs": [{**entry, "data": ["ab"] * count}]}
        )
        assert response.status_code == 413, response.text
        assert "LOSSSERVE_MAX_REQUEST_MEMORY_BYTES" in response.json()["error"]

    with_client(repository, scenario, max_request_memory_bytes=1024 * 1024)
