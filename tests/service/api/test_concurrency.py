"""200 concurrent requests against a pool with a small queue: a right answer or a 429 each."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import torch

import losses
from lossserve.core.state import ServiceState

from .conftest import with_client


def test_200_concurrent_requests_get_a_result_or_429_and_the_server_stays_healthy() -> None:
    rng = np.random.default_rng(3)
    batches = [
        (rng.normal(size=(256, 8)).astype(np.float32), rng.integers(0, 8, size=256))
        for _ in range(200)
    ]
    expected = [
        losses.compute("focal", torch.from_numpy(x), torch.from_numpy(y)).item() for x, y in batches
    ]

    async def scenario(client: httpx.AsyncClient, state: ServiceState) -> None:
        async def one(x: np.ndarray, y: np.ndarray) -> httpx.Response:
            body = {"loss": "focal", "logits": x.tolist(), "targets": y.tolist()}
            return await client.post("/loss", json=body)

        responses = await asyncio.gather(*(one(x, y) for x, y in batches))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}, statuses
        assert statuses.count(429) > 0  # the queue of 2 per worker was really exceeded
        assert statuses.count(200) > 0
        for response, value in zip(responses, expected, strict=True):
            if response.status_code == 200:
                assert abs(response.json()["value"] - value) <= 1e-5 * max(1.0, abs(value))
            else:
                assert response.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}
        after = await one(*batches[0])
        assert after.status_code == 200
        assert all(s.alive and s.queued == 0 for s in state.pool.stats())

    with_client(scenario, queue_depth=2, devices=["cpu", "cpu"])
