"""Tensors on lossserve's wire, numpy in and out: the gRPC ``Tensor`` message and REST's JSON.

A tensor is C-order little-endian bytes with a shape and a dtype name from :data:`DTYPES`.
Over gRPC it is the ``lossserve.v1.Tensor`` message ``{shape, dtype, data}``; in a REST body
it is nested lists, ``{"shape", "dtype", "b64"}``, or — in the binary encoding —
``{"shape", "dtype", "binary_data_size"}`` whose raw bytes follow the JSON header.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .lossserve.v1 import loss_service_pb2 as pb

__all__ = [
    "DTYPES",
    "as_array",
    "binary_entry",
    "bytes_view",
    "decode_tensor",
    "encode_b64",
    "encode_tensor",
    "from_json",
    "to_bytes",
]

DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "bool",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "float16",
        "float32",
        "float64",
    )
}
"""The dtypes the service accepts, by their wire name."""


def as_array(value: ArrayLike, field: str) -> np.ndarray:
    """``value`` as an array of a wire dtype (Python lists of floats become float32)."""
    array = np.asarray(value)
    if array.dtype == np.float64 and not isinstance(value, np.ndarray):
        array = array.astype(np.float32)  # a list of Python floats: float32, as the server's
    if array.dtype.name not in DTYPES:
        raise TypeError(
            f"{field}: expected a dtype among {', '.join(DTYPES)}, got {array.dtype.name}"
        )
    return array


def to_bytes(array: np.ndarray) -> bytes:
    """The C-order little-endian bytes of ``array``."""
    return bytes(bytes_view(array))


def bytes_view(array: np.ndarray) -> memoryview:
    """:func:`to_bytes`'s bytes as a view of ``array``'s memory where that already is C-order
    little-endian (no copy: a writer sends it as it lies), else of a copy that is."""
    ordered = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return ordered.reshape(-1).view(np.uint8).data


def _from_bytes(data: bytes | memoryview, shape: list[int], dtype: str) -> np.ndarray:
    return np.frombuffer(data, dtype=DTYPES[dtype]).reshape(shape)


def encode_tensor(array: np.ndarray) -> pb.Tensor:
    """``array`` as the gRPC ``Tensor`` message."""
    return pb.Tensor(shape=array.shape, dtype=array.dtype.name, data=to_bytes(array))


def decode_tensor(message: pb.Tensor) -> np.ndarray:
    """The array a gRPC ``Tensor`` message holds (a read-only view of its bytes)."""
    return _from_bytes(message.data, list(message.shape), message.dtype)


def encode_b64(array: np.ndarray) -> dict[str, Any]:
    """``array`` as REST's ``{"shape", "dtype", "b64"}``."""
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "b64": base64.b64encode(to_bytes(array)).decode("ascii"),
    }


def binary_entry(array: np.ndarray) -> dict[str, Any]:
    """``array``'s entry in a binary request's JSON header (its bytes follow the header)."""
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "binary_data_size": array.size * array.dtype.itemsize,
    }


def from_json(value: Any, binary: memoryview | None = None) -> np.ndarray:
    """A tensor of a REST answer: nested lists, a b64 object, or a binary entry whose bytes
    are the next ``binary_data_size`` bytes of ``binary`` (consumed by the caller; the
    array is a read-only view of them, not a copy)."""
    if isinstance(value, dict):
        if "b64" in value:
            return _from_bytes(base64.b64decode(value["b64"]), value["shape"], value["dtype"])
        if binary is None:
            raise ValueError(f"a binary tensor entry without the bytes after the header: {value}")
        return _from_bytes(binary, value["shape"], value["dtype"])  # a view, as b64's is
    return np.asarray(value, dtype=np.float32)
