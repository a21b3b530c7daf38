"""The device worker pool: one worker per device, bounded queues, deadlines, fault handling.

Each worker owns one device and a dedicated thread, runs one job at a time, and keeps at
most ``queue_depth`` jobs waiting. The queues live on the event loop, so admission,
routing and cancellation are single-threaded and race-free; only the job itself runs in
the worker's thread (torch releases the GIL in its kernels, so the loop stays free).

What a caller of :meth:`WorkerPool.run` can get:

- the job's result, or the job's own exception, unchanged (the worker survives);
- :class:`~service.core.errors.ResourceExhausted` at once when every queue is full
  (nothing is queued), or when the batch does not fit in memory (after splitting it,
  when the caller gave a ``split`` function);
- :class:`~service.core.errors.DeadlineExceeded` when ``timeout`` passes first; a job
  still waiting when its caller gives up (deadline or cancellation) is never run;
- :class:`~service.core.errors.Unavailable` (retryable) when the worker died while
  running the job: the worker is replaced on the same device, and the jobs queued
  behind it run on the replacement.

Faults are injected by the job itself: raising :class:`WorkerCrash` stands for a lost
CUDA context or a dead worker process, raising :class:`MemoryError` for running out of
device memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future as ConcurrentFuture
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

import torch

from service.core.errors import DeadlineExceeded, ResourceExhausted, Unavailable

__all__ = ["Job", "Split", "WorkerCrash", "WorkerPool", "WorkerStats", "default_devices"]

T = TypeVar("T")

Job = Callable[[str], T]
"""A unit of tensor work: called with the worker's device string, returns the result."""

Split = Callable[
    [Callable[[str], T]], tuple[Callable[[str], T], Callable[[str], T], Callable[[T, T], T]]
]
"""Turns a job that ran out of memory into two half-jobs and the function merging their results."""

_OOM_ERRORS: tuple[type[BaseException], ...] = (torch.cuda.OutOfMemoryError, MemoryError)

_log = logging.getLogger(__name__)


def default_devices() -> list[str]:
    """Every ``cuda:N`` torch sees, else ``["cpu"]``."""
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        if count > 0:
            return [f"cuda:{index}" for index in range(count)]
    return ["cpu"]


class WorkerCrash(BaseException):
    """The worker died under the job: a lost CUDA context, a segfaulted process.

    A job raises it to inject that fault. It derives from :class:`BaseException`, as every
    other fault that kills a worker does (any non-:class:`Exception` escaping a job is
    treated the same way), so that no ``except Exception`` on the way swallows it.
    """


@dataclass(frozen=True)
class WorkerStats:
    """One worker's state, for ``/metrics``."""

    device: str
    queued: int
    """Jobs waiting (not counting the running one)."""
    running: int
    """1 while a job runs, else 0."""
    alive: bool
    completed: int
    """Jobs that returned a result."""
    failed: int
    """Jobs that raised (their own error, out of memory, or a crash)."""
    replaced: int
    """How many times this worker's thread died and was replaced."""


class _Abandoned(Exception):  # noqa: N818 - private marker, never reaches a caller
    """Raised between the halves of a split job whose caller has gone."""


@dataclass(eq=False)
class _Item:
    job: Callable[[str], Any]
    split: Split[Any] | None
    future: asyncio.Future[Any]
    abandoned: threading.Event


@dataclass(frozen=True)
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    crashed: bool = False


# -- runs in the worker's thread ---------------------------------------------------------


def _execute(item: _Item, device: str, max_split_depth: int) -> _Outcome:
    try:
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        value = _call(item.job, item.split, device, 0, max_split_depth, item.abandoned)
    except Exception as exc:
        return _Outcome(error=exc)
    except BaseException as exc:  # WorkerCrash, SystemExit, ...: the worker is gone
        return _Outcome(error=exc, crashed=True)
    return _Outcome(value=value)


def _call(
    job: Callable[[str], Any],
    split: Split[Any] | None,
    device: str,
    depth: int,
    max_depth: int,
    abandoned: threading.Event,
) -> Any:
    try:
        return job(device)
    except _OOM_ERRORS as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    # Out of the except block, so the traceback (and the tensors its frames hold) is freed
    # before the halves run.
    _release_cached_memory(device)
    if split is None:
        raise ResourceExhausted(
            f"the batch did not fit in memory on {device} ({reason}); send a smaller batch"
        )
    if depth >= max_depth:
        raise ResourceExhausted(
            f"the batch did not fit in memory on {device} even after splitting it into "
            f"{2**depth} parts ({reason}); send a smaller batch"
        )
    first, second, merge = split(job)
    results = []
    for half in (first, second):
        if abandoned.is_set():
            raise _Abandoned
        results.append(_call(half, split, device, depth + 1, max_depth, abandoned))
    return merge(results[0], results[1])


def _release_cached_memory(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        with contextlib.suppress(Exception), torch.cuda.device(device):
            torch.cuda.empty_cache()


# -- runs on the event loop --------------------------------------------------------------


def _settle(
    future: asyncio.Future[Any], *, value: Any = None, error: Exception | None = None
) -> None:
    if future.done():  # the caller gave up: nobody reads it
        return
    if error is None:
        future.set_result(value)
        return
    if isinstance(error, StopIteration):  # asyncio futures refuse it
        wrapped = RuntimeError(f"the job raised StopIteration: {error}")
        wrapped.__cause__ = error
        error = wrapped
    future.set_exception(error)


class _Worker:
    """One device: a bounded queue on the loop and a single dedicated thread."""

    def __init__(self, index: int, device: str, queue_depth: int, max_split_depth: int) -> None:
        self.index = index
        self.device = device
        self.queue_depth = queue_depth
        self.max_split_depth = max_split_depth
        self.queue: deque[_Item] = deque()
        self.running: _Item | None = None
        self.completed = 0
        self.failed = 0
        self.replaced = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []

    @property
    def alive(self) -> bool:
        return self._executor is not None

    @property
    def load(self) -> int:
        return len(self.queue) + (self.running is not None)

    def has_room(self) -> bool:
        return self.alive and len(self.queue) < self.queue_depth

    def stats(self) -> WorkerStats:
        return WorkerStats(
            device=self.device,
            queued=len(self.queue),
            running=int(self.running is not None),
            alive=self.alive,
            completed=self.completed,
            failed=self.failed,
            replaced=self.replaced,
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._executor = self._new_executor()

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"lossserve-worker-{self.index}-{self.device}"
        )

    def enqueue(self, item: _Item) -> None:
        self.queue.append(item)
        self._pump()

    def abandon(self, item: _Item) -> None:
        """The caller gave up: a waiting job is dropped; a running one stops at its next half."""
        item.abandoned.set()
        if item in self.queue:
            self.queue.remove(item)
            self._notify_if_idle()

    def _pump(self) -> None:
        """Start the next job that still has a caller, unless one is running."""
        if self.running is not None or self._executor is None:
            return
        while self.queue:
            item = self.queue.popleft()
            if item.future.done():  # its caller gave up before it started
                continue
            try:
                done = self._executor.submit(_execute, item, self.device, self.max_split_depth)
            except RuntimeError as exc:  # e.g. the OS refused a new thread: fail fast, not hang
                _log.error("worker %d on %s cannot start a job", self.index, self.device)
                self.failed += 1
                _settle(
                    item.future,
                    error=Unavailable(
                        f"the worker on {self.device} could not start the request ({exc}); "
                        "the request can be retried"
                    ),
                )
                continue
            self.running = item
            done.add_done_callback(partial(self._finished_threadsafe, item))
            return
        self._notify_if_idle()

    def _finished_threadsafe(self, item: _Item, done: ConcurrentFuture[_Outcome]) -> None:
        loop = self._loop  # set in start(), before any job
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(self._finished, item, done)

    def _finished(self, item: _Item, done: ConcurrentFuture[_Outcome]) -> None:
        if self.running is item:
            self.running = None
        if done.cancelled():  # the pool shut down before the thread picked it up
            _settle(item.future, error=Unavailable("the worker pool shut down; retry the request"))
        else:
            outcome = done.result()
            if isinstance(outcome.error, _Abandoned):
                pass
            elif outcome.crashed:
                self.failed += 1
                self._replace(outcome.error)
                _settle(
                    item.future,
                    error=Unavailable(
                        f"the worker on {self.device} failed while running the request "
                        f"({type(outcome.error).__name__}); the request can be retried"
                    ),
                )
            elif outcome.error is not None:
                self.failed += 1
                _settle(item.future, error=cast(Exception, outcome.error))
            else:
                self.completed += 1
                _settle(item.future, value=outcome.value)
        self._pump()

    def _replace(self, cause: BaseException | None) -> None:
        old = self._executor
        if old is None:  # the pool stopped meanwhile: nothing to replace
            return
        _log.error(
            "worker %d on %s died (%s); replacing it",
            self.index,
            self.device,
            type(cause).__name__,
            exc_info=cause,
        )
        self._executor = self._new_executor()
        self.replaced += 1
        old.shutdown(wait=False)

    def _notify_if_idle(self) -> None:
        if self.load:
            return
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_idle(self) -> None:
        if not self.load or self._loop is None:
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._idle_waiters.append(waiter)
        await waiter

    def close(self, *, hard: bool) -> None:
        """Stop the thread; ``hard``: fail whatever is still queued or running."""
        executor, self._executor = self._executor, None
        if hard:
            message = "the worker pool shut down before the request finished; retry it"
            for item in self.queue:
                item.abandoned.set()
                _settle(item.future, error=Unavailable(message))
            self.queue.clear()
            if self.running is not None:
                self.running.abandoned.set()
                _settle(self.running.future, error=Unavailable(message))
        if executor is not None:
            # A drained thread is idle and exits at once; a busy one (hard stop) is not
            # waited for: Python threads cannot be interrupted.
            executor.shutdown(wait=not hard and self.running is None, cancel_futures=True)
        self._notify_if_idle()


class WorkerPool:
    """Runs jobs on one worker per device, routing each to the least-loaded live worker.

    Args:
        devices: one worker per entry, in order (ties in load go to the earlier one);
            the same device may appear more than once.
        queue_depth: jobs each worker keeps waiting besides the one it runs (>= 1).
        max_split_depth: how many times a job that runs out of memory may be halved
            (>= 0); past it the job fails with ``ResourceExhausted``.

    Use ``await pool.start()`` and ``await pool.stop()``, or ``async with pool:`` (which
    drains on a normal exit and stops at once on an exception), on the event loop that
    calls :meth:`run`.
    """

    def __init__(
        self, devices: Sequence[str], *, queue_depth: int, max_split_depth: int = 8
    ) -> None:
        if isinstance(devices, str) or not devices:
            raise ValueError(f"expected a non-empty sequence of device strings, got {devices!r}")
        if queue_depth < 1:
            raise ValueError(f"expected queue_depth >= 1, got {queue_depth}")
        if max_split_depth < 0:
            raise ValueError(f"expected max_split_depth >= 0, got {max_split_depth}")
        self._devices = tuple(devices)
        self._queue_depth = queue_depth
        self._workers = [
            _Worker(index, device, queue_depth, max_split_depth)
            for index, device in enumerate(self._devices)
        ]
        self._state: Literal["new", "running", "stopping", "stopped"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def devices(self) -> tuple[str, ...]:
        return self._devices

    @property
    def queue_depth(self) -> int:
        return self._queue_depth

    async def start(self) -> None:
        """Start one thread per device; starting a running pool does nothing."""
        if self._state == "running":
            return
        if self._state != "new":
            raise RuntimeError("a stopped WorkerPool cannot be started again; make a new one")
        self._loop = asyncio.get_running_loop()
        for worker in self._workers:
            worker.start(self._loop)
        self._state = "running"

    async def stop(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Refuse new jobs, then stop every worker.

        With ``drain`` (the default) the queued and running jobs finish first, for at most
        ``timeout`` seconds; without it, or once the timeout passes, their callers get
        ``Unavailable`` at once. Stopping a stopped pool does nothing.
        """
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopping"
        if drain:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(worker.wait_idle() for worker in self._workers)), timeout
                )
            except asyncio.TimeoutError:
                drain = False
        for worker in self._workers:
            worker.close(hard=not drain)
        self._state = "stopped"

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Leaving on an error or a cancellation must not wait on jobs that may never end.
        await self.stop(drain=exc_type is None)

    def stats(self) -> list[WorkerStats]:
        """Each worker's state, in device order."""
        return [worker.stats() for worker in self._workers]

    async def run(
        self,
        job: Job[T],
        *,
        timeout: float | None = None,
        split: Split[T] | None = None,
    ) -> T:
        """Run ``job(device)`` on the least-loaded live worker and return its result.

        Args:
            job: the work; called once in the worker's thread with its device string.
            timeout: seconds, queueing included; ``None`` waits as long as it takes.
            split: on out-of-memory, ``split(job)`` gives two half-jobs and the function
                merging their results; the halves run on the same worker, one after the
                other, and split again if they too run out of memory.

        Raises:
            ResourceExhausted: every queue is full (nothing was queued), or the batch did
                not fit in memory.
            DeadlineExceeded: ``timeout`` passed; a job that had not started never runs.
            Unavailable: the worker died under the job (it has been replaced; retrying is
                safe), or the pool is stopping.
            Exception: whatever the job raised, unchanged.
        """
        if self._state == "new":
            raise RuntimeError("the WorkerPool has not been started; await pool.start() first")
        if self._state != "running":
            raise Unavailable("the worker pool is shutting down; retry the request")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise RuntimeError("the WorkerPool was started on a different event loop")
        if timeout is not None and timeout <= 0:
            raise DeadlineExceeded(f"the request's deadline ({timeout:g} s) had already passed")

        candidates = [worker for worker in self._workers if worker.has_room()]
        if not candidates:
            raise ResourceExhausted(
                f"all {len(self._workers)} workers are busy with {self._queue_depth} "
                "requests queued each; retry later"
            )
        worker = min(candidates, key=lambda w: w.load)  # the first minimum: device order

        item = _Item(job, split, loop.create_future(), threading.Event())
        worker.enqueue(item)
        try:
            if timeout is None:
                return cast(T, await item.future)
            return cast(T, await asyncio.wait_for(item.future, timeout))
        except asyncio.TimeoutError:
            if not item.future.cancelled():  # the job itself raised TimeoutError
                raise
            raise DeadlineExceeded(
                f"the request did not finish within its deadline of {timeout:g} s"
            ) from None
        finally:
            if item.future.cancelled() or not item.future.done():
                worker.abandon(item)
