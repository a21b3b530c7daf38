"""Work that grows with a request, run off the event loop once it is large."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["OFF_LOOP_BYTES", "by_size"]

T = TypeVar("T")

OFF_LOOP_BYTES = 1 << 20
"""Bodies, messages and answers above this size are decoded and encoded in a thread."""


async def by_size(size: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``: inline for ``size`` up to :data:`OFF_LOOP_BYTES`, in a
    thread (the loop serves other requests meanwhile) above it."""
    if size <= OFF_LOOP_BYTES:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)
