"""Messages of the gRPC transport: parsed in our code, read within a timeout.

grpc answers INTERNAL when a request deserializer raises; :func:`parser` turns a message
that is not valid protobuf into an :class:`Undecodable` that the handler answers
INVALID_ARGUMENT. :func:`messages` reads a client stream, each message within a timeout.

Tensor bytes skip protobuf: the Python protobuf runtime copies a bytes field while it holds
the interpreter (about 30 ms to parse a 51 MB message and 30 ms more to read its bytes field,
each one C call that no other thread can interrupt, the event loop's included).
:func:`split_bytes` takes a repeated bytes field out of a message on the wire as views,
leaving the rest (small) to protobuf, and :func:`bytes_field` writes one on the wire.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

from ..core.errors import InvalidArgument, PayloadTooLarge
from ..core.offload import by_size
from .pacing import paced

__all__ = [
    "ANSWER_OVERHEAD",
    "Undecodable",
    "bytes_field",
    "check_answer",
    "decoded",
    "field_header",
    "messages",
    "parser",
    "split_bytes",
]

M = TypeVar("M")


class Undecodable:
    """A client-stream message that did not parse, in place of the message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def parser(
    parse: Callable[[bytes], Any], method: str, descriptor: Descriptor | None = None
) -> Callable[[bytes], Any]:
    """``parse`` that turns a message that is not valid protobuf (bad wire format, a string
    that is not UTF-8) into :class:`Undecodable`, naming the field where it can, which the
    handler answers INVALID_ARGUMENT, instead of letting grpc answer INTERNAL.
    ``descriptor``: the message's (default: that of the class whose ``FromString`` is
    ``parse``), to find a string that is not UTF-8."""
    name = method.rsplit("/", 1)[-1]
    if descriptor is None:
        descriptor = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)

    def parse_or_mark(raw: bytes) -> Any:
        try:
            return parse(raw)
        except DecodeError as exc:
            field = None if descriptor is None else _not_utf8(descriptor, memoryview(raw))
            if field is not None:
                return Undecodable(f"{field}: expected a UTF-8 string, got other bytes")
            return Undecodable(f"request: expected a valid {name} message, got: {exc}")

    return parse_or_mark


ANSWER_OVERHEAD = 4096
"""What an answer needs beyond its tensor bytes (a value, names, tags), bounded."""


def check_answer(size: int, limit: int, instead: str, *, overhead: int = 0) -> None:
    """RESOURCE_EXHAUSTED for an answer of ``size`` bytes (and ``overhead`` more, for an
    estimate) that one message of ``limit`` bytes cannot carry, saying what to do
    ``instead`` (grpc would fail the call with an error that names nothing)."""
    if size + overhead > limit:
        raise PayloadTooLarge(
            f"answer: {size} bytes, above the gRPC message limit of {limit} bytes "
            f"(LOSSSERVE_GRPC_MAX_MESSAGE_BYTES); {instead}"
        )


def split_bytes(
    raw: bytes, number: int, *, max_fields: int = 4096
) -> tuple[bytes, list[memoryview]] | None:
    """The top-level fields of the message ``raw`` other than ``number`` (re-encoded as one
    message, for protobuf to parse), and the values of the bytes field ``number`` as views
    of ``raw``, in order. None when ``raw`` is not valid wire format or has more than
    ``max_fields`` top-level fields (a walk in Python would cost more than protobuf's parse):
    the caller parses it whole, and protobuf says what is wrong."""
    data = memoryview(raw)
    rest: list[memoryview] = []
    values: list[memoryview] = []
    try:
        for count, (field, start, end, value) in enumerate(_fields(data), start=1):
            if count > max_fields or end > len(data):
                return None
            if field == number and value is not None:
                values.append(value)
            else:
                rest.append(data[start:end])
    except ValueError:
        return None
    return b"".join(rest), values


def bytes_field(number: int, values: Iterable[bytes | memoryview]) -> list[bytes | memoryview]:
    """The bytes field ``number`` with ``values`` on the wire, as pieces to join (appended
    to a serialized message, it sets the field: protobuf accepts fields in any order)."""
    pieces: list[bytes | memoryview] = []
    for value in values:
        pieces.append(field_header(number, memoryview(value).nbytes))
        pieces.append(value)
    return pieces


def field_header(number: int, size: int) -> bytes:
    """The tag and length of the length-delimited field ``number`` holding ``size`` bytes."""
    return _encode_varint(number << 3 | 2) + _encode_varint(size)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint(data: memoryview, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while i < len(data):
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7
    raise ValueError("truncated varint")


def _fields(data: memoryview) -> Iterator[tuple[int, int, int, memoryview | None]]:
    """The top-level fields of the message ``data`` on the wire, in order: its number, where
    it starts and ends (an end past the data: truncated), and a length-delimited field's
    value (None for the others). ``ValueError`` at a truncated varint or a wire type other
    than varint, fixed64, length-delimited or fixed32 (groups are left to protobuf)."""
    i = 0
    while i < len(data):
        start = i
        key, i = _varint(data, i)
        wire = key & 7
        value = None
        if wire == 0:
            _, i = _varint(data, i)
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i : i + length], i + length
        else:
            raise ValueError(f"wire type {wire}")
        yield key >> 3, start, i, value


def _not_utf8(descriptor: Descriptor, data: memoryview, prefix: str = "") -> str | None:
    """The path of the first string field in ``data`` (a ``descriptor`` message on the wire)
    whose bytes are not UTF-8; None when there is none or the wire format is broken."""
    try:
        for number, _, _, chunk in _fields(data):
            field = descriptor.fields_by_number.get(number)
            if chunk is None or field is None:
                continue
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    codecs.decode(chunk, "utf-8")
                except UnicodeDecodeError:
                    return prefix + field.name
            elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type:
                found = _not_utf8(field.message_type, chunk, f"{prefix}{field.name}.")
                if found is not None:
                    return found
    except ValueError:
        return None
    return None


def decoded(message: M | Undecodable) -> M:
    """``message``, or INVALID_ARGUMENT when it did not parse."""
    if isinstance(message, Undecodable):
        raise InvalidArgument(message.message)
    return message


async def messages(
    requests: AsyncIterator[bytes],
    timeout: float,
    parse: Callable[[bytes], Any],
    *,
    tolerant: bool = False,
) -> AsyncIterator[Any]:
    """The messages of a client stream, each within ``timeout`` seconds of the last (a
    stalled client is refused, it does not hold its lane forever), each parsed from its
    bytes with ``parse`` (a :func:`parser`; in a thread when large). A message that did not
    parse fails the stream, or with ``tolerant`` comes through as :class:`Undecodable`."""

    def late() -> InvalidArgument:
        return InvalidArgument(
            f"stream: expected the next message within {timeout:g} s, got nothing "
            "(LOSSSERVE_BODY_TIMEOUT_S)"
        )

    async for raw in paced(requests, timeout, late):
        message = await by_size(len(raw), parse, raw)
        del raw
        yield message if tolerant else decoded(message)
