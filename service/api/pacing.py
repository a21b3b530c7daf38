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
    loop = asyncio.get_running_loop()
    expired = False

    def expire(task: asyncio.Task[object]) -> None:
        nonlocal expired
        expired = True
        task.cancel()

    while True:
        # a timer that cancels the task waiting for the item, not wait_for's task per item
        # (which cost ~6% of the CPU of a small request). The task is taken each time: the
        # steps of one gRPC response stream run in tasks of their own (grpc_threads).
        task = asyncio.current_task()
        assert task is not None, "paced() runs in a task"
        timer = loop.call_later(timeout, expire, task)
        try:
            item = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except asyncio.CancelledError:
            if not expired:
                raise
            if hasattr(task, "uncancel"):
                task.uncancel()
            raise late() from None
        finally:
            timer.cancel()
        yield item
