"""Dynamic batching: concurrent requests to one model are merged, run once and split back.

A :class:`DynamicBatcher` sits in front of one model's ``run_batch`` function (an ONNX
Runtime ``session.run`` over named inputs, say). Each request carries rows along axis 0 of
every named input. Requests that are *compatible* — the same input names, and for each
input the same dtype and the same shape after axis 0 — are concatenated along axis 0 in
arrival order, up to ``max_batch_size`` rows; ``run_batch`` then runs **once**, in an
executor thread, and each request gets back exactly its own rows of every output. Only a
run measured to take less than ``inline_below_s`` (tens of microseconds for a small model)
runs on the event loop instead. Incompatible requests are never merged: each kind forms
its own batches.

When a batch starts: **an idle model runs a request at once**, and only requests that
arrive while the model is busy are merged (as Triton's dynamic batcher does with a zero
queue delay). In detail:

- no batch running: the oldest waiting kind starts at once, with up to ``max_batch_size``
  of its waiting rows (a lone request never waits for company: batching costs it nothing);
- every one of the ``max_concurrent_batches`` slots busy: requests wait; as a slot frees,
  the oldest kind starts at once with up to ``max_batch_size`` of its waiting rows;
- some batch running and a slot free (``max_concurrent_batches > 1`` only): a kind waits
  for more rows until it holds ``max_batch_size`` rows or its oldest request has waited
  ``max_queue_delay_us``, then takes the free slot. With one slot (the default) the delay
  never holds a request back; it then only says whether batching is on.

So load turns into larger batches by itself: while one run computes, the requests that
arrive pile up and become the next run.

What a caller of :meth:`DynamicBatcher.infer` can get:

- its own rows of every output;
- :class:`~lossserve.core.errors.InvalidArgument` at once for inputs that cannot be batched
  (not arrays, no rows axis, differing row counts, zero rows);
- :class:`~lossserve.core.errors.ResourceExhausted` at once when ``queue_depth`` requests
  are already waiting (nothing is queued);
- :class:`~lossserve.core.errors.DeadlineExceeded` when ``timeout`` passes first; a request
  still waiting when its caller gives up (deadline or cancellation) is removed and never
  runs; one already running is left to finish and its rows are dropped;
- the exception ``run_batch`` raised, the same object for every request of that batch
  (the batcher survives and the next batch runs); only ``StopIteration`` and
  ``CancelledError``, which an asyncio future cannot pass on as errors, arrive wrapped in
  :class:`~lossserve.core.errors.Internal`;
- :class:`~lossserve.core.errors.Internal` for every request of a batch whose outputs are
  not arrays with one row per input row;
- :class:`~lossserve.core.errors.Unavailable` (retryable) once the batcher is closed.

Decisions:

- A request with more rows than ``max_batch_size`` runs **alone and unsplit** (as Triton
  runs one that fits the model): it is never merged, never delayed, and the model, whose
  batch axis is dynamic, sees it whole. Capping rows is the caller's limit, not ours.
- A batch is cut at the first compatible request that would overflow it, so compatible
  requests always run in arrival order.
- ``max_queue_delay_us == 0`` or ``max_batch_size == 1`` turns batching off: every
  request runs alone, in arrival order.
- No timer delays a request to an idle model: a timer fired by the event loop is late by
  up to a millisecond on Linux's epoll (a 0.5 ms delay acts as about 1.1 ms), which would
  cost a lone request more than the run itself, and at a steady load the batches form
  while the model is busy anyway.
- At most ``max_concurrent_batches`` batches run at once (1 by default, as one model
  instance).
- Concatenating inputs and slicing outputs happen in the executor thread with the run, so
  the loop only admits, groups and settles requests. Outputs are views into the batch's
  arrays (disjoint rows, so no request can see another's).
- :meth:`DynamicBatcher.close` stops admission, runs everything still waiting without
  further delay, waits for the running batches and shuts down the executor it created.

The batcher binds to the event loop of its first call; all of its state lives on that
loop, so admission, grouping and cancellation are single-threaded and race-free.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from lossserve.core.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)

__all__ = ["BatcherStats", "DynamicBatcher", "RunBatch", "Tensors"]

Tensors = dict[str, npt.NDArray[Any]]
"""Named arrays whose axis 0 is the rows (the batch axis)."""

RunBatch = Callable[[Tensors], Tensors]
"""Runs the model once on a batch of inputs and returns its outputs, one row per input row."""

_Key = tuple[tuple[str, np.dtype[Any], tuple[int, ...]], ...]
"""What must match for two requests to share a batch: names, dtypes and trailing shapes."""

# asyncio may fire a timer up to one clock tick early; a request that is due within a
# tick counts as due, so the timer does not re-arm for a sliver of time.
_CLOCK_SLACK = time.get_clock_info("monotonic").resolution


@dataclass(frozen=True)
class BatcherStats:
    """Counters since the batcher was made, and the state now (for ``/metrics`` and tests)."""

    runs: int
    """Times ``run_batch`` was called."""
    requests: int
    """Requests sent to ``run_batch`` (whatever the outcome)."""
    rows: int
    """Rows sent to ``run_batch``."""
    max_batch_rows: int
    """The most rows one run has had."""
    max_batch_requests: int
    """The most requests one run has merged."""
    failed_runs: int
    """Runs that raised, or returned outputs without one row per input row."""
    rejected: int
    """Requests turned away because the queue was full."""
    abandoned: int
    """Requests removed while waiting because their caller gave up (deadline or cancel)."""
    waiting: int
    """Requests waiting now."""
    running: int
    """Batches running now."""
    queue_ns: int = 0
    """Nanoseconds the requests sent to ``run_batch`` waited for their run, summed."""
    compute_ns: int = 0
    """Nanoseconds of the runs each request sent to ``run_batch`` was in, summed over the
    requests (Triton's ``compute_infer``)."""
    batch_sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Rows a run -> (runs, their nanoseconds); sizes above ``max_batch_size`` (a request
    that runs alone) are counted at the next power of two, so the keys stay few."""


@dataclass(eq=False)
class _Request:
    inputs: Tensors
    rows: int
    key: _Key
    due: float
    """Loop time past which this request stops waiting for company (when a slot is free)."""
    future: asyncio.Future[Tensors]
    enqueued: float = 0.0
    """Loop time it arrived."""
    dispatched: bool = False
    """In a batch (or settled): no longer waiting, never removed from a group."""
    expired: bool = False
    """Its deadline passed before it completed."""


def _expire(request: _Request) -> None:
    """The deadline timer: cancel the caller's wait (``infer`` turns it into the error).

    Its own flag, not ``asyncio.TimeoutError``, tells a deadline apart: ``run_batch`` may
    raise ``TimeoutError`` itself, and that must reach the caller unchanged.
    """
    if not request.future.done():
        request.expired = True
        request.future.cancel()


@dataclass(eq=False)
class _Group:
    """The waiting requests of one compatible kind, oldest first."""

    requests: deque[_Request] = field(default_factory=deque)
    rows: int = 0


# -- runs in the executor's thread -------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    outputs: list[Tensors] = field(default_factory=list)
    """One output dict per request, in batch order (empty when ``error`` is set)."""
    error: BaseException | None = None
    seconds: float = 0.0
    """How long the run took (with the concatenation and the split)."""


def _execute(run_batch: RunBatch, inputs: list[Tensors], rows: list[int]) -> _Outcome:
    """Run one batch; the error travels as a value, not through the executor's future.

    ``asyncio`` rebuilds some exceptions when it copies a finished ``concurrent`` future
    (``TimeoutError``, ``CancelledError``), and cannot hold others (``StopIteration``); as a
    value, the caller gets the very object ``run_batch`` raised.
    """
    start = time.perf_counter()
    try:
        outputs = _run_and_split(run_batch, inputs, rows)
    except BaseException as error:  # handed to every request of the batch
        return _Outcome(error=error, seconds=time.perf_counter() - start)
    return _Outcome(outputs=outputs, seconds=time.perf_counter() - start)


def _run_and_split(run_batch: RunBatch, inputs: list[Tensors], rows: list[int]) -> list[Tensors]:
    """Concatenate the requests' inputs, run once, check and split the outputs."""
    if len(inputs) == 1:
        batch = dict(inputs[0])
    else:
        batch = {name: np.concatenate([item[name] for item in inputs]) for name in inputs[0]}
    total = sum(rows)
    outputs = run_batch(batch)
    if type(outputs) is not dict and not isinstance(outputs, Mapping):  # dict: no ABC check
        raise Internal(
            f"expected the model to return a mapping of output names to arrays, "
            f"got {type(outputs).__name__}"
        )
    for name, value in outputs.items():
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            shape = getattr(value, "shape", None)
            raise Internal(
                f"expected output {name!r} to be an array with a rows axis, "
                f"got {type(value).__name__} of shape {shape}"
            )
        if value.shape[0] != total:
            raise Internal(
                f"expected output {name!r} to have {total} rows (one per input row), "
                f"got {value.shape[0]}"
            )
    if len(inputs) == 1:
        return [dict(outputs)]
    split: list[Tensors] = []
    start = 0
    for count in rows:
        split.append({name: value[start : start + count] for name, value in outputs.items()})
        start += count
    return split


# -- runs on the event loop --------------------------------------------------------------


def _describe(inputs: Mapping[str, npt.NDArray[Any]]) -> tuple[int, _Key]:
    """The request's row count and batching key; raises :class:`InvalidArgument`."""
    if (type(inputs) is not dict and not isinstance(inputs, Mapping)) or not inputs:
        raise InvalidArgument("expected at least one named input, got none")
    arrays = [(name, inputs[name]) for name in sorted(inputs)]
    for name, value in arrays:
        if not isinstance(value, np.ndarray):
            raise InvalidArgument(
                f"expected input {name!r} to be a numpy array, got {type(value).__name__}"
            )
        if value.ndim == 0:
            raise InvalidArgument(
                f"expected input {name!r} to have a rows axis (ndim >= 1), got a scalar"
            )
    first, rows = arrays[0][0], arrays[0][1].shape[0]
    for name, value in arrays[1:]:
        if value.shape[0] != rows:
            raise InvalidArgument(
                f"expected every input to have the same number of rows, got {rows} rows "
                f"in {first!r} and {value.shape[0]} in {name!r}"
            )
    if rows == 0:
        raise InvalidArgument("expected at least one row, got 0")
    key = tuple((name, value.dtype, tuple(value.shape[1:])) for name, value in arrays)
    return rows, key


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"expected {name} to be an integer >= {minimum}, got {value!r}")
    return value


class DynamicBatcher:
    """Merges concurrent requests to one model into batches, runs each once, splits back.

    Args:
        run_batch: runs the model on named inputs (axis 0 = rows) and returns named
            outputs with one row per input row. Called in ``executor``'s threads, at most
            ``max_concurrent_batches`` at a time (or on the loop: ``inline_below_s``).
        max_batch_size: the most rows merged into one run (>= 1). A single request with
            more rows runs alone, unsplit.
        max_queue_delay_us: 0 turns batching off; else, with ``max_concurrent_batches >
            1``, the longest, in microseconds, a request waits for others to join it while
            another batch runs and a slot is free (>= 0). An idle model never waits.
        queue_depth: the most requests waiting at once (>= 1); one more is refused with
            :class:`~lossserve.core.errors.ResourceExhausted`. Requests in a running batch
            do not count.
        executor: where ``run_batch`` runs; by default a thread pool of
            ``max_concurrent_batches`` threads that :meth:`close` shuts down. A given
            executor is left running.
        max_concurrent_batches: the most batches running at once (>= 1, default 1).
        inline_below_s: a batch whose run is predicted (from the runs so far, per row) to
            take less than this many seconds runs on the event loop, not in a thread: for a
            small model the thread's two hand-offs cost more than the run. 0 (the
            default): every run in the executor.

    Raises:
        ValueError: an argument out of range.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch_size: int,
        max_queue_delay_us: int,
        queue_depth: int,
        executor: Executor | None = None,
        max_concurrent_batches: int = 1,
        inline_below_s: float = 0.0,
    ) -> None:
        self._run_batch = run_batch
        if inline_below_s < 0:
            raise ValueError(f"expected inline_below_s >= 0, got {inline_below_s}")
        self._inline_below_s = inline_below_s
        self._seconds_per_row: float | None = None
        """The runs' seconds per row, a moving average (None before the first run)."""
        self._max_batch_size = _check_count("max_batch_size", max_batch_size, 1)
        self._delay = _check_count("max_queue_delay_us", max_queue_delay_us, 0) / 1e6
        self._queue_depth = _check_count("queue_depth", queue_depth, 1)
        self._max_concurrent = _check_count("max_concurrent_batches", max_concurrent_batches, 1)
        self._batching = self._max_batch_size > 1 and self._delay > 0
        self._owns_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=self._max_concurrent, thread_name_prefix="lossserve-batch"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._groups: dict[_Key, _Group] = {}
        self._waiting = 0
        self._pending: set[_Request] = set()
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._closed = False
        self._idle: asyncio.Future[None] | None = None
        self._runs = 0
        self._requests = 0
        self._queue_ns = 0
        self._compute_ns = 0
        self._batch_sizes: dict[int, tuple[int, int]] = {}
        self._rows = 0
        self._max_batch_rows = 0
        self._max_batch_requests = 0
        self._failed_runs = 0
        self._rejected = 0
        self._abandoned = 0

    @property
    def max_batch_size(self) -> int:
        return self._max_batch_size

    @property
    def max_queue_delay_us(self) -> int:
        return round(self._delay * 1e6)

    @property
    def queue_depth(self) -> int:
        return self._queue_depth

    @property
    def batching(self) -> bool:
        """Whether requests can be merged (``max_batch_size > 1`` and a non-zero delay)."""
        return self._batching

    @property
    def running(self) -> int:
        """Batches running now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests waiting now."""
        return self._waiting

    def stats(self) -> BatcherStats:
        return BatcherStats(
            runs=self._runs,
            requests=self._requests,
            rows=self._rows,
            max_batch_rows=self._max_batch_rows,
            max_batch_requests=self._max_batch_requests,
            failed_runs=self._failed_runs,
            rejected=self._rejected,
            abandoned=self._abandoned,
            waiting=self._waiting,
            running=self._running,
            queue_ns=self._queue_ns,
            compute_ns=self._compute_ns,
            batch_sizes=dict(self._batch_sizes),
        )

    async def infer(
        self, inputs: Mapping[str, npt.NDArray[Any]], *, timeout: float | None = None
    ) -> Tensors:
        """Run ``inputs`` (axis 0 = rows) in the next batch that takes them; return their rows.

        Args:
            inputs: named arrays, all with the same number of rows (>= 1) along axis 0.
            timeout: seconds to wait in all, queue and run; ``None`` waits as long as it
                takes.

        Returns:
            Every output of ``run_batch``, restricted to this request's rows.

        Raises:
            InvalidArgument: inputs that cannot be batched.
            ResourceExhausted: ``queue_depth`` requests are already waiting.
            DeadlineExceeded: ``timeout`` passed first.
            Unavailable: the batcher is closed.
            Internal: the model's outputs do not have one row per input row.
            Exception: whatever ``run_batch`` raised for this request's batch.
        """
        if self._closing:
            raise Unavailable("the model's batcher is closed; retry once it is reloaded")
        loop = self._bind()
        rows, key = _describe(inputs)
        if timeout is not None and timeout <= 0:
            raise DeadlineExceeded(f"expected a positive timeout, got {timeout} s")
        if self._waiting >= self._queue_depth:
            self._rejected += 1
            raise ResourceExhausted(
                f"the model's queue is full ({self._queue_depth} requests waiting); retry later"
            )
        if not self._running and not self._waiting and self._runs_inline(rows):
            return self._run_now(inputs, rows)
        now = loop.time()
        request = _Request(
            inputs=dict(inputs),
            rows=rows,
            key=key,
            due=now + self._delay,
            future=loop.create_future(),
            enqueued=now,
        )
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        group.requests.append(request)
        group.rows += rows
        self._waiting += 1
        self._pending.add(request)
        self._pump()
        timer = None if timeout is None else loop.call_later(timeout, _expire, request)
        try:
            return await request.future
        except asyncio.CancelledError:
            self._abandon(request)
            if request.expired:
                raise DeadlineExceeded(
                    f"the request did not complete within its {timeout} s deadline"
                ) from None
            raise
        finally:
            self._pending.discard(request)
            if timer is not None:
                timer.cancel()

    def abort(self, message: str) -> None:
        """Refuse new requests and answer every request still waiting or running with
        :class:`Unavailable` (``message``) now; a batch already running finishes in its
        thread, its outputs unused. For a shutdown whose grace period ran out."""
        self._closing = True
        for request in list(self._pending):
            if not request.future.done():
                request.future.set_exception(Unavailable(message))

    async def close(self) -> None:
        """Refuse new requests, run the waiting ones now, wait for every batch to finish.

        Idempotent. The executor is shut down if the batcher created it.
        """
        if self._closed:
            return
        self._closing = True
        if self._waiting or self._running:
            loop = self._bind()  # the requests' futures live on the bound loop
            self._pump()
            if self._waiting or self._running:
                if self._idle is None:
                    self._idle = loop.create_future()
                await asyncio.shield(self._idle)
        if self._closed:  # a concurrent close finished first
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._owns_executor:
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> DynamicBatcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- scheduling (event loop only) ----------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("this DynamicBatcher is bound to another event loop")
        return loop

    def _bound_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the batcher schedules only after its first request")
        return self._loop

    def _abandon(self, request: _Request) -> None:
        """Remove a request whose caller gave up, if it has not gone into a batch yet."""
        if request.dispatched:
            return
        group = self._groups[request.key]
        group.requests.remove(request)
        group.rows -= request.rows
        if not group.requests:
            del self._groups[request.key]
        self._waiting -= 1
        self._abandoned += 1
        request.dispatched = True  # settled: never removed twice
        self._pump()

    def _ready(self, group: _Group, now: float) -> bool:
        """Whether ``group`` starts now, given that a slot is free."""
        return (
            self._closing
            or not self._batching
            or not self._running  # an idle model runs at once
            or group.rows >= self._max_batch_size
            or group.requests[0].due <= now
        )

    def _pump(self) -> None:
        """Start every batch that is ready while there is room, then arm the timer."""
        loop = self._bound_loop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = loop.time() + _CLOCK_SLACK
        while self._running < self._max_concurrent and self._groups:
            ready = [
                (group.requests[0].due, key)
                for key, group in self._groups.items()
                if self._ready(group, now)
            ]
            if not ready:
                next_due = min(group.requests[0].due for group in self._groups.values())
                self._timer = loop.call_at(next_due, self._pump)
                break
            _, key = min(ready, key=lambda item: item[0])
            self._dispatch(key)
        self._notify_if_idle()

    def _take(self, key: _Key) -> list[_Request]:
        """Pop the oldest live requests of one kind that fit one batch.

        At least one, unless every request left of that kind has been given up: a caller
        whose deadline passed or who was cancelled may not have woken yet to remove its
        request, which is then dropped here rather than run.
        """
        group = self._groups[key]
        batch: list[_Request] = []
        rows = 0
        while group.requests:
            request = group.requests[0]
            given_up = request.future.done()
            full = not self._batching or rows + request.rows > self._max_batch_size
            if batch and full and not given_up:
                break
            group.requests.popleft()
            group.rows -= request.rows
            self._waiting -= 1
            request.dispatched = True
            if given_up:
                self._abandoned += 1
            else:
                batch.append(request)
                rows += request.rows
        if not group.requests:
            del self._groups[key]
        return batch

    def _run_now(self, inputs: Mapping[str, npt.NDArray[Any]], rows: int) -> Tensors:
        """Run one request on the loop while the model is idle: what :meth:`_dispatch`
        does for a batch of one that runs inline, without its future, timer and queue."""
        self._count_run([rows])
        outcome = _execute(self._run_batch, [dict(inputs)], [rows])
        error = self._learn([rows], outcome)
        if error is not None:
            raise error
        return outcome.outputs[0]

    def _count_run(self, rows: list[int]) -> None:
        total = sum(rows)
        self._runs += 1
        self._requests += len(rows)
        self._rows += total
        self._max_batch_rows = max(self._max_batch_rows, total)
        self._max_batch_requests = max(self._max_batch_requests, len(rows))

    def _dispatch(self, key: _Key) -> None:
        loop = self._bound_loop()
        batch = self._take(key)
        if not batch:
            return
        rows = [request.rows for request in batch]
        now = loop.time()
        for request in batch:
            request.dispatched = True
            self._queue_ns += round(max(0.0, now - request.enqueued) * 1e9)
        self._count_run(rows)
        self._running += 1
        inputs = [request.inputs for request in batch]
        if self._runs_inline(sum(rows)):
            self._running -= 1
            self._settle(batch, _execute(self._run_batch, inputs, rows))
            return
        job = partial(_execute, self._run_batch, inputs, rows)
        try:
            done = loop.run_in_executor(self._executor, job)
        except RuntimeError as error:  # the executor was shut down under us
            self._running -= 1
            self._failed_runs += 1
            failure = Unavailable(f"the model's executor is unavailable: {error}")
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(failure)
            return
        done.add_done_callback(partial(self._finished, batch))

    def _runs_inline(self, rows: int) -> bool:
        """Whether a batch of ``rows`` runs on the loop: its runs are measured, and one of
        ``rows`` is predicted to take under ``inline_below_s`` (a thread's hand-offs cost
        more than such a run; a longer one would hold every other request)."""
        per_row = self._seconds_per_row
        return per_row is not None and rows * per_row < self._inline_below_s

    def _finished(self, batch: list[_Request], done: asyncio.Future[_Outcome]) -> None:
        self._running -= 1
        if done.cancelled():
            outcome = _Outcome(error=Unavailable("the model's executor cancelled the run"))
        else:
            outcome = done.result()
        self._settle(batch, outcome)
        self._pump()

    def _learn(self, batch: list[int], outcome: _Outcome) -> BaseException | None:
        """Count a run of requests of ``batch`` rows each and learn how long its rows took;
        the error to answer its requests with, if any."""
        rows = sum(batch)
        ns = round(outcome.seconds * 1e9)
        self._compute_ns += ns * len(batch)
        size = rows if rows <= self._max_batch_size else 1 << (rows - 1).bit_length()
        runs, total = self._batch_sizes.get(size, (0, 0))
        self._batch_sizes[size] = (runs + 1, total + ns)
        if outcome.seconds > 0 and rows:
            per_row = outcome.seconds / rows
            previous = self._seconds_per_row
            self._seconds_per_row = per_row if previous is None else 0.8 * previous + 0.2 * per_row
        error = outcome.error
        if error is None:
            return None
        self._failed_runs += 1
        if isinstance(error, (StopIteration, asyncio.CancelledError)):
            # a future cannot carry StopIteration, and CancelledError would read as the
            # caller's own cancellation
            failure = Internal(f"the model raised {error!r}")
            failure.__cause__ = error
            return failure
        return error

    def _settle(self, batch: list[_Request], outcome: _Outcome) -> None:
        """Answer the requests of a batch that ran."""
        error = self._learn([request.rows for request in batch], outcome)
        if error is not None:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
        else:
            for request, outputs in zip(batch, outcome.outputs, strict=True):
                if not request.future.done():
                    request.future.set_result(outputs)

    def _notify_if_idle(self) -> None:
        if (
            self._idle is not None
            and not self._idle.done()
            and not self._waiting
            and not self._running
        ):
            self._idle.set_result(None)
