"""Hostile gRPC calls: ``lossserve.v1.LossService`` (unary, chunked, ``StreamEvaluate``) and
``inference.GRPCInferenceService``, including streams that stall or break, deadlines of
1 ms, cancelled calls, messages above the size limit, bytes that are not UTF-8, and the
repository RPCs with an empty bearer token.

Each refusal must be a non-OK status other than INTERNAL / UNKNOWN, within the deadline,
whose details name the offending field.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import orjson
import pytest

from lossserve_proto.inference import grpc_service_pb2 as oip
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb

from ._harness import (
    BODY_TIMEOUT_S,
    CLIENT_TIMEOUT_S,
    DEADLINE_S,
    FEATURES,
    MAX_GRPC_MESSAGE,
    SLACK_S,
    GReply,
    Harness,
    assert_grpc_refused,
    grpc_call,
    log_problems,
    tensor,
    with_value,
)

pytestmark = pytest.mark.slow

LOGITS = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
TARGETS = np.array([0, 2, 1, 0], np.int64)
MULTILABEL = (np.random.default_rng(1).random((4, 6)) < 0.3).astype(np.float32)
ROWS = np.random.default_rng(2).normal(size=(2, FEATURES)).astype(np.float32)


def raw_tensor(shape: list[int], dtype: str = "float32", data: bytes = b"") -> pb.Tensor:
    return pb.Tensor(shape=shape, dtype=dtype, data=data)


def compute(**fields: Any) -> pb.ComputeLossRequest:
    values: dict[str, Any] = {
        "loss": "cross_entropy",
        "logits": tensor(LOGITS),
        "targets": tensor(TARGETS),
    }
    values.update(fields)
    return pb.ComputeLossRequest(**values)


def hessian(name: str, rows: int, classes: int, **params: Any) -> pb.ComputeLossRequest:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(rows, classes)).astype(np.float32)
    targets = rng.integers(0, classes, rows).astype(np.int64)
    if name not in ("cross_entropy", "focal"):
        targets = (rng.random((rows, classes)) < 0.001).astype(np.float32)  # type: ignore[assignment]
    return compute(
        loss=name,
        params_json=orjson.dumps(params).decode(),
        logits=tensor(logits),
        targets=tensor(targets),
        return_hessian=True,
    )


@dataclass(frozen=True)
class Case:
    id: str
    request: Callable[[], pb.ComputeLossRequest]
    field: str
    cheap_ok: bool = False


COMPUTE_CASES = [
    Case("subset_softmax-max_k-1e9", lambda: compute(
        loss="subset_softmax", params_json='{"max_k": 1000000000}',
        logits=tensor(MULTILABEL * 2 - 1), targets=tensor(MULTILABEL)), "max_k"),
    Case("hessian-cross_entropy-2x30000", lambda: hessian("cross_entropy", 2, 30000),
         "hessian", cheap_ok=True),
    Case("hessian-focal-16x8192", lambda: hessian("focal", 16, 8192, gamma=2.0), "hessian",
         cheap_ok=True),
    Case(
        "hessian-dice-2x30000",
        lambda: hessian("dice", 2, 30000, scope="sample"),
        "hessian",
        cheap_ok=True,
    ),
    Case("logits-N-by-0", lambda: compute(logits=raw_tensor([4, 0])), "logits"),
    Case("logits-0-by-N", lambda: compute(
        logits=raw_tensor([0, 3]), targets=raw_tensor([0], "int64")), "logits"),
    Case("logits-2e63-1-by-0", lambda: compute(logits=raw_tensor([2**63 - 1, 0])), "logits"),
    Case("logits-0-by-2e63-1", lambda: compute(logits=raw_tensor([0, 2**63 - 1])), "logits"),
    Case("targets-2e63-1-by-0", lambda: compute(targets=raw_tensor([2**63 - 1, 0], "int64")),
         "targets"),
    Case("logits-negative-dims", lambda: compute(
        logits=raw_tensor([-4, -3], data=LOGITS.tobytes())), "logits"),
    Case("logits-negative-product", lambda: compute(
        logits=raw_tensor([-1, -12], data=LOGITS.tobytes())), "logits"),
    Case("logits-byte-count", lambda: compute(
        logits=raw_tensor([4, 3], data=LOGITS.tobytes()[:-1])), "logits"),
    Case("logits-dtype-complex", lambda: compute(
        logits=raw_tensor([4, 3], "complex64", LOGITS.tobytes() * 2)), "logits"),
    Case("logits-dtype-empty", lambda: compute(logits=raw_tensor([4, 3], "", LOGITS.tobytes())),
         "logits"),
    Case("logits-shape-64-dims", lambda: compute(
        logits=raw_tensor([1] * 64 + [12], data=LOGITS.tobytes())), "logits"),
    Case("logits-nan", lambda: compute(logits=tensor(with_value(LOGITS, np.nan))), "logits"),
    Case("logits-inf", lambda: compute(logits=tensor(with_value(LOGITS, -np.inf))), "logits"),
    Case("targets-nan", lambda: compute(
        targets=tensor(np.array([0, np.nan, 1, 0], np.float32))), "targets"),
    Case("targets-out-of-range", lambda: compute(targets=tensor(np.array([0, 1, 2, 3]))),
         "targets"),
    Case("sample_weight-nan", lambda: compute(
        sample_weight=tensor(np.array([1, np.nan, 1, 1], np.float32))), "sample_weight"),
    Case("logits-missing", lambda: pb.ComputeLossRequest(loss="focal", targets=tensor(TARGETS)),
         "logits"),
    Case("params_json-invalid", lambda: compute(params_json="{gamma: 2"), "params_json"),
    Case("params_json-nested-100k", lambda: compute(params_json="[" * 100_000), "params_json"),
    Case("params_json-1e400", lambda: compute(loss="focal", params_json='{"gamma": 1e400}'),
         "params_json"),
    Case("params_json-array", lambda: compute(params_json="[1]"), "params_json"),
    Case("loss-10kb", lambda: compute(loss="x" * 10240), "loss"),
    Case("reduction-unknown", lambda: compute(reduction="median"), "reduction"),
]  # fmt: skip


@pytest.mark.parametrize("case", COMPUTE_CASES, ids=[c.id for c in COMPUTE_CASES])
def test_compute_loss_refuses(hostile: Harness, case: Case) -> None:
    request = case.request()
    reply = grpc_call(lambda: hostile.loss_stub.ComputeLoss(request, timeout=CLIENT_TIMEOUT_S))
    if case.cheap_ok and reply.code is grpc.StatusCode.OK:
        assert reply.elapsed <= DEADLINE_S + SLACK_S, reply.describe()
        return
    assert_grpc_refused(reply, case.field)


def _raw_call(harness: Harness, method: str, data: bytes) -> GReply:
    assert harness.channel is not None
    call = harness.channel.unary_unary(method)  # no serializers: bytes in, bytes out
    return grpc_call(lambda: call(data, timeout=CLIENT_TIMEOUT_S))


def _string_field(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2, len(value)]) + value


def test_compute_loss_with_a_loss_name_that_is_not_utf8(hostile: Harness) -> None:
    data = _string_field(1, b"\xff\xfe") + compute(loss="").SerializeToString()
    reply = _raw_call(hostile, "/lossserve.v1.LossService/ComputeLoss", data)
    assert_grpc_refused(reply, "loss")


def test_model_infer_with_a_model_name_that_is_not_utf8(hostile: Harness) -> None:
    request = infer()
    request.model_name = ""
    data = _string_field(1, b"dig\xc3") + request.SerializeToString()
    reply = _raw_call(hostile, "/inference.GRPCInferenceService/ModelInfer", data)
    assert_grpc_refused(reply, "model_name")


def test_compute_loss_message_above_the_size_limit(hostile: Harness) -> None:
    data = bytes(MAX_GRPC_MESSAGE + 1024 * 1024)
    request = compute(logits=raw_tensor([len(data) // 4], data=data))
    reply = grpc_call(lambda: hostile.loss_stub.ComputeLoss(request, timeout=CLIENT_TIMEOUT_S))
    assert reply.code is grpc.StatusCode.RESOURCE_EXHAUSTED, reply.describe()
    assert "message" in reply.details.lower() or "logits" in reply.details.lower()


# -- ComputeLossChunked ------------------------------------------------------------------


def header(**fields: Any) -> pb.ComputeLossRequestChunk:
    return pb.ComputeLossRequestChunk(header=compute(**fields))


def data_chunk(field: str, data: bytes) -> pb.ComputeLossRequestChunk:
    return pb.ComputeLossRequestChunk(data=pb.TensorChunk(field=field, data=data))


CHUNKED_CASES: dict[str, tuple[Callable[[], list[pb.ComputeLossRequestChunk]], str]] = {
    "data-before-header": (lambda: [data_chunk("logits", b"\0" * 4), header()], "header"),
    "unknown-field": (lambda: [header(), data_chunk("weights", b"\0" * 4)], "weights"),
    "bytes-beyond-shape": (lambda: [header(), data_chunk("logits", b"\0" * 4096)], "logits"),
    "declared-2e40-elements": (
        lambda: [header(logits=raw_tensor([2**20, 2**20]))], "logits"),
    "declared-2e63-1-by-0": (lambda: [header(logits=raw_tensor([2**63 - 1, 0]))], "logits"),
    "two-headers": (lambda: [header(), header()], "header"),
    "response_chunk_bytes-negative": (
        lambda: [pb.ComputeLossRequestChunk(header=compute(), response_chunk_bytes=-1)],
        "response_chunk_bytes"),
    "short-data": (lambda: [header(logits=raw_tensor([4, 3], data=LOGITS.tobytes()[:8]))],
                   "logits"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CHUNKED_CASES))
def test_compute_loss_chunked_refuses(hostile: Harness, case: str) -> None:
    messages, field = CHUNKED_CASES[case]
    chunks = messages()
    reply = grpc_call(
        lambda: list(hostile.loss_stub.ComputeLossChunked(iter(chunks), timeout=CLIENT_TIMEOUT_S))
    )
    assert_grpc_refused(reply, field)


def _stalling(first: list[Any], release: threading.Event) -> Iterator[Any]:
    yield from first
    release.wait(60)


def _stream_outcome(call: Any, release: threading.Event, wait: float) -> tuple[GReply, bool]:
    """Drain a streaming call for at most ``wait`` s; (its status, whether it ended)."""
    outcome: dict[str, GReply] = {}
    start = time.monotonic()

    def consume() -> None:
        outcome["reply"] = grpc_call(lambda: list(call))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(wait)
    ended = not thread.is_alive()
    if not ended:
        call.cancel()
    release.set()
    thread.join(10)
    reply = outcome.get("reply") or GReply(grpc.StatusCode.UNKNOWN, "", time.monotonic() - start)
    return reply, ended


def test_compute_loss_chunked_client_stalls(hostile: Harness) -> None:
    """The header and half the logits, then silence, no client deadline: the server must
    end the call once its body timeout passes."""
    release = threading.Event()
    first = [header(logits=raw_tensor([4, 3])), data_chunk("logits", LOGITS.tobytes()[:24])]
    call = hostile.loss_stub.ComputeLossChunked(_stalling(first, release))
    reply, ended = _stream_outcome(call, release, BODY_TIMEOUT_S + SLACK_S + 1)
    assert ended, "ComputeLossChunked: the server still waits on a stalled client"
    assert reply.elapsed <= BODY_TIMEOUT_S + SLACK_S, reply.describe()
    assert reply.code not in (grpc.StatusCode.OK, grpc.StatusCode.INTERNAL), reply.describe()


# -- StreamEvaluate ----------------------------------------------------------------------


def batch(logits: np.ndarray, targets: np.ndarray, **fields: Any) -> pb.EvaluateBatch:
    return pb.EvaluateBatch(logits=tensor(logits), targets=tensor(targets), **fields)


def wide(rows: int, width: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, width)).astype(np.float32)


GOOD = batch(LOGITS, TARGETS)
STREAM_CASES: dict[str, tuple[Callable[[], list[pb.EvaluateBatch]], str]] = {
    "classes-change": (lambda: [GOOD, batch(wide(4, 5), TARGETS)], "logits"),
    "task-changes": (lambda: [GOOD, batch(LOGITS, (LOGITS > 0).astype(np.float32))], "targets"),
    "reordered-targets-first": (
        lambda: [GOOD, pb.EvaluateBatch(targets=tensor(TARGETS))], "logits"),
    "empty-batch": (lambda: [GOOD, pb.EvaluateBatch(
        logits=raw_tensor([0, 3]), targets=raw_tensor([0], "int64"))], "logits"),
    "N-by-0": (lambda: [pb.EvaluateBatch(logits=raw_tensor([4, 0]), targets=tensor(TARGETS))],
               "logits"),
    "2e63-1-by-0": (lambda: [pb.EvaluateBatch(
        logits=raw_tensor([2**63 - 1, 0]), targets=raw_tensor([0], "int64"))], "logits"),
    "nan-mid-stream": (lambda: [GOOD, batch(with_value(LOGITS, np.nan), TARGETS)], "logits"),
    "multiclass-1x20000": (lambda: [batch(wide(1, 20000), np.array([0]))], "logits"),
    "multiclass-1x20000-after-good": (
        lambda: [GOOD, batch(wide(1, 20000), np.array([0]))], "logits"),
    "thresholds-length": (lambda: [GOOD, batch(
        LOGITS, TARGETS, thresholds=tensor(np.zeros(9, np.float32)))], "thresholds"),
    "loss-unknown": (lambda: [batch(LOGITS, TARGETS, loss="nope")], "loss"),
    "params_json-invalid": (lambda: [batch(
        LOGITS, TARGETS, loss="focal", params_json="{")], "params_json"),
    "beta-negative": (lambda: [batch(LOGITS, TARGETS, beta=-1.0)], "beta"),
    "beta-nan": (lambda: [batch(LOGITS, TARGETS, beta=float("nan"))], "beta"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(STREAM_CASES))
def test_stream_evaluate_refuses(hostile: Harness, case: str) -> None:
    messages, field = STREAM_CASES[case]
    batches = messages()
    reply = grpc_call(
        lambda: list(hostile.loss_stub.StreamEvaluate(iter(batches), timeout=CLIENT_TIMEOUT_S))
    )
    assert_grpc_refused(reply, field)


def test_stream_evaluate_client_stalls(hostile: Harness) -> None:
    release = threading.Event()
    call = hostile.loss_stub.StreamEvaluate(_stalling([GOOD], release))
    reply, ended = _stream_outcome(call, release, BODY_TIMEOUT_S + SLACK_S + 1)
    assert ended, "StreamEvaluate: the server keeps a stalled stream open"
    assert reply.elapsed <= BODY_TIMEOUT_S + SLACK_S, reply.describe()
    assert reply.code not in (grpc.StatusCode.OK, grpc.StatusCode.INTERNAL), reply.describe()


# -- deadlines and cancellation -----------------------------------------------------------


def _heavy() -> pb.ComputeLossRequest:
    return hessian("focal", 16, 256, gamma=2.0)


DEADLINE_CALLS: dict[str, Callable[[Harness], Any]] = {
    "ComputeLoss": lambda h: h.loss_stub.ComputeLoss(_heavy(), timeout=0.001),
    "ComputeLossChunked": lambda h: list(
        h.loss_stub.ComputeLossChunked(iter([pb.ComputeLossRequestChunk(header=_heavy())]),
                                       timeout=0.001)),
    "StreamEvaluate": lambda h: list(h.loss_stub.StreamEvaluate(iter([GOOD] * 50), timeout=0.001)),
    "ModelInfer": lambda h: h.oip_stub.ModelInfer(infer(rows=4096), timeout=0.001),
    "ModelStreamInfer": lambda h: list(
        h.oip_stub.ModelStreamInfer(iter([infer()] * 20), timeout=0.001)),
}  # fmt: skip


@pytest.mark.parametrize("method", sorted(DEADLINE_CALLS))
def test_one_millisecond_deadline(hostile: Harness, method: str) -> None:
    offset = hostile.log_offset()
    reply = grpc_call(lambda: DEADLINE_CALLS[method](hostile))
    assert reply.code is grpc.StatusCode.DEADLINE_EXCEEDED, reply.describe()
    time.sleep(0.5)
    problems = log_problems(hostile.log_since(offset))
    assert not problems, f"{method}: errors logged for a missed deadline:\n" + "\n".join(problems)


def test_cancelled_calls(hostile: Harness) -> None:
    offset = hostile.log_offset()
    unary = hostile.loss_stub.ComputeLoss.future(_heavy(), timeout=CLIENT_TIMEOUT_S)
    release = threading.Event()
    stream = hostile.loss_stub.StreamEvaluate(_stalling([GOOD], release))
    infer_stream = hostile.oip_stub.ModelStreamInfer(_stalling([infer()], release))
    time.sleep(0.3)
    unary.cancel()
    stream.cancel()
    infer_stream.cancel()
    release.set()
    time.sleep(1.0)
    problems = log_problems(hostile.log_since(offset))
    assert not problems, "errors logged for cancelled calls:\n" + "\n".join(problems)


# -- inference.GRPCInferenceService --------------------------------------------------------


def infer(
    rows: int = 2,
    *,
    raw: bytes | None = None,
    shape: list[int] | None = None,
    datatype: str = "FP32",
    model: str = "digits",
    version: str = "",
    **fields: Any,
) -> oip.ModelInferRequest:
    features = np.random.default_rng(4).normal(size=(rows, FEATURES)).astype(np.float32)
    request = oip.ModelInferRequest(model_name=model, model_version=version, **fields)
    if "inputs" not in fields:
        request.inputs.add(name="features", datatype=datatype, shape=shape or [rows, FEATURES])
    if not fields.get("inputs") or raw is not None:
        request.raw_input_contents.append(features.tobytes() if raw is None else raw)
    return request


def typed(values: list[float]) -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name="digits")
    tensor_ = request.inputs.add(name="features", datatype="FP32", shape=[1, FEATURES])
    tensor_.contents.fp32_contents.extend(values)
    return request


def many_inputs(count: int) -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name="digits")
    for index in range(count):
        request.inputs.add(name=f"x{index}", datatype="FP32", shape=[1])
        request.raw_input_contents.append(b"\0\0\0\0")
    return request


def with_output(name: str, **parameters: int) -> oip.ModelInferRequest:
    request = infer()
    output = request.outputs.add(name=name)
    for key, value in parameters.items():
        output.parameters[key].int64_param = value
    return request


@dataclass(frozen=True)
class InferCase:
    id: str
    request: Callable[[], oip.ModelInferRequest]
    field: str
    cheap_ok: bool = False


INFER_CASES = [
    InferCase("raw-nan", lambda: infer(raw=with_value(ROWS, np.nan).tobytes()), "features"),
    InferCase("raw-inf", lambda: infer(raw=with_value(ROWS, np.inf).tobytes()), "features"),
    InferCase("typed-nan", lambda: typed([float("nan")] + [0.0] * 63), "features"),
    InferCase("typed-inf", lambda: typed([float("inf")] + [0.0] * 63), "features"),
    InferCase("shape-2e63-1-by-0", lambda: infer(raw=b"", shape=[2**63 - 1, 0]), "features"),
    InferCase("shape-negative", lambda: infer(shape=[-2, FEATURES]), "features"),
    InferCase("shape-negative-product", lambda: infer(shape=[-2, -FEATURES]), "features"),
    InferCase("shape-0-by-N", lambda: infer(raw=b"", shape=[0, FEATURES]), "features"),
    InferCase("shape-N-by-0", lambda: infer(raw=b"", shape=[2, 0]), "features"),
    InferCase("shape-scalar", lambda: infer(raw=ROWS.tobytes()[:4], shape=[]), "features"),
    InferCase("raw-byte-count", lambda: infer(raw=ROWS.tobytes()[:-2]), "features"),
    InferCase("raw-count-mismatch", lambda: oip.ModelInferRequest(
        model_name="digits", inputs=infer().inputs, raw_input_contents=[b"", b""]),
        "raw_input_contents"),
    InferCase("datatype-fp16", lambda: infer(
        raw=ROWS.astype(np.float16).tobytes(), datatype="FP16"), "features"),
    InferCase("datatype-bytes", lambda: infer(
        raw=(b"\1\0\0\0a" * 2 * FEATURES), datatype="BYTES"), "features"),
    InferCase("datatype-bool", lambda: infer(raw=b"\1" * 2 * FEATURES, datatype="BOOL"),
              "features"),
    InferCase("datatype-bytes-huge-length", lambda: infer(
        raw=(2**32 - 1).to_bytes(4, "little") + b"abc", shape=[1], datatype="BYTES"), "features"),
    InferCase("inputs-1000", lambda: many_inputs(1000), "input"),
    InferCase("output-unknown", lambda: with_output("embeddings"), "embeddings"),
    InferCase("classification-2e62", lambda: with_output("logits", classification=2**62),
              "classification", cheap_ok=True),
    InferCase("classification-negative", lambda: with_output("logits", classification=-1),
              "classification"),
    InferCase("model-empty", lambda: infer(model=""), "model_name"),
    InferCase("model-10kb", lambda: infer(model="m" * 10240), "model"),
    InferCase("version-superscript-two", lambda: infer(version="²"), "version"),
    InferCase("version-arabic-one", lambda: infer(version="١"), "version"),
    InferCase("version-zero", lambda: infer(version="0"), "version"),
    InferCase("version-negative", lambda: infer(version="-1"), "version"),
]  # fmt: skip


@pytest.mark.parametrize("case", INFER_CASES, ids=[c.id for c in INFER_CASES])
def test_model_infer_refuses(hostile: Harness, case: InferCase) -> None:
    request = case.request()
    reply = grpc_call(lambda: hostile.oip_stub.ModelInfer(request, timeout=CLIENT_TIMEOUT_S))
    if case.cheap_ok and reply.code is grpc.StatusCode.OK:
        assert reply.elapsed <= DEADLINE_S + SLACK_S, reply.describe()
        assert all(o.shape[-1] <= 10 for o in reply.response.outputs), reply.response.outputs
        return
    assert_grpc_refused(reply, case.field)


def test_model_infer_message_above_the_size_limit(hostile: Harness) -> None:
    rows = (MAX_GRPC_MESSAGE + 1024 * 1024) // (4 * FEATURES)
    request = infer(raw=bytes(rows * 4 * FEATURES), shape=[rows, FEATURES])
    reply = grpc_call(lambda: hostile.oip_stub.ModelInfer(request, timeout=CLIENT_TIMEOUT_S))
    assert reply.code is grpc.StatusCode.RESOURCE_EXHAUSTED, reply.describe()


STREAM_BAD = {
    "nan": (lambda: infer(raw=with_value(ROWS, np.nan).tobytes()), "features"),
    "shape-2e63-1-by-0": (lambda: infer(raw=b"", shape=[2**63 - 1, 0]), "features"),
    "version-superscript-two": (lambda: infer(version="²"), "version"),
    "unknown-model": (lambda: infer(model="nope"), "nope"),
    "datatype-fp16": (lambda: infer(raw=ROWS.astype(np.float16).tobytes(), datatype="FP16"),
                      "features"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(STREAM_BAD))
def test_model_stream_infer_answers_a_bad_request_and_goes_on(hostile: Harness, case: str) -> None:
    """The spec: each response carries its own ``error_message``; the stream is not aborted."""
    make_bad, field = STREAM_BAD[case]
    requests = [infer(id="a"), make_bad(), infer(id="c"), make_bad(), infer(id="e")]
    reply = grpc_call(
        lambda: list(hostile.oip_stub.ModelStreamInfer(iter(requests), timeout=CLIENT_TIMEOUT_S))
    )
    assert reply.code is grpc.StatusCode.OK, f"the stream was aborted: {reply.describe()}"
    responses = reply.response
    assert len(responses) == 5, responses
    for index in (0, 2, 4):
        assert not responses[index].error_message, responses[index].error_message
        assert responses[index].infer_response.id == "ace"[index // 2]
    for index in (1, 3):
        message = responses[index].error_message
        assert field.lower() in message.lower(), f"{message!r} does not name {field!r}"


EMPTY_TOKEN_METADATA = [
    [("authorization", "Bearer ")],
    [("authorization", "Bearer")],
    [("authorization", "")],
    [],
]
REPOSITORY_RPCS: dict[str, Callable[[Harness, Any], Any]] = {
    "RepositoryIndex": lambda h, md: h.oip_stub.RepositoryIndex(
        oip.RepositoryIndexRequest(), metadata=md, timeout=CLIENT_TIMEOUT_S),
    "RepositoryModelLoad": lambda h, md: h.oip_stub.RepositoryModelLoad(
        oip.RepositoryModelLoadRequest(model_name="digits"), metadata=md,
        timeout=CLIENT_TIMEOUT_S),
    "RepositoryModelUnload": lambda h, md: h.oip_stub.RepositoryModelUnload(
        oip.RepositoryModelUnloadRequest(model_name="multilabel"), metadata=md,
        timeout=CLIENT_TIMEOUT_S),
}  # fmt: skip


@pytest.mark.parametrize("metadata", EMPTY_TOKEN_METADATA, ids=repr)
@pytest.mark.parametrize("rpc", sorted(REPOSITORY_RPCS))
def test_empty_admin_token_lets_nobody_in_over_grpc(
    hostile: Harness, rpc: str, metadata: list[tuple[str, str]]
) -> None:
    reply = grpc_call(lambda: REPOSITORY_RPCS[rpc](hostile, metadata))
    assert reply.code in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    ), f"{rpc} with {metadata}: {reply.describe()}"
    ready = grpc_call(
        lambda: hostile.oip_stub.ModelReady(oip.ModelReadyRequest(name="multilabel"), timeout=5)
    )
    assert ready.code is grpc.StatusCode.OK and ready.response.ready, "multilabel was unloaded"


def test_non_finite_features_are_refused_alike_over_grpc(hostile: Harness) -> None:
    """NaN over raw_input_contents and typed contents: INVALID_ARGUMENT naming the input,
    as REST refuses it."""
    for request in (infer(raw=with_value(ROWS, np.nan).tobytes()), typed([float("nan")] * 64)):
        reply = grpc_call(lambda r=request: hostile.oip_stub.ModelInfer(r, timeout=5))
        assert reply.code is grpc.StatusCode.INVALID_ARGUMENT, reply.describe()
        assert "features" in reply.details and "finite" in reply.details, reply.describe()


def test_rejected_loss_names_do_not_grow_metrics_over_grpc(hostile: Harness) -> None:
    before = len(hostile.get("/metrics").body)
    for index in range(300):
        request = compute(loss=f"{index:04d}" + "x" * 10240)
        reply = grpc_call(lambda r=request: hostile.loss_stub.ComputeLoss(r, timeout=5))
        assert reply.code is not grpc.StatusCode.OK
    grown = len(hostile.get("/metrics").body) - before
    assert grown < 256 * 1024, f"/metrics grew by {grown} bytes after 300 rejected gRPC names"
