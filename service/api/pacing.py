"""Reading a client's stream at the client's pace, within a limit: REST bodies, gRPC streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

__all__ = ["paced"]

T = TypeVar("T")


async def paced(
    items: AsyncIterator[T], timeout: float, late: Callable[[], Exception]
) -> AsyncIterator[T]:
    """The items of ``items``, each within ``timeout`` seconds of the one before; when one
    is late, ``late()`` is raised (a stalled client does not hold its request forever)."""
    iterator = items.__aiter__()
    while True:
        try:
            item = await asyncio.wait_for(iterator.__anext__(), timeout)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise late() from None
        yield item
