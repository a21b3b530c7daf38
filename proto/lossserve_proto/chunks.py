"""The framing of ``ComputeLossChunked``, shared by the server and the Python client.

One request or response travels as a header message (the unary message, whose tensors carry
their shape, dtype and any prefix of their bytes) followed by ``TensorChunk`` messages that
append bytes to the header's tensors. :func:`split` turns a header and its tensors into such
messages; an :class:`Assembler` puts them back together, message by message, checking each
piece as it comes, so a bad stream fails at its first bad message. Errors are raised with
the constructors the caller passes (the server passes its ``InvalidArgument`` and
``PayloadTooLarge``; a client keeps ``ValueError``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from .lossserve.v1 import loss_service_pb2 as pb
from .tensors import DTYPES

__all__ = ["MAX_DIMS", "Assembler", "answer_bytes", "split"]

MAX_DIMS = 8
"""The most dimensions a tensor may have (the server's limit too)."""

ErrorFactory = Callable[[str], Exception]


class _Header(Protocol):
    def HasField(self, field_name: Any, /) -> bool: ...  # noqa: N802 - protobuf's name


class _Chunk(Protocol):
    def WhichOneof(self, oneof_group: Any, /) -> Any: ...  # noqa: N802 - protobuf's name

    @property
    def data(self) -> pb.TensorChunk: ...


H = TypeVar("H", bound=_Header)
C = TypeVar("C", bound=_Chunk)


def answer_bytes(
    shape: tuple[int, ...], *, return_grad: bool, return_hessian: bool, reduction: str
) -> int:
    """The tensor bytes of a ComputeLoss answer for logits of ``shape``: a float32 gradient
    and Hessian diagonal of that shape when asked for, a float32 value per sample for
    ``none`` (else one)."""
    per_tensor = math.prod(shape) * 4
    size = (int(return_grad or return_hessian) + int(return_hessian)) * per_tensor
    return size + (shape[0] * 4 if reduction == "none" and shape else 4)


def split(
    header: H,
    tensors: dict[str, np.ndarray],
    chunk_bytes: int,
    wrap: Callable[..., Any],
    *,
    invalid: ErrorFactory = ValueError,
) -> Iterator[Any]:
    """``header`` (its tensor fields set) and the tensors' bytes, as messages made by ``wrap``
    (``wrap(header=...)`` first, then ``wrap()`` with its ``data`` chunk filled in).

    A tensor whose bytes fit in what is left of the first message's ``chunk_bytes`` rides in
    the header; every other tensor follows in ``TensorChunk`` pieces of ``chunk_bytes``.
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes: expected a positive integer, got {chunk_bytes}")
    budget = chunk_bytes
    rest: list[tuple[str, np.ndarray]] = []
    for field, array in tensors.items():
        name = str(array.dtype.name)
        if name not in DTYPES:
            raise invalid(
                f"{field}: expected a dtype among {', '.join(DTYPES)}, got {array.dtype.name}"
            )
        flat = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).reshape(-1)
        raw = flat.view(np.uint8)
        tensor = getattr(header, field)
        tensor.shape.extend(array.shape)
        tensor.dtype = name
        if raw.nbytes <= budget:
            tensor.data = raw.tobytes()
            budget -= raw.nbytes
        else:
            rest.append((field, raw))
    yield wrap(header=header)
    for field, raw in rest:
        for start in range(0, raw.nbytes, chunk_bytes):
            message = wrap()  # its chunk set in place: a TensorChunk passed in is copied
            chunk = message.data
            chunk.field, chunk.offset = field, start
            chunk.data = raw[start : start + chunk_bytes].tobytes()
            yield message


class Assembler(Generic[H, C]):
    """A header and the ``TensorChunk`` messages after it, back to the header's tensors.

    Each tensor's buffer is allocated when the header declares it (after the element and
    byte limits are checked) and filled in place; a piece that would overflow its tensor,
    names a tensor the header lacks, or comes before the header fails at once.
    """

    def __init__(
        self,
        fields: tuple[str, ...],
        *,
        max_elements: int | None = None,
        max_bytes: int | None = None,
        invalid: ErrorFactory = ValueError,
        too_large: ErrorFactory = ValueError,
    ) -> None:
        self._fields = fields
        self._max_elements = max_elements
        self._max_bytes = max_bytes
        self._invalid = invalid
        self._too_large = too_large
        self._header: H | None = None
        self._buffers: dict[str, np.ndarray] = {}
        self._filled: dict[str, int] = {}
        self._layout: dict[str, tuple[tuple[int, ...], str, np.dtype[Any]]] = {}

    @property
    def header(self) -> H | None:
        """The header, once it has come."""
        return self._header

    def add(self, chunk: C) -> None:
        part = chunk.WhichOneof("part")
        if part == "header":
            self._start(getattr(chunk, "header"))  # noqa: B009 - H, not a fixed type
        elif part == "data":
            self._append(chunk.data)
        else:
            raise self._invalid("part: expected a header or data, got neither")

    def _start(self, header: H) -> None:
        if self._header is not None:
            raise self._invalid("header: expected one header, as the first message, got two")
        declared: dict[str, tuple[tuple[int, ...], str, np.dtype[Any], int]] = {}
        for field in self._fields:
            if not header.HasField(field):
                continue
            tensor = getattr(header, field)
            shape = tuple(int(d) for d in tensor.shape)
            if any(d < 0 for d in shape):
                raise self._invalid(
                    f"{field}.shape: expected a list of non-negative integers, got {list(shape)}"
                )
            if len(shape) > MAX_DIMS:
                raise self._invalid(
                    f"{field}: expected at most {MAX_DIMS} dimensions, got {len(shape)}"
                )
            largest = max((d for d in shape), default=0)
            if self._max_elements is not None and largest > self._max_elements:
                # a 0 elsewhere would let the product pass: [2**63 - 1, 0]
                raise self._too_large(
                    f"{field}: expected at most {self._max_elements} elements, got a "
                    f"dimension of {largest}"
                )
            size = math.prod(shape)
            if self._max_elements is not None and size > self._max_elements:
                raise self._too_large(
                    f"{field}: expected at most {self._max_elements} elements, got {size}"
                )
            if tensor.dtype not in DTYPES:
                raise self._invalid(
                    f"{field}.dtype: expected one of {', '.join(DTYPES)}, got {tensor.dtype!r}"
                )
            kind = DTYPES[tensor.dtype]
            declared[field] = (shape, tensor.dtype, kind, size * kind.itemsize)
        total = sum(nbytes for *_, nbytes in declared.values())
        if self._max_bytes is not None and total > self._max_bytes:
            raise self._too_large(
                f"header: expected tensors of at most {self._max_bytes} bytes in all, "
                f"got shapes of {total} bytes"
            )
        for field, (shape, name, kind, nbytes) in declared.items():
            self._layout[field] = (shape, name, kind)
            self._buffers[field] = np.empty(nbytes, dtype=np.uint8)
            self._filled[field] = 0
            self._write(field, getattr(header, field).data)
        self._header = header

    def _append(self, chunk: pb.TensorChunk) -> None:
        if self._header is None:
            raise self._invalid("header: expected the header as the first message, got data")
        if chunk.field not in self._buffers:
            if chunk.field in self._fields:
                raise self._invalid(f"{chunk.field}: data for a tensor the header does not set")
            raise self._invalid(
                f"data.field: expected one of {', '.join(self._fields)}, got {chunk.field!r}"
            )
        if chunk.HasField("offset") and chunk.offset != self._filled[chunk.field]:
            raise self._invalid(
                f"data.offset: expected {self._filled[chunk.field]} for the next piece of "
                f"{chunk.field}, got {chunk.offset} (a piece out of order, repeated or lost)"
            )
        self._write(chunk.field, chunk.data)

    @property
    def declared_bytes(self) -> int:
        """The bytes the header's tensors declare (0 before the header)."""
        return sum(buffer.nbytes for buffer in self._buffers.values())

    def _write(self, field: str, data: bytes) -> None:
        buffer, start = self._buffers[field], self._filled[field]
        end = start + len(data)
        if end > buffer.nbytes:
            shape, name, _ = self._layout[field]
            raise self._invalid(
                f"{field}: expected {buffer.nbytes} bytes for shape {list(shape)} of {name}, "
                f"got at least {end}"
            )
        buffer[start:end] = np.frombuffer(data, dtype=np.uint8)
        self._filled[field] = end

    def finish(self) -> tuple[H, dict[str, np.ndarray]]:
        """The header and its complete tensors, once the stream has ended."""
        if self._header is None:
            raise self._invalid("header: expected a header as the first message, got none")
        tensors = {}
        for field, buffer in self._buffers.items():
            shape, name, kind = self._layout[field]
            if self._filled[field] != buffer.nbytes:
                raise self._invalid(
                    f"{field}: expected {buffer.nbytes} bytes for shape {list(shape)} of "
                    f"{name}, got {self._filled[field]}"
                )
            tensors[field] = buffer.view(kind).reshape(shape)
        return self._header, tensors
