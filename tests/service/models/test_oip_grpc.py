"""OIP v2 over gRPC in process: converters round-trip, the servicer over a real grpc.aio server
on loopback, and parity with REST (the same bad request, the same code and message)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import numpy as np
import pytest

from lossserve.api import oip_grpc_convert as convert
from lossserve.api.grpc import create_grpc_server
from lossserve.api.http import HTTP_STATUS
from lossserve.api.oip_grpc import parse_infer_request
from lossserve.api.rest import create_app
from lossserve.core.errors import InvalidArgument
from lossserve.core.state import ServiceState
from lossserve.models.engine import InferRequest, InferResult, RequestedOutput
from lossserve.models.oip import BYTES, DATATYPES, datatype_of, encode_raw
from lossserve.settings import Settings
from lossserve_proto.inference import grpc_service_pb2 as pb
from lossserve_proto.inference import grpc_service_pb2_grpc as pb_grpc

from .builders import reference, rows
from .conftest import TOKEN
from .test_oip import sample

T = TypeVar("T")
Scenario = Callable[
    [pb_grpc.GRPCInferenceServiceStub, httpx.AsyncClient, ServiceState], Awaitable[T]
]


def with_servers(repository: Path | None, scenario: Scenario[T], **settings: Any) -> T:
    """Run ``scenario`` with a gRPC stub and a REST client over one started state."""

    async def main() -> T:
        options: dict[str, Any] = {"devices": ["cpu"], "model_repository": repository, **settings}
        state = ServiceState.create(Settings(**options))
        await state.start()
        server = create_grpc_server(state)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                transport = httpx.ASGITransport(app=create_app(state))
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    return await scenario(pb_grpc.GRPCInferenceServiceStub(channel), client, state)
        finally:
            await server.stop(grace=None)
            await state.stop()

    return asyncio.run(main())


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_infer_request_and_result_round_trip(datatype: str) -> None:
    array = sample(datatype)
    request = InferRequest(
        "m", {"x": array}, version="3", outputs=(RequestedOutput("y", 2),), id="i"
    )
    decoded = convert.decode_infer_request(convert.encode_infer_request(request), max_elements=1000)
    assert (decoded.model, decoded.version, decoded.outputs, decoded.id) == (
        "m",
        "3",
        request.outputs,
        "i",
    )
    np.testing.assert_array_equal(decoded.inputs["x"], array)
    result = InferResult("m", "3", "i", {"y": array, "z": np.arange(3, dtype=np.int64)})
    back = convert.decode_infer_result(convert.encode_infer_result(result))
    assert (back.model, back.version, back.id, list(back.outputs)) == ("m", "3", "i", ["y", "z"])
    np.testing.assert_array_equal(back.outputs["y"], array)


@pytest.mark.parametrize("datatype", [d for d in DATATYPES if d in convert.CONTENTS_FIELD])
def test_typed_contents_decode_like_raw_contents(datatype: str) -> None:
    array = sample(datatype)
    message = pb.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name="x", datatype=datatype, shape=list(array.shape))
    getattr(tensor.contents, convert.CONTENTS_FIELD[datatype]).extend(array.reshape(-1).tolist())
    decoded = convert.decode_infer_request(message, max_elements=100).inputs["x"]
    np.testing.assert_array_equal(decoded, array)
    assert decoded.dtype == array.dtype


def test_contents_errors() -> None:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="x", datatype="FP16", shape=[1])
    with pytest.raises(InvalidArgument, match=r"^input 'x': FP16 needs raw_input_contents$"):
        convert.decode_infer_request(message, max_elements=10)
    message.raw_input_contents.extend([b"\0\0", b"\0\0"])
    with pytest.raises(
        InvalidArgument,
        match=r"^raw_input_contents: expected one entry per input not in shared memory "
        r"\(1\), got 2$",
    ):
        convert.decode_infer_request(message, max_elements=10)
    assert BYTES in convert.CONTENTS_FIELD


def _request(
    features: np.ndarray, name: str = "features", model: str = "tiny", version: str = ""
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model, model_version=version)
    message.inputs.add(name=name, datatype=datatype_of(features), shape=list(features.shape))
    message.raw_input_contents.append(encode_raw(features))
    return message


def test_infer_stream_config_and_metadata(repository: Path) -> None:
    features = rows(4)
    expected = reference(repository / "tiny" / "2", features)

    async def scenario(stub: Any, _: httpx.AsyncClient, state: ServiceState) -> None:
        assert (await stub.ServerLive(pb.ServerLiveRequest())).live
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
        assert (await stub.ModelReady(pb.ModelReadyRequest(name="tiny", version="2"))).ready
        assert not (await stub.ModelReady(pb.ModelReadyRequest(name="tiny", version="1"))).ready
        response = await stub.ModelInfer(_request(features))
        result = convert.decode_infer_result(response)
        for name, values in expected.items():
            np.testing.assert_allclose(result.outputs[name], values, atol=1e-6)
        metadata = await stub.ModelMetadata(pb.ModelMetadataRequest(name="tiny"))
        assert (
            metadata.parameters["execution_provider"].string_param
            == state.models.model("tiny").provider
        )
        config = (await stub.ModelConfig(pb.ModelConfigRequest(name="tiny"))).config
        assert (config.max_batch_size, config.input[0].dims) == (16, [4])
        assert config.output[2].data_type == pb.TYPE_INT64
        assert config.dynamic_batching.max_queue_delay_microseconds == 500

        async def requests() -> AsyncIterator[pb.ModelInferRequest]:
            yield _request(features[:1])
            yield _request(features[:1], name="nope")
            yield _request(features[1:])

        answers = [answer async for answer in stub.ModelStreamInfer(requests())]
        assert [a.error_message for a in answers] == [
            "",
            "unexpected input 'nope': model 'tiny' has one input, 'features'",
            "",
        ]
        last = convert.decode_infer_result(answers[2].infer_response)
        np.testing.assert_allclose(last.outputs["logits"], expected["logits"][1:], atol=1e-6)
        stats = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="tiny"))).model_stats[0]
        assert (stats.inference_count, stats.inference_stats.success.count) == (8, 3)

    with_servers(repository, scenario)


def test_repository_rpcs_need_the_token(repository: Path) -> None:
    async def scenario(stub: Any, _: httpx.AsyncClient, state: ServiceState) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RepositoryIndex(pb.RepositoryIndexRequest())
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        token = (("authorization", f"Bearer {TOKEN}"),)
        index = await stub.RepositoryIndex(pb.RepositoryIndexRequest(), metadata=token)
        assert [(m.name, m.state) for m in index.models] == [
            ("spam", "READY"), ("tags", "READY"), ("tiny", "READY")
        ]  # fmt: skip
        await stub.RepositoryModelUnload(
            pb.RepositoryModelUnloadRequest(model_name="spam"), metadata=token
        )
        assert not state.models.is_ready("spam")
        await stub.RepositoryModelLoad(
            pb.RepositoryModelLoadRequest(model_name="spam"), metadata=token
        )
        assert state.models.is_ready("spam")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RepositoryModelLoad(
                pb.RepositoryModelLoadRequest(model_name="../x"), metadata=token
            )
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    with_servers(repository, scenario, admin_token=TOKEN)


def test_repository_rpcs_are_off_without_a_token(repository: Path) -> None:
    async def scenario(stub: Any, _: httpx.AsyncClient, __: ServiceState) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RepositoryIndex(
                pb.RepositoryIndexRequest(), metadata=(("authorization", "Bearer x"),)
            )
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert caught.value.details().startswith("the model repository API is disabled")

    with_servers(repository, scenario)


def _json_body(features: np.ndarray, name: str = "features") -> dict[str, Any]:
    tensor = {"name": name, "shape": list(features.shape), "datatype": datatype_of(features)}
    return {"inputs": [{**tensor, "data": features.tolist()}]}


PARITY = {
    "input name": (_request(rows(2), name="feature"), _json_body(rows(2), name="feature")),
    "shape": (_request(rows(2)[:, :3]), _json_body(rows(2)[:, :3])),
    "dtype": (_request(rows(2).astype(np.float64)), _json_body(rows(2).astype(np.float64))),
    "unknown model": (_request(rows(1), model="nosuch"), _json_body(rows(1))),
    "unknown version": (_request(rows(1), version="9"), _json_body(rows(1))),
}


@pytest.mark.parametrize("case", list(PARITY))
def test_the_same_bad_request_answers_the_same_over_rest_and_grpc(
    repository: Path, case: str
) -> None:
    message, body = PARITY[case]

    async def scenario(stub: Any, client: httpx.AsyncClient, _: ServiceState) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ModelInfer(message)
        path = f"/v2/models/{message.model_name}"
        if message.model_version:
            path += f"/versions/{message.model_version}"
        response = await client.post(path + "/infer", json=body)
        grpc_codes = {v: k for k, v in HTTP_STATUS.items()}
        assert grpc_codes[response.status_code].value == caught.value.code().name
        assert response.json() == {"error": caught.value.details()}

    with_servers(repository, scenario)


def test_an_answer_above_the_message_limit_is_resource_exhausted_naming_the_setting(
    repository: Path,
) -> None:
    # 16 rows of 4 features ask about 300 bytes; the answer (logits, probabilities and
    # labels of each row) is about 700: above a 512-byte limit, which the request is not
    features = rows(16)
    limit = 512
    assert _request(features).ByteSize() < limit

    async def scenario(
        stub: Any, _: httpx.AsyncClient, state: ServiceState
    ) -> tuple[grpc.aio.AioRpcError, list[pb.ModelStreamInferResponse]]:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ModelInfer(_request(features))

        async def requests() -> AsyncIterator[pb.ModelInferRequest]:
            yield _request(features)
            yield _request(features[:1])

        return info.value, [answer async for answer in stub.ModelStreamInfer(requests())]

    error, answers = with_servers(repository, scenario, grpc_max_message_bytes=limit)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    pattern = (
        r"answer: (\d+) bytes, above the gRPC message limit of 512 bytes "
        r"\(LOSSSERVE_GRPC_MAX_MESSAGE_BYTES\); send fewer rows in a request"
    )
    match = re.fullmatch(pattern, error.details() or "")
    assert match is not None, error.details()
    result = InferResult("tiny", "2", "", reference(repository / "tiny" / "2", features))
    assert int(match.group(1)) == convert.encode_infer_result(result).ByteSize()
    # the stream answers the error and goes on with the next request
    assert re.fullmatch(pattern, answers[0].error_message), answers[0].error_message
    assert answers[1].HasField("infer_response")
    assert not answers[1].error_message


def test_a_repeated_request_is_decoded_once_and_each_read_anew(repository: Path) -> None:
    """The same message but for its tensors' values (what a client sends again and again),
    unary and streamed: each answer is the model's on its own rows; the same message with
    fewer bytes than its shape needs is still refused."""

    async def scenario(stub: Any, _: httpx.AsyncClient, __: ServiceState) -> None:
        for seed in range(3):
            features = rows(3, seed=seed)
            expected = reference(repository / "tiny" / "2", features)
            result = convert.decode_infer_result(await stub.ModelInfer(_request(features)))
            np.testing.assert_allclose(result.outputs["logits"], expected["logits"], atol=1e-6)

            async def requests(rows: np.ndarray = features) -> AsyncIterator[Any]:
                yield _request(rows)

            (answer,) = [a async for a in stub.ModelStreamInfer(requests())]
            streamed = convert.decode_infer_result(answer.infer_response)
            np.testing.assert_allclose(streamed.outputs["logits"], expected["logits"], atol=1e-6)
        # the next such message comes with its decoded request
        assert parse_infer_request(_request(rows(3, seed=9)).SerializeToString()).template
        short = _request(rows(3))
        short.raw_input_contents[0] = short.raw_input_contents[0][:-4]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ModelInfer(short)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "expected 48 bytes" in (refused.value.details() or "")

    with_servers(repository, scenario)
