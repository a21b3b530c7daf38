"""An in-process app over a started ServiceState, driven through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from lossserve.api.rest import create_app
from lossserve.core.state import ServiceState
from lossserve.settings import Settings

T = TypeVar("T")


def with_client(
    scenario: Callable[[httpx.AsyncClient, ServiceState], Awaitable[T]], **settings: object
) -> T:
    """Run ``scenario`` against a fresh app (one cpu worker unless told otherwise)."""

    async def main() -> T:
        state = ServiceState.create(Settings(**{"devices": ["cpu"], **settings}))  # type: ignore[arg-type]
        await state.start()
        try:
            transport = httpx.ASGITransport(app=create_app(state))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await scenario(client, state)
        finally:
            await state.stop()

    return asyncio.run(main())
