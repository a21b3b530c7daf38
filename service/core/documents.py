"""JSON documents on the wire: one parser for every transport that carries a JSON object."""

from __future__ import annotations

from typing import Any

import orjson

from .errors import InvalidArgument

__all__ = ["ascii_count", "load_json_object"]


def load_json_object(data: bytes | bytearray | memoryview | str, field: str) -> dict[str, Any]:
    """Parse ``data`` as a JSON object; anything else is ``InvalidArgument`` naming ``field``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"{field}: expected JSON, got a parse error: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}: expected a JSON object, got {type(value).__name__}")
    return value


def ascii_count(text: str) -> int | None:
    """``text`` as a non-negative integer when it is ASCII digits only (``"42"``), else None.

    ``str.isdigit`` is true for ``"²"`` and ``"١"`` too, which ``int`` then refuses or reads
    as another number: headers, path segments and folder names are parsed with this instead.
    """
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text)
