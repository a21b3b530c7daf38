"""gRPC transport: a real grpc.aio server on loopback, the generated stub, and the converters."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import numpy as np
import orjson
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import losses
from lossserve.api import grpc_convert as convert
from lossserve.api.grpc import (
    ERROR_CODE_KEY,
    ERROR_DETAILS_KEY,
    GRPC_STATUS,
    SERVICE_NAME,
    create_grpc_server,
    response_chunk_bytes,
)
from lossserve.client import (
    CLIENT_OPTIONS,
    compute_loss,
    compute_loss_async,
    compute_loss_chunked,
    needs_chunks,
)
from lossserve.core.engine import LossEngine, LossInfo
from lossserve.core.errors import ErrorCode, InvalidArgument, PayloadTooLarge
from lossserve.core.evaluator import evaluate, fit_thresholds
from lossserve.core.state import ServiceState
from lossserve.core.tensors import DTYPES
from lossserve.core.types import (
    ClassMetrics,
    EvaluateRequest,
    EvaluateResult,
    LossRequest,
    LossResult,
    ThresholdsRequest,
    ThresholdsResult,
)
from lossserve.settings import Settings
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc

T = TypeVar("T")
MiB = 1024 * 1024


def with_server(
    scenario: Callable[[pb_grpc.LossServiceStub, grpc.aio.Channel, ServiceState], Awaitable[T]],
    **settings: Any,
) -> T:
    """Run ``scenario`` against a started server on 127.0.0.1 (one cpu worker by default)."""
    return with_port(lambda stub, channel, state, port: scenario(stub, channel, state), **settings)


def with_port(
    scenario: Callable[
        [pb_grpc.LossServiceStub, grpc.aio.Channel, ServiceState, int], Awaitable[T]
    ],
    **settings: Any,
) -> T:
    """:func:`with_server`, telling ``scenario`` the port too (for channels of its own)."""

    async def main() -> T:
        state = ServiceState.create(Settings(**{"devices": ["cpu"], **settings}))
        await state.start()
        server = create_grpc_server(state)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=CLIENT_OPTIONS
            ) as channel:
                return await scenario(pb_grpc.LossServiceStub(channel), channel, state, port)
        finally:
            await server.stop(None)
            await state.stop()

    return asyncio.run(main())


def _multiclass(n: int = 64, c: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)).astype(np.float32)
    targets = rng.integers(0, c, size=n).astype(np.int64)
    return logits, targets


def _request(loss: str = "cross_entropy", **fields: Any) -> pb.ComputeLossRequest:
    logits, targets = _multiclass(8, 3)
    message = convert.encode_compute_request(LossRequest(loss=loss, logits=logits, targets=targets))
    for name, value in fields.items():
        if isinstance(value, pb.Tensor):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def _sample_count(state: ServiceState, **labels: str) -> float:
    value = state.metrics.registry.get_sample_value("lossserve_requests_total", labels)
    return 0.0 if value is None else value


# ------------------------------------------------------------------------------ registry


def test_list_losses_has_every_registry_loss_with_its_schema() -> None:
    async def scenario(stub: Any, channel: Any, state: ServiceState) -> pb.ListLossesResponse:
        response: pb.ListLossesResponse = await stub.ListLosses(pb.ListLossesRequest())
        return response

    response = with_server(scenario)
    names = [info.name for info in response.losses]
    assert names == losses.names()
    assert len(names) == 16
    for info in response.losses:
        spec = losses.get(info.name)
        assert orjson.loads(info.params_schema) == spec.json_schema()
        assert list(info.tasks) == sorted(t.value for t in spec.tasks)
        assert info.formula == spec.formula


# ------------------------------------------------------------------------------ ComputeLoss


@pytest.mark.parametrize(
    ("loss", "params", "task"),
    [
        ("cross_entropy", {}, "multiclass"),
        ("focal", {"gamma": 2.0}, "multiclass"),
        ("sigmoid_focal", {"alpha": 0.25, "gamma": 2.0}, "multilabel"),
        ("binary_cross_entropy", {}, "binary"),
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_compute_loss_equals_losses_derivatives(
    loss: str, params: dict[str, Any], task: str, reduction: str
) -> None:
    rng = np.random.default_rng(1)
    if task == "multiclass":
        logits, targets = _multiclass(32, 4)
    elif task == "multilabel":
        logits = rng.normal(size=(32, 4)).astype(np.float32)
        targets = (rng.random((32, 4)) < 0.2).astype(np.float32)
    else:
        logits = rng.normal(size=32).astype(np.float32)
        targets = (rng.random(32) < 0.3).astype(np.float32)
    request = LossRequest(
        loss=loss,
        params=params,
        logits=logits,
        targets=targets,
        reduction=reduction,
        return_grad=True,
        return_hessian=True,
    )

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> pb.ComputeLossResponse:
        response: pb.ComputeLossResponse = await stub.ComputeLoss(
            convert.encode_compute_request(request)
        )
        return response

    result = convert.decode_compute_response(with_server(scenario))
    expected = losses.derivatives(
        loss,
        torch.from_numpy(logits),
        torch.from_numpy(targets),
        hessian=True,
        reduction=reduction,
        **params,
    )
    assert result.loss == loss
    assert result.reduction == reduction
    assert result.device == "cpu"
    assert result.grad is not None and result.hessian_diag is not None
    assert result.hessian_diag is not None
    np.testing.assert_allclose(result.value, expected.value.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(result.grad, expected.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert expected.hessian_diag is not None
    np.testing.assert_allclose(
        result.hessian_diag, expected.hessian_diag.numpy(), rtol=1e-6, atol=1e-7
    )
    assert result.value.shape == expected.value.shape
    assert result.value.shape == (() if reduction == "mean" else tuple(targets.shape))


def test_compute_loss_without_derivatives_sends_no_grad() -> None:
    async def scenario(stub: Any, channel: Any, state: ServiceState) -> pb.ComputeLossResponse:
        response: pb.ComputeLossResponse = await stub.ComputeLoss(_request())
        return response

    response = with_server(scenario)
    assert not response.HasField("grad")
    assert not response.HasField("hessian_diag")
    assert response.reduction == "mean"  # empty means mean
    logits, targets = _multiclass(8, 3)
    expected = losses.compute("cross_entropy", torch.from_numpy(logits), torch.from_numpy(targets))
    np.testing.assert_allclose(
        convert.decode_tensor(response.value, "value"), expected.numpy(), rtol=1e-6
    )


def test_message_above_4_mib_round_trips() -> None:
    logits, targets = _multiclass(65536, 32, seed=3)
    request = LossRequest(
        loss="cross_entropy", logits=logits, targets=targets, reduction="sum", return_grad=True
    )
    message = convert.encode_compute_request(request)
    assert message.ByteSize() > 8 * MiB

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> pb.ComputeLossResponse:
        response: pb.ComputeLossResponse = await stub.ComputeLoss(message)
        return response

    result = convert.decode_compute_response(with_server(scenario))
    expected = losses.derivatives(
        "cross_entropy", torch.from_numpy(logits), torch.from_numpy(targets), reduction="sum"
    )
    assert result.grad is not None and result.grad.shape == (65536, 32)
    np.testing.assert_allclose(result.value, expected.value.numpy(), rtol=1e-5)
    np.testing.assert_allclose(result.grad, expected.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_message_above_the_configured_limit_is_resource_exhausted() -> None:
    logits, targets = _multiclass(4096, 32)
    message = convert.encode_compute_request(
        LossRequest(loss="cross_entropy", logits=logits, targets=targets)
    )

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> grpc.StatusCode:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ComputeLoss(message)
        return info.value.code()

    assert with_server(scenario, grpc_max_message_bytes=MiB // 4) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


def test_an_answer_above_the_message_limit_is_refused_before_the_work_naming_the_chunked_rpc() -> (
    None
):
    logits, targets = _multiclass(4096, 32)  # 512 KiB of logits: the request fits
    request = LossRequest(
        loss="focal", logits=logits, targets=targets, return_grad=True, return_hessian=True
    )

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> tuple[Any, str, int]:
        computed: list[LossRequest] = []
        compute = state.plane.compute_loss

        async def spy(request: LossRequest, **kwargs: Any) -> LossResult:
            computed.append(request)
            return await compute(request, **kwargs)

        state.plane.compute_loss = spy  # type: ignore[method-assign]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ComputeLoss(convert.encode_compute_request(request))
        return info.value.code(), info.value.details() or "", len(computed)

    code, details, jobs = with_server(scenario, grpc_max_message_bytes=MiB)
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details == (
        f"answer: {2 * logits.nbytes + 4} bytes, above the gRPC message limit of {MiB} bytes "
        "(LOSSSERVE_GRPC_MAX_MESSAGE_BYTES); use ComputeLossChunked"
    )
    assert jobs == 0


def test_the_engine_timeout_is_the_client_deadline_capped_by_the_setting() -> None:
    seen: list[float | None] = []

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> None:
        compute = state.engine.compute

        async def spy(
            request: LossRequest, *, timeout: float | None = None, **kwargs: Any
        ) -> LossResult:
            seen.append(timeout)
            return await compute(request, timeout=timeout, **kwargs)

        state.engine.compute = spy  # type: ignore[method-assign]
        await stub.ComputeLoss(_request())  # no deadline: the setting
        await stub.ComputeLoss(_request(), timeout=2.0)  # below the setting: the deadline
        await stub.ComputeLoss(_request(), timeout=60.0)  # above it: the setting

    with_server(scenario, request_timeout_s=7.0)
    assert seen[0] == 7.0
    # the deadline travels as a grpc-timeout header, rounded up: allow a little slack
    assert seen[1] is not None and 0 < seen[1] <= 2.1
    assert seen[2] == 7.0


# ------------------------------------------------------------------------------ errors


ERROR_CASES = {
    "unknown loss": (
        _request("focall"),
        r"^loss: .*focall.*[Dd]id you mean.*focal",
    ),
    "bad params": (
        _request("focal", params_json='{"gamma": -1}'),
        r"^params\.gamma: Input should be greater than or equal to 0",
    ),
    "unknown param": (
        _request("focal", params_json='{"gamma": 2, "delta": 1}'),
        r"^params\.delta: unknown parameter; expected one of: alpha, gamma",
    ),
    "params not JSON": (
        _request(params_json="{gamma: 2"),
        r"^params_json: expected JSON",
    ),
    "params not an object": (
        _request(params_json="[1, 2]"),
        r"^params_json: expected a JSON object, got list$",
    ),
    "shape mismatch": (
        _request(targets=convert.encode_tensor(np.zeros(9, dtype=np.int64))),
        r"^targets: ",
    ),
    "label out of range": (
        _request(targets=convert.encode_tensor(np.full(8, 5, dtype=np.int64))),
        r"^targets: expected class indices in \[0, 2\], got 5",
    ),
    "NaN logits": (
        _request(logits=convert.encode_tensor(np.full((8, 3), np.nan, dtype=np.float32))),
        r"^logits: expected finite values, got .*nan.* at index \[0, 0\]",
    ),
    "wrong dtype name": (
        _request(logits=pb.Tensor(shape=[8, 3], dtype="float33", data=bytes(96))),
        r"^logits\.dtype: expected one of bool, .*float64, got 'float33'$",
    ),
    "bytes not matching shape": (
        _request(logits=pb.Tensor(shape=[8, 3], dtype="float32", data=bytes(95))),
        r"^logits: expected 96 bytes for shape \[8, 3\] of float32, got 95$",
    ),
    "negative dimension": (
        _request(logits=pb.Tensor(shape=[-1, 3], dtype="float32", data=b"")),
        r"^logits\.shape: expected a list of non-negative integers, got \[-1, 3\]$",
    ),
    "missing logits": (
        pb.ComputeLossRequest(loss="cross_entropy", targets=convert.encode_tensor(np.zeros(2))),
        r"^logits: required field missing$",
    ),
    "missing loss": (_request(""), r"^loss: required field missing$"),
    "bad reduction": (_request(reduction="median"), r"^reduction: expected one of"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_input_is_invalid_argument_naming_the_field(case: str) -> None:
    message, pattern = ERROR_CASES[case]

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ComputeLoss(message)
        return info.value

    error = with_server(scenario)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(pattern, error.details() or ""), error.details()
    trailing = dict(error.trailing_metadata() or ())
    assert trailing[ERROR_CODE_KEY] == "INVALID_ARGUMENT"


def test_error_details_travel_in_the_trailing_metadata() -> None:
    async def scenario(stub: Any, channel: Any, state: ServiceState) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ComputeLoss(_request("focal", params_json='{"gamma": -1}'))
        return info.value

    error = with_server(scenario)
    details = orjson.loads(dict(error.trailing_metadata() or ())[ERROR_DETAILS_KEY])
    assert [d["field"] for d in details] == ["params.gamma"]


def test_too_many_elements_is_resource_exhausted_as_payload_too_large() -> None:
    async def scenario(stub: Any, channel: Any, state: ServiceState) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ComputeLoss(_request())
        return info.value

    error = with_server(scenario, max_elements=16)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "logits: expected at most 16 elements, got 24"
    assert dict(error.trailing_metadata() or ())[ERROR_CODE_KEY] == "PAYLOAD_TOO_LARGE"


def test_every_error_code_has_a_grpc_status() -> None:
    assert set(GRPC_STATUS) == set(ErrorCode)
    assert GRPC_STATUS[ErrorCode.PAYLOAD_TOO_LARGE] is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert all(GRPC_STATUS[c].name == c.value for c in ErrorCode if c is not c.PAYLOAD_TOO_LARGE)


def test_an_unexpected_exception_is_internal_with_a_generic_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> list[LossInfo]:
        raise RuntimeError("secret detail")

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> grpc.aio.AioRpcError:
        state.engine.list_losses = broken  # type: ignore[method-assign]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ListLosses(pb.ListLossesRequest())
        return info.value

    with caplog.at_level(logging.ERROR, logger="lossserve.grpc"):
        error = with_server(scenario)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error"
    assert any("secret detail" in (r.exc_text or "") for r in caplog.records)


def test_metrics_are_recorded_with_transport_grpc() -> None:
    async def scenario(stub: Any, channel: Any, state: ServiceState) -> ServiceState:
        await stub.ComputeLoss(_request())
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ComputeLoss(_request("focal", params_json='{"gamma": -1}'))
        return state

    state = with_server(scenario)
    route = "/lossserve.v1.LossService/ComputeLoss"
    common = {"transport": "grpc", "route": route}
    assert _sample_count(state, **common, loss="cross_entropy", status="OK") == 1
    assert _sample_count(state, **common, loss="focal", status="INVALID_ARGUMENT") == 1


# ------------------------------------------------------------------------------ health, reflection


def test_health_check_is_serving_for_the_server_and_the_service() -> None:
    async def scenario(stub: Any, channel: Any, state: ServiceState) -> list[int]:
        health = health_pb2_grpc.HealthStub(channel)
        statuses = []
        for service in ("", SERVICE_NAME):
            response = await health.Check(health_pb2.HealthCheckRequest(service=service))
            statuses.append(response.status)
        return statuses

    assert with_server(scenario) == [health_pb2.HealthCheckResponse.SERVING] * 2


def test_health_watch_streams_through_the_interceptor() -> None:
    """Watch writes with context.write (a coroutine, not a generator): still wrapped right."""

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> int:
        health = health_pb2_grpc.HealthStub(channel)
        call = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        first = await call.read()
        call.cancel()
        return int(first.status)

    assert with_server(scenario) == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service_and_describes_it() -> None:
    async def scenario(
        stub: Any, channel: Any, state: ServiceState
    ) -> list[reflection_pb2.ServerReflectionResponse]:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            yield reflection_pb2.ServerReflectionRequest(list_services="")
            yield reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME)

        return [r async for r in reflection.ServerReflectionInfo(requests())]

    listed, described = with_server(scenario)
    names = {s.name for s in listed.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
    assert described.file_descriptor_response.file_descriptor_proto == [pb.DESCRIPTOR.serialized_pb]


# ------------------------------------------------------------------------------ StreamEvaluate


def _stream(
    batches: list[pb.EvaluateBatch], **settings: Any
) -> list[pb.EvaluateUpdate] | grpc.aio.AioRpcError:
    async def scenario(
        stub: Any, channel: Any, state: ServiceState
    ) -> list[pb.EvaluateUpdate] | grpc.aio.AioRpcError:
        async def requests() -> AsyncIterator[pb.EvaluateBatch]:
            for batch in batches:
                yield batch

        try:
            return [update async for update in stub.StreamEvaluate(requests())]
        except grpc.aio.AioRpcError as error:
            return error

    return with_server(scenario, **settings)


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_stream_evaluate_over_three_batches_equals_one_shot(task: str) -> None:
    rng = np.random.default_rng(7)
    if task == "multiclass":
        logits, targets = _multiclass(150, 4, seed=7)
        loss = "focal"
    else:
        logits = rng.normal(size=(150, 3)).astype(np.float32)
        targets = (rng.random((150, 3)) < 0.3).astype(np.float32)
        loss = "sigmoid_focal"
    params = {"gamma": 2.0}
    cuts = [0, 40, 100, 150]
    batches = [
        convert.encode_evaluate_batch(
            EvaluateRequest(
                logits=logits[lo:hi],
                targets=targets[lo:hi],
                loss=loss if lo == 0 else None,
                params=params if lo == 0 else {},
            ),
            beta=1.0 if lo == 0 else None,
        )
        for lo, hi in itertools.pairwise(cuts)
    ]
    updates = _stream(batches)
    assert isinstance(updates, list)

    assert [u.batches for u in updates] == [1, 2, 3, 3]
    assert [u.final for u in updates] == [False, False, False, True]
    assert [u.metrics.num_samples for u in updates] == [40, 100, 150, 150]
    assert not any(u.HasField("thresholds") for u in updates[:3])
    running = convert.decode_metrics(updates[1].metrics)
    first_100 = evaluate(
        EvaluateRequest(logits=logits[:100], targets=targets[:100], loss=loss, params=params)
    )
    _assert_metrics_equal(running, first_100)

    one_shot = evaluate(EvaluateRequest(logits=logits, targets=targets, loss=loss, params=params))
    _assert_metrics_equal(convert.decode_metrics(updates[-1].metrics), one_shot)
    _assert_metrics_equal(convert.decode_metrics(updates[2].metrics), one_shot)

    thresholds = convert.decode_thresholds(updates[-1].thresholds)
    expected = fit_thresholds(ThresholdsRequest(scores=logits, targets=targets, beta=1.0))
    assert thresholds.kind == expected.kind
    assert thresholds.task == task
    np.testing.assert_array_equal(thresholds.values, expected.values)
    assert thresholds.before == expected.before
    assert thresholds.after == expected.after
    assert thresholds.after.macro_f1 >= thresholds.before.macro_f1


def test_the_streams_final_threshold_fit_is_costed_on_every_batch_and_refused_over_budget() -> None:
    # each 4000 x 20 batch is cheap to evaluate (~1e6 operations); fitting multiclass
    # offsets on all three (12,000 rows) is ~3e8, above a budget of 1e8
    logits, targets = _multiclass(12_000, 20, seed=3)
    batches = [
        convert.encode_evaluate_batch(EvaluateRequest(logits=logits[lo:hi], targets=targets[lo:hi]))
        for lo, hi in itertools.pairwise([0, 4000, 8000, 12_000])
    ]
    error = _stream(batches, max_request_work=1e8)
    assert isinstance(error, grpc.aio.AioRpcError), error
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert re.fullmatch(
        r"request: needs an estimated [0-9.e+]+ operations \(scores: multiclass offsets, up to "
        r"\d+ sweeps of 20 line searches\), above the limit of 1e\+08 per request "
        r"\(LOSSSERVE_MAX_REQUEST_WORK\); send a smaller batch",
        error.details() or "",
    ), error.details()
    # within the budget the same stream answers its thresholds (fitted in a worker process)
    updates = _stream(batches, max_request_work=1e10)
    assert isinstance(updates, list) and updates[-1].HasField("thresholds")


def _assert_metrics_equal(actual: EvaluateResult, expected: EvaluateResult) -> None:
    assert actual.loss == pytest.approx(expected.loss, rel=1e-6)
    assert actual == EvaluateResult(**{**vars(expected), "loss": actual.loss})


def test_stream_evaluate_beta_of_a_later_batch_is_used_for_the_fit() -> None:
    rng = np.random.default_rng(11)
    scores = rng.normal(size=200).astype(np.float32)
    targets = (rng.random(200) < 0.2).astype(np.float32)
    batches = [
        convert.encode_evaluate_batch(EvaluateRequest(logits=scores[:100], targets=targets[:100])),
        convert.encode_evaluate_batch(
            EvaluateRequest(logits=scores[100:], targets=targets[100:]), beta=2.0
        ),
    ]
    updates = _stream(batches)
    assert isinstance(updates, list)
    fitted = convert.decode_thresholds(updates[-1].thresholds)
    expected = fit_thresholds(ThresholdsRequest(scores=scores, targets=targets, beta=2.0))
    np.testing.assert_array_equal(fitted.values, expected.values)
    assert updates[-1].metrics.HasField("loss") is False


@pytest.mark.parametrize(
    ("batches", "pattern"),
    [
        ([], r"^stream: expected at least one batch, got none$"),
        (
            [
                convert.encode_evaluate_batch(
                    EvaluateRequest(logits=np.zeros((4, 3), np.float32), targets=np.arange(4))
                )
            ],
            r"^targets: expected class indices in \[0, 2\]",
        ),
        (
            [
                convert.encode_evaluate_batch(
                    EvaluateRequest(
                        logits=np.zeros((4, 3), np.float32), targets=np.zeros(4, np.int64)
                    )
                ),
                convert.encode_evaluate_batch(
                    EvaluateRequest(
                        logits=np.zeros((4, 2), np.float32), targets=np.zeros(4, np.int64)
                    )
                ),
            ],
            r"^logits: expected 3 classes as the first batch, got 2$",
        ),
        (
            [pb.EvaluateBatch(targets=convert.encode_tensor(np.zeros(3)))],
            r"^logits: required field missing$",
        ),
    ],
    ids=["no batch", "label out of range", "classes change", "missing logits"],
)
def test_stream_evaluate_errors_are_invalid_argument(
    batches: list[pb.EvaluateBatch], pattern: str
) -> None:
    error = _stream(batches)
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(pattern, error.details() or ""), error.details()


# ------------------------------------------------------------------------------ converters


SHAPES = [(), (0,), (5,), (3, 4), (2, 0, 3)]


def _sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    kind = np.dtype(dtype)
    if kind.kind == "f":
        return rng.normal(scale=100, size=shape).astype(kind)
    info = np.iinfo(kind)
    return rng.integers(info.min, info.max, size=shape, dtype=kind, endpoint=True)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_tensor_round_trips_every_dtype(dtype: str, shape: tuple[int, ...]) -> None:
    array = _sample(dtype, shape)
    message = convert.encode_tensor(array)
    assert message.dtype == dtype
    assert list(message.shape) == list(shape)
    assert len(message.data) == array.size * array.dtype.itemsize
    decoded = convert.decode_tensor(pb.Tensor.FromString(message.SerializeToString()), "x")
    assert decoded.dtype == array.dtype
    assert decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("dtype", ["int16", "int32", "int64", "float16", "float32", "float64"])
def test_tensor_bytes_are_little_endian_c_order_whatever_the_input(dtype: str) -> None:
    array = _sample(dtype, (3, 4))
    big_endian_fortran = np.asfortranarray(array.astype(array.dtype.newbyteorder(">")))
    message = convert.encode_tensor(big_endian_fortran)
    assert message.data == array.astype(array.dtype.newbyteorder("<")).tobytes(order="C")
    np.testing.assert_array_equal(convert.decode_tensor(message, "x"), array)


def test_tensor_of_an_unsupported_dtype_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"^tensor: expected a dtype among .*, got complex64"):
        convert.encode_tensor(np.zeros(2, dtype=np.complex64))


def test_tensor_above_max_elements_is_payload_too_large() -> None:
    message = convert.encode_tensor(np.zeros((4, 5), np.float32))
    with pytest.raises(PayloadTooLarge, match=r"^logits: expected at most 19 elements, got 20$"):
        convert.decode_tensor(message, "logits", max_elements=19)
    assert convert.decode_tensor(message, "logits", max_elements=20).shape == (4, 5)


@pytest.mark.parametrize("weight", [None, np.linspace(0.5, 2, 8, dtype=np.float32)])
def test_loss_request_round_trips(weight: np.ndarray | None) -> None:
    logits, targets = _multiclass(8, 3)
    request = LossRequest(
        loss="focal",
        params={"gamma": 2, "alpha": [0.2, 0.3, 0.5]},
        logits=logits,
        targets=targets,
        sample_weight=weight,
        reduction="none",
        return_grad=True,
        return_hessian=True,
    )
    wire = pb.ComputeLossRequest.FromString(
        convert.encode_compute_request(request).SerializeToString()
    )
    decoded = convert.decode_compute_request(wire)
    assert decoded.params == {"gamma": 2, "alpha": [0.2, 0.3, 0.5]}
    assert isinstance(decoded.params["gamma"], int)  # JSON text keeps integers integers
    for name in ("loss", "reduction", "return_grad", "return_hessian"):
        assert getattr(decoded, name) == getattr(request, name)
    for name in ("logits", "targets", "sample_weight"):
        expected, actual = getattr(request, name), getattr(decoded, name)
        if expected is None:
            assert actual is None
        else:
            assert actual.dtype == expected.dtype
            np.testing.assert_array_equal(actual, expected)


def test_loss_request_defaults() -> None:
    logits, targets = _multiclass(2, 3)
    message = pb.ComputeLossRequest(
        loss="cross_entropy",
        logits=convert.encode_tensor(logits),
        targets=convert.encode_tensor(targets),
    )
    decoded = convert.decode_compute_request(message)
    assert decoded.params == {}
    assert decoded.reduction == "mean"
    assert decoded.sample_weight is None
    assert not decoded.return_grad and not decoded.return_hessian


@pytest.mark.parametrize("with_grad", [False, True])
def test_loss_result_round_trips(with_grad: bool) -> None:
    grad = np.arange(6, dtype=np.float32).reshape(2, 3) if with_grad else None
    result = LossResult(
        loss="focal",
        reduction="mean",
        value=np.array(0.25, dtype=np.float32),
        grad=grad,
        hessian_diag=None if grad is None else grad * 2,
        device="cuda:1",
    )
    wire = pb.ComputeLossResponse.FromString(
        convert.encode_compute_response(result).SerializeToString()
    )
    decoded = convert.decode_compute_response(wire)
    assert (decoded.loss, decoded.reduction, decoded.device) == ("focal", "mean", "cuda:1")
    assert decoded.value.shape == () and decoded.value == np.float32(0.25)
    for name in ("grad", "hessian_diag"):
        expected, actual = getattr(result, name), getattr(decoded, name)
        if expected is None:
            assert actual is None
        else:
            np.testing.assert_array_equal(actual, expected)


def test_loss_info_round_trips() -> None:
    infos = LossEngine.list_losses(None)  # type: ignore[arg-type]  # pool unused here
    wire = pb.ListLossesResponse.FromString(convert.encode_list_losses(infos).SerializeToString())
    assert convert.decode_list_losses(wire) == infos


@pytest.mark.parametrize("loss", [None, 0.6931471805599453])
def test_evaluate_messages_round_trip(loss: float | None) -> None:
    metrics = EvaluateResult(
        task="multilabel",
        num_samples=10,
        loss=loss,
        confusion=[[5, 1, 2, 2], [7, 0, 1, 2]],
        per_class=[
            ClassMetrics(label=0, support=4, precision=2 / 3, recall=0.5, f1=4 / 7),
            ClassMetrics(label=1, support=3, precision=1.0, recall=2 / 3, f1=0.8),
        ],
        macro_f1=(4 / 7 + 0.8) / 2,
        micro_f1=8 / 13,
    )
    assert (
        convert.decode_metrics(
            pb.EvaluateMetrics.FromString(convert.encode_metrics(metrics).SerializeToString())
        )
        == metrics
    )
    thresholds = ThresholdsResult(
        task="multilabel",
        kind="thresholds",
        values=np.array([0.125, -1.5]),
        before=metrics,
        after=metrics,
    )
    update = pb.EvaluateUpdate.FromString(
        convert.encode_update(metrics, batches=3, thresholds=thresholds).SerializeToString()
    )
    assert update.final and update.batches == 3
    decoded = convert.decode_thresholds(update.thresholds)
    np.testing.assert_array_equal(decoded.values, thresholds.values)
    assert (decoded.task, decoded.kind, decoded.before, decoded.after) == (
        "multilabel",
        "thresholds",
        metrics,
        metrics,
    )
    running = convert.encode_update(metrics, batches=1)
    assert not running.final and not running.HasField("thresholds")


@pytest.mark.parametrize("beta", [None, 0.5])
def test_evaluate_batch_round_trips(beta: float | None) -> None:
    logits, targets = _multiclass(6, 3)
    request = EvaluateRequest(
        logits=logits,
        targets=targets,
        loss="focal",
        params={"gamma": 1},
        thresholds=np.array([0.0, 0.5, -0.5]),
    )
    decoded, decoded_beta = convert.decode_evaluate_batch(
        pb.EvaluateBatch.FromString(
            convert.encode_evaluate_batch(request, beta=beta).SerializeToString()
        )
    )
    assert decoded_beta == beta
    assert (decoded.loss, decoded.params) == ("focal", {"gamma": 1})
    for name in ("logits", "targets", "thresholds"):
        np.testing.assert_array_equal(getattr(decoded, name), getattr(request, name))
    bare, _ = convert.decode_evaluate_batch(
        convert.encode_evaluate_batch(EvaluateRequest(logits=logits, targets=targets))
    )
    assert (bare.loss, bare.params, bare.thresholds) == (None, {}, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", {}), ("{}", {}), ('{"gamma": 2, "alpha": [1, 2]}', {"gamma": 2, "alpha": [1, 2]})],
)
def test_params_json_decodes(text: str, expected: dict[str, Any]) -> None:
    assert convert.decode_params(text) == expected
    assert convert.decode_params(convert.encode_params(expected)) == expected


def test_request_id_is_echoed_in_trailing_metadata() -> None:
    async def scenario(
        stub: pb_grpc.LossServiceStub, channel: grpc.aio.Channel, state: ServiceState
    ) -> tuple[str | None, str | None]:
        given = stub.ListLosses(pb.ListLossesRequest(), metadata=(("x-request-id", "abc-7"),))
        generated = stub.ListLosses(pb.ListLossesRequest())
        await given
        await generated
        echoed = dict(await given.trailing_metadata()).get("x-request-id")
        fresh = dict(await generated.trailing_metadata()).get("x-request-id")
        return echoed, fresh

    echoed, fresh = with_server(scenario)
    assert echoed == "abc-7"
    assert isinstance(fresh, str) and len(fresh) == 32


# ------------------------------------------------------------------------------ ComputeLossChunked

CHUNKED_ROUTE = "/lossserve.v1.LossService/ComputeLossChunked"
STUB: Any = pb_grpc.LossServiceStub  # untyped (protoc writes no .pyi for *_grpc.py)


def _big_request() -> LossRequest:
    """Above 4 MiB each way: 32768 x 64 float32 logits (8 MiB), weights, grad and Hessian."""
    logits, targets = _multiclass(32768, 64, seed=5)
    weight = np.random.default_rng(5).uniform(0.5, 2.0, 32768).astype(np.float32)
    return LossRequest(
        loss="focal",
        params={"gamma": 2.0},
        logits=logits,
        targets=targets,
        sample_weight=weight,
        reduction="mean",
        return_grad=True,
        return_hessian=True,
    )


def _assert_results_equal(actual: LossResult, expected: LossResult) -> None:
    assert (actual.loss, actual.reduction, actual.device) == (
        expected.loss,
        expected.reduction,
        expected.device,
    )
    for name in ("value", "grad", "hessian_diag"):
        a, e = getattr(actual, name), getattr(expected, name)
        if e is None:
            assert a is None
        else:
            assert a.dtype == e.dtype and a.shape == e.shape
            np.testing.assert_array_equal(a, e)


def test_compute_loss_chunked_equals_unary_and_losses_derivatives_above_4_mib() -> None:
    request = _big_request()
    assert request.logits.nbytes > 4 * MiB and needs_chunks(request)

    async def scenario(
        stub: Any, channel: Any, state: ServiceState
    ) -> tuple[LossResult, LossResult, list[pb.ComputeLossResponseChunk]]:
        unary = convert.decode_compute_response(
            await stub.ComputeLoss(convert.encode_compute_request(request))
        )
        chunked = await compute_loss_async(stub, request)  # 2 MiB chunks each way
        chunks = convert.encode_compute_request_chunks(
            request, chunk_bytes=MiB, response_chunk_bytes=MiB
        )
        raw = [m async for m in stub.ComputeLossChunked(chunks)]
        return unary, chunked, raw

    # the unary answer (16 MiB of gradient and Hessian) needs more than the default limit
    unary, chunked, raw = with_server(scenario, grpc_max_message_bytes=64 * MiB)
    _assert_results_equal(chunked, unary)
    _assert_results_equal(convert.decode_compute_response_chunks(raw), unary)
    # the answer came as a header and 1 MiB pieces: 8 MiB of grad and 8 MiB of Hessian
    assert raw[0].WhichOneof("part") == "header" and len(raw) == 1 + 8 + 8
    assert all(len(m.data.data) <= MiB for m in raw[1:])
    assert all(m.ByteSize() < MiB + 1024 for m in raw)
    expected = losses.derivatives(
        "focal",
        torch.from_numpy(request.logits),
        torch.from_numpy(request.targets),
        hessian=True,
        sample_weight=torch.from_numpy(request.sample_weight),
        gamma=2.0,
    )
    assert chunked.grad is not None and chunked.hessian_diag is not None
    assert expected.hessian_diag is not None
    np.testing.assert_allclose(chunked.value, expected.value.numpy(), rtol=1e-5)
    np.testing.assert_allclose(chunked.grad, expected.grad.numpy(), rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(
        chunked.hessian_diag, expected.hessian_diag.numpy(), rtol=1e-5, atol=1e-10
    )


def test_compute_loss_chunked_works_with_default_channel_limits() -> None:
    """Chunks stay under gRPC's 4 MiB default: no raised limits needed on either side. The
    whole request may pass the server's message limit: it is bounded as a REST body is."""
    request = _big_request()
    assert request.logits.nbytes > 4 * MiB

    async def scenario(stub: Any, channel: Any, state: ServiceState, port: int) -> LossResult:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as plain:
            return await compute_loss_async(STUB(plain), request)

    result = with_port(scenario, grpc_max_message_bytes=4 * MiB)
    assert result.grad is not None and result.grad.shape == request.logits.shape


def test_the_blocking_client_picks_unary_below_chunk_bytes_and_chunked_above() -> None:
    small = LossRequest(
        loss="cross_entropy", logits=_multiclass(8, 3)[0], targets=_multiclass(8, 3)[1]
    )
    big = _big_request()
    assert not needs_chunks(small) and needs_chunks(big)
    # the answer counts too: 1 MiB of logits asking for grad and Hessian answers 2 MiB + 4
    logits, targets = _multiclass(8192, 32)
    assert logits.nbytes == MiB
    asks_hessian = LossRequest(
        loss="focal", logits=logits, targets=targets, return_grad=True, return_hessian=True
    )
    assert not needs_chunks(asks_hessian, chunk_bytes=2 * MiB + 4)
    assert needs_chunks(asks_hessian, chunk_bytes=2 * MiB + 3)

    async def scenario(
        stub: Any, channel: Any, state: ServiceState, port: int
    ) -> tuple[list[LossResult], ServiceState]:
        def call() -> list[LossResult]:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
                blocking = STUB(plain)
                return [
                    compute_loss(blocking, small),
                    compute_loss_chunked(blocking, small, chunk_bytes=16),
                    compute_loss(blocking, big),
                ]

        return await asyncio.to_thread(call), state

    (unary_small, chunked_small, chunked_big), state = with_port(scenario)
    _assert_results_equal(chunked_small, unary_small)
    assert chunked_big.grad is not None and chunked_big.grad.shape == big.logits.shape
    unary_route = "/lossserve.v1.LossService/ComputeLoss"
    ok = {"transport": "grpc", "status": "OK"}
    assert _sample_count(state, **ok, route=unary_route, loss="cross_entropy") == 1
    assert _sample_count(state, **ok, route=CHUNKED_ROUTE, loss="cross_entropy") == 1
    assert _sample_count(state, **ok, route=CHUNKED_ROUTE, loss="focal") == 1


def _chunked_call(
    messages: list[pb.ComputeLossRequestChunk], **settings: Any
) -> tuple[grpc.aio.AioRpcError, ServiceState]:
    async def scenario(
        stub: Any, channel: Any, state: ServiceState
    ) -> tuple[grpc.aio.AioRpcError, ServiceState]:
        async def requests() -> AsyncIterator[pb.ComputeLossRequestChunk]:
            for message in messages:
                yield message

        with pytest.raises(grpc.aio.AioRpcError) as info:
            _ = [m async for m in stub.ComputeLossChunked(requests())]
        return info.value, state

    return with_server(scenario, **settings)


def _header(**fields: Any) -> pb.ComputeLossRequestChunk:
    return pb.ComputeLossRequestChunk(header=_request(**fields))


def _piece(field: str, data: bytes) -> pb.ComputeLossRequestChunk:
    return pb.ComputeLossRequestChunk(data=pb.TensorChunk(field=field, data=data))


def _empty(name: str) -> pb.Tensor:
    """A tensor of _request's shape and dtype whose bytes are still to come."""
    logits, targets = _multiclass(8, 3)
    array = logits if name == "logits" else targets
    return pb.Tensor(shape=array.shape, dtype=array.dtype.name)


CHUNKED_ERRORS = {
    "too few bytes": (
        [_header(logits=_empty("logits")), _piece("logits", bytes(95))],
        r"^logits: expected 96 bytes for shape \[8, 3\] of float32, got 95$",
    ),
    "too many bytes": (
        [
            _header(logits=_empty("logits")),
            _piece("logits", bytes(64)),
            _piece("logits", bytes(64)),
        ],
        r"^logits: expected 96 bytes for shape \[8, 3\] of float32, got at least 128$",
    ),
    "bytes beyond a complete header tensor": (
        [_header(), _piece("targets", bytes(8))],
        r"^targets: expected 64 bytes for shape \[8\] of int64, got at least 72$",
    ),
    "data for a tensor the header lacks": (
        [_header(), _piece("sample_weight", bytes(32))],
        r"^sample_weight: data for a tensor the header does not set$",
    ),
    "data for an unknown field": (
        [_header(), _piece("weights", bytes(32))],
        r"^data\.field: expected one of logits, targets, sample_weight, got 'weights'$",
    ),
    "data before the header": (
        [_piece("logits", bytes(96)), _header()],
        r"^header: expected the header as the first message, got data$",
    ),
    "two headers": ([_header(), _header()], r"^header: expected one header, .* got two$"),
    "no header": ([], r"^header: expected a header as the first message, got none$"),
    "neither part": ([pb.ComputeLossRequestChunk()], r"^part: expected a header or data"),
    "bad dtype": (
        [_header(logits=pb.Tensor(shape=[8, 3], dtype="float33"))],
        r"^logits\.dtype: expected one of bool, .*float64, got 'float33'$",
    ),
    "negative dimension": (
        [_header(logits=pb.Tensor(shape=[-1, 3], dtype="float32"))],
        r"^logits\.shape: expected a list of non-negative integers, got \[-1, 3\]$",
    ),
    "negative response chunk size": (
        [pb.ComputeLossRequestChunk(header=_request(), response_chunk_bytes=-1)],
        r"^response_chunk_bytes: expected a non-negative integer, got -1$",
    ),
    "missing logits": (
        [pb.ComputeLossRequestChunk(header=pb.ComputeLossRequest(loss="cross_entropy"))],
        r"^logits: required field missing$",
    ),
    "pieces out of order": (
        [
            _header(logits=_empty("logits")),
            pb.ComputeLossRequestChunk(
                data=pb.TensorChunk(field="logits", data=bytes(48), offset=48)
            ),
        ],
        r"^data\.offset: expected 0 for the next piece of logits, got 48 \(a piece out of "
        r"order, repeated or lost\)$",
    ),
    "a piece repeated": (
        [
            _header(logits=_empty("logits")),
            pb.ComputeLossRequestChunk(
                data=pb.TensorChunk(field="logits", data=bytes(48), offset=0)
            ),
            pb.ComputeLossRequestChunk(
                data=pb.TensorChunk(field="logits", data=bytes(48), offset=0)
            ),
        ],
        r"^data\.offset: expected 48 for the next piece of logits, got 0",
    ),
    # bad input the core finds once the request is whole: the unary path's messages
    "unknown loss": ([_header(loss="focall")], r"^loss: .*focall.*[Dd]id you mean.*focal"),
    "NaN logits": (
        [
            _header(logits=_empty("logits")),
            _piece("logits", np.full((8, 3), np.nan, dtype=np.float32).tobytes()),
        ],
        r"^logits: expected finite values, got .*nan.* at index \[0, 0\]",
    ),
}


LABELS = ("", "cross_entropy", "unknown")  # a name outside the registry counts as unknown


@pytest.mark.parametrize("case", list(CHUNKED_ERRORS))
def test_chunked_bad_input_is_invalid_argument_naming_the_field(case: str) -> None:
    messages, pattern = CHUNKED_ERRORS[case]
    error, state = _chunked_call(messages)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(pattern, error.details() or ""), error.details()
    assert dict(error.trailing_metadata() or ())[ERROR_CODE_KEY] == "INVALID_ARGUMENT"
    labels = {"transport": "grpc", "route": CHUNKED_ROUTE, "status": "INVALID_ARGUMENT"}
    # labelled with the header's loss once a valid header has come, else ""
    assert sum(_sample_count(state, **labels, loss=name) for name in LABELS) == 1


def test_chunked_error_mid_stream_ends_the_call_before_the_client_finishes() -> None:
    sent: list[int] = []

    async def scenario(stub: Any, channel: Any, state: ServiceState) -> grpc.aio.AioRpcError:
        async def requests() -> AsyncIterator[pb.ComputeLossRequestChunk]:
            yield _header(logits=_empty("logits"))
            yield _piece("logits", bytes(200))  # overflows logits: the server fails here
            for i in range(500):  # never all sent: the call ends first
                sent.append(i)
                await asyncio.sleep(0.01)
                yield _piece("logits", bytes(8))

        with pytest.raises(grpc.aio.AioRpcError) as info:
            _ = [m async for m in stub.ComputeLossChunked(requests())]
        return info.value

    error = with_server(scenario)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "logits: expected 96 bytes for shape [8, 3] of float32, got at least 200"
    )
    assert len(sent) < 500


def test_chunked_shapes_over_the_limits_are_resource_exhausted() -> None:
    huge = pb.Tensor(shape=[1 << 20, 64], dtype="float32")  # 256 MiB declared, never sent
    error, _ = _chunked_call([_header(logits=huge)], max_body_bytes=64 * MiB, max_elements=1 << 27)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == (
        f"header: expected tensors of at most {64 * MiB} bytes in all, "
        f"got shapes of {256 * MiB + 64} bytes"
    )
    assert dict(error.trailing_metadata() or ())[ERROR_CODE_KEY] == "PAYLOAD_TOO_LARGE"
    error, _ = _chunked_call([_header(logits=huge)], max_elements=1 << 20)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == f"logits: expected at most {1 << 20} elements, got {1 << 26}"


def test_chunked_metrics_carry_the_loss_of_the_header() -> None:
    async def scenario(stub: Any, channel: Any, state: ServiceState) -> ServiceState:
        await compute_loss_async(stub, _big_request())
        return state

    state = with_server(scenario)
    labels = {"transport": "grpc", "route": CHUNKED_ROUTE, "loss": "focal", "status": "OK"}
    assert _sample_count(state, **labels) == 1


def test_response_chunk_bytes_is_asked_for_within_bounds() -> None:
    assert response_chunk_bytes(0, 512 * MiB) == convert.DEFAULT_CHUNK_BYTES
    assert response_chunk_bytes(3 * MiB, 512 * MiB) == 3 * MiB
    assert response_chunk_bytes(1, 512 * MiB) == convert.MIN_CHUNK_BYTES
    assert response_chunk_bytes(1 << 40, 512 * MiB) == 256 * MiB
    assert response_chunk_bytes(0, 1000) == 500  # a tiny limit wins over the minimum


# chunk converters: pure, round-tripped through the wire format


def _wire(messages: Any, kind: Any) -> list[Any]:
    return [kind.FromString(m.SerializeToString()) for m in messages]


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_chunked_request_round_trips_every_dtype(dtype: str, chunk_bytes: int) -> None:
    logits = _sample(dtype, (6, 5))
    targets = _sample("int64", (6,))
    weight = _sample("float64", (6,))
    request = LossRequest(
        loss="focal",
        params={"gamma": 2, "alpha": [0.5]},
        logits=logits,
        targets=targets,
        sample_weight=weight,
        reduction="none",
        return_grad=True,
        return_hessian=True,
    )
    messages = _wire(
        convert.encode_compute_request_chunks(
            request, chunk_bytes=chunk_bytes, response_chunk_bytes=12345
        ),
        pb.ComputeLossRequestChunk,
    )
    assert messages[0].WhichOneof("part") == "header"
    assert messages[0].response_chunk_bytes == 12345
    assert all(len(m.data.data) <= chunk_bytes for m in messages[1:])
    total = logits.nbytes + targets.nbytes + weight.nbytes
    if chunk_bytes >= total:
        assert len(messages) == 1  # everything fits in the header
    decoded = convert.decode_compute_request_chunks(messages)
    assert decoded.params == {"gamma": 2, "alpha": [0.5]}
    for name in ("loss", "reduction", "return_grad", "return_hessian"):
        assert getattr(decoded, name) == getattr(request, name)
    for name in ("logits", "targets", "sample_weight"):
        expected, actual = getattr(request, name), getattr(decoded, name)
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_array_equal(actual, expected)
        assert actual.flags.writeable  # torch.from_numpy takes it without a warning


@pytest.mark.parametrize("chunk_bytes", [3, 100, 1 << 20])
@pytest.mark.parametrize("with_grad", [False, True])
def test_chunked_response_round_trips(with_grad: bool, chunk_bytes: int) -> None:
    grad = np.arange(600, dtype=np.float32).reshape(200, 3) if with_grad else None
    result = LossResult(
        loss="focal",
        reduction="none",
        value=np.linspace(0, 1, 200, dtype=np.float32),
        grad=grad,
        hessian_diag=None if grad is None else grad * 2,
        device="cuda:1",
    )
    messages = _wire(
        convert.encode_compute_response_chunks(result, chunk_bytes=chunk_bytes),
        pb.ComputeLossResponseChunk,
    )
    assert all(len(m.data.data) <= chunk_bytes for m in messages[1:])
    _assert_results_equal(convert.decode_compute_response_chunks(messages), result)


def test_chunked_decoder_takes_header_prefixes_and_interleaved_pieces() -> None:
    logits, targets = _multiclass(8, 3)
    raw_logits, raw_targets = logits.tobytes(), targets.tobytes()
    header = _request()
    header.logits.data = raw_logits[:10]  # a prefix in the header, the rest in pieces
    header.targets.data = b""
    messages = [
        pb.ComputeLossRequestChunk(header=header),
        _piece("targets", raw_targets[:32]),
        _piece("logits", raw_logits[10:50]),
        _piece("logits", b""),
        _piece("targets", raw_targets[32:]),
        _piece("logits", raw_logits[50:]),
    ]
    decoded = convert.decode_compute_request_chunks(messages)
    np.testing.assert_array_equal(decoded.logits, logits)
    np.testing.assert_array_equal(decoded.targets, targets)


def test_chunk_encoders_refuse_bad_input() -> None:
    request = _big_request()
    with pytest.raises(ValueError, match=r"^chunk_bytes: expected a positive integer, got 0$"):
        next(convert.encode_compute_request_chunks(request, chunk_bytes=0))
    complex_request = LossRequest(
        loss="focal", logits=np.zeros(2, dtype=np.complex64), targets=np.zeros(2)
    )
    with pytest.raises(InvalidArgument, match=r"^logits: expected a dtype among .*complex64$"):
        next(convert.encode_compute_request_chunks(complex_request))
