"""The device worker pool: worker processes per device, bounded queues, deadlines that kill.

Each worker owns one device and one child process, runs one job at a time in it, and keeps
at most ``queue_depth`` jobs waiting. The queues live on the event loop, so admission,
routing and cancellation are single-threaded and race-free; the job itself runs in the
worker's process, where it can be stopped: a job whose caller gives up (its deadline
passed, or it was cancelled, e.g. by a client that disconnected) is killed with SIGKILL,
and the worker gets a fresh process while the next queued job waits only for that.

What a caller of :meth:`WorkerPool.run` can get:

- the job's result, or the job's own exception, unchanged (type, message and attributes,
  as pickled; the worker survives);
- :class:`~lossserve.core.errors.ResourceExhausted` at once when every queue is full
  (nothing is queued), or when the batch does not fit in memory (after splitting it,
  when the caller gave a ``split`` function);
- :class:`~lossserve.core.errors.DeadlineExceeded` when ``timeout`` passes first; a job
  still waiting then is never run, and a running one is killed;
- :class:`~lossserve.core.errors.Unavailable` (retryable) when the worker died while
  running the job (a crash, ``os._exit``, a signal, the kernel's OOM killer): the worker is
  replaced on the same device, and the jobs queued behind it run on the replacement.

Jobs and split functions cross a process boundary, so they must be picklable: module-level
functions, instances of module-level classes (frozen dataclasses), or ``functools.partial``
of those; not lambdas or closures. So must their results and exceptions (an exception that
does not survive a pickle round trip comes back as ``Internal``). Numpy arrays inside them
are not copied through pickle: large payloads go through shared memory
(``lossserve.workers._transport``) and arrive as views of it.

Worker processes come from the ``forkserver`` start method (forking a process that runs
grpc or other threads is unsafe), whose server preloads torch and :mod:`losses` once, so
that replacing a worker takes tens of milliseconds.

Faults are injected by the job itself: raising :class:`WorkerCrash` (or exiting, or
killing its own process) stands for a lost CUDA context or a dead worker process, raising
:class:`MemoryError` for running out of device memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import struct
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

import torch

from lossserve.core.errors import DeadlineExceeded, LossServeError, ResourceExhausted, Unavailable

from . import _child, _transport
from ._process import WorkerProcess

__all__ = ["Job", "Split", "WorkerCrash", "WorkerPool", "WorkerStats", "default_devices"]

T = TypeVar("T")

Job = Callable[[str], T]
"""A unit of tensor work: called with the worker's device string, returns the result."""

Split = Callable[
    [Callable[[str], T]], tuple[Callable[[str], T], Callable[[str], T], Callable[[T, T], T]]
]
"""Turns a job that ran out of memory into two half-jobs and the function merging their results."""

PRELOAD = ("torch", "numpy", "losses", "lossserve.workers._child")
"""Modules the forkserver imports once, so that new worker processes start with them."""

_STARTUP_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 5.0
_SPAWN_RETRY_S = (0.1, 0.5, 2.0, 5.0)

_log = logging.getLogger("lossserve.workers")


def default_devices() -> list[str]:
    """Every ``cuda:N`` torch sees, else ``["cpu"]``."""
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        if count > 0:
            return [f"cuda:{index}" for index in range(count)]
    return ["cpu"]


def default_threads(workers: int, cpus: Collection[int] | None = None) -> int:
    """Torch threads per worker process: the usable cores (``cpus``, by default those this
    process may use) shared out, at least 1."""
    if cpus:
        cores = len(set(cpus))
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


class WorkerCrash(BaseException):
    """The worker died under the job: a lost CUDA context, a segfaulted process.

    A job raises it to inject that fault: the worker process then exits at once, as it would
    had it really died. It derives from :class:`BaseException`, as every other fault that
    kills a worker does (any non-:class:`Exception` escaping a job is treated the same
    way), so that no ``except Exception`` on the way swallows it.
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
    """Jobs that raised (their own error, out of memory), crashed or were killed."""
    replaced: int
    """How many times this worker's process died (or was killed) and was replaced."""


class _ChildExited(Exception):  # noqa: N818 - private marker, never reaches a caller
    """The worker process ended; the argument says how."""


@dataclass(eq=False)
class _Item:
    header: bytes
    """The pickled ``(job, split)``, its buffers left out."""
    raws: list[memoryview]
    future: asyncio.Future[Any]
    sent: bool = False


def _settle(
    future: asyncio.Future[Any], *, value: Any = None, error: BaseException | None = None
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


class _RemoteTraceback(Exception):  # noqa: N818 - carries text, as concurrent.futures does
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nIn the worker process:\n{self.text}"


def _describe(exitcode: int | None) -> str:
    if exitcode is None:
        return "its process exited"
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"its process was killed by {signal.Signals(-exitcode).name}"
        return f"its process was killed by signal {-exitcode}"
    return f"its process exited with status {exitcode}"


# -- one worker process, seen from the parent ----------------------------------------------

_READ_BYTES = 256 * 1024


def _frames(received: bytearray) -> list[bytes]:
    """The whole messages at the start of ``received`` (taken out of it), framed as
    ``multiprocessing.connection.Connection.send_bytes`` frames them: a 4-byte big-endian
    length, or -1 and an 8-byte length, then the bytes."""
    messages = []
    while len(received) >= 4:
        (size,) = struct.unpack_from("!i", received)
        start = 4
        if size == -1:
            if len(received) < 12:
                break
            (size,) = struct.unpack_from("!Q", received, 4)
            start = 12
        if len(received) < start + size:
            break
        messages.append(bytes(received[start : start + size]))
        del received[: start + size]
    return messages


class _Child:
    """A worker process and the parent's end of its pipe, watched by the event loop."""

    def __init__(
        self, process: multiprocessing.process.BaseProcess, conn: Connection, loop: Any
    ) -> None:
        self.process = process
        self.conn = conn
        self.pid = cast(int, process.pid)
        self.abandoned = False
        """Killed on purpose, because the caller of its job gave up."""
        self._loop: asyncio.AbstractEventLoop = loop
        self.exited: asyncio.Future[str] = loop.create_future()
        self._reply: asyncio.Future[Any] | None = None
        self._reading = True
        self._received = bytearray()
        loop.add_reader(conn.fileno(), self._readable)
        # uvloop's add_reader leaves the descriptor non-blocking; a job's message (at most
        # INLINE_BYTES and a little) fits the socket's buffer of a worker that waits for
        # it, so a blocking send returns at once, and _readable takes what has arrived.
        os.set_blocking(conn.fileno(), True)
        loop.add_reader(process.sentinel, self._gone)

    def request(self, message: bytes) -> asyncio.Future[Any]:
        """Send one job; the future gets its reply, or ``_ChildExited``."""
        reply: asyncio.Future[Any] = self._loop.create_future()
        if self.exited.done():
            reply.set_exception(_ChildExited(self.exited.result()))
            return reply
        self._reply = reply
        try:
            self.conn.send_bytes(message)
        except OSError:  # it died just now: the sentinel will say how
            self.kill()
        return reply

    def _readable(self) -> None:
        """Read what has arrived; a reply is whole once its frame is (the worker writes a
        long one as a header and a body: ``Connection.recv_bytes`` here would wait for the
        body on the loop, or fail between the two on a non-blocking descriptor)."""
        try:
            data = os.read(self.conn.fileno(), _READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # it has gone; the sentinel follows
            self._stop_reading()
            return
        if not data:
            self._stop_reading()
            return
        self._received += data
        for message in _frames(self._received):
            reply, self._reply = self._reply, None
            if reply is not None and not reply.done():
                reply.set_result(pickle.loads(message))

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self.conn.fileno())

    def _gone(self) -> None:
        with contextlib.suppress(Exception):  # a reply written just before the end
            while self._reading and self._reply is not None and self.conn.poll(0):
                self._readable()
        self._stop_reading()
        self._loop.remove_reader(self.process.sentinel)
        reason = _describe(self.process.exitcode)
        reply, self._reply = self._reply, None
        if reply is not None and not reply.done():
            reply.set_exception(_ChildExited(reason))
        if not self.exited.done():
            self.exited.set_result(reason)

    def kill(self) -> None:
        if not self.exited.done():
            with contextlib.suppress(OSError, ValueError):
                self.process.kill()

    async def stop(self) -> None:
        """Ask it to exit, kill it if it does not within a few seconds, and release it."""
        if not self.exited.done():
            with contextlib.suppress(OSError):
                self.conn.send_bytes(_child.STOP)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), _STOP_TIMEOUT_S)
            except TimeoutError:
                self.kill()
        await self.exited
        self.process.join(0)  # reaped already: this only reads its status
        self.conn.close()
        with contextlib.suppress(ValueError):
            self.process.close()


def _spawn(
    device: str, threads: int, max_split_depth: int, cpus: tuple[int, ...] | None
) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    """Start a worker process and wait until it is ready (blocking: runs in a thread)."""
    parent, child = multiprocessing.Pipe(duplex=True)
    process = WorkerProcess(
        target=_child.main,
        args=(child, device, threads, max_split_depth, cpus),
        name=f"lossserve-worker-{device}",
        daemon=True,
    )
    try:
        process.start()
    finally:
        child.close()
    try:
        if not parent.poll(_STARTUP_TIMEOUT_S):
            raise RuntimeError(f"not ready within {_STARTUP_TIMEOUT_S:g} s")
        first = parent.recv_bytes()
        if first.startswith(_child.FAILED):
            raise RuntimeError(first[len(_child.FAILED) :].decode(errors="replace"))
        if first != _child.READY:
            raise RuntimeError("an unexpected first message")
    except (EOFError, OSError, RuntimeError) as exc:
        process.kill()
        process.join()
        parent.close()
        detail = _describe(process.exitcode) if isinstance(exc, EOFError) else str(exc)
        raise RuntimeError(f"the worker process on {device} did not start: {detail}") from None
    return process, parent


# -- one worker, on the event loop ---------------------------------------------------------


class _Worker:
    """One device: a bounded queue on the loop, one process, and a task that feeds it."""

    def __init__(
        self,
        index: int,
        device: str,
        queue_depth: int,
        spawn: Callable[[], tuple[multiprocessing.process.BaseProcess, Connection]],
    ) -> None:
        self.index = index
        self.device = device
        self.queue_depth = queue_depth
        self.queue: deque[_Item] = deque()
        self.running: _Item | None = None
        self._warm_names: tuple[str, str] | None = None
        self.completed = 0
        self.failed = 0
        self.replaced = 0
        self._spawn = spawn
        self._open = False
        self._healthy = False
        self._child: _Child | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._want: asyncio.Future[_Item | None] | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []

    @property
    def alive(self) -> bool:
        return self._open and self._healthy

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

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

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        process, conn = await asyncio.to_thread(self._spawn)
        self._child = _Child(process, conn, loop)
        self._open = self._healthy = True
        self._task = loop.create_task(self._serve(), name=f"lossserve-worker-{self.index}")

    # -- the queue ---------------------------------------------------------------------

    def enqueue(self, item: _Item) -> None:
        self.queue.append(item)
        self._dispatch()

    def abandon(self, item: _Item) -> None:
        """The caller gave up: a waiting job is dropped; a running one is killed."""
        if item in self.queue:
            self.queue.remove(item)
            self._notify_if_idle()
        elif self.running is item and item.sent and self._child is not None:
            self._child.abandoned = True  # an expected death: logged at debug, not warning
            self._child.kill()

    def _dispatch(self) -> None:
        """Hand the next job that still has a caller to the feeding task, if it waits."""
        want = self._want
        if want is None or want.done():
            return
        while self.queue:
            item = self.queue.popleft()
            if item.future.done():  # its caller gave up before it started
                continue
            self.running = item
            self._want = None
            want.set_result(item)
            return
        self._notify_if_idle()

    async def _next(self, child: _Child) -> _Item | None:
        """The next job, or None when the worker closes or its idle process died."""
        assert self._loop is not None
        want: asyncio.Future[_Item | None] = self._loop.create_future()
        self._want = want
        self._dispatch()
        if not want.done():
            await asyncio.wait((want, child.exited), return_when=asyncio.FIRST_COMPLETED)
        if want.done():
            return want.result()
        self._want = None
        want.cancel()
        return None

    # -- the feeding task --------------------------------------------------------------

    async def _serve(self) -> None:
        while self._open:
            child = self._child
            if child is None or child.exited.done():
                if child is not None:
                    await child.stop()
                    self._log_death(child)
                    self.replaced += 1
                    self._child = None
                await self._respawn()
                continue
            item = await self._next(child)
            if item is None:
                continue
            try:
                await self._execute(item, child)
            finally:
                self.running = None
                self._notify_if_idle()

    async def _respawn(self) -> None:
        assert self._loop is not None
        for attempt in range(len(_SPAWN_RETRY_S) + 1):
            if not self._open:
                return
            try:
                process, conn = await asyncio.to_thread(self._spawn)
            except Exception as exc:
                _log.error(
                    "worker %d on %s cannot start a process: %s", self.index, self.device, exc
                )
                self._healthy = False
                self._fail_queued(
                    f"the worker on {self.device} could not start a process ({exc}); "
                    "the request can be retried"
                )
                await asyncio.sleep(_SPAWN_RETRY_S[min(attempt, len(_SPAWN_RETRY_S) - 1)])
                continue
            if not self._open:  # closed meanwhile
                child = _Child(process, conn, self._loop)
                await child.stop()
                return
            self._child = _Child(process, conn, self._loop)
            self._healthy = True
            return

    def _log_death(self, child: _Child) -> None:
        # Killed because its caller gave up (deadline, disconnect): the request already
        # logged that; an unexpected death is a warning.
        _log.log(
            logging.DEBUG if child.abandoned else logging.WARNING,
            "worker %d on %s (pid %d): %s; replacing it",
            self.index,
            self.device,
            child.pid,
            child.exited.result(),
        )

    async def _execute(self, item: _Item, child: _Child) -> None:
        inbound: str | None = None
        outbound = _transport.new_name("o")
        warm_in, warm_out = self._warm()
        try:
            try:
                if _transport.size_of(item.header, item.raws) <= _transport.INLINE_BYTES:
                    packed = _transport.pack(item.header, item.raws, None)
                elif _transport.fits_warm(item.header, item.raws):
                    packed = await asyncio.to_thread(
                        _transport.pack, item.header, item.raws, warm_in, warm=True
                    )
                else:
                    inbound = _transport.new_name("i")
                    packed = await asyncio.to_thread(
                        _transport.pack, item.header, item.raws, inbound
                    )
            except _transport.NoRoomError as exc:  # sent on the loop: never a large job inline
                _settle(item.future, error=ResourceExhausted(f"the request's tensors: {exc}"))
                return
            item.raws = []
            if item.future.done():  # its caller gave up meanwhile
                return
            item.sent = True
            message = pickle.dumps(_child.JobMessage(packed, outbound, warm_out), protocol=5)
            try:
                reply = await child.request(message)
            except _ChildExited as exc:
                self.failed += 1
                self._fail(item, str(exc))
                return
            if reply[0] == "crashed":
                child.kill()
                self.failed += 1
                self._fail(item, reply[1])
                await child.exited
                return
            result: _transport.Packed = reply[1]
            try:
                if result.segment is None:
                    outcome = _transport.unpack(result)
                else:  # out of the warm segment before the next job writes it
                    outcome = await asyncio.to_thread(_transport.unpack, result, copy=result.warm)
            except Exception as exc:  # e.g. an exception class that cannot be rebuilt here
                self.failed += 1
                _settle(item.future, error=exc)
                return
            if outcome[0] == "ok":
                self.completed += 1
                _settle(item.future, value=outcome[1])
            else:
                self.failed += 1
                error = outcome[1]
                if not isinstance(error, LossServeError):
                    error.__cause__ = _RemoteTraceback(outcome[2])
                _settle(item.future, error=error)
        finally:
            for name in (inbound, outbound):
                if name is not None:
                    _transport.forget(name)

    def _warm(self) -> tuple[str, str]:
        """This worker's warm segments (its jobs', its results'), named on first use; they
        outlive its processes and are removed when the worker closes."""
        if self._warm_names is None:
            self._warm_names = (_transport.new_name("wi"), _transport.new_name("wo"))
        return self._warm_names

    def _fail(self, item: _Item, reason: str) -> None:
        _settle(
            item.future,
            error=Unavailable(
                f"the worker on {self.device} failed while running the request ({reason}); "
                "the request can be retried"
            ),
        )

    def _fail_queued(self, message: str) -> None:
        for item in self.queue:
            _settle(item.future, error=Unavailable(message))
        self.queue.clear()
        self._notify_if_idle()

    # -- idleness and closing ----------------------------------------------------------

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

    async def close(self, *, hard: bool) -> None:
        """Stop the process; ``hard``: fail (and kill) whatever is still queued or running."""
        self._open = False
        if hard:
            message = "the worker pool shut down before the request finished; retry it"
            self._fail_queued(message)
            if self.running is not None:
                _settle(self.running.future, error=Unavailable(message))
                if self._child is not None:
                    self._child.kill()
        if self._want is not None and not self._want.done():
            self._want.set_result(None)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._child is not None:
            await self._child.stop()
        if self._warm_names is not None:
            for name in self._warm_names:
                _transport.forget(name)
            self._warm_names = None
        self._notify_if_idle()


class WorkerPool:
    """Runs jobs in worker processes, routing each to the least-loaded live worker.

    Args:
        devices: one worker per entry, in order (ties in load go to the earlier one);
            the same device may appear more than once.
        queue_depth: jobs each worker keeps waiting besides the one it runs (>= 1).
        max_split_depth: how many times a job that runs out of memory may be halved
            (>= 0); past it the job fails with ``ResourceExhausted``.
        workers_per_device: processes per entry of ``devices`` (>= 1).
        threads: torch threads in each worker process (``torch.set_num_threads``);
            default: the usable cores divided by the number of workers, at least 1.
        cpus: the CPUs worker processes run on (each sets its affinity to them);
            default: those this process may use, inherited.
        preload: modules the forkserver imports besides :data:`PRELOAD` (e.g. the
            modules the jobs are defined in); it only matters to the first pool of the
            process, which starts the forkserver.

    Use ``await pool.start()`` and ``await pool.stop()``, or ``async with pool:`` (which
    drains on a normal exit and stops at once on an exception), on the event loop that
    calls :meth:`run`.
    """

    def __init__(
        self,
        devices: Sequence[str],
        *,
        queue_depth: int,
        max_split_depth: int = 8,
        workers_per_device: int = 1,
        threads: int | None = None,
        cpus: Collection[int] | None = None,
        preload: Sequence[str] = (),
    ) -> None:
        if isinstance(devices, str) or not devices:
            raise ValueError(f"expected a non-empty sequence of device strings, got {devices!r}")
        if queue_depth < 1:
            raise ValueError(f"expected queue_depth >= 1, got {queue_depth}")
        if max_split_depth < 0:
            raise ValueError(f"expected max_split_depth >= 0, got {max_split_depth}")
        if workers_per_device < 1:
            raise ValueError(f"expected workers_per_device >= 1, got {workers_per_device}")
        if threads is not None and threads < 1:
            raise ValueError(f"expected threads >= 1 or None, got {threads}")
        self._devices = tuple(devices)
        self._queue_depth = queue_depth
        self._preload = [*PRELOAD, *preload]
        devices_each = [device for device in self._devices for _ in range(workers_per_device)]
        self._threads = threads or default_threads(len(devices_each), cpus)
        placed = tuple(sorted(set(cpus))) if cpus else None

        def spawner(device: str) -> Callable[[], tuple[Any, Connection]]:
            return lambda: _spawn(device, self._threads, max_split_depth, placed)

        self._workers = [
            _Worker(index, device, queue_depth, spawner(device))
            for index, device in enumerate(devices_each)
        ]
        self._state: Literal["new", "running", "stopping", "stopped"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def devices(self) -> tuple[str, ...]:
        return self._devices

    @property
    def queue_depth(self) -> int:
        return self._queue_depth

    @property
    def threads(self) -> int:
        """Torch threads in each worker process."""
        return self._threads

    def pids(self) -> list[int | None]:
        """Each worker's current process id, in worker order (None before start)."""
        return [worker.pid for worker in self._workers]

    async def start(self) -> None:
        """Start one process per worker (and wait until each is ready); starting a running
        pool does nothing."""
        if self._state == "running":
            return
        if self._state != "new":
            raise RuntimeError("a stopped WorkerPool cannot be started again; make a new one")
        self._loop = asyncio.get_running_loop()
        forkserver.set_forkserver_preload(self._preload)
        started = await asyncio.gather(
            *(worker.start(self._loop) for worker in self._workers), return_exceptions=True
        )
        errors = [result for result in started if isinstance(result, BaseException)]
        if errors:
            for worker in self._workers:
                await worker.close(hard=True)
            self._state = "stopped"
            raise errors[0]
        self._state = "running"

    async def stop(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Refuse new jobs, then stop every worker process.

        With ``drain`` (the default) the queued and running jobs finish first, for at most
        ``timeout`` seconds; without it, or once the timeout passes, their callers get
        ``Unavailable`` at once and running jobs are killed. Stopping a stopped pool does
        nothing.
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
            except TimeoutError:
                drain = False
        await asyncio.gather(*(worker.close(hard=not drain) for worker in self._workers))
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
        """Each worker's state, in worker order."""
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
            job: the work, picklable; called once in the worker's process with its device
                string.
            timeout: seconds, queueing included; ``None`` waits as long as it takes.
            split: picklable too; on out-of-memory, ``split(job)`` gives two half-jobs and
                the function merging their results; the halves run in the same process,
                one after the other, and split again if they too run out of memory.

        Raises:
            ResourceExhausted: every queue is full (nothing was queued), or the batch did
                not fit in memory.
            DeadlineExceeded: ``timeout`` passed; a job that had not started never runs,
                and a running one is killed.
            Unavailable: the worker died under the job (it has been replaced; retrying is
                safe), or the pool is stopping.
            pickle.PicklingError, TypeError, AttributeError: the job cannot be pickled.
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
        worker = min(candidates, key=lambda w: w.load)  # the first minimum: worker order

        header, raws = _transport.dump((job, split))  # the arrays' buffers are not copied
        item = _Item(header, raws, loop.create_future())
        worker.enqueue(item)
        try:
            if timeout is None:
                return cast(T, await item.future)
            return cast(T, await asyncio.wait_for(item.future, timeout))
        except TimeoutError:
            if not item.future.cancelled():  # the job itself raised TimeoutError
                raise
            raise DeadlineExceeded(
                f"the request did not finish within its deadline of {timeout:g} s"
            ) from None
        finally:
            if item.future.cancelled() or not item.future.done():
                worker.abandon(item)
