"""The objects one server process holds: settings, the worker pool, the engines, metrics."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..models.admin import RepositoryAdmin
from ..models.engine import ModelEngine
from ..models.repository import ModelRepository
from ..observability import Metrics
from ..settings import Settings
from ..workers import WorkerPool, default_devices
from . import evaluator
from .dataplane import DataPlane
from .engine import LossEngine
from .shm import SharedMemoryRegistry
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
    regions: SharedMemoryRegistry = field(
        default_factory=lambda: SharedMemoryRegistry(None, enabled=False)
    )
    """The system shared-memory regions clients registered (off unless allowed)."""
    started: bool = False
    draining: bool = False
    """Set by :meth:`drain`: requests are still served, but the server reports not ready."""
    _drain_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)
    plane: DataPlane = field(init=False, repr=False)
    """The one entry of every transport (admission, cost, deadlines)."""
    admin: RepositoryAdmin = field(init=False, repr=False)
    """The model repository API, beside inference."""

    def __post_init__(self) -> None:
        self.plane = DataPlane(self)
        self.admin = RepositoryAdmin(self.models, self.settings.admin_token)

    @classmethod
    def create(cls, settings: Settings | None = None) -> ServiceState:
        settings = settings or Settings()
        pool = WorkerPool(
            settings.devices or default_devices(),
            queue_depth=settings.queue_depth,
            workers_per_device=settings.workers_per_device,
            threads=settings.worker_threads,
            cpus=settings.worker_cpus,
            preload=("lossserve.core.engine", "lossserve.core.evaluator"),
        )
        root = settings.model_repository
        return cls(
            settings=settings,
            pool=pool,
            engine=LossEngine(pool, max_elements=settings.max_elements),
            models=ModelEngine(
                ModelRepository(root, threads=settings.model_threads) if root else None,
                timeout=settings.request_timeout_s,
                max_elements=settings.max_elements,
                poll_s=settings.model_poll_s if settings.model_control == "poll" else None,
            ),
            regions=SharedMemoryRegistry(
                settings.shared_memory_registry, enabled=settings.allow_shared_memory
            ),
        )

    async def start(self) -> None:
        await self.pool.start()
        await self.models.start()
        self.started = True

    def on_drain(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` when the server starts draining (a transport's own readiness signal,
        such as gRPC health turning NOT_SERVING)."""
        self._drain_hooks.append(hook)

    async def drain(self) -> None:
        """Report not ready from now on (REST ``/v2/health/ready`` 503, gRPC ``ServerReady``
        false, and whatever the :meth:`on_drain` hooks do), so that load balancers stop
        routing here; requests are still served. Draining twice does nothing."""
        if self.draining:
            return
        self.draining = True
        for hook in self._drain_hooks:
            await hook()

    async def stop(self, timeout: float | None = None) -> bool:
        """Close the models' batchers and the worker pool, letting their queued and running
        work finish for at most ``timeout`` seconds (``None``: as long as it takes).

        Returns True when all of it finished; False when work was still running at the
        timeout: its callers got ``Unavailable`` (the worker processes running it are
        killed; a batcher's ONNX Runtime thread cannot be, so the process should not wait).
        """
        self.started = False
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        finished = True
        closing = asyncio.ensure_future(self.models.stop())
        try:  # shielded: past the timeout the batchers go on closing in the background
            await asyncio.wait_for(asyncio.shield(closing), timeout)
        except TimeoutError:
            self.models.abort("the server is shutting down; retry on another replica")
            finished = False
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        await self.pool.stop(timeout=remaining)
        self.regions.close()
        return finished and not any(s.running or s.queued for s in self.pool.stats())

    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        """Metrics run in a worker process: admitted (429 when full), with a deadline, and
        killed past it."""
        return await self._off_loop(evaluator.evaluate, request)

    async def fit_thresholds(self, request: ThresholdsRequest) -> ThresholdsResult:
        return await self._off_loop(evaluator.fit_thresholds, request)

    async def fit_stream(self, fit: evaluator.StreamFit) -> ThresholdsResult:
        return await self._off_loop(evaluator.fit_stream, fit)

    async def _off_loop(self, fn: Callable[[A], R], request: A) -> R:
        """``fn(request)`` on the worker pool; ``fn`` must be a module-level function."""
        job = functools.partial(_ignoring_device, fn, request)
        return await self.pool.run(job, timeout=self.settings.request_timeout_s)

    def ready(self) -> bool:
        """Started, not draining, at least one worker alive, and (``strict_readiness``)
        no model of the repository failed to load."""
        return (
            self.started
            and not self.draining
            and any(s.alive for s in self.pool.stats())
            and not (self.settings.strict_readiness and self.models.failed())
        )


def _ignoring_device(fn: Callable[[A], R], request: A, device: str) -> R:
    """A pool job (called with the worker's device) for a function that runs on the CPU."""
    return fn(request)
