"""Hostile requests to the Open Inference Protocol over REST (``/v2/...``), to
``POST /models/{name}/predict`` and to the repository API (the server runs with
``LOSSSERVE_ADMIN_TOKEN=`` empty, which must not let an empty bearer token in).

The digits model takes ``features`` ``[-1, 64]`` FP32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest

from ._harness import (
    DEADLINE_S,
    FEATURES,
    HEADER_LENGTH,
    MAX_BODY,
    MAX_ELEMENTS,
    SLACK_S,
    Harness,
    assert_refused,
    features,
    gzip_json_zeros,
    gzip_small,
    gzip_zeros,
    infer_binary,
    infer_json,
    raw_http,
    request_head,
    with_value,
)

pytestmark = pytest.mark.slow

INFER = "/v2/models/digits/infer"
ROWS = features()
NAN_MESSAGE_FIELD = "features"


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: Callable[[], Any]
    """A JSON document, or (bytes, headers) for a raw body."""
    field: str
    cheap_ok: Callable[[Any], bool] | None = None
    """When a 200 is acceptable too: a check of its JSON answer."""


def raw(data: bytes, headers: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    return data, {"content-type": "application/json", **(headers or {})}


def json_with_header(value: str | bytes) -> tuple[bytes, dict[str, Any]]:
    return raw(orjson.dumps(infer_json(ROWS.ravel().tolist())), {HEADER_LENGTH: value})


def inputs(count: int) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": f"x{i}", "shape": [1], "datatype": "FP32", "data": [0.0]} for i in range(count)
        ]
    }


def outputs(*entries: dict[str, Any]) -> dict[str, Any]:
    return {**infer_json(ROWS.ravel().tolist()), "outputs": list(entries)}


def at_most_classes(document: Any) -> bool:
    """A classification answer clamped to the model's 10 classes."""
    shapes = [o["shape"] for o in document["outputs"]]
    return all(shape[-1] <= 10 for shape in shapes)


def gzip_under_limit() -> tuple[bytes, dict[str, Any]]:
    """JSON zeros for exactly max_elements features, gzipped (inflates to ~128 MiB)."""
    return gzip_json_zeros(MAX_ELEMENTS), {
        "content-type": "application/json",
        "content-encoding": "gzip",
    }


OIP_CASES = [
    # -- shapes
    Case("shape-2e64-1-by-0", INFER, lambda: infer_json([], shape=[2**64 - 1, 0]), "features"),
    Case("shape-2e63-by-0", INFER, lambda: infer_json([], shape=[2**63, 0]), "features"),
    Case("shape-N-by-0", INFER, lambda: infer_json([], shape=[2, 0]), "features"),
    Case("shape-0-by-N", INFER, lambda: infer_json([], shape=[0, FEATURES]), "features"),
    Case("shape-negative", INFER,
         lambda: infer_json(ROWS.ravel().tolist(), shape=[-2, FEATURES]), "features"),
    Case("shape-superscript-two", INFER,
         lambda: infer_json(ROWS.ravel().tolist(), shape=["²", FEATURES]), "features"),
    Case("shape-arabic-one", INFER,
         lambda: infer_json(ROWS.ravel().tolist(), shape=["١", FEATURES]), "features"),
    Case("shape-float", INFER,
         lambda: infer_json(ROWS.ravel().tolist(), shape=[2.0, FEATURES]), "features"),
    Case("shape-scalar", INFER, lambda: infer_json(1.0, shape=[]), "features"),
    Case("shape-3d", INFER,
         lambda: infer_json(ROWS.ravel().tolist(), shape=[2, 1, FEATURES]), "features"),
    Case("data-count-short", INFER, lambda: infer_json(ROWS.ravel().tolist()[:-1]), "features"),
    Case("binary-bytes-short", INFER,
         lambda: infer_binary(ROWS.tobytes()[:-4], [2, FEATURES]), "features"),
    Case("binary-size-mismatch-body", INFER, lambda: (
        infer_binary(ROWS.tobytes(), [2, FEATURES])[0] + b"\0" * 8,
        infer_binary(ROWS.tobytes(), [2, FEATURES])[1]), "binary"),
    Case("binary-shape-2e64-1-by-0", INFER,
         lambda: infer_binary(b"", [2**64 - 1, 0]), "features"),
    # -- Inference-Header-Content-Length
    Case("header-length-superscript-two", INFER,
         lambda: json_with_header("²".encode("latin-1")), HEADER_LENGTH),
    Case("header-length-arabic-one", INFER, lambda: json_with_header("١".encode()), HEADER_LENGTH),
    Case("header-length-negative", INFER, lambda: json_with_header("-5"), HEADER_LENGTH),
    Case("header-length-huge", INFER, lambda: json_with_header("9" * 40), HEADER_LENGTH),
    # -- values: NaN / Inf / out of range must be refused on every path
    Case("binary-nan", INFER,
         lambda: infer_binary(with_value(ROWS, np.nan).tobytes(), [2, FEATURES]), "features"),
    Case("binary-inf", INFER,
         lambda: infer_binary(with_value(ROWS, np.inf).tobytes(), [2, FEATURES]), "features"),
    Case("binary-fp64-nan", INFER, lambda: infer_binary(
        with_value(ROWS.astype(np.float64), np.nan).tobytes(), [2, FEATURES], "FP64"),
         "features"),
    Case("json-1e400", INFER, lambda: raw(
        b'{"inputs":[{"name":"features","shape":[1,64],"datatype":"FP32","data":[1e400'
        + b",0" * 63 + b"]}]}"), "body"),
    Case("json-3.5e38", INFER,
         lambda: infer_json([3.5e38] + [0.0] * 63, shape=[1, FEATURES]), "features"),
    Case("json-string-nan", INFER,
         lambda: infer_json(["NaN"] + [0.0] * 63, shape=[1, FEATURES]), "features"),
    Case("json-booleans", INFER,
         lambda: infer_json([True] * FEATURES, shape=[1, FEATURES]), "features"),
    Case("json-null", INFER,
         lambda: infer_json([None] * FEATURES, shape=[1, FEATURES]), "features"),
    Case("json-nested-500", INFER, lambda: raw(
        b'{"inputs":[{"name":"features","shape":[1,64],"datatype":"FP32","data":'
        + b"[" * 500 + b"0.5" + b"]" * 500 + b"}]}"), "features"),
    # -- datatypes
    Case("datatype-bytes", INFER,
         lambda: infer_json(["a"] * (2 * FEATURES), datatype="BYTES"), "features"),
    Case("datatype-fp16", INFER, lambda: infer_binary(
        ROWS.astype(np.float16).tobytes(), [2, FEATURES], "FP16"), "features"),
    Case("datatype-bool", INFER,
         lambda: infer_json([True] * (2 * FEATURES), datatype="BOOL"), "features"),
    Case("datatype-int64", INFER,
         lambda: infer_json([1] * (2 * FEATURES), datatype="INT64"), "features"),
    Case("datatype-unknown", INFER,
         lambda: infer_json(ROWS.ravel().tolist(), datatype="FP128"), "features"),
    Case("datatype-bytes-binary-lengths", INFER, lambda: infer_binary(
        (2**32 - 1).to_bytes(4, "little") + b"abc", [1], "BYTES"), "features"),
    # -- inputs and outputs
    Case("inputs-1000", INFER, lambda: inputs(1000), "input"),
    Case("inputs-empty", INFER, lambda: {"inputs": []}, "inputs"),
    Case("inputs-not-list", INFER, lambda: {"inputs": {"name": "features"}}, "inputs"),
    Case("inputs-duplicate", INFER, lambda: {
        "inputs": infer_json(ROWS.ravel().tolist())["inputs"] * 2}, "features"),
    Case("output-unknown", INFER, lambda: outputs({"name": "embeddings"}), "embeddings"),
    Case("output-10kb-name", INFER, lambda: outputs({"name": "o" * 10240}), "output"),
    Case("outputs-1000-duplicates", INFER, lambda: outputs(*[{"name": "logits"}] * 1000),
         "logits"),
    Case("classification-1e12", INFER,
         lambda: outputs({"name": "probabilities", "parameters": {"classification": 10**12}}),
         "classification", cheap_ok=at_most_classes),
    Case("classification-2e63-1", INFER, lambda: outputs(
        {"name": "logits", "parameters": {"classification": 2**63 - 1}}),
         "classification", cheap_ok=at_most_classes),
    Case("classification-2e64", INFER, lambda: raw(
        orjson.dumps(infer_json(ROWS.ravel().tolist()))[:-1]
        + b',"outputs":[{"name":"logits","parameters":{"classification":18446744073709551616}}]}'),
         "classification"),
    Case("classification-negative", INFER,
         lambda: outputs({"name": "logits", "parameters": {"classification": -1}}),
         "classification"),
    Case("classification-on-decisions", INFER,
         lambda: outputs({"name": "decisions", "parameters": {"classification": 3}}),
         "decisions"),
    Case("id-not-string", INFER, lambda: {**infer_json(ROWS.ravel().tolist()), "id": 5}, "id"),
    Case("parameters-not-object", INFER,
         lambda: {**infer_json(ROWS.ravel().tolist()), "parameters": [1]}, "parameters"),
    Case("binary_data_output-string", INFER, lambda: {
        **infer_json(ROWS.ravel().tolist()), "parameters": {"binary_data_output": "yes"}},
         "binary_data_output"),
    # -- paths
    Case("version-superscript-two", "/v2/models/digits/versions/²/infer",
         lambda: infer_json(ROWS.ravel().tolist()), "version"),
    Case("version-arabic-one", "/v2/models/digits/versions/١/infer",
         lambda: infer_json(ROWS.ravel().tolist()), "version"),
    Case("version-zero", "/v2/models/digits/versions/0/infer",
         lambda: infer_json(ROWS.ravel().tolist()), "version"),
    Case("version-huge", "/v2/models/digits/versions/" + "9" * 400 + "/infer",
         lambda: infer_json(ROWS.ravel().tolist()), "version"),
    Case("model-10kb-name", "/v2/models/" + "m" * 10240 + "/infer",
         lambda: infer_json(ROWS.ravel().tolist()), "model"),
    Case("model-unknown", "/v2/models/nope/infer",
         lambda: infer_json(ROWS.ravel().tolist()), "nope"),
    # -- the body
    Case("body-invalid-utf8", INFER, lambda: raw(b'{"inputs":[{"name":"\xff"}]}'), "body"),
    Case("body-nested-100k", INFER, lambda: raw(b"[" * 100_000), "body"),
    Case("body-array", INFER, lambda: raw(b"[]"), "body"),
    Case("gzip-inflates-past-limit", INFER, lambda: (gzip_zeros(MAX_BODY + 64 * 1024 * 1024), {
        "content-type": "application/json", "content-encoding": "gzip"}), "body"),
    Case("gzip-inflates-to-1GiB", INFER, lambda: (gzip_zeros(1024**3), {
        "content-type": "application/json", "content-encoding": "gzip"}), "body"),
    # refused by the JSON value limit before it is parsed: the body is named
    Case("gzip-json-64M-zeros", INFER, gzip_under_limit, "body",
         cheap_ok=lambda document: bool(document["outputs"])),
    Case("gzip-corrupt", INFER, lambda: (gzip_small(b"{}")[:-6] + b"garbage", {
        "content-type": "application/json", "content-encoding": "gzip"}), "body"),
    Case("deflate-corrupt", INFER, lambda: (b"\x78\x9c garbage", {
        "content-type": "application/json", "content-encoding": "deflate"}), "body"),
    Case("content-encoding-br", INFER, lambda: (b"{}", {
        "content-type": "application/json", "content-encoding": "br"}), "Content-Encoding"),
    Case("binary-on-multilabel-nan", "/v2/models/multilabel/infer", lambda: infer_binary(
        with_value(np.zeros((1, 20), np.float32), np.nan).tobytes(), [1, 20]), "features"),
]  # fmt: skip

PREDICT = "/models/digits/predict"


def instances(rows: Any) -> dict[str, Any]:
    return {"instances": rows}


PREDICT_CASES = [
    Case("instances-empty", PREDICT, lambda: instances([]), "instances"),
    Case("instances-not-list", PREDICT, lambda: instances({"a": 1}), "instances"),
    Case("instances-1e400", PREDICT,
         lambda: raw(b'{"instances":[[1e400' + b",0" * 63 + b"]]}"), "body"),
    Case("instances-3.5e38", PREDICT,
         lambda: instances([[3.5e38] + [0.0] * 63]), "instances[0][0]"),
    Case("instances-string-nan", PREDICT,
         lambda: instances([["NaN"] + [0.0] * 63]), "instances[0][0]"),
    Case("instances-booleans", PREDICT, lambda: instances([[True] * FEATURES]), "instances[0]"),
    Case("instances-null", PREDICT, lambda: instances([[None] * FEATURES]), "instances[0]"),
    Case("instances-short-row", PREDICT, lambda: instances([[0.0] * 63]), "instances[0]"),
    Case("instances-ragged", PREDICT,
         lambda: instances([[0.0] * 64, [0.0] * 65]), "instances[1]"),
    Case("instances-nested", PREDICT, lambda: instances([[[0.0] * 64]]), "instances[0]"),
    Case("instances-object-missing", PREDICT, lambda: instances([{"x0": 1.0}]), "instances[0]"),
    Case("instances-over-max-elements", PREDICT,
         lambda: raw(b'{"instances":[' + b",".join(
             [b"[" + b"0," * (FEATURES - 1) + b"0]"] * (MAX_ELEMENTS // FEATURES + 1)) + b"]}"),
         "body"),  # refused by the JSON value limit before it is parsed
    Case("unknown-field", PREDICT, lambda: {"instances": [[0.0] * 64], "signature": "x"},
         "signature"),
    Case("binary-header", PREDICT, lambda: raw(b'{"instances":[]}', {HEADER_LENGTH: "16"}),
         HEADER_LENGTH),
    Case("header-length-superscript-two", PREDICT, lambda: raw(
        b'{"instances":[]}', {HEADER_LENGTH: "²".encode("latin-1")}), HEADER_LENGTH),
    Case("model-unknown", "/models/nope/predict", lambda: instances([[0.0] * 64]), "nope"),
    Case("body-invalid-utf8", PREDICT, lambda: raw(b'{"instances":"\xff"}'), "body"),
    Case("body-nested-100k", PREDICT, lambda: raw(b"[" * 100_000), "body"),
    Case("gzip-inflates-to-1GiB", PREDICT, lambda: (gzip_zeros(1024**3), {
        "content-type": "application/json", "content-encoding": "gzip"}), "body"),
]  # fmt: skip

ALL_CASES = OIP_CASES + PREDICT_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[f"{c.path[:40]}:{c.id}" for c in ALL_CASES])
def test_hostile_inference_request_is_refused(hostile: Harness, case: Case) -> None:
    body = case.body()
    if isinstance(body, tuple):
        reply = hostile.post(case.path, content=body[0], headers=body[1])
    else:
        reply = hostile.post(case.path, json=body)
    if case.cheap_ok is not None and reply.status == 200:
        assert reply.elapsed <= DEADLINE_S + SLACK_S, reply.describe()
        assert case.cheap_ok(orjson.loads(reply.body)), reply.describe()
        return
    assert_refused(reply, case.field)


NAN_PATHS = {
    "oip-rest-binary": lambda h: h.post(
        INFER, **dict(zip(("content", "headers"), infer_binary(
            with_value(ROWS, np.nan).tobytes(), [2, FEATURES]), strict=True))),
    "oip-rest-json-out-of-range": lambda h: h.post(
        INFER, json=infer_json([3.5e38] + [0.0] * 63, shape=[1, FEATURES])),
    "predict-out-of-range": lambda h: h.post(PREDICT, json=instances([[3.5e38] + [0.0] * 63])),
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(NAN_PATHS))
def test_non_finite_features_are_refused_alike(hostile: Harness, path: str) -> None:
    """NaN (binary) and out-of-range (JSON) features: 400 naming the input on every path."""
    reply = NAN_PATHS[path](hostile)
    assert_refused(reply, "features" if path.startswith("oip") else "instances[0][0]")
    assert reply.status == 400, reply.describe()
    assert "finite" in reply.message or "range" in reply.message, reply.describe()


EMPTY_TOKENS: list[bytes | None] = [
    b"Bearer ",
    b"Bearer",
    b"bearer    ",
    b"Bearer \t",
    b"",
    b"Basic Og==",
    None,
]
ADMIN_CALLS = [
    ("GET", "/v2/repository/index"),
    ("POST", "/v2/repository/index"),
    ("POST", "/v2/repository/models/digits/load"),
    ("POST", "/v2/repository/models/multilabel/unload"),
]


@pytest.mark.parametrize("token", EMPTY_TOKENS, ids=repr)
@pytest.mark.parametrize("call", ADMIN_CALLS, ids=[" ".join(c) for c in ADMIN_CALLS])
def test_empty_admin_token_lets_nobody_in(
    hostile: Harness, call: tuple[str, str], token: bytes | None
) -> None:
    """Raw sockets: HTTP clients strip or refuse the trailing blanks of ``Bearer ``."""
    method, path = call
    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    body = b"" if method == "GET" else b"{}"
    headers["Content-Length"] = str(len(body))
    reply = raw_http(hostile.port, request_head(path, headers, method), [body])
    assert reply.status in (401, 403), f"{method} {path} with {token!r}: {reply.describe()}"
    assert b"token" in reply.data.lower() or b"authorization" in reply.data.lower()
    ready = hostile.get("/v2/models/multilabel/ready")
    assert ready.status == 200, f"multilabel no longer served: {ready.describe()}"
