"""POST /evaluate and POST /thresholds through an in-process client.

Every answer equals :func:`lossserve.core.evaluator.evaluate` / ``fit_thresholds`` called
directly on the same arrays, in every encoding; bad input is a 4xx whose message names the
field.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import asdict
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from lossserve.core import evaluator
from lossserve.core.errors import InvalidArgument
from lossserve.core.state import ServiceState
from lossserve.core.types import EvaluateRequest, ThresholdsRequest

from .conftest import with_client

RNG = np.random.default_rng(7)
N, C = 40, 4
# float32 data: nested lists decode to float32, so every encoding carries the same values.
MULTICLASS = (
    RNG.normal(size=(N, C)).astype(np.float32),
    RNG.integers(0, C, size=N).astype(np.int64),
)
BINARY = (
    RNG.normal(size=N).astype(np.float32),
    RNG.integers(0, 2, size=N).astype(np.int64),
)
MULTILABEL = (
    RNG.normal(size=(N, C)).astype(np.float32),
    RNG.integers(0, 2, size=(N, C)).astype(np.int64),
)
Arrays = dict[str, np.ndarray]
TASKS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "multiclass": MULTICLASS,
    "binary": BINARY,
    "multilabel": MULTILABEL,
}
LOSSES = {"multiclass": "focal", "binary": "binary_cross_entropy", "multilabel": "sigmoid_focal"}
# Thresholds (offsets for multiclass) exactly representable in float32.
THRESHOLDS = {
    "multiclass": np.array([0.25, -0.5, 0.0, 0.125], dtype=np.float32),
    "binary": np.array([0.5], dtype=np.float32),
    "multilabel": np.array([-0.25, 0.0, 0.5, 1.0], dtype=np.float32),
}


def _plain(result: Any) -> Any:
    """A core result as JSON reads it back (arrays as lists)."""
    return orjson.loads(orjson.dumps(asdict(result), option=orjson.OPT_SERIALIZE_NUMPY))


def b64(array: np.ndarray) -> dict[str, Any]:
    little = array.astype(array.dtype.newbyteorder("<"))
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "b64": base64.b64encode(little.tobytes()).decode(),
    }


async def post(
    client: httpx.AsyncClient, path: str, fields: dict[str, Any], tensors: Arrays
) -> httpx.Response:
    """POST ``fields`` with ``tensors`` as nested lists (the plain JSON body)."""
    document = {**fields, **{name: array.tolist() for name, array in tensors.items()}}
    return await client.post(path, json=document)


async def post_encoded(
    client: httpx.AsyncClient,
    path: str,
    encoding: str,
    fields: dict[str, Any],
    tensors: Arrays,
) -> httpx.Response:
    if encoding == "lists":
        return await post(client, path, fields, tensors)
    if encoding == "b64":
        document = {**fields, **{name: b64(array) for name, array in tensors.items()}}
        return await client.post(path, json=document)
    assert encoding == "binary"
    header = {
        **fields,
        **{
            name: {
                "shape": list(array.shape),
                "dtype": array.dtype.name,
                "binary_data_size": array.nbytes,
            }
            for name, array in tensors.items()
        },
    }
    head = json.dumps(header).encode()
    payload = head + b"".join(np.ascontiguousarray(a).tobytes() for a in tensors.values())
    return await client.post(
        path,
        content=payload,
        headers={
            "Inference-Header-Content-Length": str(len(head)),
            "Content-Type": "application/octet-stream",
        },
    )


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def refused(response: httpx.Response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == ("PAYLOAD_TOO_LARGE" if status == 413 else "INVALID_ARGUMENT")
    assert re.search(pattern, error["message"]), error["message"]


# ---------------------------------------------------------------------------- /evaluate


@pytest.mark.parametrize("encoding", ["lists", "b64", "binary"])
def test_evaluate_equals_the_core_in_every_encoding(encoding: str) -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        for task, (logits, targets) in TASKS.items():
            plain = ok(
                await post_encoded(
                    client, "/evaluate", encoding, {}, {"logits": logits, "targets": targets}
                )
            )
            assert plain == _plain(evaluator.evaluate(EvaluateRequest(logits, targets))), task
            assert plain["loss"] is None

            loss, thresholds = LOSSES[task], THRESHOLDS[task]
            params = {"gamma": 1.5} if "focal" in loss else {}
            fields = {"loss": loss, "params": params}
            tensors: Arrays = {"logits": logits, "targets": targets, "thresholds": thresholds}
            full = ok(await post_encoded(client, "/evaluate", encoding, fields, tensors))
            expected = evaluator.evaluate(
                EvaluateRequest(
                    logits,
                    targets,
                    loss=loss,
                    params=params,
                    thresholds=thresholds,
                )
            )
            assert full == _plain(expected), task
            assert full["task"] == task and isinstance(full["loss"], float)
            assert full != plain  # the thresholds and the loss were applied

    with_client(scenario)


def test_evaluate_reads_integral_json_logits_as_floats() -> None:
    logits = np.array([[1, 0, 0], [0, 2, 1], [3, 0, 4]], dtype=np.float32)
    targets = np.array([0, 1, 2])

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        # [[1, 0, 0], ...]: JSON writers such as JavaScript's print 1.0 as 1.
        body = {"logits": logits.astype(int).tolist(), "targets": targets.tolist()}
        answer = ok(await client.post("/evaluate", json={**body, "loss": "cross_entropy"}))
        expected = evaluator.evaluate(EvaluateRequest(logits, targets, loss="cross_entropy"))
        assert answer == _plain(expected)

    with_client(scenario)


# ---------------------------------------------------------------------------- /thresholds


@pytest.mark.parametrize("encoding", ["lists", "b64", "binary"])
def test_thresholds_equal_the_core_in_every_encoding(encoding: str) -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        for task, (scores, targets) in TASKS.items():
            for beta in (1.0, 2.0):
                response = await post_encoded(
                    client,
                    "/thresholds",
                    encoding,
                    {"beta": beta},
                    {"scores": scores, "targets": targets},
                )
                answer = ok(response)
                result = evaluator.fit_thresholds(ThresholdsRequest(scores, targets, beta=beta))
                expected = _plain(result)
                assert answer == expected, (task, beta)
                assert answer["kind"] == ("offsets" if task == "multiclass" else "thresholds")
                assert len(answer["values"]) == (1 if task == "binary" else C)
                if task != "binary":
                    assert answer["after"]["macro_f1"] >= answer["before"]["macro_f1"]
                elif beta == 1.0:  # binary: the positive class's F1 is what the fit raises
                    assert answer["after"]["f1_positive"] >= answer["before"]["f1_positive"]

    with_client(scenario)


def test_thresholds_beta_defaults_to_one_and_accepts_an_integer() -> None:
    scores, targets = BINARY

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        tensors: Arrays = {"scores": scores, "targets": targets}
        default = ok(await post(client, "/thresholds", {}, tensors))
        one = ok(await post(client, "/thresholds", {"beta": 1}, tensors))
        expected = evaluator.fit_thresholds(ThresholdsRequest(scores, targets))
        assert default == one == _plain(expected)

    with_client(scenario)


# ---------------------------------------------------------------------------- errors


def _nan_at(array: np.ndarray, index: int) -> np.ndarray:
    bad: np.ndarray = array.astype(np.float32)
    bad.reshape(-1)[index] = np.nan
    return bad


@pytest.mark.parametrize(
    ("path", "body", "pattern"),
    [
        ("/evaluate", {"logits": [0.5, -0.5]}, r"^targets: required field missing$"),
        ("/evaluate", {"targets": [1, 0]}, r"^logits: required field missing$"),
        ("/thresholds", {"scores": [0.5, -0.5]}, r"^targets: required field missing$"),
        ("/thresholds", {"targets": [1, 0]}, r"^scores: required field missing$"),
        (
            "/evaluate",
            {"logits": [0.5, -0.5], "targets": [1, 0], "logit": [1.0]},
            r"^logit: unknown field; expected one of \['logits', 'loss', 'params', "
            r"'targets', 'thresholds'\]$",
        ),
        (
            "/thresholds",
            {"scores": [0.5, -0.5], "targets": [1, 0], "beta2": 2},
            r"^beta2: unknown field; expected one of \['beta', 'scores', 'targets'\]$",
        ),
        (
            "/thresholds",
            {"scores": [0.5, -0.5], "targets": [1, 0], "beta": 0},
            r"^beta: expected a number in \(0, 1e\+06\], got 0$",
        ),
        (
            "/thresholds",
            {"scores": [0.5, -0.5], "targets": [1, 0], "beta": -1.5},
            r"^beta: expected a number in \(0, 1e\+06\], got -1\.5$",
        ),
        (
            "/thresholds",
            {"scores": [0.5, -0.5], "targets": [1, 0], "beta": "2"},
            r"^beta: expected int or float, got '2'$",
        ),
        (
            "/thresholds",
            {"scores": [0.5, -0.5], "targets": [1, 0], "beta": True},
            r"^beta: expected int or float, got True$",
        ),
        (
            "/thresholds",
            {"scores": b64(_nan_at(BINARY[0], 3)), "targets": BINARY[1].tolist()},
            r"^scores: expected finite values within ±1e\+30, got nan at index 3$",
        ),
        (
            "/evaluate",
            {"logits": b64(_nan_at(MULTICLASS[0], 5)), "targets": MULTICLASS[1].tolist()},
            r"^logits: expected finite values within ±1e\+30, got nan at index \(1, 1\)$",
        ),
        (
            "/evaluate",
            {"logits": [[0.5, 0.1], [0.2, 0.3]], "targets": [0, 2]},
            r"^targets: expected class indices in \[0, 1\] for 2 classes, got 2$",
        ),
        (
            "/evaluate",
            {"logits": [0.5, -0.5], "targets": [1, 0], "loss": "focall"},
            r"^loss: unknown loss 'focall'.*Did you mean 'focal'\?$",
        ),
        (
            "/evaluate",
            {"logits": [0.5, -0.5], "targets": [1, 0], "thresholds": [0.0, 1.0]},
            r"^thresholds: expected shape \(1,\)",
        ),
        (
            "/thresholds",
            {"scores": [1e39, 0.0], "targets": [1, 0]},
            r"^scores: expected numbers within float32 range .* got 1e\+39 at index \[0\]$",
        ),
    ],
    ids=[
        "evaluate-missing-targets",
        "evaluate-missing-logits",
        "thresholds-missing-targets",
        "thresholds-missing-scores",
        "evaluate-unknown-field",
        "thresholds-unknown-field",
        "beta-zero",
        "beta-negative",
        "beta-string",
        "beta-bool",
        "thresholds-nan-b64",
        "evaluate-nan-b64",
        "evaluate-label-out-of-range",
        "evaluate-unknown-loss",
        "evaluate-thresholds-shape",
        "thresholds-beyond-float32",
    ],
)
def test_bad_input_is_a_400_naming_the_field(path: str, body: Any, pattern: str) -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        refused(await client.post(path, json=body), 400, pattern)

    with_client(scenario)


def test_bad_input_message_is_the_cores() -> None:
    """The route translates; the message comes from the core unchanged."""
    scores = _nan_at(BINARY[0], 3)

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        body = {"scores": b64(scores), "targets": BINARY[1].tolist()}
        response = await client.post("/thresholds", json=body)
        with pytest.raises(InvalidArgument) as direct:
            evaluator.fit_thresholds(ThresholdsRequest(scores, BINARY[1]))
        assert response.json()["error"]["message"] == direct.value.message

    with_client(scenario)


def test_tensors_over_the_element_limit_are_413() -> None:
    logits = np.zeros((300, 2), dtype=np.float32)

    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        body = {"logits": b64(logits), "targets": [0] * 300}
        refused(
            await client.post("/evaluate", json=body),
            413,
            r"^logits: expected at most 512 elements, got 600$",
        )
        body = {"scores": logits.tolist(), "targets": [0] * 300}
        refused(
            await client.post("/thresholds", json=body),
            413,
            r"^scores: expected at most 512 elements, got 600$",
        )

    with_client(scenario, max_elements=512)


def test_class_weights_beyond_the_element_limit_are_413() -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        refused(
            await client.post("/class-weights", json={"labels": [0, 1], "num_classes": 10**12}),
            413,
            r"^num_classes: expected at most 512, got 1000000000000$",
        )
        refused(
            await client.post("/class-weights", json={"labels": [0, 10**12]}),
            413,
            r"^labels: expected class indices below 512, got 1000000000000$",
        )
        at_limit = {"labels": list(range(512)), "num_classes": 512}
        assert len(ok(await client.post("/class-weights", json=at_limit))["weights"]) == 512

    with_client(scenario, max_elements=512)
