"""Tensors on the wire, as pure converters: JSON lists, base64 objects, and raw binary.

A tensor in a JSON body is either nested lists, or ``{"shape": [...], "dtype": "float32",
"b64": "<little-endian bytes>"}``, or — in the binary encoding — ``{"shape": [...],
"dtype": "float32", "binary_data_size": n}`` whose ``n`` raw bytes follow the JSON header
(its length in ``Inference-Header-Content-Length``), in the order the tensors appear in the
header, as in the Open Inference Protocol's binary tensor extension. The domain type is a
C-contiguous little-endian ``numpy.ndarray``; every function here is pure and every decode
inverts its encode for every dtype in :data:`DTYPES`. The dtype table and the byte layout
(:func:`to_bytes`, a binary tensor's header entry) are :mod:`lossserve_proto.tensors`', which
the Python client encodes with; the server adds its checks and errors.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import numpy as np
import pybase64

from lossserve_proto.tensors import DTYPES as WIRE_DTYPES
from lossserve_proto.tensors import binary_entry, bytes_view, to_bytes

from .costs import check_shape
from .errors import InvalidArgument

__all__ = [
    "DTYPES",
    "BinaryReader",
    "Encoding",
    "bytes_view",
    "decode_tensor",
    "encode_b64",
    "encode_binary_header",
    "encode_lists",
    "from_bytes",
    "to_bytes",
]

DTYPES = WIRE_DTYPES
"""The wire dtypes, by the name a request uses (one table with the client's)."""


class Encoding(str, Enum):
    """How a request sent its tensors; the response answers the same way."""

    LISTS = "lists"
    B64 = "b64"
    BINARY = "binary"


def _dtype(name: object, field: str) -> np.dtype[Any]:
    if not isinstance(name, str) or name not in DTYPES:
        allowed = ", ".join(DTYPES)
        raise InvalidArgument(f"{field}.dtype: expected one of {allowed}, got {name!r}")
    return DTYPES[name]


def _shape(value: object, field: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise InvalidArgument(
            f"{field}.shape: expected a list of non-negative integers, got {value!r}"
        )
    return tuple(value)


def from_bytes(
    data: bytes | memoryview, shape: tuple[int, ...], dtype: str, field: str, *, copy: bool = True
) -> np.ndarray:
    """Read little-endian ``data`` as a tensor of ``shape``; the byte count must match.
    ``copy``: an array of its own; else a read-only view of ``data``."""
    kind = _dtype(dtype, field)
    expected = math.prod(shape) * kind.itemsize
    if len(data) != expected:
        raise InvalidArgument(
            f"{field}: expected {expected} bytes for shape {list(shape)} of {dtype}, "
            f"got {len(data)}"
        )
    view = np.frombuffer(data, dtype=kind).reshape(shape)
    # A copy is writable (torch.from_numpy warns on a read-only array) and numpy's copy lets
    # other threads run; a request's tensors need none: their work runs in a worker
    # process, which gets them through shared memory (still flagged read-only: see
    # lossserve.core.engine._tensor).
    array: np.ndarray = view.copy() if copy else view
    return array


def _dtype_name(array: np.ndarray) -> str:
    name = str(array.dtype.name)
    if name not in DTYPES:
        raise InvalidArgument(f"tensor dtype {name} has no wire name")
    return name


def decode_tensor(
    value: object,
    field: str,
    *,
    binary: BinaryReader | None = None,
    max_elements: int | None = None,
) -> tuple[np.ndarray, Encoding]:
    """Decode one tensor field of a request's JSON body (bytes: read-only views); return it
    with the encoding it came in."""
    if isinstance(value, dict):
        keys = set(value)
        shape = _shape(value.get("shape"), field)
        _check_size(shape, field, max_elements)
        dtype = value.get("dtype")
        if "b64" in keys and keys <= {"shape", "dtype", "b64"}:
            raw = value["b64"]
            if not isinstance(raw, str):
                raise InvalidArgument(f"{field}.b64: expected a base64 string, got {raw!r}")
            try:
                data = pybase64.b64decode(raw, validate=True)
            except ValueError:
                raise InvalidArgument(f"{field}.b64: expected valid base64") from None
            return from_bytes(data, shape, str(dtype), field, copy=False), Encoding.B64
        if "binary_data_size" in keys and keys <= {"shape", "dtype", "binary_data_size"}:
            if binary is None:
                raise InvalidArgument(
                    f"{field}.binary_data_size: binary tensors need the "
                    "Inference-Header-Content-Length header"
                )
            size = value["binary_data_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidArgument(
                    f"{field}.binary_data_size: expected a non-negative integer, got {size!r}"
                )
            taken = binary.take(size, field)
            return from_bytes(taken, shape, str(dtype), field, copy=False), Encoding.BINARY
        raise InvalidArgument(
            f"{field}: expected nested lists, {{shape, dtype, b64}} or "
            f"{{shape, dtype, binary_data_size}}, got an object with keys {sorted(keys)}"
        )
    if isinstance(value, list):
        try:
            array = np.asarray(value)
        except ValueError:
            raise InvalidArgument(f"{field}: expected rectangular nested lists") from None
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise InvalidArgument(f"{field}: expected rectangular nested lists of numbers")
        _check_size(array.shape, field, max_elements)
        if array.dtype.kind == "f":
            # JSON numbers become float32; one beyond its range would silently turn to Inf.
            big = np.abs(array) > np.finfo(np.float32).max
            if big.any():
                index = [int(i) for i in np.argwhere(big)[0]]
                raise InvalidArgument(
                    f"{field}: expected numbers within float32 range (|x| <= 3.4028235e+38), "
                    f"got {array[tuple(index)].item()!r} at index {index}"
                )
            array = array.astype(np.float32)
        return array, Encoding.LISTS
    raise InvalidArgument(f"{field}: expected a tensor, got {type(value).__name__}")


def _check_size(shape: tuple[int, ...], field: str, max_elements: int | None) -> None:
    check_shape(shape, field, max_elements, empty=True)


def encode_lists(array: np.ndarray) -> Any:
    """Nested lists (a 0-d tensor as a number)."""
    return array.tolist()


def encode_b64(array: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(array.shape),
        "dtype": _dtype_name(array),
        "b64": pybase64.b64encode(to_bytes(array)).decode("ascii"),
    }


def encode_binary_header(array: np.ndarray) -> dict[str, Any]:
    """The header entry of a binary tensor; its bytes are :func:`to_bytes`, appended in order."""
    _dtype_name(array)
    return binary_entry(array)


class BinaryReader:
    """Hands out consecutive slices of the bytes after a JSON header."""

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def take(self, size: int, field: str) -> memoryview:
        end = self._offset + size
        if end > len(self._data):
            raise InvalidArgument(
                f"{field}.binary_data_size: expected at most {len(self._data) - self._offset} "
                f"bytes left after the header, got {size}"
            )
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def finish(self) -> None:
        """Raise when bytes are left over: the sizes did not add up to the body."""
        left = len(self._data) - self._offset
        if left:
            raise InvalidArgument(
                f"body: expected the binary tensors to end the body, got {left} bytes more"
            )
