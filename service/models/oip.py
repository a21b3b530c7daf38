"""Tensors of the Open Inference Protocol (v2), as pure converters shared by both transports.

An OIP tensor has a ``datatype`` (``FP32``, ``INT64``, ``BYTES`` ...), a ``shape`` and its
data: JSON ``data`` (nested or flat lists in row-major order, strings for ``BYTES``), raw
little-endian bytes (gRPC ``raw_input_contents`` / ``raw_output_contents``, the REST binary
tensor extension), or gRPC's typed ``InferTensorContents``. A ``BYTES`` element in raw form is
a 4-byte little-endian length followed by that many bytes. The domain type is a C-contiguous
``numpy.ndarray`` (``BYTES``: an object array of ``bytes``); every decode inverts its encode
(``tests/service/models/test_oip.py``). Bad input raises
:class:`~lossserve.core.errors.InvalidArgument` naming the tensor and what was expected, with
the same words whichever transport it came by.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from lossserve_proto.tensors import bytes_view

from ..core.costs import check_shape
from ..core.errors import InvalidArgument

__all__ = [
    "BYTES",
    "DATATYPES",
    "check_datatype",
    "config_type",
    "datatype_of",
    "decode_json",
    "decode_raw",
    "decode_shape",
    "encode_json",
    "encode_raw",
    "from_elements",
    "raw_view",
]

BYTES = "BYTES"

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    BYTES: np.dtype(object),
}
"""The protocol's datatypes and the numpy dtype each decodes to (BF16 is not served)."""

_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items() if name != BYTES}
_LENGTH = struct.Struct("<I")


def check_datatype(datatype: object, field: str) -> str:
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise InvalidArgument(
            f"{field}: expected a datatype among {', '.join(DATATYPES)}, got {datatype!r}"
        )
    return datatype


def datatype_of(array: np.ndarray) -> str:
    """The protocol's name for ``array``'s dtype (an object array is ``BYTES``)."""
    if array.dtype == object:
        return BYTES
    name = _BY_DTYPE.get(array.dtype) or _BY_DTYPE.get(array.dtype.newbyteorder("<"))
    if name is None:
        raise InvalidArgument(f"dtype {array.dtype} has no Open Inference Protocol datatype")
    return name


def config_type(datatype: str) -> str:
    """The model configuration's name of a datatype: ``FP32`` is ``TYPE_FP32``, ``BYTES``
    is ``TYPE_STRING`` (Triton's ``inference.DataType``)."""
    return "TYPE_STRING" if datatype == BYTES else f"TYPE_{datatype}"


def decode_shape(shape: object, field: str, max_elements: int | None = None) -> tuple[int, ...]:
    """A request's shape: non-negative integers, at most ``max_elements`` elements in all."""
    if isinstance(shape, tuple):
        shape = list(shape)
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidArgument(f"{field}: expected a shape of non-negative integers, got {shape!r}")
    dims = tuple(int(d) for d in shape)
    check_shape(dims, field, max_elements, empty=True)
    return dims


def decode_raw(
    data: bytes | memoryview, datatype: str, shape: tuple[int, ...], field: str
) -> np.ndarray:
    """Raw little-endian bytes as a tensor; the byte count must match shape and datatype."""
    datatype = check_datatype(datatype, field)
    count = math.prod(shape)
    if datatype == BYTES:
        return _decode_bytes(memoryview(data), count, field).reshape(shape)
    dtype = DATATYPES[datatype]
    expected = count * dtype.itemsize
    if len(data) != expected:
        raise InvalidArgument(
            f"{field}: expected {expected} bytes for shape {list(shape)} of {datatype}, "
            f"got {len(data)}"
        )
    # One copy into a writable array of its own (numpy's copy lets other threads run; a
    # bytearray copy would hold the interpreter: 30 ms for 51 MB, the event loop's included)
    array: np.ndarray = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    return array


def _decode_bytes(data: memoryview, count: int, field: str) -> np.ndarray:
    items: list[bytes] = []
    offset = 0
    for index in range(count):
        if offset + 4 > len(data):
            raise InvalidArgument(
                f"{field}: expected {count} length-prefixed BYTES elements, "
                f"the data ends in element {index}"
            )
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += 4
        if offset + length > len(data):
            raise InvalidArgument(
                f"{field}: BYTES element {index} declares {length} bytes, "
                f"only {len(data) - offset} are left"
            )
        items.append(bytes(data[offset : offset + length]))
        offset += length
    if offset != len(data):
        raise InvalidArgument(
            f"{field}: expected {offset} bytes for {count} BYTES elements, got {len(data)}"
        )
    array = np.empty(count, dtype=object)
    array[:] = items
    return array


def encode_raw(array: np.ndarray) -> bytes:
    """The tensor's raw bytes: little-endian C order, or length-prefixed ``BYTES`` elements."""
    view = raw_view(array)
    return view if isinstance(view, bytes) else view.tobytes()


def raw_view(array: np.ndarray) -> bytes | memoryview:
    """:func:`encode_raw`'s bytes, as a view of ``array``'s memory where that already is
    little-endian C order (no copy: a writer joins it with the rest of a message)."""
    if array.dtype == object:
        chunks = []
        for item in array.reshape(-1):
            value = item.encode() if isinstance(item, str) else bytes(item)
            chunks.append(_LENGTH.pack(len(value)) + value)
        return b"".join(chunks)
    datatype_of(array)  # refuses a dtype the protocol cannot name
    return bytes_view(array)


def from_elements(values: Any, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    """A tensor from a flat sequence of elements (JSON ``data``, gRPC typed contents)."""
    datatype = check_datatype(datatype, field)
    count = math.prod(shape)
    if len(values) != count:
        raise InvalidArgument(
            f"{field}: expected {count} elements for shape {list(shape)}, got {len(values)}"
        )
    if datatype == BYTES:
        items = []
        for value in values:
            if isinstance(value, str):
                items.append(value.encode())
            elif isinstance(value, bytes):
                items.append(value)
            else:
                raise InvalidArgument(
                    f"{field}: expected strings for BYTES, got {type(value).__name__}"
                )
        array = np.empty(count, dtype=object)
        array[:] = items
        return array.reshape(shape)
    dtype = DATATYPES[datatype]
    try:
        raw = np.asarray(values)
    except ValueError:
        raise InvalidArgument(f"{field}: expected numbers for {datatype}") from None
    if raw.size and raw.dtype.kind not in "biuf":
        raise InvalidArgument(
            f"{field}: expected numbers for {datatype}, got {raw.dtype.kind!r} values"
        )
    if raw.size and dtype.kind in "iu" and raw.dtype.kind == "f":
        raise InvalidArgument(f"{field}: expected integers for {datatype}, got fractions")
    if raw.size and dtype.kind == "b" and raw.dtype.kind != "b":
        raise InvalidArgument(f"{field}: expected true/false for BOOL, got numbers")
    if raw.size and dtype.kind != "b" and raw.dtype.kind == "b":
        raise InvalidArgument(f"{field}: expected numbers for {datatype}, got true/false")
    if raw.size and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise InvalidArgument(
                f"{field}: expected integers within [{info.min}, {info.max}] for {datatype}"
            )
    if raw.size and dtype.kind == "f" and raw.dtype.kind == "f":
        big = np.abs(raw) > np.finfo(dtype).max
        if big.any():
            raise InvalidArgument(
                f"{field}: expected numbers within the range of {datatype}, "
                f"got {raw[np.argmax(big)]!r}"
            )
    result: np.ndarray = np.ascontiguousarray(raw, dtype=dtype).reshape(shape)
    return result


def decode_json(data: object, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    """JSON ``data``: a flat or nested list in row-major order (a lone scalar for shape [])."""
    if not isinstance(data, list):
        data = [data]
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    booleans = datatype == "BOOL"  # JSON true/false: only BOOL takes them (no 1.0 for true)
    while stack:  # flatten without recursion: nesting depth is the client's choice
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            if isinstance(item, dict) or item is None:
                raise InvalidArgument(
                    f"{field}.data: expected numbers, booleans or strings, "
                    f"got {type(item).__name__}"
                )
            if isinstance(item, bool) and not booleans:
                raise InvalidArgument(
                    f"{field}.data: expected numbers for {datatype}, got {item!r}"
                )
            flat.append(item)
        else:
            stack.pop()
    return from_elements(flat, datatype, shape, f"{field}.data")


def encode_json(array: np.ndarray) -> list[Any]:
    """The flat row-major list of a tensor (``BYTES`` elements as UTF-8 strings)."""
    if array.dtype == object:
        return [
            item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
            for item in array.reshape(-1)
        ]
    values: list[Any] = array.reshape(-1).tolist()
    return values
