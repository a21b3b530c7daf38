"""The dynamic batcher, with a recording stand-in for the model's ``run_batch``.

Every test runs its own event loop with ``asyncio.run`` under a 10 s guard. Batches are
made deterministic without clocks: an idle model runs a request at once, and a model held
on a ``threading.Event`` lets requests pile up behind it, to run as the next batch when it
is released. The only waits on a clock are the delays and deadlines under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from lossserve.core.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from lossserve.models import batching
from lossserve.models.batching import BatcherStats, DynamicBatcher, Tensors

FOREVER_US = 60_000_000
"""A delay no test waits out: a batch that relies on it would trip the 10 s guard."""


def run_async(coro: Coroutine[Any, Any, None]) -> None:
    """Run one test body on a fresh loop; a hang fails the test instead of blocking the run."""
    asyncio.run(asyncio.wait_for(coro, 10))


async def wait_for_thread_event(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 5), "the model never reached this point"


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop until ``predicate`` holds (no clock involved)."""
    for _ in range(10_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def tagged(tag: int, rows: int, width: int = 3) -> Tensors:
    """Rows that name their request (``x``) and their position in it (``pos``)."""
    return {
        "x": np.full((rows, width), tag, dtype=np.float32),
        "pos": np.arange(rows, dtype=np.int64),
    }


class Model:
    """``run_batch`` stand-in: returns ``x`` doubled and ``pos`` unchanged, records each call.

    With ``hold=True`` its first call waits for ``release`` (so that requests queue behind
    it); ``fail`` is raised by call number ``fail_call`` (0: the first) instead of returning.
    """

    def __init__(
        self, *, hold: bool = False, fail: BaseException | None = None, fail_call: int = 0
    ) -> None:
        self.hold = hold
        self.fail = fail
        self.fail_call = fail_call
        self.started = threading.Event()
        self.release = threading.Event()
        self.batches: list[Tensors] = []
        self.threads: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, inputs: Tensors) -> Tensors:
        with self._lock:
            call = len(self.batches)
            self.batches.append(inputs)
            self.threads.append(threading.current_thread().name)
        self.started.set()
        if call == 0 and self.hold and not self.release.wait(5):
            raise TimeoutError("the test never released the model")
        if call == self.fail_call and self.fail is not None:
            raise self.fail
        return {"y": inputs["x"] * 2, "pos": inputs["pos"].copy()}

    @property
    def sizes(self) -> list[int]:
        return [len(batch["pos"]) for batch in self.batches]

    def tags(self, index: int) -> list[int]:
        """The request tags of one batch, one per request, in batch order."""
        column = self.batches[index]["x"][:, 0].astype(int).tolist()
        return [tag for i, tag in enumerate(column) if i == 0 or column[i - 1] != tag]


class HeldFirst:
    """Wraps a ``run_batch``: the first call (a request sent only to make the model busy)
    waits for ``release`` and answers ``x`` doubled; every later call goes to ``run_batch``."""

    def __init__(self, run_batch: Callable[[Tensors], Any]) -> None:
        self.run_batch = run_batch
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, inputs: Tensors) -> Any:
        if not self.started.is_set():
            self.started.set()
            if not self.release.wait(5):
                raise TimeoutError("the test never released the model")
            return {"y": inputs["x"] * 2, "pos": inputs["pos"].copy()}
        return self.run_batch(inputs)


def check_own_rows(tag: int, rows: int, outputs: Tensors) -> None:
    np.testing.assert_array_equal(outputs["y"], np.full((rows, 3), 2 * tag, dtype=np.float32))
    np.testing.assert_array_equal(outputs["pos"], np.arange(rows))


BUSY = 99
"""The tag of a request sent only to make the model busy."""


# -- construction and input checks --------------------------------------------------------


def test_exports_are_sorted_and_present() -> None:
    assert batching.__all__ == sorted(batching.__all__)
    for name in batching.__all__:
        assert hasattr(batching, name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, r"expected max_batch_size to be an integer >= 1, got 0"),
        ({"max_queue_delay_us": -1}, r"expected max_queue_delay_us .* >= 0, got -1"),
        ({"queue_depth": 0}, r"expected queue_depth .* >= 1, got 0"),
        ({"max_concurrent_batches": 0}, r"expected max_concurrent_batches .* >= 1, got 0"),
        ({"max_batch_size": 2.5}, r"expected max_batch_size .*, got 2.5"),
        ({"inline_below_s": -1e-3}, r"expected inline_below_s >= 0, got -0.001"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"max_batch_size": 4, "max_queue_delay_us": 0, "queue_depth": 4}
    with pytest.raises(ValueError, match=message):
        DynamicBatcher(Model(), **(arguments | kwargs))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "expected at least one named input"),
        ({"x": [[1.0]]}, "expected input 'x' to be a numpy array, got list"),
        ({"x": np.float32(1.0)}, "expected input 'x' to be a numpy array"),
        ({"x": np.array(1.0)}, "expected input 'x' to have a rows axis"),
        (
            {"a": np.zeros((2, 3)), "b": np.zeros(3)},
            "same number of rows, got 2 rows in 'a' and 3 in 'b'",
        ),
        ({"x": np.zeros((0, 3))}, "expected at least one row, got 0"),
    ],
)
def test_inputs_that_cannot_be_batched_are_refused(inputs: Any, message: str) -> None:
    async def body() -> None:
        model = Model()
        async with DynamicBatcher(
            model, max_batch_size=4, max_queue_delay_us=0, queue_depth=4
        ) as batcher:
            with pytest.raises(InvalidArgument, match=message):
                await batcher.infer(inputs)
        assert model.batches == []

    run_async(body())


def test_nonpositive_timeout_is_exceeded_at_once() -> None:
    async def body() -> None:
        model = Model()
        async with DynamicBatcher(
            model, max_batch_size=4, max_queue_delay_us=0, queue_depth=4
        ) as batcher:
            with pytest.raises(DeadlineExceeded, match="positive timeout"):
                await batcher.infer(tagged(1, 1), timeout=0)
        assert model.batches == []

    run_async(body())


# -- merging -------------------------------------------------------------------------------


def test_requests_arriving_while_the_model_runs_are_merged_into_full_batches_off_the_loop() -> None:
    async def body() -> None:
        model = Model(hold=True)
        async with DynamicBatcher(
            model, max_batch_size=8, max_queue_delay_us=FOREVER_US, queue_depth=64
        ) as batcher:
            busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
            await wait_for_thread_event(model.started)
            tasks = [asyncio.create_task(batcher.infer(tagged(i, 1))) for i in range(32)]
            await until(lambda: batcher.stats().waiting == 32)
            model.release.set()
            check_own_rows(BUSY, 1, await busy)
            for i, task in enumerate(tasks):
                check_own_rows(i, 1, await task)
            assert model.sizes == [1, 8, 8, 8, 8]
            assert [model.tags(k) for k in range(1, 5)] == [
                list(range(k * 8, k * 8 + 8)) for k in range(4)
            ]
            stats = batcher.stats()
            untimed = dataclasses.replace(stats, queue_ns=0, compute_ns=0, batch_sizes={})
            assert untimed == BatcherStats(
                runs=5,
                requests=33,
                rows=33,
                max_batch_rows=8,
                max_batch_requests=8,
                failed_runs=0,
                rejected=0,
                abandoned=0,
                waiting=0,
                running=0,
            )
            assert {size: runs for size, (runs, _) in stats.batch_sizes.items()} == {1: 1, 8: 4}
            assert stats.queue_ns > 0  # the merged ones waited for the run before theirs
            assert stats.compute_ns >= sum(ns for _, ns in stats.batch_sizes.values()) > 0
        loop_thread = threading.current_thread().name
        assert model.threads and all(name != loop_thread for name in model.threads)
        assert all(name.startswith("lossserve-batch") for name in model.threads)

    run_async(body())


def test_rows_never_mix_under_200_concurrent_requests_of_random_sizes() -> None:
    async def body() -> None:
        rng = np.random.default_rng(0)
        sizes = rng.integers(1, 6, size=200).tolist()
        model = Model()
        async with DynamicBatcher(
            model, max_batch_size=16, max_queue_delay_us=2_000, queue_depth=200
        ) as batcher:
            results = await asyncio.gather(
                *(batcher.infer(tagged(i, rows)) for i, rows in enumerate(sizes))
            )
            stats = batcher.stats()
        for i, (rows, outputs) in enumerate(zip(sizes, results, strict=True)):
            check_own_rows(i, rows, outputs)
        assert stats.requests == 200 and stats.rows == sum(sizes)
        assert stats.runs == len(model.batches) < 200 // 3
        assert max(model.sizes) <= 16 and stats.max_batch_rows <= 16
        assert stats.max_batch_requests > 1
        # one kind of request: batches take them in arrival order, none twice, none lost
        order = [tag for k in range(len(model.batches)) for tag in model.tags(k)]
        assert order == list(range(200))

    run_async(body())


def test_a_batch_is_cut_at_the_first_request_that_would_overflow_it() -> None:
    async def body() -> None:
        model = Model(hold=True)
        async with DynamicBatcher(
            model, max_batch_size=6, max_queue_delay_us=FOREVER_US, queue_depth=8
        ) as batcher:
            first = asyncio.create_task(batcher.infer(tagged(0, 6)))
            await wait_for_thread_event(model.started)
            tasks = [
                asyncio.create_task(batcher.infer(tagged(i, rows)))
                for i, rows in [(1, 4), (2, 3), (3, 2), (4, 1)]
            ]
            await until(lambda: batcher.stats().waiting == 4)
            model.release.set()
            check_own_rows(0, 6, await first)
            for i, rows in [(1, 4), (2, 3), (3, 2), (4, 1)]:
                check_own_rows(i, rows, await tasks[i - 1])
        assert model.sizes == [6, 4, 6]
        assert [model.tags(k) for k in range(3)] == [[0], [1], [2, 3, 4]]

    run_async(body())


def test_a_request_larger_than_max_batch_size_runs_alone_unsplit_and_undelayed() -> None:
    async def body() -> None:
        model = Model()
        async with DynamicBatcher(
            model, max_batch_size=4, max_queue_delay_us=FOREVER_US, queue_depth=4
        ) as batcher:
            check_own_rows(7, 10, await batcher.infer(tagged(7, 10)))
        assert model.sizes == [10]

    run_async(body())


def test_a_request_to_an_idle_model_runs_at_once_whatever_the_delay() -> None:
    async def body() -> None:
        model = Model()
        async with DynamicBatcher(
            model, max_batch_size=8, max_queue_delay_us=FOREVER_US, queue_depth=4
        ) as batcher:
            for i in range(3):  # one after the other: each finds the model idle
                check_own_rows(i, 2, await batcher.infer(tagged(i, 2), timeout=5))
            assert batcher.batching
        assert model.sizes == [2, 2, 2]

    run_async(body())


def test_the_requests_waiting_when_a_run_ends_run_next_at_once_whatever_the_delay() -> None:
    async def body() -> None:
        model = Model(hold=True)
        async with DynamicBatcher(
            model, max_batch_size=8, max_queue_delay_us=FOREVER_US, queue_depth=8
        ) as batcher:
            busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
            await wait_for_thread_event(model.started)
            tasks = [asyncio.create_task(batcher.infer(tagged(i, 1), timeout=5)) for i in range(3)]
            await until(lambda: batcher.stats().waiting == 3)
            assert model.sizes == [1]  # nothing started while the model was busy
            model.release.set()
            check_own_rows(BUSY, 1, await busy)
            for i, task in enumerate(tasks):  # three rows of eight: not full, yet not delayed
                check_own_rows(i, 1, await task)
        assert model.sizes == [1, 3]
        assert model.tags(1) == [0, 1, 2]

    run_async(body())


def test_with_a_slot_free_beside_a_running_batch_a_request_waits_about_the_delay() -> None:
    async def body() -> None:
        model = Model(hold=True)
        delay_s = 0.05
        loop = asyncio.get_running_loop()
        async with DynamicBatcher(
            model,
            max_batch_size=8,
            max_queue_delay_us=int(delay_s * 1e6),
            queue_depth=4,
            max_concurrent_batches=2,
        ) as batcher:
            busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
            await wait_for_thread_event(model.started)
            start = loop.time()
            check_own_rows(3, 2, await batcher.infer(tagged(3, 2)))  # in the second slot
            elapsed = loop.time() - start
            assert not busy.done()
            model.release.set()
            check_own_rows(BUSY, 1, await busy)
        assert delay_s * 0.9 <= elapsed < delay_s + 2.0
        assert model.sizes == [1, 2]

    run_async(body())


@pytest.mark.parametrize(
    ("max_batch_size", "max_queue_delay_us"),
    [(8, 0), (1, FOREVER_US)],
    ids=["delay-0", "max-batch-size-1"],
)
def test_no_batching_runs_every_request_alone(max_batch_size: int, max_queue_delay_us: int) -> None:
    async def body() -> None:
        model = Model(hold=True)
        async with DynamicBatcher(
            model,
            max_batch_size=max_batch_size,
            max_queue_delay_us=max_queue_delay_us,
            queue_depth=8,
        ) as batcher:
            assert not batcher.batching
            first = asyncio.create_task(batcher.infer(tagged(0, 1)))
            await wait_for_thread_event(model.started)
            rest = [asyncio.create_task(batcher.infer(tagged(i, 1))) for i in range(1, 6)]
            await until(lambda: batcher.stats().waiting == 5)  # all queued behind the first
            model.release.set()
            for i, task in enumerate([first, *rest]):
                check_own_rows(i, 1, await task)
            assert batcher.stats().max_batch_requests == 1
        assert model.sizes == [1] * 6
        assert [model.tags(k) for k in range(6)] == [[k] for k in range(6)]

    run_async(body())


def test_batches_run_concurrently_up_to_max_concurrent_batches() -> None:
    async def body() -> None:
        both_running = threading.Barrier(2, timeout=5)

        def run_batch(inputs: Tensors) -> Tensors:
            both_running.wait()  # passes only when two batches run at the same time
            return {"y": inputs["x"] * 2, "pos": inputs["pos"]}

        async with DynamicBatcher(
            run_batch,
            max_batch_size=1,
            max_queue_delay_us=0,
            queue_depth=4,
            max_concurrent_batches=2,
        ) as batcher:
            results = await asyncio.gather(batcher.infer(tagged(0, 1)), batcher.infer(tagged(1, 1)))
        for i, outputs in enumerate(results):
            check_own_rows(i, 1, outputs)

    run_async(body())


def test_incompatible_shapes_and_dtypes_are_never_merged() -> None:
    kinds: list[Callable[[int], Tensors]] = [
        lambda tag: tagged(tag, 1),
        lambda tag: {"x": tagged(tag, 1)["x"].astype(np.float64), "pos": np.zeros(1, np.int64)},
        lambda tag: tagged(tag, 1, width=4),
        lambda tag: {"x": tagged(tag, 1)["x"], "pos": np.zeros(1, np.int32)},
    ]

    async def body() -> None:
        model = Model(hold=True)
        async with DynamicBatcher(
            model, max_batch_size=64, max_queue_delay_us=FOREVER_US, queue_depth=64
        ) as batcher:
            busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
            await wait_for_thread_event(model.started)
            requests = [kinds[i % 4](i) for i in range(12)]
            tasks = [asyncio.create_task(batcher.infer(inputs)) for inputs in requests]
            await until(lambda: batcher.stats().waiting == 12)
            model.release.set()
            check_own_rows(BUSY, 1, await busy)
            results = await asyncio.gather(*tasks)
        for inputs, outputs in zip(requests, results, strict=True):
            np.testing.assert_array_equal(outputs["y"], inputs["x"] * 2)
            assert outputs["y"].dtype == inputs["x"].dtype
            assert outputs["pos"].dtype == inputs["pos"].dtype
        # one batch per kind, each merging its three requests, oldest kind first
        assert model.sizes == [1, 3, 3, 3, 3]
        assert [model.tags(k) for k in range(1, 5)] == [[k, k + 4, k + 8] for k in range(4)]

    run_async(body())


# -- admission, deadlines, cancellation ----------------------------------------------------


def test_a_full_queue_refuses_at_once_and_queues_nothing() -> None:
    async def body() -> None:
        model = Model(hold=True)
        async with DynamicBatcher(
            model, max_batch_size=1, max_queue_delay_us=0, queue_depth=2
        ) as batcher:
            running = asyncio.create_task(batcher.infer(tagged(0, 1)))
            await wait_for_thread_event(model.started)
            waiting = [asyncio.create_task(batcher.infer(tagged(i, 1))) for i in (1, 2)]
            await until(lambda: batcher.stats().waiting == 2)
            with pytest.raises(ResourceExhausted, match=r"queue is full \(2 requests waiting\)"):
                await batcher.infer(tagged(3, 1))
            assert batcher.stats().rejected == 1 and batcher.stats().waiting == 2
            model.release.set()
            for i, task in enumerate([running, *waiting]):
                check_own_rows(i, 1, await task)
        assert [model.tags(k) for k in range(3)] == [[0], [1], [2]]

    run_async(body())


def test_a_deadline_removes_a_waiting_request_which_never_runs() -> None:
    async def body() -> None:
        model = Model(hold=True)
        async with DynamicBatcher(
            model, max_batch_size=1, max_queue_delay_us=0, queue_depth=4
        ) as batcher:
            running = asyncio.create_task(batcher.infer(tagged(0, 1)))
            await wait_for_thread_event(model.started)
            with pytest.raises(DeadlineExceeded, match=r"0\.05 s deadline"):
                await batcher.infer(tagged(1, 1), timeout=0.05)
            assert batcher.stats().waiting == 0 and batcher.stats().abandoned == 1
            model.release.set()
            check_own_rows(0, 1, await running)
            check_own_rows(2, 1, await batcher.infer(tagged(2, 1)))
        assert [model.tags(k) for k in range(len(model.batches))] == [[0], [2]]

    run_async(body())


def test_a_deadline_while_running_drops_only_that_request() -> None:
    async def body() -> None:
        model = Model(hold=True)  # holds the batch the two requests share
        gate = HeldFirst(model)
        async with DynamicBatcher(
            gate, max_batch_size=2, max_queue_delay_us=FOREVER_US, queue_depth=4
        ) as batcher:
            busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
            await wait_for_thread_event(gate.started)
            patient = asyncio.create_task(batcher.infer(tagged(0, 1)))
            impatient = asyncio.create_task(batcher.infer(tagged(1, 1), timeout=1.0))
            await until(lambda: batcher.stats().waiting == 2)
            gate.release.set()
            await wait_for_thread_event(model.started)  # both run, held
            with pytest.raises(DeadlineExceeded):
                await impatient
            assert batcher.stats().abandoned == 0 and batcher.stats().running == 1
            model.release.set()
            check_own_rows(BUSY, 1, await busy)
            check_own_rows(0, 1, await patient)
        assert model.tags(0) == [0, 1]

    run_async(body())


def test_cancelling_a_waiting_request_removes_it() -> None:
    async def body() -> None:
        model = Model(hold=True)
        async with DynamicBatcher(
            model, max_batch_size=1, max_queue_delay_us=0, queue_depth=4
        ) as batcher:
            running = asyncio.create_task(batcher.infer(tagged(0, 1)))
            await wait_for_thread_event(model.started)
            doomed = asyncio.create_task(batcher.infer(tagged(1, 1)))
            kept = asyncio.create_task(batcher.infer(tagged(2, 1)))
            await until(lambda: batcher.stats().waiting == 2)
            doomed.cancel()
            with pytest.raises(asyncio.CancelledError):
                await doomed
            assert batcher.stats().waiting == 1 and batcher.stats().abandoned == 1
            model.release.set()
            check_own_rows(0, 1, await running)
            check_own_rows(2, 1, await kept)
        assert [model.tags(k) for k in range(len(model.batches))] == [[0], [2]]

    run_async(body())


def test_a_request_given_up_but_not_yet_removed_is_not_run() -> None:
    async def body() -> None:
        model = Model(hold=True)
        batcher = DynamicBatcher(
            model,
            max_batch_size=8,
            max_queue_delay_us=FOREVER_US,
            queue_depth=8,
            max_concurrent_batches=2,  # the three wait for company beside the busy slot
        )
        busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
        await wait_for_thread_event(model.started)
        tasks = [asyncio.create_task(batcher.infer(tagged(i, 1))) for i in range(3)]
        await until(lambda: batcher.stats().waiting == 3)
        tasks[1].cancel()  # its coroutine has not run since: the request is still queued
        model.release.set()
        await batcher.close()  # flushes the queue before anything else runs
        assert model.tags(1) == [0, 2]
        assert batcher.stats().abandoned == 1 and batcher.stats().requests == 3
        check_own_rows(BUSY, 1, await busy)
        check_own_rows(0, 1, await tasks[0])
        check_own_rows(2, 1, await tasks[2])
        with pytest.raises(asyncio.CancelledError):
            await tasks[1]
        assert batcher.stats().abandoned == 1  # counted once

    run_async(body())


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "boom",
    [ValueError("boom"), TimeoutError("the model timed out"), Unavailable("device lost")],
    ids=["ValueError", "TimeoutError", "Unavailable"],
)
def test_a_model_error_fails_every_request_of_its_batch_and_the_next_batch_runs(
    boom: Exception,
) -> None:
    async def body() -> None:
        model = Model(hold=True, fail=boom, fail_call=1)
        async with DynamicBatcher(
            model, max_batch_size=4, max_queue_delay_us=FOREVER_US, queue_depth=8
        ) as batcher:
            busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
            await wait_for_thread_event(model.started)
            tasks = [asyncio.create_task(batcher.infer(tagged(i, 1))) for i in range(4)]
            await until(lambda: batcher.stats().waiting == 4)
            model.release.set()
            check_own_rows(BUSY, 1, await busy)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(result is boom for result in results)
            assert model.sizes == [1, 4]
            outputs = await asyncio.gather(*(batcher.infer(tagged(i, 1)) for i in range(4, 8)))
            for i, output in enumerate(outputs, start=4):
                check_own_rows(i, 1, output)
            assert batcher.stats().failed_runs == 1

    run_async(body())


def test_an_error_a_future_cannot_carry_becomes_internal() -> None:
    async def body() -> None:
        model = Model(fail=StopIteration("exhausted"))
        async with DynamicBatcher(
            model, max_batch_size=1, max_queue_delay_us=0, queue_depth=2
        ) as batcher:
            with pytest.raises(Internal, match="the model raised StopIteration") as caught:
                await batcher.infer(tagged(0, 1))
            assert isinstance(caught.value.__cause__, StopIteration)
            check_own_rows(1, 1, await batcher.infer(tagged(1, 1)))

    run_async(body())


def bad_rows(inputs: Tensors) -> Tensors:
    return {"y": inputs["x"][:-1]}


def bad_scalar(inputs: Tensors) -> Tensors:
    return {"y": np.array(1.0)}


def bad_type(inputs: Tensors) -> Any:
    return {"y": inputs["x"].tolist()}


def bad_container(inputs: Tensors) -> Any:
    return [inputs["x"]]


@pytest.mark.parametrize(
    ("run_batch", "message"),
    [
        (bad_rows, "expected output 'y' to have 3 rows .*, got 2"),
        (bad_scalar, "expected output 'y' to be an array with a rows axis"),
        (bad_type, "expected output 'y' to be an array with a rows axis, got list"),
        (bad_container, "expected the model to return a mapping .*, got list"),
    ],
)
def test_outputs_without_one_row_per_input_row_are_internal_errors(
    run_batch: Callable[[Tensors], Any], message: str
) -> None:
    async def body() -> None:
        gate = HeldFirst(run_batch)
        async with DynamicBatcher(
            gate, max_batch_size=3, max_queue_delay_us=FOREVER_US, queue_depth=4
        ) as batcher:
            busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
            await wait_for_thread_event(gate.started)
            tasks = [asyncio.create_task(batcher.infer(tagged(i, 1))) for i in range(3)]
            await until(lambda: batcher.stats().waiting == 3)
            gate.release.set()
            check_own_rows(BUSY, 1, await busy)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert batcher.stats().failed_runs == 1
        first = results[0]
        assert isinstance(first, Internal)
        assert re.search(message, first.message)
        assert len(results) == 3 and all(result is first for result in results)

    run_async(body())


# -- lifecycle ---------------------------------------------------------------------------


def test_close_runs_the_waiting_requests_now_then_refuses() -> None:
    async def body() -> None:
        model = Model(hold=True)
        batcher = DynamicBatcher(
            model,
            max_batch_size=8,
            max_queue_delay_us=FOREVER_US,
            queue_depth=8,
            max_concurrent_batches=2,  # the three wait for company beside the busy slot
        )
        busy = asyncio.create_task(batcher.infer(tagged(BUSY, 1)))
        await wait_for_thread_event(model.started)
        tasks = [asyncio.create_task(batcher.infer(tagged(i, 1))) for i in range(3)]
        await until(lambda: batcher.stats().waiting == 3)
        closing = asyncio.create_task(batcher.close())
        for i, task in enumerate(tasks):  # run in the free slot, the busy one still held
            check_own_rows(i, 1, await task)
        assert not closing.done()  # waits for the busy batch too
        model.release.set()
        await closing
        check_own_rows(BUSY, 1, await busy)
        assert model.sizes == [1, 3]
        with pytest.raises(Unavailable, match="closed"):
            await batcher.infer(tagged(9, 1))
        await batcher.close()  # idempotent

    run_async(body())


def test_a_given_executor_runs_the_model_and_is_left_open() -> None:
    async def body() -> None:
        model = Model()
        with ThreadPoolExecutor(1, thread_name_prefix="given") as executor:
            async with DynamicBatcher(
                model, max_batch_size=2, max_queue_delay_us=0, queue_depth=2, executor=executor
            ) as batcher:
                check_own_rows(1, 2, await batcher.infer(tagged(1, 2)))
            assert executor.submit(lambda: 5).result() == 5
        assert model.threads[0].startswith("given")

    run_async(body())


def test_the_batcher_is_bound_to_the_loop_of_its_first_request() -> None:
    batcher = DynamicBatcher(Model(), max_batch_size=2, max_queue_delay_us=0, queue_depth=2)

    async def use() -> Tensors:
        return await batcher.infer(tagged(1, 1))

    check_own_rows(1, 1, asyncio.run(use()))
    with pytest.raises(RuntimeError, match="bound to another event loop"):
        asyncio.run(use())
    asyncio.run(batcher.close())  # nothing waits on the old loop: closing anywhere is fine


def test_outputs_are_numpy_arrays_of_the_callers_rows_only() -> None:
    async def body() -> None:
        def run_batch(inputs: Tensors) -> Tensors:
            return {"sum": inputs["x"].sum(axis=1, keepdims=True)}

        async with DynamicBatcher(
            run_batch, max_batch_size=4, max_queue_delay_us=FOREVER_US, queue_depth=4
        ) as batcher:
            a, b = await asyncio.gather(
                batcher.infer({"x": np.ones((3, 2), np.float32)}),
                batcher.infer({"x": np.full((1, 2), 5, np.float32)}),
            )
        out_a: npt.NDArray[Any] = a["sum"]
        np.testing.assert_array_equal(out_a, [[2], [2], [2]])
        np.testing.assert_array_equal(b["sum"], [[10]])

    run_async(body())


class Timed(Model):
    """``Model`` whose run of ``rows`` rows takes ``seconds_per_row * rows`` (a busy wait:
    what the batcher measures is wall time)."""

    def __init__(self, seconds_per_row: float) -> None:
        super().__init__()
        self.seconds_per_row = seconds_per_row

    def __call__(self, inputs: Tensors) -> Tensors:
        end = time.perf_counter() + self.seconds_per_row * len(inputs["pos"])
        while time.perf_counter() < end:
            pass
        return super().__call__(inputs)


def test_runs_measured_short_run_on_the_loop_and_longer_ones_in_the_executor() -> None:
    async def body() -> None:
        model = Timed(seconds_per_row=20e-6)
        async with DynamicBatcher(
            model, max_batch_size=64, max_queue_delay_us=0, queue_depth=8, inline_below_s=1e-3
        ) as batcher:
            for tag, rows in enumerate([1, 1, 2, 2000, 1], start=1):
                check_own_rows(tag, rows, await batcher.infer(tagged(tag, rows)))
        loop_thread = threading.current_thread().name
        # the first run is not measured yet: a thread; 2,000 rows at 20 us are 40 ms
        assert [name == loop_thread for name in model.threads] == [
            False,
            True,
            True,
            False,
            True,
        ]

    run_async(body())


def test_without_inline_below_s_every_run_is_in_the_executor() -> None:
    async def body() -> None:
        model = Model()
        async with DynamicBatcher(
            model, max_batch_size=4, max_queue_delay_us=0, queue_depth=4
        ) as batcher:
            for tag in range(5):
                check_own_rows(tag, 1, await batcher.infer(tagged(tag, 1)))
        assert all(name.startswith("lossserve-batch") for name in model.threads), model.threads

    run_async(body())


def test_a_model_that_turns_slow_goes_back_to_the_executor() -> None:
    async def body() -> None:
        model = Timed(seconds_per_row=10e-6)
        async with DynamicBatcher(
            model, max_batch_size=4, max_queue_delay_us=0, queue_depth=4, inline_below_s=1e-3
        ) as batcher:
            for tag in range(3):
                await batcher.infer(tagged(tag, 1))
            model.seconds_per_row = 20e-3  # on the loop once, measured, then a thread
            for tag in range(3, 12):
                await batcher.infer(tagged(tag, 1))
        loop_thread = threading.current_thread().name
        on_loop = [name == loop_thread for name in model.threads]
        assert on_loop[:4] == [False, True, True, True]
        assert not any(on_loop[4:]), on_loop

    run_async(body())
