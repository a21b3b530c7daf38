"""``lossserve.v1.LossService`` calls for code that holds the core's domain types.

Applications use :class:`lossserve_client.LossClient` (``clients/python``), which takes
numpy arrays and speaks REST or gRPC; this module is for the tests and benchmarks that
build the server's own :class:`~lossserve.core.types.LossRequest`, blocking or on
``grpc.aio``. Both use the same framing (:mod:`lossserve_proto.chunks`).

:func:`compute_loss` (a blocking stub) and :func:`compute_loss_async` (a ``grpc.aio`` stub)
send a :class:`~lossserve.core.types.LossRequest` and return a
:class:`~lossserve.core.types.LossResult`. A small batch goes as one ``ComputeLoss`` message;
one whose request or answer tensors exceed ``chunk_bytes`` goes over ``ComputeLossChunked``
in messages of at most ``chunk_bytes`` tensor bytes each way. Single messages of tens of
MiB are slow: for a 32 MiB batch and its gradient, one ``ComputeLoss`` took 2.7 times as
long as ``ComputeLossChunked`` in 2 MiB chunks (``bench/loss_service.py`` measures both).
Chunks stay under gRPC's default 4 MiB message limit, so the default channel options do;
:data:`CLIENT_OPTIONS` raises the limits to the server's default, for clients that send
large unary ``ComputeLoss`` messages themselves::

    import grpc
    import numpy as np
    from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc
    from lossserve.client import CLIENT_OPTIONS, compute_loss
    from lossserve.core.types import LossRequest

    with grpc.insecure_channel("127.0.0.1:50051", options=CLIENT_OPTIONS) as channel:
        stub = pb_grpc.LossServiceStub(channel)
        logits = np.random.default_rng(0).normal(size=(65536, 128)).astype(np.float32)
        targets = np.zeros(65536, dtype=np.int64)
        request = LossRequest(loss="focal", logits=logits, targets=targets, return_grad=True)
        result = compute_loss(stub, request)

Errors arrive as ``grpc.RpcError`` with the server's status and message, on either path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lossserve_proto.chunks import answer_bytes

from .api import grpc_convert as convert
from .core.types import LossRequest, LossResult

__all__ = [
    "CLIENT_OPTIONS",
    "DEFAULT_CHUNK_BYTES",
    "compute_loss",
    "compute_loss_async",
    "compute_loss_chunked",
    "needs_chunks",
]

DEFAULT_CHUNK_BYTES = convert.DEFAULT_CHUNK_BYTES
"""2 MiB: at 32 MiB end to end, 1 and 2 MiB chunks tied; 4 and 8 MiB took 10% and 30% longer."""

CLIENT_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", 512 * 1024 * 1024),
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
]
"""Channel options matching the server's default message limit (``grpc_max_message_bytes``).

No HTTP/2 option (frame size, lookahead, BDP probing, window sizes, TCP read chunk sizes)
made one large message faster in the measurements, so there are none here.
"""


def needs_chunks(request: LossRequest, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> bool:
    """Whether ``request`` goes chunked: its tensors, or its answer's, exceed ``chunk_bytes``.

    The answer's size is estimated from the logits: a float32 gradient and Hessian diagonal
    of the logits' shape when asked for, and a float32 value per sample for ``none``.
    """
    sent = request.logits.nbytes + request.targets.nbytes
    if request.sample_weight is not None:
        sent += request.sample_weight.nbytes
    answer = answer_bytes(
        request.logits.shape,
        return_grad=request.return_grad,
        return_hessian=request.return_hessian,
        reduction=request.reduction,
    )
    return max(sent, answer) > chunk_bytes


def _chunks(request: LossRequest, chunk_bytes: int) -> Iterator[Any]:
    return convert.encode_compute_request_chunks(
        request, chunk_bytes=chunk_bytes, response_chunk_bytes=chunk_bytes
    )


def compute_loss(
    stub: Any,
    request: LossRequest,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    timeout: float | None = None,
    metadata: Any = None,
) -> LossResult:
    """``request`` over a blocking ``LossServiceStub``: unary when small, chunked when large."""
    if not needs_chunks(request, chunk_bytes):
        response = stub.ComputeLoss(
            convert.encode_compute_request(request), timeout=timeout, metadata=metadata
        )
        return convert.decode_compute_response(response)
    return compute_loss_chunked(
        stub, request, chunk_bytes=chunk_bytes, timeout=timeout, metadata=metadata
    )


def compute_loss_chunked(
    stub: Any,
    request: LossRequest,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    timeout: float | None = None,
    metadata: Any = None,
) -> LossResult:
    """``request`` over ``ComputeLossChunked`` whatever its size (a blocking stub)."""
    answers = stub.ComputeLossChunked(
        _chunks(request, chunk_bytes), timeout=timeout, metadata=metadata
    )
    return convert.decode_compute_response_chunks(answers)


async def compute_loss_async(
    stub: Any,
    request: LossRequest,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    timeout: float | None = None,
    metadata: Any = None,
) -> LossResult:
    """``request`` over a ``grpc.aio`` ``LossServiceStub``: as :func:`compute_loss`."""
    if not needs_chunks(request, chunk_bytes):
        response = await stub.ComputeLoss(
            convert.encode_compute_request(request), timeout=timeout, metadata=metadata
        )
        return convert.decode_compute_response(response)
    call = stub.ComputeLossChunked(
        _chunks(request, chunk_bytes), timeout=timeout, metadata=metadata
    )
    assembler = convert.ComputeResponseAssembler()
    async for chunk in call:
        assembler.add(chunk)
    return assembler.finish()
