"""Every registry loss as an Open Inference Protocol model (``loss.<name>``), in process:
the same numbers as ``POST /loss``, and the same code and message over REST and gRPC for
each bad request."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import torch

import losses
from lossserve.api import oip_grpc_convert as convert
from lossserve.api.http import HTTP_STATUS
from lossserve.models import loss_models
from lossserve.models.engine import InferRequest, RequestedOutput
from lossserve_proto.inference import grpc_service_pb2_grpc as pb_grpc

from .test_oip_grpc import with_servers

RNG = np.random.default_rng(3)
LOGITS = RNG.normal(0, 2, (6, 4)).astype(np.float32)
TARGETS = np.array([0, 1, 2, 3, 1, 0], dtype=np.int64)


def _document(request: InferRequest) -> dict[str, Any]:
    def datatype(array: np.ndarray) -> str:
        return {np.dtype("float32"): "FP32", np.dtype("int64"): "INT64"}.get(array.dtype, "BYTES")

    return {
        "parameters": dict(request.parameters),
        "inputs": [
            {
                "name": name,
                "datatype": datatype(array),
                "shape": list(array.shape),
                "data": array.reshape(-1).tolist(),
            }
            for name, array in request.inputs.items()
        ],
        "outputs": [{"name": o.name} for o in request.outputs],
    }


async def _both(
    stub: pb_grpc.GRPCInferenceServiceStub, client: httpx.AsyncClient, request: InferRequest
) -> dict[str, Any]:
    """The REST (JSON) and gRPC answers: outputs by name, or (status, message)."""
    answers: dict[str, Any] = {}
    version = f"/versions/{request.version}" if request.version else ""
    response = await client.post(
        f"/v2/models/{request.model}{version}/infer", content=json.dumps(_document(request))
    )
    if response.status_code == 200:
        outputs = response.json()["outputs"]
        answers["rest"] = {
            o["name"]: np.asarray(o["data"], np.float32).reshape(o["shape"]) for o in outputs
        }
    else:
        answers["rest"] = (response.status_code, response.json()["error"])
    try:
        result = convert.decode_infer_result(
            await stub.ModelInfer(convert.encode_infer_request(request))
        )
        answers["grpc"] = result.outputs
    except grpc.aio.AioRpcError as exc:
        answers["grpc"] = (HTTP_STATUS[exc.code().name], exc.details())
    return answers


def test_a_loss_model_answers_what_post_loss_answers() -> None:
    parameters = {"gamma": 1.5, "alpha": "[0.5, 1.0, 2.0, 1.0]", "reduction": "sum"}
    request = InferRequest(
        "loss.focal", {"logits": LOGITS, "targets": TARGETS}, parameters=parameters
    )

    async def scenario(stub: Any, client: httpx.AsyncClient, state: Any) -> None:
        answers = await _both(stub, client, request)
        body = {
            "loss": "focal",
            "logits": LOGITS.tolist(),
            "targets": TARGETS.tolist(),
            "params": {"gamma": 1.5, "alpha": [0.5, 1.0, 2.0, 1.0]},
            "reduction": "sum",
            "return_grad": True,
            "return_hessian": True,
        }
        direct = (await client.post("/loss", json=body)).json()
        for transport, outputs in answers.items():
            assert list(outputs) == ["loss", "grad", "hessian_diag"], transport
            np.testing.assert_allclose(outputs["loss"], [direct["value"]], rtol=1e-6)
            np.testing.assert_allclose(outputs["grad"], direct["grad"], rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(
                outputs["hessian_diag"], direct["hessian_diag"], rtol=1e-6, atol=1e-8
            )

    with_servers(None, scenario)


BAD = {
    "unknown loss": (InferRequest("loss.focl", {"logits": LOGITS, "targets": TARGETS}), 404),
    "bad param": (
        InferRequest(
            "loss.focal", {"logits": LOGITS, "targets": TARGETS}, parameters={"gamma": -1.0}
        ),
        400,
    ),
    "unknown param": (
        InferRequest(
            "loss.focal", {"logits": LOGITS, "targets": TARGETS}, parameters={"gama": 1.0}
        ),
        400,
    ),
    "bad reduction": (
        InferRequest(
            "loss.focal", {"logits": LOGITS, "targets": TARGETS}, parameters={"reduction": "avg"}
        ),
        400,
    ),
    "missing targets": (InferRequest("loss.focal", {"logits": LOGITS}), 400),
    "extra input": (
        InferRequest("loss.focal", {"logits": LOGITS, "targets": TARGETS, "x": TARGETS}),
        400,
    ),
    "unknown output": (
        InferRequest(
            "loss.focal",
            {"logits": LOGITS, "targets": TARGETS},
            outputs=(RequestedOutput("probabilities"),),
        ),
        400,
    ),
    "label out of range": (
        InferRequest("loss.focal", {"logits": LOGITS, "targets": TARGETS + 3}),
        400,
    ),
    "bad json list": (
        InferRequest(
            "loss.focal", {"logits": LOGITS, "targets": TARGETS}, parameters={"alpha": "[1, 2"}
        ),
        400,
    ),
    "unknown version": (
        InferRequest("loss.focal", {"logits": LOGITS, "targets": TARGETS}, version="2"),
        404,
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_requests_get_the_same_status_and_message_on_both_transports(name: str) -> None:
    request, status = BAD[name]

    async def scenario(stub: Any, client: httpx.AsyncClient, state: Any) -> dict[str, Any]:
        return await _both(stub, client, request)

    answers = with_servers(None, scenario)
    assert answers["rest"] == answers["grpc"], answers
    assert answers["rest"][0] == status, answers


def test_reserved_parameters_do_not_reach_the_loss() -> None:
    parameters = {"priority": 1, "timeout": 1000, "sequence_id": 0, "reduction": "mean"}
    request = InferRequest(
        "loss.focal", {"logits": LOGITS, "targets": TARGETS}, parameters=parameters
    )

    async def scenario(stub: Any, client: httpx.AsyncClient, state: Any) -> dict[str, Any]:
        return await _both(stub, client, request)

    answers = with_servers(None, scenario)
    for transport, outputs in answers.items():
        assert isinstance(outputs, dict) and "loss" in outputs, (transport, outputs)


def _none_cases() -> list[tuple[str, str, dict[str, Any]]]:
    cases = []
    for name in losses.names():
        spec = losses.get(name)
        scopes: list[dict[str, Any]] = [{}]
        if "scope" in spec.params.model_fields:
            scopes = [{"scope": "batch"}, {"scope": "sample"}]
        for task in sorted(t.value for t in spec.tasks):
            cases += [(name, task, scope) for scope in scopes]
    return cases


@pytest.mark.parametrize(("name", "task", "scope"), _none_cases())
def test_a_json_answer_counts_the_values_reduction_none_gives(
    name: str, task: str, scope: dict[str, Any]
) -> None:
    """The count that keeps a JSON answer within its limit, before any work, is the number
    of values the loss's ``reduction="none"`` gives, for every loss, task and scope."""
    rows, columns = 6, 4
    generator = torch.Generator().manual_seed(0)
    if task == "binary":
        x, y = torch.randn(rows, generator=generator), torch.ones(rows)
    elif task == "multiclass":
        x, y = torch.randn(rows, columns, generator=generator), torch.arange(rows) % columns
    else:
        x, y = torch.randn(rows, columns, generator=generator), torch.ones(rows, columns)
    params = {"max_k": columns} if name == "subset_softmax" else {}
    if name == "logit_adjusted_cross_entropy":
        params = {"class_prior": [1.0, 2.0, 3.0, 4.0]}
    given = losses.compute(name, x, y, reduction="none", **params, **scope).numel()
    parameters = {**params, **scope, "reduction": "none"}
    if "class_prior" in parameters:
        parameters["class_prior"] = json.dumps(parameters["class_prior"])
    request = InferRequest(
        f"loss.{name}",
        {"logits": x.numpy(), "targets": y.numpy()},
        outputs=(RequestedOutput("loss"),),
        parameters=parameters,
    )
    assert loss_models.json_values(request, {"loss"}) == given
