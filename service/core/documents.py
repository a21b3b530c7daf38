"""JSON documents on the wire: one parser for every transport that carries a JSON object."""

from __future__ import annotations

from typing import Any

import orjson

from .errors import InvalidArgument

__all__ = ["load_json_object"]


def load_json_object(data: bytes | bytearray | memoryview | str, field: str) -> dict[str, Any]:
    """Parse ``data`` as a JSON object; anything else is ``InvalidArgument`` naming ``field``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"{field}: expected JSON, got a parse error: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}: expected a JSON object, got {type(value).__name__}")
    return value
