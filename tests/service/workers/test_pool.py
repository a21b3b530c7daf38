"""The device worker pool, with CPU workers standing in for GPUs and faults the jobs inject.

Every test runs its own event loop with ``asyncio.run`` under a 10 s guard, and orders
events with ``threading.Event`` rather than sleeps; the only waits on a clock are the
deadlines under test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import torch

import service.workers
from service.core.errors import DeadlineExceeded, ResourceExhausted, Unavailable
from service.workers import WorkerCrash, WorkerPool, WorkerStats, default_devices

CPUS = ["cpu", "cpu", "cpu"]


def run_async(coro: Coroutine[Any, Any, None]) -> None:
    """Run one test body on a fresh loop; a hang fails the test instead of blocking the run."""
    asyncio.run(asyncio.wait_for(coro, 10))


async def wait_for_thread_event(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 5), "the job never reached this point"


class Recorder:
    """Returns ``value`` and notes that it ran, and on which thread."""

    def __init__(self, value: Any = None) -> None:
        self.value = value
        self.ran = threading.Event()
        self.thread: int | None = None
        self.device: str | None = None

    def __call__(self, device: str) -> Any:
        self.thread = threading.get_ident()
        self.device = device
        self.ran.set()
        return self.value


class Blocker(Recorder):
    """Holds its worker until ``release`` is set, then returns ``value``."""

    def __init__(self, value: Any = None) -> None:
        super().__init__(value)
        self.release = threading.Event()

    def __call__(self, device: str) -> Any:
        value = super().__call__(device)
        if not self.release.wait(5):
            raise TimeoutError("the test never released this job")
        return value


class Crasher(Blocker):
    """Holds its worker until released, then kills it."""

    def __init__(self, fault: BaseException) -> None:
        super().__init__()
        self.fault = fault

    def __call__(self, device: str) -> Any:
        super().__call__(device)
        raise self.fault


def column(pool: WorkerPool, field: str) -> list[Any]:
    return [getattr(stats, field) for stats in pool.stats()]


# -- construction ------------------------------------------------------------------------


def test_exports_are_sorted_and_present() -> None:
    assert service.workers.__all__ == sorted(service.workers.__all__)
    for name in service.workers.__all__:
        assert hasattr(service.workers, name)


def test_default_devices_is_cpu_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_devices() == ["cpu"]


def test_default_devices_lists_every_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert default_devices() == ["cuda:0", "cuda:1"]


@pytest.mark.parametrize(
    ("devices", "kwargs", "message"),
    [
        ([], {"queue_depth": 1}, "non-empty sequence"),
        ("cpu", {"queue_depth": 1}, "non-empty sequence"),
        (CPUS, {"queue_depth": 0}, "expected queue_depth >= 1, got 0"),
        (CPUS, {"queue_depth": 1, "max_split_depth": -1}, "expected max_split_depth >= 0"),
    ],
)
def test_bad_arguments_raise(devices: Any, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerPool(devices, **kwargs)


def test_stats_before_start_show_idle_dead_workers() -> None:
    pool = WorkerPool(["cpu", "cuda:1"], queue_depth=2)
    assert pool.stats() == [
        WorkerStats("cpu", queued=0, running=0, alive=False, completed=0, failed=0, replaced=0),
        WorkerStats("cuda:1", queued=0, running=0, alive=False, completed=0, failed=0, replaced=0),
    ]


def test_run_before_start_and_after_stop() -> None:
    async def body() -> None:
        pool = WorkerPool(CPUS, queue_depth=1)
        with pytest.raises(RuntimeError, match="not been started"):
            await pool.run(Recorder())
        await pool.start()
        assert await pool.run(Recorder(7)) == 7
        await pool.stop()
        with pytest.raises(Unavailable, match="shutting down"):
            await pool.run(Recorder())
        assert column(pool, "alive") == [False, False, False]

    run_async(body())


# -- routing -----------------------------------------------------------------------------


def test_jobs_go_to_the_least_loaded_worker() -> None:
    async def body() -> None:
        async with WorkerPool(CPUS, queue_depth=2) as pool:
            blocker = Blocker("slow")
            slow = asyncio.create_task(pool.run(blocker))
            await wait_for_thread_event(blocker.ran)
            assert column(pool, "running") == [1, 0, 0]

            # While worker 0 is busy, each job goes to the idle worker first in order.
            quick = [Recorder(i) for i in range(5)]
            assert [await pool.run(job) for job in quick] == list(range(5))
            assert {job.thread for job in quick} == {quick[0].thread}
            assert quick[0].thread != blocker.thread
            assert column(pool, "completed") == [0, 5, 0]

            # Jobs held by their workers spread one per worker, then queue in device order.
            blockers = [Blocker(i) for i in range(3)]
            held = []
            expected = [([1, 1, 0], [0, 0, 0]), ([1, 1, 1], [0, 0, 0]), ([1, 1, 1], [1, 0, 0])]
            for job, (running, queued) in zip(blockers, expected, strict=True):
                held.append(asyncio.create_task(pool.run(job)))
                await asyncio.sleep(0)  # the task enqueues its job
                assert column(pool, "running") == running
                assert column(pool, "queued") == queued
            await wait_for_thread_event(blockers[0].ran)
            await wait_for_thread_event(blockers[1].ran)
            assert blockers[0].thread == quick[0].thread  # the idle worker 1 took it
            assert len({blocker.thread, blockers[0].thread, blockers[1].thread}) == 3

            for job in (blocker, *blockers):
                job.release.set()
            assert await slow == "slow"
            assert await asyncio.gather(*held) == [0, 1, 2]
            assert blockers[2].thread == blocker.thread  # it waited behind worker 0's job

    run_async(body())


def test_full_pool_raises_at_once_and_queues_nothing() -> None:
    async def body() -> None:
        async with WorkerPool(CPUS, queue_depth=1) as pool:
            blockers = [Blocker(i) for i in range(3)]
            waiting = [Recorder(10 + i) for i in range(3)]
            tasks = [asyncio.create_task(pool.run(job)) for job in (*blockers, *waiting)]
            for blocker in blockers:
                await wait_for_thread_event(blocker.ran)
            assert column(pool, "running") == [1, 1, 1]
            assert column(pool, "queued") == [1, 1, 1]

            # It raises on its first step, before it could ever suspend.
            refused = Recorder("never")
            coro = pool.run(refused)
            with pytest.raises(ResourceExhausted, match="all 3 workers are busy"):
                coro.send(None)
            assert column(pool, "queued") == [1, 1, 1]

            for blocker in blockers:
                blocker.release.set()
            assert await asyncio.gather(*tasks) == [0, 1, 2, 10, 11, 12]
            assert not refused.ran.is_set()
            assert await pool.run(Recorder("after")) == "after"

    run_async(body())


# -- deadlines and cancellation ----------------------------------------------------------


def test_deadline_while_queued_and_the_job_never_runs() -> None:
    async def body() -> None:
        async with WorkerPool(["cpu"], queue_depth=2) as pool:
            blocker = Blocker("first")
            first = asyncio.create_task(pool.run(blocker))
            await wait_for_thread_event(blocker.ran)

            abandoned = Recorder("late")
            with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.05 s"):
                await pool.run(abandoned, timeout=0.05)
            assert column(pool, "queued") == [0]  # its slot is free again

            blocker.release.set()
            assert await first == "first"
            assert await pool.run(Recorder("next")) == "next"  # runs after where it stood
            assert not abandoned.ran.is_set()
            assert column(pool, "completed") == [2]

    run_async(body())


def test_deadline_while_running_leaves_the_worker_healthy() -> None:
    async def body() -> None:
        async with WorkerPool(["cpu"], queue_depth=1) as pool:
            blocker = Blocker("too late")
            with pytest.raises(DeadlineExceeded):
                await pool.run(blocker, timeout=0.05)
            assert blocker.ran.is_set()
            assert column(pool, "running") == [1]  # threads cannot be interrupted
            blocker.release.set()
            after = Recorder("after")
            assert await pool.run(after, timeout=5) == "after"
            assert after.thread == blocker.thread
            assert column(pool, "completed") == [2]

    run_async(body())


def test_no_deadline_needed_and_zero_deadline_refused() -> None:
    async def body() -> None:
        async with WorkerPool(["cpu"], queue_depth=1) as pool:
            job = Recorder()
            with pytest.raises(DeadlineExceeded, match="already passed"):
                await pool.run(job, timeout=0)
            assert not job.ran.is_set()
            assert column(pool, "queued") == [0]

    run_async(body())


def test_cancelled_caller_skips_its_queued_job() -> None:
    async def body() -> None:
        async with WorkerPool(["cpu"], queue_depth=2) as pool:
            blocker = Blocker("first")
            first = asyncio.create_task(pool.run(blocker))
            await wait_for_thread_event(blocker.ran)

            gone = Recorder("gone")
            client = asyncio.create_task(pool.run(gone))  # a client that will disconnect
            await asyncio.sleep(0)
            assert column(pool, "queued") == [1]
            client.cancel()
            with pytest.raises(asyncio.CancelledError):
                await client
            assert column(pool, "queued") == [0]

            blocker.release.set()
            assert await first == "first"
            assert await pool.run(Recorder("next")) == "next"
            assert not gone.ran.is_set()

    run_async(body())


# -- errors and crashes ------------------------------------------------------------------


def test_ordinary_exception_propagates_unchanged_and_the_worker_survives() -> None:
    error = ValueError("label 7 is out of range")

    def bad(device: str) -> None:
        raise error

    def times_out(device: str) -> None:
        raise TimeoutError("the job's own timeout")

    async def body() -> None:
        async with WorkerPool(["cpu"], queue_depth=1) as pool:
            with pytest.raises(ValueError, match="out of range") as raised:
                await pool.run(bad)
            assert raised.value is error
            # The job's own TimeoutError is not mistaken for the caller's deadline.
            with pytest.raises(TimeoutError, match="own timeout") as timed_out:
                await pool.run(times_out, timeout=5)
            assert not isinstance(timed_out.value, DeadlineExceeded)
            assert await pool.run(Recorder(1)) == 1
            [stats] = pool.stats()
            assert (stats.failed, stats.completed, stats.replaced, stats.alive) == (2, 1, 0, True)

    run_async(body())


@pytest.mark.parametrize(
    "fault", [WorkerCrash("CUDA context lost"), SystemExit(3)], ids=["WorkerCrash", "SystemExit"]
)
def test_crash_fails_its_job_and_the_queued_jobs_run_on_a_replacement(
    fault: BaseException,
) -> None:
    async def body() -> None:
        async with WorkerPool(CPUS, queue_depth=2) as pool:
            crasher = Crasher(fault)
            blockers = [Blocker(-1), Blocker(-2)]
            held = [asyncio.create_task(pool.run(job)) for job in (crasher, *blockers)]
            for job in (crasher, *blockers):
                await wait_for_thread_event(job.ran)
            queued_jobs = [Recorder(i) for i in range(6)]
            queued = [asyncio.create_task(pool.run(job)) for job in queued_jobs]
            await asyncio.sleep(0)
            assert column(pool, "queued") == [2, 2, 2]  # 0 and 3 wait behind the crasher

            crasher.release.set()
            with pytest.raises(Unavailable, match=r"failed.*can be retried") as failed:
                await held[0]
            assert failed.value.retryable
            assert [await queued[0], await queued[3]] == [0, 3]
            for behind in (queued_jobs[0], queued_jobs[3]):
                assert behind.thread not in (None, crasher.thread)
                assert behind.device == "cpu"
            assert pool.stats()[0] == WorkerStats(
                "cpu", queued=0, running=0, alive=True, completed=2, failed=1, replaced=1
            )

            for blocker in blockers:
                blocker.release.set()
            assert await asyncio.gather(*held[1:], *queued) == [-1, -2, 0, 1, 2, 3, 4, 5]
            assert column(pool, "replaced") == [1, 0, 0]
            assert column(pool, "alive") == [True, True, True]
            assert column(pool, "failed") == [1, 0, 0]

    run_async(body())


# -- out of memory -----------------------------------------------------------------------


class SumJob:
    """Sums its values with torch, running out of memory above ``limit`` of them."""

    def __init__(
        self, values: list[int], limit: int, calls: list[int], error: type[Exception]
    ) -> None:
        self.values, self.limit, self.calls, self.error = values, limit, calls, error

    def __call__(self, device: str) -> int:
        self.calls.append(len(self.values))
        if len(self.values) > self.limit:
            raise self.error(f"tried to allocate {len(self.values)} items")
        return int(torch.tensor(self.values, dtype=torch.int64, device=device).sum())


def split_sum(
    job: Callable[[str], int],
) -> tuple[Callable[[str], int], Callable[[str], int], Callable[[int, int], int]]:
    assert isinstance(job, SumJob)
    half = len(job.values) // 2
    first = SumJob(job.values[:half], job.limit, job.calls, job.error)
    second = SumJob(job.values[half:], job.limit, job.calls, job.error)
    return first, second, lambda a, b: a + b


@pytest.mark.parametrize("error", [MemoryError, torch.cuda.OutOfMemoryError])
def test_out_of_memory_splits_and_merges(error: type[Exception]) -> None:
    async def body() -> None:
        async with WorkerPool(CPUS, queue_depth=1) as pool:
            calls: list[int] = []
            job = SumJob(list(range(100)), limit=30, calls=calls, error=error)
            assert await pool.run(job, split=split_sum) == sum(range(100))
            assert calls == [100, 50, 25, 25, 50, 25, 25]
            assert column(pool, "completed") == [1, 0, 0]

    run_async(body())


def test_out_of_memory_without_split_asks_for_a_smaller_batch() -> None:
    async def body() -> None:
        async with WorkerPool(CPUS, queue_depth=1) as pool:
            job = SumJob(list(range(100)), limit=30, calls=[], error=MemoryError)
            with pytest.raises(
                ResourceExhausted, match=r"did not fit in memory on cpu .*send a smaller batch"
            ):
                await pool.run(job)
            assert await pool.run(Recorder(1)) == 1
            assert column(pool, "failed") == [1, 0, 0]
            assert column(pool, "replaced") == [0, 0, 0]

    run_async(body())


def test_out_of_memory_split_stops_at_its_depth_limit() -> None:
    async def body() -> None:
        async with WorkerPool(CPUS, queue_depth=1, max_split_depth=2) as pool:
            calls: list[int] = []
            job = SumJob(list(range(64)), limit=0, calls=calls, error=MemoryError)
            with pytest.raises(
                ResourceExhausted, match=r"even after splitting it into 4 parts.*smaller batch"
            ):
                await pool.run(job, split=split_sum)
            assert calls == [64, 32, 16]  # gives up at the first piece past the limit
            assert await pool.run(Recorder(1)) == 1

    run_async(body())


def test_abandoned_split_job_stops_between_its_halves() -> None:
    gate = Blocker()
    second_half = Recorder()

    def whole(device: str) -> int:
        raise MemoryError

    def split(
        job: Callable[[str], Any],
    ) -> tuple[Callable[[str], Any], Callable[[str], Any], Callable[[Any, Any], Any]]:
        return gate, second_half, lambda a, b: (a, b)

    async def body() -> None:
        async with WorkerPool(["cpu"], queue_depth=1) as pool:
            with pytest.raises(DeadlineExceeded):
                await pool.run(whole, timeout=0.05, split=split)
            gate.release.set()
            assert await pool.run(Recorder("next")) == "next"
            assert gate.ran.is_set()
            assert not second_half.ran.is_set()

    run_async(body())


# -- load --------------------------------------------------------------------------------


def sum_of_squares(i: int) -> Callable[[str], tuple[int, float]]:
    def job(device: str) -> tuple[int, float]:
        values = torch.arange(i + 1, dtype=torch.float64, device=device)
        return i, float((values * values).sum())

    return job


def expected_sum_of_squares(i: int) -> tuple[int, float]:
    return i, float(i * (i + 1) * (2 * i + 1) // 6)


async def stagger(i: int) -> None:
    """Client i submits after ``i % 7`` turns of the loop, so arrivals and completions mix."""
    for _ in range(i % 7):
        await asyncio.sleep(0)


def test_200_concurrent_requests_each_answered_correctly_or_refused() -> None:
    async def body() -> None:
        async with WorkerPool(CPUS, queue_depth=2) as pool:

            async def client(i: int) -> tuple[int, float]:
                await stagger(i)
                return await pool.run(sum_of_squares(i), timeout=5)

            answers = await asyncio.gather(*(client(i) for i in range(200)), return_exceptions=True)
            done = refused = 0
            for i, answer in enumerate(answers):
                if isinstance(answer, ResourceExhausted):
                    refused += 1
                else:
                    assert answer == expected_sum_of_squares(i)
                    done += 1
            assert done + refused == 200
            # The 29 clients with i % 7 == 0 arrive in one turn of the loop, before any
            # job can finish: 3 run, 6 wait, 20 are refused.
            assert done >= 9
            assert refused >= 20
            assert sum(column(pool, "completed")) == done
            assert column(pool, "queued") == [0, 0, 0]
            assert column(pool, "running") == [0, 0, 0]
            assert column(pool, "alive") == [True, True, True]
            assert column(pool, "failed") == [0, 0, 0]
            assert await pool.run(sum_of_squares(500)) == expected_sum_of_squares(500)

    run_async(body())


def test_200_concurrent_requests_with_faults_mixed_in() -> None:
    def job(i: int) -> Callable[[str], tuple[int, float]]:
        def faulty(device: str) -> tuple[int, float]:
            if i % 10 == 7:
                raise WorkerCrash(f"crash {i}")
            if i % 10 == 4:
                raise ValueError(f"bad {i}")
            return sum_of_squares(i)(device)

        return faulty

    async def body() -> None:
        async with WorkerPool(CPUS, queue_depth=2) as pool:

            async def client(i: int) -> tuple[int, float]:
                await stagger(i)
                return await pool.run(job(i), timeout=5)

            answers = await asyncio.gather(*(client(i) for i in range(200)), return_exceptions=True)
            crashed = raised = 0
            for i, answer in enumerate(answers):
                if isinstance(answer, ResourceExhausted):
                    continue
                if i % 10 == 7:
                    assert isinstance(answer, Unavailable)
                    crashed += 1
                elif i % 10 == 4:
                    assert isinstance(answer, ValueError)
                    assert str(answer) == f"bad {i}"
                    raised += 1
                else:
                    assert answer == expected_sum_of_squares(i)
            # Clients 0, 7 and 14 arrive first, in one turn of the loop, and are admitted.
            assert crashed >= 1
            assert raised >= 1
            assert sum(column(pool, "replaced")) == crashed
            assert column(pool, "alive") == [True, True, True]
            assert column(pool, "queued") == [0, 0, 0]
            assert await pool.run(sum_of_squares(9)) == expected_sum_of_squares(9)

    run_async(body())


# -- stopping ----------------------------------------------------------------------------


def test_stop_drains_queued_and_running_jobs() -> None:
    async def body() -> None:
        pool = WorkerPool(["cpu"], queue_depth=2)
        await pool.start()
        blocker = Blocker("running")
        tasks = [asyncio.create_task(pool.run(job)) for job in (blocker, Recorder("queued"))]
        await wait_for_thread_event(blocker.ran)
        stopping = asyncio.create_task(pool.stop())
        await asyncio.sleep(0)
        with pytest.raises(Unavailable, match="shutting down"):
            await pool.run(Recorder())
        assert not stopping.done()
        blocker.release.set()
        await stopping
        assert await asyncio.gather(*tasks) == ["running", "queued"]
        assert column(pool, "alive") == [False]

    run_async(body())


def test_stop_without_drain_fails_pending_jobs_as_retryable() -> None:
    async def body() -> None:
        pool = WorkerPool(["cpu"], queue_depth=2)
        await pool.start()
        blocker = Blocker("running")
        queued_job = Recorder("queued")
        tasks = [asyncio.create_task(pool.run(job)) for job in (blocker, queued_job)]
        await wait_for_thread_event(blocker.ran)
        await pool.stop(drain=False)
        for task in tasks:
            with pytest.raises(Unavailable, match="shut down"):
                await task
        blocker.release.set()
        assert not queued_job.ran.is_set()

    run_async(body())
