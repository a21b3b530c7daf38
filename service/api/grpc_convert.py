"""Pure converters between the gRPC messages of ``lossserve.v1`` and the core's domain types.

Every ``decode_*`` inverts its ``encode_*`` (``tests/service/api/test_grpc.py``
round-trips each one, tensors in every dtype of :data:`lossserve.core.tensors.DTYPES`). The
server uses the request decoders and result encoders; the opposite pairs are what a Python
client needs and what the tests compare with. Bad input raises the core's
:class:`~lossserve.core.errors.InvalidArgument` with the same messages as the REST decoder,
naming the field and what was expected.

``ComputeLossChunked`` carries the same request and response split across messages: the
``encode_*_chunks`` functions split one (a header, then the tensors' bytes in pieces of at
most ``chunk_bytes``), and a :class:`ComputeRequestAssembler` /
:class:`ComputeResponseAssembler` puts one back together, message by message, checking
each piece as it comes (so a bad stream fails at its first bad message, before the rest is
buffered). The framing itself is :mod:`lossserve_proto.chunks`, which the Python client
uses too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import orjson

from lossserve_proto.chunks import Assembler, split
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb
from lossserve_proto.tensors import encode_tensor as wire_tensor

from ..core.costs import check_shape
from ..core.documents import load_json_object
from ..core.engine import LossInfo
from ..core.errors import InvalidArgument, PayloadTooLarge
from ..core.tensors import DTYPES, from_bytes
from ..core.types import (
    ClassMetrics,
    EvaluateRequest,
    EvaluateResult,
    LossRequest,
    LossResult,
    ThresholdsResult,
)

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "MIN_CHUNK_BYTES",
    "ComputeRequestAssembler",
    "ComputeResponseAssembler",
    "decode_compute_request",
    "decode_compute_request_chunks",
    "decode_compute_response",
    "decode_compute_response_chunks",
    "decode_evaluate_batch",
    "decode_list_losses",
    "decode_loss_info",
    "decode_metrics",
    "decode_params",
    "decode_tensor",
    "decode_thresholds",
    "encode_compute_request",
    "encode_compute_request_chunks",
    "encode_compute_response",
    "encode_compute_response_chunks",
    "encode_evaluate_batch",
    "encode_list_losses",
    "encode_loss_info",
    "encode_metrics",
    "encode_params",
    "encode_tensor",
    "encode_thresholds",
    "encode_update",
]


# --- tensors -------------------------------------------------------------------------------


def encode_tensor(array: np.ndarray) -> pb.Tensor:
    """``array`` as ``{shape, dtype, data}``: C-order little-endian bytes."""
    name = str(array.dtype.name)
    if name not in DTYPES:
        raise InvalidArgument(
            f"tensor: expected a dtype among {', '.join(DTYPES)}, got {array.dtype.name}"
        )
    return wire_tensor(array)


def decode_tensor(
    message: pb.Tensor, field: str, *, max_elements: int | None = None, copy: bool = True
) -> np.ndarray:
    """The tensor of ``message`` (an array of its own, or without ``copy`` a read-only
    view of its bytes, for a request whose work runs in a worker process); the byte count
    must match."""
    shape = tuple(int(d) for d in message.shape)
    if any(d < 0 for d in shape):
        raise InvalidArgument(
            f"{field}.shape: expected a list of non-negative integers, got {list(shape)}"
        )
    check_shape(shape, field, max_elements, empty=True)
    return from_bytes(message.data, shape, message.dtype, field, copy=copy)


def _optional_tensor(
    message: Any, field: str, *, max_elements: int | None, copy: bool = True
) -> np.ndarray | None:
    if not message.HasField(field):
        return None
    return decode_tensor(getattr(message, field), field, max_elements=max_elements, copy=copy)


def _required_tensor(message: Any, field: str, *, max_elements: int | None) -> np.ndarray:
    """A request's tensor: a read-only view of the message's bytes."""
    array = _optional_tensor(message, field, max_elements=max_elements, copy=False)
    if array is None:
        raise InvalidArgument(f"{field}: required field missing")
    return array


# --- params ----------------------------------------------------------------------------------


def encode_params(params: dict[str, Any]) -> str:
    """A params object as the JSON text ``params_json`` carries (empty for no params)."""
    return orjson.dumps(params).decode() if params else ""


def decode_params(text: str, field: str = "params_json") -> dict[str, Any]:
    """``params_json``: a JSON object's text; empty means ``{}``."""
    return load_json_object(text, field) if text else {}


# --- registry --------------------------------------------------------------------------------


def encode_loss_info(info: LossInfo) -> pb.LossInfo:
    return pb.LossInfo(
        name=info.name,
        tasks=info.tasks,
        summary=info.summary,
        formula=info.formula,
        reference=info.reference,
        when_to_use=info.when_to_use,
        sample_separable=info.sample_separable,
        params_schema=orjson.dumps(info.params_schema).decode(),
    )


def decode_loss_info(message: pb.LossInfo) -> LossInfo:
    schema = orjson.loads(message.params_schema) if message.params_schema else {}
    return LossInfo(
        name=message.name,
        tasks=list(message.tasks),
        summary=message.summary,
        formula=message.formula,
        reference=message.reference,
        when_to_use=message.when_to_use,
        sample_separable=message.sample_separable,
        params_schema=schema,
    )


def encode_list_losses(infos: list[LossInfo]) -> pb.ListLossesResponse:
    return pb.ListLossesResponse(losses=[encode_loss_info(i) for i in infos])


def decode_list_losses(message: pb.ListLossesResponse) -> list[LossInfo]:
    return [decode_loss_info(i) for i in message.losses]


# --- ComputeLoss -----------------------------------------------------------------------------


def encode_compute_request(request: LossRequest) -> pb.ComputeLossRequest:
    message = pb.ComputeLossRequest(
        loss=request.loss,
        params_json=encode_params(request.params),
        logits=encode_tensor(request.logits),
        targets=encode_tensor(request.targets),
        reduction=request.reduction,
        return_grad=request.return_grad,
        return_hessian=request.return_hessian,
    )
    if request.sample_weight is not None:
        message.sample_weight.CopyFrom(encode_tensor(request.sample_weight))
    return message


def decode_compute_request(
    message: pb.ComputeLossRequest, *, max_elements: int | None = None
) -> LossRequest:
    """The core's request; an empty ``reduction`` is ``mean``, an empty ``params_json`` ``{}``."""
    if not message.loss:
        raise InvalidArgument("loss: required field missing")
    return LossRequest(
        loss=message.loss,
        params=decode_params(message.params_json),
        logits=_required_tensor(message, "logits", max_elements=max_elements),
        targets=_required_tensor(message, "targets", max_elements=max_elements),
        sample_weight=_optional_tensor(
            message, "sample_weight", max_elements=max_elements, copy=False
        ),
        reduction=message.reduction or "mean",
        return_grad=message.return_grad,
        return_hessian=message.return_hessian,
    )


def encode_compute_response(result: LossResult) -> pb.ComputeLossResponse:
    message = pb.ComputeLossResponse(
        loss=result.loss,
        reduction=result.reduction,
        value=encode_tensor(result.value),
        device=result.device,
    )
    if result.grad is not None:
        message.grad.CopyFrom(encode_tensor(result.grad))
    if result.hessian_diag is not None:
        message.hessian_diag.CopyFrom(encode_tensor(result.hessian_diag))
    return message


def decode_compute_response(message: pb.ComputeLossResponse) -> LossResult:
    return LossResult(
        loss=message.loss,
        reduction=message.reduction,
        value=decode_tensor(message.value, "value"),
        grad=_optional_tensor(message, "grad", max_elements=None),
        hessian_diag=_optional_tensor(message, "hessian_diag", max_elements=None),
        device=message.device,
    )


# --- StreamEvaluate --------------------------------------------------------------------------


def encode_evaluate_batch(
    request: EvaluateRequest, *, beta: float | None = None
) -> pb.EvaluateBatch:
    message = pb.EvaluateBatch(
        logits=encode_tensor(request.logits),
        targets=encode_tensor(request.targets),
        loss=request.loss or "",
        params_json=encode_params(request.params),
    )
    if request.thresholds is not None:
        message.thresholds.CopyFrom(encode_tensor(request.thresholds))
    if beta is not None:
        message.beta = beta
    return message


def decode_evaluate_batch(
    message: pb.EvaluateBatch, *, max_elements: int | None = None
) -> tuple[EvaluateRequest, float | None]:
    """One batch as the core's request, and its ``beta`` (``None`` when unset)."""
    request = EvaluateRequest(
        logits=_required_tensor(message, "logits", max_elements=max_elements),
        targets=_required_tensor(message, "targets", max_elements=max_elements),
        loss=message.loss or None,
        params=decode_params(message.params_json),
        thresholds=_optional_tensor(message, "thresholds", max_elements=max_elements, copy=False),
    )
    return request, (message.beta if message.HasField("beta") else None)


def encode_metrics(result: EvaluateResult) -> pb.EvaluateMetrics:
    message = pb.EvaluateMetrics(
        task=result.task,
        num_samples=result.num_samples,
        confusion=[pb.ConfusionRow(counts=row) for row in np.asarray(result.confusion).tolist()],
        per_class=[
            pb.ClassMetrics(
                label=c.label, support=c.support, precision=c.precision, recall=c.recall, f1=c.f1
            )
            for c in result.per_class
        ],
        macro_f1=result.macro_f1,
        micro_f1=result.micro_f1,
    )
    if result.loss is not None:
        message.loss = result.loss
    if result.f1_positive is not None:
        message.f1_positive = result.f1_positive
    return message


def decode_metrics(message: pb.EvaluateMetrics) -> EvaluateResult:
    return EvaluateResult(
        task=message.task,
        num_samples=message.num_samples,
        loss=message.loss if message.HasField("loss") else None,
        confusion=np.array([list(row.counts) for row in message.confusion], dtype=np.int64),
        per_class=[
            ClassMetrics(
                label=c.label, support=c.support, precision=c.precision, recall=c.recall, f1=c.f1
            )
            for c in message.per_class
        ],
        macro_f1=message.macro_f1,
        micro_f1=message.micro_f1,
        f1_positive=message.f1_positive if message.HasField("f1_positive") else None,
    )


def encode_thresholds(result: ThresholdsResult) -> pb.Thresholds:
    return pb.Thresholds(
        task=result.task,
        kind=result.kind,
        values=encode_tensor(result.values),
        before=encode_metrics(result.before),
        after=encode_metrics(result.after),
    )


def decode_thresholds(message: pb.Thresholds) -> ThresholdsResult:
    return ThresholdsResult(
        task=message.task,
        kind=message.kind,
        values=decode_tensor(message.values, "values"),
        before=decode_metrics(message.before),
        after=decode_metrics(message.after),
    )


def encode_update(
    metrics: EvaluateResult, *, batches: int, thresholds: ThresholdsResult | None = None
) -> pb.EvaluateUpdate:
    """A running update, or with ``thresholds`` the final one."""
    message = pb.EvaluateUpdate(
        batches=batches, metrics=encode_metrics(metrics), final=thresholds is not None
    )
    if thresholds is not None:
        message.thresholds.CopyFrom(encode_thresholds(thresholds))
    return message


# --- ComputeLossChunked ----------------------------------------------------------------------

DEFAULT_CHUNK_BYTES = 2 * 1024 * 1024
"""Tensor bytes a chunk carries unless asked otherwise (1 and 2 MiB measured fastest)."""
MIN_CHUNK_BYTES = 64 * 1024
"""The fewest tensor bytes a response chunk carries, whatever the client asks for."""

REQUEST_TENSORS = ("logits", "targets", "sample_weight")
RESPONSE_TENSORS = ("value", "grad", "hessian_diag")


class ComputeRequestAssembler:
    """A ``ComputeLossChunked`` request, message by message, back to the core's request."""

    def __init__(self, *, max_elements: int | None = None, max_bytes: int | None = None) -> None:
        self._parts: Assembler[pb.ComputeLossRequest, pb.ComputeLossRequestChunk] = Assembler(
            REQUEST_TENSORS,
            max_elements=max_elements,
            max_bytes=max_bytes,
            invalid=InvalidArgument,
            too_large=PayloadTooLarge,
        )
        self.response_chunk_bytes = 0
        """What the header asked for (0: the server's default)."""

    @property
    def declared_bytes(self) -> int:
        """The bytes the header's tensors declare (0 before the header)."""
        return self._parts.declared_bytes

    @property
    def loss(self) -> str | None:
        """The loss the header names, once it has come."""
        header = self._parts.header
        return None if header is None else header.loss

    def add(self, chunk: pb.ComputeLossRequestChunk) -> None:
        """Take the next message; bad input raises InvalidArgument (or PayloadTooLarge)."""
        if chunk.WhichOneof("part") == "header":
            if chunk.response_chunk_bytes < 0:
                raise InvalidArgument(
                    "response_chunk_bytes: expected a non-negative integer, "
                    f"got {chunk.response_chunk_bytes}"
                )
            if self._parts.header is None:
                self.response_chunk_bytes = chunk.response_chunk_bytes
        self._parts.add(chunk)

    def finish(self) -> LossRequest:
        """The whole request, as :func:`decode_compute_request` decodes a unary one."""
        header, tensors = self._parts.finish()
        if not header.loss:
            raise InvalidArgument("loss: required field missing")
        for field in ("logits", "targets"):
            if field not in tensors:
                raise InvalidArgument(f"{field}: required field missing")
        return LossRequest(
            loss=header.loss,
            params=decode_params(header.params_json),
            logits=tensors["logits"],
            targets=tensors["targets"],
            sample_weight=tensors.get("sample_weight"),
            reduction=header.reduction or "mean",
            return_grad=header.return_grad,
            return_hessian=header.return_hessian,
        )


class ComputeResponseAssembler:
    """A ``ComputeLossChunked`` response, message by message, back to the core's result."""

    def __init__(self) -> None:
        self._parts: Assembler[pb.ComputeLossResponse, pb.ComputeLossResponseChunk] = Assembler(
            RESPONSE_TENSORS, invalid=InvalidArgument
        )

    def add(self, chunk: pb.ComputeLossResponseChunk) -> None:
        self._parts.add(chunk)

    def finish(self) -> LossResult:
        header, tensors = self._parts.finish()
        if "value" not in tensors:
            raise InvalidArgument("value: required field missing")
        return LossResult(
            loss=header.loss,
            reduction=header.reduction,
            value=tensors["value"],
            grad=tensors.get("grad"),
            hessian_diag=tensors.get("hessian_diag"),
            device=header.device,
        )


def encode_compute_request_chunks(
    request: LossRequest,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    response_chunk_bytes: int = 0,
) -> Iterator[pb.ComputeLossRequestChunk]:
    """``request`` as ``ComputeLossChunked`` messages of at most ``chunk_bytes`` tensor bytes."""
    header = pb.ComputeLossRequest(
        loss=request.loss,
        params_json=encode_params(request.params),
        reduction=request.reduction,
        return_grad=request.return_grad,
        return_hessian=request.return_hessian,
    )
    tensors = {"logits": request.logits, "targets": request.targets}
    if request.sample_weight is not None:
        tensors["sample_weight"] = request.sample_weight

    def wrap(**part: Any) -> pb.ComputeLossRequestChunk:
        if "header" in part:
            part["response_chunk_bytes"] = response_chunk_bytes
        return pb.ComputeLossRequestChunk(**part)

    yield from split(header, tensors, chunk_bytes, wrap, invalid=InvalidArgument)


def decode_compute_request_chunks(
    chunks: Iterable[pb.ComputeLossRequestChunk],
    *,
    max_elements: int | None = None,
    max_bytes: int | None = None,
) -> LossRequest:
    """The request a whole ``ComputeLossChunked`` stream carries (inverts the encoder)."""
    assembler = ComputeRequestAssembler(max_elements=max_elements, max_bytes=max_bytes)
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.finish()


def encode_compute_response_chunks(
    result: LossResult, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[pb.ComputeLossResponseChunk]:
    """``result`` as ``ComputeLossChunked`` answers of at most ``chunk_bytes`` tensor bytes."""
    header = pb.ComputeLossResponse(
        loss=result.loss, reduction=result.reduction, device=result.device
    )
    tensors = {"value": result.value}
    if result.grad is not None:
        tensors["grad"] = result.grad
    if result.hessian_diag is not None:
        tensors["hessian_diag"] = result.hessian_diag
    yield from split(
        header, tensors, chunk_bytes, pb.ComputeLossResponseChunk, invalid=InvalidArgument
    )


def decode_compute_response_chunks(chunks: Iterable[pb.ComputeLossResponseChunk]) -> LossResult:
    """The result a whole ``ComputeLossChunked`` answer carries (inverts the encoder)."""
    assembler = ComputeResponseAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.finish()
