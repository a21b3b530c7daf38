"""A client that disconnects cancels its queued work (real uvicorn, real sockets)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import uvicorn

from lossserve.api.rest import create_app
from lossserve.core.state import ServiceState
from lossserve.settings import Settings
from tests.service.workers.jobs import Blocker


def test_a_disconnected_client_never_gets_its_queued_job_run(tmp_path: Path) -> None:
    async def main() -> None:
        state = ServiceState.create(Settings(devices=["cpu"], queue_depth=4))
        await state.start()
        server = uvicorn.Server(
            uvicorn.Config(create_app(state), host="127.0.0.1", port=0, log_config=None)
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        release = tmp_path / "release"
        job = Blocker(True, ran=str(tmp_path / "ran"), release=str(release))
        blocker = asyncio.create_task(state.pool.run(job))
        while not (tmp_path / "ran").exists():  # the worker process holds the blocker
            await asyncio.sleep(0.01)
        try:
            body = {"loss": "focal", "logits": [[1.0, 2.0]], "targets": [1]}
            async with httpx.AsyncClient(timeout=0.3) as client:
                # the client gives up and closes its connection
                with contextlib.suppress(httpx.TimeoutException):
                    await client.post(f"http://127.0.0.1:{port}/loss", json=body)
            for _ in range(200):  # the server notices the disconnect and drops the queued job
                if state.pool.stats()[0].queued == 0:
                    break
                await asyncio.sleep(0.01)
            assert state.pool.stats()[0].queued == 0
            release.touch()
            assert await blocker is True
            stats = state.pool.stats()[0]
            assert stats.completed == 1  # the blocker only: the abandoned request never ran
        finally:
            release.touch()
            server.should_exit = True
            await serving
            await state.stop()

    asyncio.run(main())
