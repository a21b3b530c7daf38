"""Hostile bodies for ``POST /loss``, ``/class-weights``, ``/evaluate`` and ``/thresholds``.

Every case must answer a 4xx within the deadline whose message names the offending field,
and leave the server healthy (see ``_harness.py``). Cases marked ``cheap_ok`` are valid
requests at the edge of what is allowed: a 200 within the deadline (and under the memory
limit) is as good as a refusal there.
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
    HEADER_LENGTH,
    MAX_BODY,
    SLACK_S,
    Harness,
    assert_refused,
    b64,
    binary_body,
    raw_b64,
    with_value,
)

pytestmark = pytest.mark.slow

LOGITS = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
TARGETS = np.array([0, 2, 1, 0], np.int64)
MULTILABEL = (np.random.default_rng(1).random((4, 6)) < 0.3).astype(np.float32)


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: Callable[[], Any]
    """A JSON document, or (bytes, headers) for a raw body."""
    field: str
    cheap_ok: bool = False


def loss(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"loss": "cross_entropy", "logits": b64(LOGITS), "targets": b64(TARGETS)}
    body.update(fields)
    return body


def raw(data: bytes, headers: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    return data, {"content-type": "application/json", **(headers or {})}


def at_limit_lists() -> tuple[bytes, dict[str, Any]]:
    """Nested lists of zeros filling the body limit (about 125M numbers, 64M allowed)."""
    rows = (MAX_BODY - 200) // (2 * 1024 + 4)
    row = b"[" + b"0," * 1023 + b"0]"
    data = b'{"loss":"cross_entropy","targets":[0],"logits":[' + b",".join([row] * rows) + b"]}"
    return raw(data)


def hessian(name: str, rows: int, classes: int, **params: Any) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(rows, classes)).astype(np.float32)
    multiclass = name in ("cross_entropy", "focal", "logit_adjusted_cross_entropy", "ranking")
    targets = (
        rng.integers(0, classes, rows).astype(np.int64)
        if multiclass
        else (rng.random((rows, classes)) < 0.001).astype(np.float32)
    )
    return {
        "loss": name,
        "params": params,
        "logits": b64(logits),
        "targets": b64(targets),
        "return_hessian": True,
    }


LOSS_CASES = [
    # -- parameters that size the work
    Case("subset_softmax-max_k-1e9", "/loss", lambda: loss(
        loss="subset_softmax", params={"max_k": 10**9}, targets=b64(MULTILABEL),
        logits=b64(MULTILABEL * 2 - 1)), "max_k"),
    Case("subset_softmax-max_k-1e6", "/loss", lambda: loss(
        loss="subset_softmax", params={"max_k": 10**6}, targets=b64(MULTILABEL),
        logits=b64(MULTILABEL * 2 - 1)), "max_k"),
    Case("subset_softmax-k-1e6", "/loss", lambda: loss(
        loss="subset_softmax", params={"k": 10**6}, targets=b64(MULTILABEL),
        logits=b64(MULTILABEL * 2 - 1)), "k"),
    Case("subset_softmax-max_k-2e63", "/loss", lambda: loss(
        loss="subset_softmax", params={"max_k": 2**63}, targets=b64(MULTILABEL),
        logits=b64(MULTILABEL * 2 - 1)), "max_k"),
    Case("hessian-cross_entropy-2x30000", "/loss",
         lambda: hessian("cross_entropy", 2, 30000), "hessian", cheap_ok=True),
    Case("hessian-focal-16x8192", "/loss",
         lambda: hessian("focal", 16, 8192, gamma=2.0), "hessian", cheap_ok=True),
    Case("hessian-dice-2x30000", "/loss",
         lambda: hessian("dice", 2, 30000, scope="sample"), "hessian", cheap_ok=True),
    Case("hessian-asymmetric-2x30000", "/loss",
         lambda: hessian("asymmetric", 2, 30000), "hessian", cheap_ok=True),
    Case("hessian-ranking-2x30000", "/loss",
         lambda: hessian("ranking", 2, 30000), "hessian", cheap_ok=True),
    # -- shapes
    Case("logits-N-by-0", "/loss", lambda: loss(logits=raw_b64([4, 0], "float32", b"")), "logits"),
    Case("logits-0-by-N", "/loss", lambda: loss(
        logits=raw_b64([0, 3], "float32", b""), targets=raw_b64([0], "int64", b"")), "logits"),
    Case("logits-2e64-1-by-0", "/loss",
         lambda: loss(logits=raw_b64([2**64 - 1, 0], "float32", b"")), "logits"),
    Case("logits-2e63-by-0", "/loss",
         lambda: loss(logits=raw_b64([2**63, 0], "float32", b"")), "logits"),
    Case("logits-0-by-2e64-1", "/loss",
         lambda: loss(logits=raw_b64([0, 2**64 - 1], "float32", b"")), "logits"),
    Case("targets-2e64-1-by-0", "/loss",
         lambda: loss(targets=raw_b64([2**64 - 1, 0], "int64", b"")), "targets"),
    Case("logits-negative-dim", "/loss",
         lambda: loss(logits=raw_b64([-4, 3], "float32", LOGITS.tobytes())), "logits"),
    Case("logits-byte-count-short", "/loss",
         lambda: loss(logits=raw_b64([4, 3], "float32", LOGITS.tobytes()[:-4])), "logits"),
    Case("logits-byte-count-long", "/loss",
         lambda: loss(logits=raw_b64([4, 3], "float32", LOGITS.tobytes() + b"\0" * 4)), "logits"),
    Case("logits-shape-superscript-two", "/loss",
         lambda: loss(logits=raw_b64(["²", 3], "float32", LOGITS.tobytes())), "logits"),
    Case("logits-shape-arabic-one", "/loss",
         lambda: loss(logits=raw_b64(["١", 3], "float32", LOGITS.tobytes())), "logits"),
    Case("logits-shape-float", "/loss",
         lambda: loss(logits=raw_b64([4.0, 3], "float32", LOGITS.tobytes())), "logits"),
    Case("logits-shape-bool", "/loss",
         lambda: loss(logits=raw_b64([True, 3], "float32", LOGITS.tobytes())), "logits"),
    Case("logits-shape-64-dims", "/loss",
         lambda: loss(logits=raw_b64([1] * 64 + [12], "float32", LOGITS.tobytes())), "logits"),
    Case("logits-dtype-complex", "/loss",
         lambda: loss(logits=raw_b64([4, 3], "complex64", LOGITS.tobytes() * 2)), "logits"),
    Case("logits-b64-invalid", "/loss",
         lambda: loss(logits={"shape": [4, 3], "dtype": "float32", "b64": "!!!"}), "logits"),
    Case("targets-rows-mismatch", "/loss", lambda: loss(targets=[0, 1, 2]), "targets"),
    Case("sample_weight-shape", "/loss",
         lambda: loss(sample_weight=[1.0, 2.0]), "sample_weight"),
    # -- values
    Case("logits-nan-b64", "/loss", lambda: loss(logits=b64(with_value(LOGITS, np.nan))), "logits"),
    Case("logits-inf-b64", "/loss", lambda: loss(logits=b64(with_value(LOGITS, np.inf))), "logits"),
    Case("targets-nan", "/loss", lambda: loss(
        targets=b64(np.array([0, np.nan, 1, 0], np.float32))), "targets"),
    Case("sample_weight-nan", "/loss", lambda: loss(
        sample_weight=b64(np.array([1, np.nan, 1, 1], np.float32))), "sample_weight"),
    Case("sample_weight-negative-inf", "/loss", lambda: loss(
        sample_weight=b64(np.array([1, -np.inf, 1, 1], np.float32))), "sample_weight"),
    Case("targets-out-of-range", "/loss", lambda: loss(targets=[0, 1, 2, 3]), "targets"),
    Case("targets-2e63-1", "/loss", lambda: loss(targets=[0, 1, 2, 2**63 - 1]), "targets"),
    Case("targets-negative", "/loss", lambda: loss(targets=[0, 1, 2, -7]), "targets"),
    Case("logits-3.5e38", "/loss", lambda: loss(logits=[[3.5e38, 0.0, 0.0]], targets=[0]),
         "logits"),
    Case("logits-1e400", "/loss",
         lambda: raw(b'{"loss":"cross_entropy","logits":[[1e400,0]],"targets":[0]}'), "body"),
    Case("logits-booleans", "/loss",
         lambda: loss(logits=[[True, False, True]], targets=[0]), "logits"),
    Case("logits-strings", "/loss", lambda: loss(logits=[["1", "2", "3"]], targets=[0]), "logits"),
    Case("logits-ragged", "/loss", lambda: loss(logits=[[1.0, 2.0], [3.0]], targets=[0, 1]),
         "logits"),
    Case("logits-nested-100-levels", "/loss", lambda: loss(
        logits=orjson.loads(b"[" * 100 + b"1.0" + b"]" * 100), targets=[0]), "logits"),
    Case("logits-null", "/loss", lambda: loss(logits=None), "logits"),
    Case("loss-10kb-name", "/loss", lambda: loss(loss="x" * 10240), "loss"),
    Case("loss-not-string", "/loss", lambda: loss(loss=["focal"]), "loss"),
    Case("reduction-unknown", "/loss", lambda: loss(reduction="median"), "reduction"),
    Case("params-not-object", "/loss", lambda: loss(params=[1, 2]), "params"),
    Case("params-unknown-key", "/loss", lambda: loss(params={"gamma": 2.0}), "gamma"),
    Case("params-gamma-negative", "/loss", lambda: loss(loss="focal", params={"gamma": -1.0}),
         "gamma"),
    Case("params-gamma-1e308", "/loss", lambda: loss(loss="focal", params={"gamma": 1e308}),
         "gamma", cheap_ok=True),
    Case("return_grad-string", "/loss", lambda: loss(return_grad="yes"), "return_grad"),
    Case("return_hessian-number", "/loss", lambda: loss(return_hessian=1), "return_hessian"),
    Case("unknown-field", "/loss", lambda: loss(logit_adjust=True), "logit_adjust"),
    # -- the body itself
    Case("body-invalid-utf8", "/loss", lambda: raw(b'{"loss":"\xff\xfe","logits":[[1]]}'), "body"),
    Case("body-nested-100k", "/loss", lambda: raw(b"[" * 100_000), "body"),
    Case("body-nested-100k-in-logits", "/loss",
         lambda: raw(b'{"loss":"cross_entropy","logits":' + b"[" * 100_000), "body"),
    Case("body-array", "/loss", lambda: raw(b"[1, 2, 3]"), "body"),
    Case("body-empty", "/loss", lambda: raw(b""), "body|loss"),
    # refused by the JSON value limit before it is parsed: the body is named
    Case("body-lists-at-size-limit", "/loss", at_limit_lists, "body"),
    Case("header-length-superscript-two", "/loss",
         lambda: raw(orjson.dumps(loss()), {HEADER_LENGTH: "²".encode("latin-1")}), HEADER_LENGTH),
    Case("header-length-arabic-one", "/loss",
         lambda: raw(orjson.dumps(loss()), {HEADER_LENGTH: "١".encode()}), HEADER_LENGTH),
    Case("header-length-negative", "/loss",
         lambda: raw(orjson.dumps(loss()), {HEADER_LENGTH: "-1"}), HEADER_LENGTH),
    Case("header-length-huge", "/loss",
         lambda: raw(orjson.dumps(loss()), {HEADER_LENGTH: "9" * 40}), HEADER_LENGTH),
    Case("binary-size-beyond-body", "/loss", lambda: binary_body(
        {"loss": "cross_entropy",
         "logits": {"shape": [4, 3], "dtype": "float32", "binary_data_size": 2**40},
         "targets": [0, 2, 1, 0]}, LOGITS.tobytes()), "logits"),
    Case("binary-size-negative", "/loss", lambda: binary_body(
        {"loss": "cross_entropy",
         "logits": {"shape": [4, 3], "dtype": "float32", "binary_data_size": -48},
         "targets": [0, 2, 1, 0]}, LOGITS.tobytes()), "logits"),
    Case("binary-size-2e64", "/loss", lambda: binary_body(
        {"loss": "cross_entropy",
         "logits": {"shape": [4, 3], "dtype": "float32", "binary_data_size": 2**64 - 1},
         "targets": [0, 2, 1, 0]}, LOGITS.tobytes()), "logits"),
    Case("binary-nan", "/loss", lambda: binary_body(
        {"loss": "cross_entropy",
         "logits": {"shape": [4, 3], "dtype": "float32", "binary_data_size": 48},
         "targets": [0, 2, 1, 0]}, with_value(LOGITS, np.nan).tobytes()), "logits"),
    Case("binary-shape-2e64-1-by-0", "/loss", lambda: binary_body(
        {"loss": "cross_entropy",
         "logits": {"shape": [2**64 - 1, 0], "dtype": "float32", "binary_data_size": 0},
         "targets": [0]}), "logits"),
]  # fmt: skip


def classes(**fields: Any) -> dict[str, Any]:
    return {"labels": [0, 1, 1, 2], "strategy": "balanced", **fields}


CLASS_WEIGHT_CASES = [
    Case("num_classes-1e12", "/class-weights", lambda: classes(num_classes=10**12), "num_classes"),
    Case("num_classes-60M", "/class-weights", lambda: classes(num_classes=60_000_000),
         "num_classes"),
    Case("num_classes-60M-counts", "/class-weights",
         lambda: {"counts": [1.0] * 3, "num_classes": 60_000_000}, "num_classes"),
    Case("num_classes-2e63", "/class-weights", lambda: classes(num_classes=2**63), "num_classes"),
    Case("num_classes-zero", "/class-weights", lambda: classes(num_classes=0), "num_classes"),
    Case("num_classes-negative", "/class-weights", lambda: classes(num_classes=-5), "num_classes"),
    Case("num_classes-bool", "/class-weights", lambda: classes(num_classes=True), "num_classes"),
    Case("labels-1e12", "/class-weights", lambda: {"labels": [0, 10**12]}, "labels"),
    Case("labels-60M", "/class-weights", lambda: {"labels": [0, 60_000_000]}, "labels"),
    Case("labels-negative", "/class-weights", lambda: {"labels": [0, -1]}, "labels"),
    Case("counts-negative", "/class-weights", lambda: {"counts": [3.0, -1.0]}, "counts"),
    Case("counts-1e400", "/class-weights", lambda: raw(b'{"counts":[1e400, 1]}'), "body"),
    Case("strategy-unknown", "/class-weights", lambda: classes(strategy="magic"), "strategy"),
    Case("beta-one", "/class-weights", lambda: classes(beta=1.0), "beta"),
    Case("neither-labels-nor-counts", "/class-weights", lambda: {"strategy": "balanced"},
         "labels"),
    Case("body-invalid-utf8", "/class-weights", lambda: raw(b'{"strategy":"\xff"}'), "body"),
    Case("body-nested-100k", "/class-weights", lambda: raw(b"[" * 100_000), "body"),
]  # fmt: skip


def evaluate(logits: np.ndarray, targets: np.ndarray, **fields: Any) -> dict[str, Any]:
    return {"logits": b64(logits), "targets": b64(targets), **fields}


def wide(rows: int, width: int) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(rows, width)).astype(np.float32)


EVALUATE_CASES = [
    Case("multiclass-1x20000", "/evaluate",
         lambda: evaluate(wide(1, 20000), np.array([0])), "logits"),
    Case("multiclass-2x50000", "/evaluate",
         lambda: evaluate(wide(2, 50000), np.array([0, 1])), "logits"),
    Case("multiclass-1x20000-with-loss", "/evaluate",
         lambda: evaluate(wide(1, 20000), np.array([0]), loss="cross_entropy"), "logits"),
    Case("logits-N-by-0", "/evaluate", lambda: {
        "logits": raw_b64([4, 0], "float32", b""), "targets": [0, 0, 0, 0]}, "logits"),
    Case("logits-0-by-N", "/evaluate", lambda: {
        "logits": raw_b64([0, 3], "float32", b""), "targets": raw_b64([0], "int64", b"")},
         "logits"),
    Case("logits-2e64-1-by-0", "/evaluate", lambda: {
        "logits": raw_b64([2**64 - 1, 0], "float32", b""), "targets": [0]}, "logits"),
    Case("logits-nan", "/evaluate",
         lambda: evaluate(with_value(LOGITS, np.nan), TARGETS), "logits"),
    Case("logits-3d", "/evaluate",
         lambda: evaluate(np.zeros((2, 2, 3), np.float32), np.zeros(2, np.int64)), "logits"),
    Case("targets-mismatch", "/evaluate",
         lambda: evaluate(LOGITS, np.array([0, 1], np.int64)), "targets"),
    Case("targets-out-of-range", "/evaluate",
         lambda: evaluate(LOGITS, np.array([0, 1, 2, 9], np.int64)), "targets"),
    Case("thresholds-wrong-length", "/evaluate",
         lambda: evaluate(LOGITS, TARGETS, thresholds=[0.0] * 7), "thresholds"),
    Case("thresholds-nan", "/evaluate", lambda: evaluate(
        LOGITS, TARGETS, thresholds=b64(np.array([0, np.nan, 0], np.float32))), "thresholds"),
    Case("loss-unknown", "/evaluate", lambda: evaluate(LOGITS, TARGETS, loss="nope"), "loss"),
    Case("loss-subset_softmax-max_k", "/evaluate", lambda: evaluate(
        MULTILABEL * 2 - 1, MULTILABEL, loss="subset_softmax", params={"max_k": 10**9}),
         "max_k"),
    Case("unknown-field", "/evaluate", lambda: evaluate(LOGITS, TARGETS, beta=2.0), "beta"),
    Case("body-nested-100k", "/evaluate", lambda: raw(b"[" * 100_000), "body"),
]  # fmt: skip


def thresholds(scores: np.ndarray, targets: np.ndarray, **fields: Any) -> dict[str, Any]:
    return {"scores": b64(scores), "targets": b64(targets), **fields}


THRESHOLD_CASES = [
    Case("multiclass-1x20000", "/thresholds",
         lambda: thresholds(wide(1, 20000), np.array([0])), "scores"),
    Case("multiclass-64x5000", "/thresholds",
         lambda: thresholds(wide(64, 5000), np.arange(64) % 5000), "scores"),
    Case("scores-N-by-0", "/thresholds", lambda: {
        "scores": raw_b64([4, 0], "float32", b""), "targets": [0, 0, 0, 0]}, "scores"),
    Case("scores-0-by-N", "/thresholds", lambda: {
        "scores": raw_b64([0, 3], "float32", b""), "targets": raw_b64([0], "int64", b"")},
         "scores"),
    Case("scores-nan", "/thresholds",
         lambda: thresholds(with_value(LOGITS, np.nan), TARGETS), "scores"),
    Case("scores-inf", "/thresholds",
         lambda: thresholds(with_value(LOGITS, -np.inf), TARGETS), "scores"),
    Case("targets-mismatch", "/thresholds",
         lambda: thresholds(LOGITS, np.array([0, 1], np.int64)), "targets"),
    Case("beta-negative", "/thresholds", lambda: thresholds(LOGITS, TARGETS, beta=-1.0), "beta"),
    Case("beta-zero", "/thresholds", lambda: thresholds(LOGITS, TARGETS, beta=0), "beta"),
    Case("beta-string", "/thresholds", lambda: thresholds(LOGITS, TARGETS, beta="2"), "beta"),
    Case("beta-bool", "/thresholds", lambda: thresholds(LOGITS, TARGETS, beta=True), "beta"),
    Case("beta-1e400", "/thresholds", lambda: raw(
        orjson.dumps(thresholds(LOGITS, TARGETS))[:-1] + b',"beta":1e400}'), "body"),
    Case("body-invalid-utf8", "/thresholds", lambda: raw(b'{"scores":"\xc3\x28"}'), "body"),
]  # fmt: skip

ALL_CASES = LOSS_CASES + CLASS_WEIGHT_CASES + EVALUATE_CASES + THRESHOLD_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[f"{c.path}:{c.id}" for c in ALL_CASES])
def test_hostile_body_is_refused(hostile: Harness, case: Case) -> None:
    body = case.body()
    if isinstance(body, tuple):
        reply = hostile.post(case.path, content=body[0], headers=body[1])
    else:
        reply = hostile.post(case.path, json=body)
    if case.cheap_ok and reply.status == 200:
        assert reply.elapsed <= DEADLINE_S + SLACK_S, reply.describe()
        return
    assert_refused(reply, case.field)
