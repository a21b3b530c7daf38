"""The Open Inference Protocol's tensor converters: round trips for every datatype, and errors."""

from __future__ import annotations

import numpy as np
import pytest

from lossserve.core.errors import InvalidArgument, PayloadTooLarge
from lossserve.models.oip import (
    BYTES,
    DATATYPES,
    config_type,
    datatype_of,
    decode_json,
    decode_raw,
    decode_shape,
    encode_json,
    encode_raw,
    from_elements,
)

NUMERIC = [name for name in DATATYPES if name != BYTES]


def sample(datatype: str) -> np.ndarray:
    if datatype == BYTES:
        array = np.empty(6, dtype=object)
        array[:] = [b"", b"a", "é".encode(), b"\x00\xff", b"longer value", b"z"]
        return array.reshape(2, 3)
    dtype = DATATYPES[datatype]
    if dtype.kind == "b":
        return np.array([[True, False, True], [False, False, True]])
    values = np.array([[0, 1, 2], [3, 4, 5]])
    return (values * (-1 if dtype.kind == "i" else 1)).astype(dtype)


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_raw_round_trip(datatype: str) -> None:
    array = sample(datatype)
    decoded = decode_raw(encode_raw(array), datatype, array.shape, "t")
    assert decoded.shape == array.shape
    assert datatype_of(decoded) == datatype
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_json_round_trip(datatype: str) -> None:
    array = sample(datatype)
    if datatype == BYTES:  # JSON carries text: BYTES elements as UTF-8 strings
        array[array == b"\x00\xff"] = b"ok"
    decoded = decode_json(encode_json(array), datatype, array.shape, "t")
    assert datatype_of(decoded) == datatype
    np.testing.assert_array_equal(decoded, array)


def test_json_data_may_be_nested_and_little_endian_is_kept() -> None:
    decoded = decode_json([[1.5, 2], [3, 4]], "FP32", (2, 2), "t")
    np.testing.assert_array_equal(decoded, np.array([[1.5, 2], [3, 4]], dtype=np.float32))
    assert encode_raw(np.array([1], dtype=">i4")) == b"\x01\x00\x00\x00"


def test_datatype_names_and_config_types() -> None:
    assert datatype_of(np.zeros(1, np.float32)) == "FP32"
    assert datatype_of(np.zeros(1, object)) == "BYTES"
    assert config_type("FP32") == "TYPE_FP32"
    assert config_type("BYTES") == "TYPE_STRING"
    with pytest.raises(InvalidArgument, match="complex128 has no Open Inference Protocol"):
        datatype_of(np.zeros(1, np.complex128))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: decode_raw(b"\0" * 7, "FP32", (2,), "input 'x'"),
         r"^input 'x': expected 8 bytes for shape \[2\] of FP32, got 7$"),
        (lambda: decode_raw(b"", "FP99", (1,), "input 'x'"),
         r"^input 'x': expected a datatype among BOOL, .*BYTES, got 'FP99'$"),
        (lambda: decode_raw(b"\x05\0\0\0ab", BYTES, (1,), "input 'x'"),
         r"^input 'x': BYTES element 0 declares 5 bytes, only 2 are left$"),
        (lambda: decode_raw(b"\x01\0\0\0ab", BYTES, (1,), "input 'x'"),
         r"^input 'x': expected 5 bytes for 1 BYTES elements, got 6$"),
        (lambda: decode_raw(b"\x01\0", BYTES, (1,), "input 'x'"),
         r"^input 'x': expected 1 length-prefixed BYTES elements, the data ends in element 0$"),
        (lambda: decode_json([1, 2, 3], "FP32", (2, 2), "input 'x'"),
         r"^input 'x'.data: expected 4 elements for shape \[2, 2\], got 3$"),
        (lambda: decode_json([1.5], "INT64", (1,), "input 'x'"),
         r"^input 'x'.data: expected integers for INT64, got fractions$"),
        (lambda: decode_json([300], "UINT8", (1,), "input 'x'"),
         r"^input 'x'.data: expected integers within \[0, 255\] for UINT8$"),
        (lambda: decode_json([1e39], "FP32", (1,), "input 'x'"),
         r"^input 'x'.data: expected numbers within the range of FP32"),
        (lambda: decode_json([{"a": 1}], "FP32", (1,), "input 'x'"),
         r"^input 'x'.data: expected numbers, booleans or strings, got dict$"),
        (lambda: decode_json([1], "BOOL", (1,), "input 'x'"),
         r"^input 'x'.data: expected true/false for BOOL, got numbers$"),
        (lambda: from_elements(["a"], "FP32", (1,), "input 'x'"),
         r"^input 'x': expected numbers for FP32, got 'U' values$"),
        (lambda: from_elements([1], BYTES, (1,), "input 'x'"),
         r"^input 'x': expected strings for BYTES, got int$"),
        (lambda: decode_shape([2, -1], "input 'x' shape"),
         r"^input 'x' shape: expected a shape of non-negative integers, got \[2, -1\]$"),
        (lambda: decode_shape("2", "input 'x' shape"),
         r"^input 'x' shape: expected a shape of non-negative integers, got '2'$"),
    ],
)  # fmt: skip
def test_bad_tensors_raise_clear_messages(call: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call()  # type: ignore[operator]


def test_shape_beyond_the_element_limit_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge, match=r"expected at most 10 elements, got 12"):
        decode_shape([3, 4], "input 'x' shape", max_elements=10)
