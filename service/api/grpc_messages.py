"""Client messages of the gRPC transport: parsed in our code, read within a timeout.

grpc answers INTERNAL when a request deserializer raises; :func:`parser` turns a message
that is not valid protobuf into an :class:`Undecodable` that the handler answers
INVALID_ARGUMENT. :func:`messages` reads a client stream, each message within a timeout.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

from ..core.errors import InvalidArgument
from .pacing import paced

__all__ = ["Undecodable", "decoded", "messages", "parser"]

M = TypeVar("M")


class Undecodable:
    """A client-stream message that did not parse, in place of the message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def parser(parse: Callable[[bytes], Any], method: str) -> Callable[[bytes], Any]:
    """``parse`` that turns a message that is not valid protobuf (bad wire format, a string
    that is not UTF-8) into :class:`Undecodable`, naming the field where it can, which the
    handler answers INVALID_ARGUMENT, instead of letting grpc answer INTERNAL."""
    name = method.rsplit("/", 1)[-1]
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


def _not_utf8(descriptor: Descriptor, data: memoryview, prefix: str = "") -> str | None:
    """The path of the first string field in ``data`` (a ``descriptor`` message on the wire)
    whose bytes are not UTF-8; None when there is none or the wire format is broken."""
    i = 0
    try:
        while i < len(data):
            key, i = _varint(data, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(data, i)
            elif wire in (1, 5):
                i += 8 if wire == 1 else 4
            elif wire == 2:
                length, i = _varint(data, i)
                chunk, i = data[i : i + length], i + length
                field = descriptor.fields_by_number.get(number)
                if field is None:
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
            else:
                return None
    except ValueError:
        return None
    return None


def decoded(message: M | Undecodable) -> M:
    """``message``, or INVALID_ARGUMENT when it did not parse."""
    if isinstance(message, Undecodable):
        raise InvalidArgument(message.message)
    return message


async def messages(
    requests: AsyncIterator[Any], timeout: float, *, tolerant: bool = False
) -> AsyncIterator[Any]:
    """The messages of a client stream, each within ``timeout`` seconds of the last (a
    stalled client is refused, it does not hold its lane forever). A message that did not
    parse fails the stream, or with ``tolerant`` comes through as :class:`Undecodable`."""

    def late() -> InvalidArgument:
        return InvalidArgument(
            f"stream: expected the next message within {timeout:g} s, got nothing "
            "(LOSSSERVE_BODY_TIMEOUT_S)"
        )

    async for message in paced(requests, timeout, late):
        yield message if tolerant else decoded(message)
