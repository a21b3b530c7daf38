"""The same good and bad requests over REST (each encoding) and gRPC: same answers.

Values must equal calling ``losses`` directly; errors must carry the same code and the
same message on both transports (MLServer's test_infer_error / test_model_infer_error).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import torch

import losses
from lossserve.api import grpc_convert as convert
from lossserve.api.grpc import ERROR_CODE_KEY, create_grpc_server
from lossserve.api.rest import create_app
from lossserve.core.state import ServiceState
from lossserve.core.types import LossRequest
from lossserve.settings import Settings
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc

RNG = np.random.default_rng(7)
LOGITS = RNG.normal(size=(8, 3)).astype(np.float32)
TARGETS = np.array([0, 1, 2, 0, 0, 1, 2, 2], dtype=np.int64)
WEIGHTS = RNG.uniform(0.5, 2.0, size=8).astype(np.float32)


def _rest_document(request: LossRequest, encoding: str) -> tuple[bytes, dict[str, str]]:
    tensors = {"logits": request.logits, "targets": request.targets}
    if request.sample_weight is not None:
        tensors["sample_weight"] = request.sample_weight
    document: dict[str, Any] = {
        "loss": request.loss,
        "params": request.params,
        "reduction": request.reduction,
        "return_grad": request.return_grad,
        "return_hessian": request.return_hessian,
    }
    chunks: list[bytes] = []
    for name, array in tensors.items():
        if encoding == "lists":
            document[name] = array.tolist()
        elif encoding == "b64":
            document[name] = {
                "shape": list(array.shape),
                "dtype": array.dtype.name,
                "b64": base64.b64encode(array.tobytes()).decode(),
            }
        else:
            document[name] = {
                "shape": list(array.shape),
                "dtype": array.dtype.name,
                "binary_data_size": array.nbytes,
            }
            chunks.append(array.tobytes())
    header = json.dumps(document).encode()
    if encoding != "binary":
        return header, {"Content-Type": "application/json"}
    return header + b"".join(chunks), {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }


def _rest_answer(response: httpx.Response) -> dict[str, Any]:
    """Status, error code/message, or the decoded value and gradient."""
    if response.status_code != 200:
        error = response.json()["error"]
        return {"error": (error["code"], error["message"])}
    if "Inference-Header-Content-Length" in response.headers:
        length = int(response.headers["Inference-Header-Content-Length"])
        header = json.loads(response.content[:length])
        offset, out = length, {}
        for name in ("value", "grad", "hessian_diag"):
            entry = header[name]
            if isinstance(entry, dict):
                size = entry["binary_data_size"]
                raw = response.content[offset : offset + size]
                out[name] = np.frombuffer(raw, dtype=entry["dtype"]).reshape(entry["shape"])
                offset += size
            else:
                out[name] = None if entry is None else np.asarray(entry, dtype=np.float32)
        return out
    body = response.json()
    out = {}
    for name in ("value", "grad", "hessian_diag"):
        entry = body[name]
        if isinstance(entry, dict):
            raw = base64.b64decode(entry["b64"])
            out[name] = np.frombuffer(raw, dtype=entry["dtype"]).reshape(entry["shape"])
        else:
            out[name] = None if entry is None else np.asarray(entry, dtype=np.float32)
    return out


async def _grpc_answer(stub: pb_grpc.LossServiceStub, request: LossRequest) -> dict[str, Any]:
    try:
        response = await stub.ComputeLoss(convert.encode_compute_request(request))
    except grpc.aio.AioRpcError as exc:
        trailers = dict(exc.trailing_metadata() or ())
        return {"error": (trailers[ERROR_CODE_KEY], exc.details())}
    result = convert.decode_compute_response(response)
    return {"value": result.value, "grad": result.grad, "hessian_diag": result.hessian_diag}


def _answers(request: LossRequest) -> dict[str, dict[str, Any]]:
    async def main() -> dict[str, dict[str, Any]]:
        state = ServiceState.create(Settings(devices=["cpu"]))
        await state.start()
        server = create_grpc_server(state)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        answers: dict[str, dict[str, Any]] = {}
        try:
            transport = httpx.ASGITransport(app=create_app(state))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for encoding in ("lists", "b64", "binary"):
                    payload, headers = _rest_document(request, encoding)
                    response = await client.post("/loss", content=payload, headers=headers)
                    answers[f"rest-{encoding}"] = _rest_answer(response)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                answers["grpc"] = await _grpc_answer(pb_grpc.LossServiceStub(channel), request)
        finally:
            await server.stop(None)
            await state.stop()
        return answers

    return asyncio.run(main())


GOOD = [
    LossRequest("focal", LOGITS, TARGETS, {"gamma": 2.0}, None, "mean", True, True),
    LossRequest("cross_entropy", LOGITS, TARGETS, {"label_smoothing": 0.1}, WEIGHTS, "none", True),
    LossRequest("dice", LOGITS, TARGETS, {"scope": "batch"}, None, "mean", True, False),
]


@pytest.mark.parametrize("request_", GOOD, ids=[r.loss for r in GOOD])
def test_good_requests_agree_with_each_other_and_the_library(request_: LossRequest) -> None:
    answers = _answers(request_)
    direct = losses.derivatives(
        request_.loss,
        torch.from_numpy(request_.logits),
        torch.from_numpy(request_.targets),
        hessian=request_.return_hessian,
        reduction=request_.reduction,
        sample_weight=None
        if request_.sample_weight is None
        else torch.from_numpy(request_.sample_weight),
        **request_.params,
    )
    for transport, answer in answers.items():
        assert "error" not in answer, (transport, answer)
        np.testing.assert_allclose(
            answer["value"], direct.value.numpy(), rtol=1e-6, err_msg=transport
        )
        np.testing.assert_allclose(answer["grad"], direct.grad.numpy(), rtol=1e-5, atol=1e-8)
        if request_.return_hessian:
            assert direct.hessian_diag is not None
            np.testing.assert_allclose(
                answer["hessian_diag"], direct.hessian_diag.numpy(), rtol=1e-5, atol=1e-8
            )
        else:
            assert answer["hessian_diag"] is None


BAD = {
    "unknown loss": LossRequest("focall", LOGITS, TARGETS),
    "bad params": LossRequest("focal", LOGITS, TARGETS, {"gamma": -1}),
    "unknown param": LossRequest("focal", LOGITS, TARGETS, {"gama": 1}),
    "label out of range": LossRequest("focal", LOGITS, np.full(8, 3, dtype=np.int64)),
    "shape mismatch": LossRequest("focal", LOGITS, TARGETS[:5]),
    "nan logits": LossRequest("focal", np.full((8, 3), np.nan, dtype=np.float32), TARGETS),
    "task not supported": LossRequest("focal", LOGITS, (LOGITS > 0).astype(np.float32)),
    "bad reduction": LossRequest("focal", LOGITS, TARGETS, reduction="avg"),
    "bad weights": LossRequest("focal", LOGITS, TARGETS, sample_weight=WEIGHTS[:3]),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_requests_get_the_same_code_and_message(name: str) -> None:
    answers = _answers(BAD[name])
    errors = {transport: answer.get("error") for transport, answer in answers.items()}
    nan_lists = name == "nan logits"  # JSON has no NaN: the lists encoding cannot send it
    if nan_lists:
        assert errors.pop("rest-lists") is not None
    assert all(error is not None for error in errors.values()), errors
    assert len(set(errors.values())) == 1, errors
    code, message = next(iter(errors.values()))
    assert code == "INVALID_ARGUMENT"
    assert message.split(":")[0] in {
        "loss",
        "params.gamma",
        "params.gama",
        "targets",
        "logits",
        "reduction",
        "return_hessian",
        "sample_weight",
    }, message
