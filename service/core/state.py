"""The objects one server process holds: settings, the worker pool, the engines, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..models.engine import ModelEngine
from ..models.repository import ModelRepository
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
    models: ModelEngine = field(default_factory=lambda: ModelEngine(None))
    started: bool = False

    @classmethod
    def create(cls, settings: Settings | None = None) -> ServiceState:
        settings = settings or Settings()
        pool = WorkerPool(settings.devices or default_devices(), queue_depth=settings.queue_depth)
        root = settings.model_repository
        return cls(
            settings=settings,
            pool=pool,
            engine=LossEngine(pool, max_elements=settings.max_elements),
            models=ModelEngine(
                ModelRepository(root, threads=settings.model_threads) if root else None,
                admin_token=settings.admin_token,
                timeout=settings.request_timeout_s,
                max_elements=settings.max_elements,
            ),
        )

    async def start(self) -> None:
        await self.pool.start()
        await self.models.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        await self.models.stop()
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
