"""The objects one server process holds: settings, the worker pool, the engines, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..observability import Metrics
from ..settings import Settings
from ..workers import WorkerPool, default_devices
from . import evaluator
from .engine import LossEngine
from .errors import DeadlineExceeded
from .types import EvaluateRequest, EvaluateResult, ThresholdsRequest, ThresholdsResult

__all__ = ["ServiceState"]

A = TypeVar("A")
R = TypeVar("R")


@dataclass
class ServiceState:
    settings: Settings
    pool: WorkerPool
    engine: LossEngine
    metrics: Metrics = field(default_factory=Metrics)
    started: bool = False

    @classmethod
    def create(cls, settings: Settings | None = None) -> ServiceState:
        settings = settings or Settings()
        pool = WorkerPool(settings.devices or default_devices(), queue_depth=settings.queue_depth)
        return cls(
            settings=settings,
            pool=pool,
            engine=LossEngine(pool, max_elements=settings.max_elements),
        )

    async def start(self) -> None:
        await self.pool.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        await self.pool.stop()

    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        """Metrics run off the event loop (numpy and torch release the GIL)."""
        return await self._off_loop(evaluator.evaluate, request)

    async def fit_thresholds(self, request: ThresholdsRequest) -> ThresholdsResult:
        return await self._off_loop(evaluator.fit_thresholds, request)

    async def _off_loop(self, fn: Callable[[A], R], request: A) -> R:
        timeout = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, request), timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"request: expected to finish within {timeout:g} s, took longer"
            ) from None

    def ready(self) -> bool:
        return self.started and any(s.alive for s in self.pool.stats())
