"""Every registry loss as a model of the Open Inference Protocol: ``loss.<name>``.

So that any OIP client (tritonclient for Python, C++, Java and Go; KServe's clients;
perf_analyzer) computes losses and their derivatives without lossserve's own API. A loss
model is built in and always ready, one version (``1``), and not in the repository index
(which lists the repository's models); a repository model whose name starts with ``loss.``
is shadowed by it.

Inputs: ``logits`` (FP32, FP64 or FP16; ``[N]`` binary, ``[N, C]`` otherwise), ``targets``
(INT64 or INT32 class indices for multiclass, FP32 0/1 or soft for binary and multilabel)
and, optionally, ``sample_weight`` (``[N]``). Outputs: ``loss`` (``[1]``, or per sample /
element / class with ``reduction`` ``none``), ``grad`` and ``hessian_diag`` (the logits'
shape, FP32); all three when the request names none, and only what it names otherwise
(``hessian_diag`` costs the most). Request parameters: ``reduction`` (``mean``, ``sum``,
``none``; default ``mean``) and the loss's own parameters by name; a per-class parameter
(``alpha``, ``weight``, ``pos_weight``, ``class_prior``) as a JSON list in a string
parameter (``"[0.25, 0.75]"``), since a protocol parameter is a scalar. The request goes
the way of ``POST /loss``: admitted on the worker pool's lane, costed, run on a worker;
the same errors name the same fields.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

import losses

from ..core.errors import InvalidArgument, NotFound
from ..core.types import LossRequest, LossResult
from .engine import InferRequest, InferResult, ModelMetadata, TensorSpec

__all__ = [
    "INPUTS",
    "OUTPUTS",
    "PLATFORM",
    "PREFIX",
    "config",
    "infer_result",
    "is_loss_model",
    "json_values",
    "loss_request",
    "metadata",
    "spec_of",
]

PREFIX = "loss."
PLATFORM = "lossserve_loss"
VERSION = "1"
INPUTS = ("logits", "targets", "sample_weight")
OUTPUTS = ("loss", "grad", "hessian_diag")


def is_loss_model(name: str) -> bool:
    return name.startswith(PREFIX)


def spec_of(name: str, version: str = "") -> losses.LossSpec:
    """The registry loss model ``name`` serves; :class:`NotFound` for none, or another
    version."""
    loss = name.removeprefix(PREFIX)
    if loss not in losses.names():
        raise NotFound(
            f"unknown model {name!r}: the loss models are {PREFIX}<loss> for "
            f"{', '.join(losses.names())}"
        )
    if version not in ("", VERSION):
        raise NotFound(f"model {name!r} has no version {version} (serving {VERSION})")
    return losses.get(loss)


def _targets_spec(spec: losses.LossSpec) -> TensorSpec:
    if spec.tasks == {losses.Task.MULTICLASS}:
        return TensorSpec("targets", "INT64", (-1,))
    return TensorSpec("targets", "FP32", (-1, -1))


def metadata(name: str, version: str = "") -> ModelMetadata:
    """The model's inputs, outputs and, as parameters, its tasks and parameter schema."""
    spec = spec_of(name, version)
    return ModelMetadata(
        name=name,
        versions=(VERSION,),
        platform=PLATFORM,
        inputs=(
            TensorSpec("logits", "FP32", (-1, -1)),
            _targets_spec(spec),
            TensorSpec("sample_weight", "FP32", (-1,)),
        ),
        outputs=(
            TensorSpec("loss", "FP32", (-1,)),
            TensorSpec("grad", "FP32", (-1, -1)),
            TensorSpec("hessian_diag", "FP32", (-1, -1)),
        ),
        parameters={
            "loss": spec.name,
            "tasks": ",".join(sorted(t.value for t in spec.tasks)),
            "reduction": "mean",
            "params_schema": json.dumps(spec.json_schema(), separators=(",", ":")),
        },
    )


def config(name: str, version: str = "") -> dict[str, Any]:
    """The model's configuration in Triton's JSON form."""
    meta = metadata(name, version)

    def tensor(spec: TensorSpec) -> dict[str, Any]:
        return {"name": spec.name, "data_type": f"TYPE_{spec.datatype}", "dims": list(spec.shape)}

    parameters = {**meta.parameters, "optional_inputs": "sample_weight"}
    return {
        "name": name,
        "platform": PLATFORM,
        "backend": "lossserve",
        "max_batch_size": 0,
        "input": [tensor(spec) for spec in meta.inputs],
        "output": [tensor(output) for output in meta.outputs],
        "parameters": {key: {"string_value": str(v)} for key, v in parameters.items()},
    }


_MAX_JSON_PARAMETER = 1 << 20
"""Characters of a JSON list in a string parameter (a per-class list of a million classes
is about 10 MB: the tensors' limits bind long before)."""


def _param(key: str, value: Any) -> Any:
    """A request parameter as the loss takes it: a string holding a JSON list or object
    (a per-class parameter) decoded; anything else as it came."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        if len(value) > _MAX_JSON_PARAMETER:
            raise InvalidArgument(
                f"parameters.{key}: expected a JSON list of at most {_MAX_JSON_PARAMETER} "
                f"characters, got {len(value)}"
            )
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # deep nesting overflows the parser's stack
            raise InvalidArgument(
                f"parameters.{key}: expected a JSON list, got {value[:80]!r}"
            ) from None
    return value


def loss_request(request: InferRequest) -> tuple[LossRequest, tuple[str, ...]]:
    """The ``POST /loss`` request an inference request of a loss model asks for, and the
    outputs to answer, in order."""
    spec = spec_of(request.model, request.version)
    for key in request.inputs:
        if key not in INPUTS:
            raise InvalidArgument(
                f"unexpected input {key!r}: model {request.model!r} has the inputs "
                f"{list(INPUTS)} (sample_weight optional)"
            )
    for key in ("logits", "targets"):
        if key not in request.inputs:
            raise InvalidArgument(f"missing input {key!r} of model {request.model!r}")
    wanted = []
    for output in request.outputs:
        if output.name not in OUTPUTS:
            raise InvalidArgument(
                f"unknown output {output.name!r}: expected one of {list(OUTPUTS)}"
            )
        if output.name in wanted:
            raise InvalidArgument(f"output {output.name!r}: requested twice")
        if output.classification:
            raise InvalidArgument(
                f"output {output.name!r}: classification applies to a classifier's outputs, "
                "not to a loss's"
            )
        wanted.append(output.name)
    names = tuple(wanted) or OUTPUTS
    params = {key: _param(key, value) for key, value in request.parameters.items()}
    reduction = params.pop("reduction", "mean")  # checked where POST /loss's is
    inputs: Mapping[str, np.ndarray] = request.inputs
    return (
        LossRequest(
            loss=spec.name,
            logits=inputs["logits"],
            targets=inputs["targets"],
            params=params,
            sample_weight=inputs.get("sample_weight"),
            reduction=reduction,
            return_grad="grad" in names,
            return_hessian="hessian_diag" in names,
        ),
        names,
    )


def infer_result(request: InferRequest, result: LossResult, names: tuple[str, ...]) -> InferResult:
    """The protocol's answer: the outputs asked for, in order, as FP32."""
    arrays = {
        "loss": np.atleast_1d(result.value),
        "grad": result.grad,
        "hessian_diag": result.hessian_diag,
    }
    outputs = {}
    for name in names:
        array = arrays[name]
        if array is None:  # the engine computes what the request asks for
            raise RuntimeError(f"the loss engine answered no {name!r}")
        outputs[name] = np.ascontiguousarray(array, dtype=np.float32)
    return InferResult(model=request.model, version=VERSION, id=request.id, outputs=outputs)


def json_values(request: InferRequest, json_outputs: set[str]) -> int:
    """How many JSON values the answer would hold (outputs sent as JSON only; the loss's own
    output one, or with reduction none as many as the loss gives)."""
    shapes = request.shapes()
    shape = shapes.get("logits")
    if shape is None:
        return 0
    size = math.prod(shape)
    asked = [o.name for o in request.outputs] or list(OUTPUTS)
    per_logit = sum(
        1 for name in ("grad", "hessian_diag") if name in asked and name in json_outputs
    )
    loss = 0
    if "loss" in asked and "loss" in json_outputs:
        none = request.parameters.get("reduction", "mean") == "none"
        loss = _values_of_none(request, shape, shapes.get("targets")) if none else 1
    return int(size * per_logit + loss)


def _values_of_none(
    request: InferRequest, logits: tuple[int, ...], targets: tuple[int, ...] | None
) -> int:
    """The loss output's values with reduction none: one per logit for an element-wise
    loss, one per sample for a sample-coupled one, one per class in the batch scope (one in
    all for binary); one per logit for a request refused later (bad parameters or shapes)."""
    try:
        spec = spec_of(request.model, request.version)
        params = {k: _param(k, v) for k, v in request.parameters.items() if k != "reduction"}
        task = losses.infer_task(
            torch.empty(logits, device="meta"), torch.empty(targets or (), device="meta")
        )
        coupling = spec.coupling(spec.validate(params), task)
    except (InvalidArgument, NotFound, ValueError, TypeError, RuntimeError):
        return math.prod(logits)
    if coupling is losses.Coupling.ELEMENT:
        return math.prod(logits)
    if coupling is losses.Coupling.SAMPLE:
        return logits[0]
    return logits[1] if len(logits) == 2 else 1
