"""The device worker pool: worker processes on CPU standing in for GPUs, faults the jobs inject.

Every test runs its own event loop with ``asyncio.run`` under a guard, so a hang fails the
test. Jobs run in other processes, so they are the picklable ones of ``jobs.py``, and they
tell the test how far they got through files; the only waits on a clock are the deadlines
under test.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import multiprocessing
import os
import pickle
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import losses
import lossserve.workers
from lossserve.core.engine import LossEngine
from lossserve.core.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from lossserve.core.types import LossRequest
from lossserve.workers import WorkerPool, WorkerStats, _child, _transport, default_devices
from lossserve.workers._transport import INLINE_BYTES
from lossserve.workers.pool import _Child

from . import jobs

CPUS = ["cpu", "cpu", "cpu"]
PRELOAD = ["tests.service.workers.jobs"]


def run_async(coro: Coroutine[Any, Any, None], guard: float = 30) -> None:
    """Run one test body on a fresh loop; a hang fails the test instead of blocking the run."""
    asyncio.run(asyncio.wait_for(coro, guard))


def pool_of(devices: list[str], **kwargs: Any) -> WorkerPool:
    return WorkerPool(devices, preload=PRELOAD, threads=1, **kwargs)


class Files:
    """File names under one folder: ``files.ran("a")`` and ``files.release("a")``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ran(self, name: str) -> str:
        return str(self.root / f"{name}.ran")

    def release(self, name: str) -> str:
        return str(self.root / f"{name}.release")

    def blocker(self, name: str, value: Any = None) -> jobs.Blocker:
        return jobs.Blocker(value, self.ran(name), self.release(name))

    def let_go(self, name: str) -> None:
        Path(self.release(name)).touch()

    def has_run(self, name: str) -> bool:
        return os.path.exists(self.ran(name))

    def pid(self, name: str) -> int:
        return int(Path(self.ran(name)).read_text().split()[0])

    async def reached(self, name: str) -> None:
        for _ in range(2000):
            if self.has_run(name):
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"job {name} never started")


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def column(pool: WorkerPool, field: str) -> list[Any]:
    return [getattr(stats, field) for stats in pool.stats()]


def gone(pid: int | None) -> bool:
    assert pid is not None
    return not os.path.exists(f"/proc/{pid}")


def segments() -> list[str]:
    """This process's shared-memory segments still in /dev/shm."""
    return [name for name in os.listdir("/dev/shm") if name.startswith(f"lossserve-{os.getpid()}-")]


# -- construction ------------------------------------------------------------------------


def test_exports_are_sorted_and_present() -> None:
    assert lossserve.workers.__all__ == sorted(lossserve.workers.__all__)
    for name in lossserve.workers.__all__:
        assert hasattr(lossserve.workers, name)


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
        (CPUS, {"queue_depth": 1, "workers_per_device": 0}, "expected workers_per_device >= 1"),
        (CPUS, {"queue_depth": 1, "threads": 0}, "expected threads >= 1 or None, got 0"),
    ],
)
def test_bad_arguments_raise(devices: Any, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerPool(devices, **kwargs)


def test_stats_before_start_show_idle_dead_workers() -> None:
    pool = WorkerPool(["cpu", "cuda:1"], queue_depth=2, workers_per_device=2)
    idle = {"queued": 0, "running": 0, "alive": False, "completed": 0, "failed": 0, "replaced": 0}
    assert pool.stats() == [
        WorkerStats("cpu", **idle),
        WorkerStats("cpu", **idle),
        WorkerStats("cuda:1", **idle),
        WorkerStats("cuda:1", **idle),
    ]
    assert pool.pids() == [None] * 4


def test_threads_default_to_the_cores_shared_out() -> None:
    cores = len(os.sched_getaffinity(0))
    assert WorkerPool(["cpu"], queue_depth=1).threads == cores
    assert WorkerPool(["cpu"] * (cores + 1), queue_depth=1).threads == 1
    assert WorkerPool(["cpu"], queue_depth=1, threads=3).threads == 3


def test_workers_run_on_the_cpus_given() -> None:
    """Not on those inherited: a frontend pinned to one CPU gives its workers them all."""
    cpus = sorted(os.sched_getaffinity(0))

    async def body() -> None:
        for given in ([cpus[-1]], cpus):
            async with WorkerPool(["cpu"], queue_depth=1, preload=PRELOAD, cpus=given) as pool:
                assert pool.threads == len(given)
                assert await pool.run(jobs.placement) == (given, len(given))

    run_async(body())


def test_run_before_start_and_after_stop_and_the_processes_are_gone() -> None:
    async def body() -> None:
        pool = pool_of(CPUS, queue_depth=1)
        with pytest.raises(RuntimeError, match="not been started"):
            await pool.run(jobs.Recorder())
        await pool.start()
        pids = pool.pids()
        assert len(set(pids)) == 3 and os.getpid() not in pids
        assert await pool.run(jobs.Recorder(7)) == 7
        assert await pool.run(jobs.started) == (pids[0], pytest.approx(time.monotonic(), abs=5))
        await pool.stop()
        with pytest.raises(Unavailable, match="shutting down"):
            await pool.run(jobs.Recorder())
        assert column(pool, "alive") == [False, False, False]
        assert all(gone(pid) for pid in pids if pid is not None)

    run_async(body())


def test_a_job_that_cannot_be_pickled_fails_at_once_and_queues_nothing() -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
                await pool.run(lambda device: 1)
            assert column(pool, "queued") == [0]
            assert await pool.run(jobs.Recorder(1)) == 1

    run_async(body())


# -- routing -----------------------------------------------------------------------------


def test_jobs_go_to_the_least_loaded_worker(files: Files) -> None:
    async def body() -> None:
        async with pool_of(CPUS, queue_depth=2) as pool:
            pids = pool.pids()
            slow = asyncio.create_task(pool.run(files.blocker("slow", "slow")))
            await files.reached("slow")
            assert column(pool, "running") == [1, 0, 0]
            assert files.pid("slow") == pids[0]

            # While worker 0 is busy, each job goes to the idle worker first in order.
            assert [await pool.run(jobs.started) for _ in range(3)] == [
                (pids[1], pytest.approx(time.monotonic(), abs=5))
            ] * 3
            assert column(pool, "completed") == [0, 3, 0]

            # Jobs held by their workers spread one per worker, then queue in worker order.
            held = []
            expected = [([1, 1, 0], [0, 0, 0]), ([1, 1, 1], [0, 0, 0]), ([1, 1, 1], [1, 0, 0])]
            for i, (running, queued) in enumerate(expected):
                held.append(asyncio.create_task(pool.run(files.blocker(f"b{i}", i))))
                await asyncio.sleep(0)  # the task enqueues its job
                assert column(pool, "running") == running
                assert column(pool, "queued") == queued
            await files.reached("b0")
            await files.reached("b1")
            assert [files.pid("b0"), files.pid("b1")] == [pids[1], pids[2]]

            for name in ("slow", "b0", "b1", "b2"):
                files.let_go(name)
            assert await slow == "slow"
            assert await asyncio.gather(*held) == [0, 1, 2]
            assert files.pid("b2") == pids[0]  # it waited behind worker 0's job

    run_async(body())


def test_full_pool_raises_at_once_and_queues_nothing(files: Files) -> None:
    async def body() -> None:
        async with pool_of(CPUS, queue_depth=1) as pool:
            blockers = [files.blocker(f"b{i}", i) for i in range(3)]
            waiting = [jobs.Recorder(10 + i) for i in range(3)]
            tasks = [asyncio.create_task(pool.run(job)) for job in (*blockers, *waiting)]
            for i in range(3):
                await files.reached(f"b{i}")
            assert column(pool, "running") == [1, 1, 1]
            assert column(pool, "queued") == [1, 1, 1]

            # It raises on its first step, before it could ever suspend.
            coro = pool.run(jobs.Recorder("never", files.ran("refused")))
            with pytest.raises(ResourceExhausted, match="all 3 workers are busy"):
                coro.send(None)
            assert column(pool, "queued") == [1, 1, 1]

            for i in range(3):
                files.let_go(f"b{i}")
            assert await asyncio.gather(*tasks) == [0, 1, 2, 10, 11, 12]
            assert not files.has_run("refused")
            assert await pool.run(jobs.Recorder("after")) == "after"

    run_async(body())


# -- deadlines and cancellation ----------------------------------------------------------


def test_deadline_while_queued_and_the_job_never_runs(files: Files) -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=2) as pool:
            first = asyncio.create_task(pool.run(files.blocker("first", "first")))
            await files.reached("first")

            with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.05 s"):
                await pool.run(jobs.Recorder("late", files.ran("late")), timeout=0.05)
            assert column(pool, "queued") == [0]  # its slot is free again

            files.let_go("first")
            assert await first == "first"
            assert await pool.run(jobs.Recorder("next")) == "next"
            assert not files.has_run("late")
            assert column(pool, "completed") == [2]
            assert column(pool, "replaced") == [0]

    run_async(body())


def test_deadline_while_running_kills_the_job_and_the_next_starts_within_a_second(
    files: Files,
) -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=2) as pool:
            [pid] = pool.pids()
            too_long = functools.partial(jobs.sleep, 30, files.ran("long"))
            slow = asyncio.create_task(pool.run(too_long, timeout=0.5))
            await files.reached("long")
            behind = asyncio.create_task(pool.run(jobs.started, timeout=10))
            await asyncio.sleep(0)
            assert column(pool, "queued") == [1]

            with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.5 s"):
                await slow
            expired = time.monotonic()
            new_pid, began = await behind
            assert began - expired < 1.0
            assert new_pid not in (pid, None)
            assert gone(pid)  # killed and reaped
            assert pool.stats() == [
                WorkerStats(
                    "cpu", queued=0, running=0, alive=True, completed=1, failed=1, replaced=1
                )
            ]

    run_async(body())


def test_no_deadline_needed_and_zero_deadline_refused(files: Files) -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            with pytest.raises(DeadlineExceeded, match="already passed"):
                await pool.run(jobs.Recorder(1, files.ran("zero")), timeout=0)
            assert column(pool, "queued") == [0]
            assert await pool.run(jobs.Recorder(2)) == 2
            assert not files.has_run("zero")

    run_async(body())


def test_cancelled_caller_skips_its_queued_job_and_kills_its_running_one(files: Files) -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=2) as pool:
            [pid] = pool.pids()
            running = asyncio.create_task(pool.run(files.blocker("running")))
            await files.reached("running")
            queued = asyncio.create_task(pool.run(jobs.Recorder("gone", files.ran("gone"))))
            await asyncio.sleep(0)
            assert column(pool, "queued") == [1]

            queued.cancel()  # a client that disconnected while waiting
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert column(pool, "queued") == [0]

            running.cancel()  # and one that disconnected while its job ran
            with pytest.raises(asyncio.CancelledError):
                await running
            new_pid, _ = await pool.run(jobs.started, timeout=5)
            assert new_pid != pid
            assert gone(pid)
            assert not files.has_run("gone")
            assert column(pool, "replaced") == [1]

    run_async(body())


# -- errors and crashes ------------------------------------------------------------------


def test_exceptions_come_back_with_their_type_message_and_details() -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            with pytest.raises(ValueError, match="label 7 is out of range"):
                await pool.run(functools.partial(jobs.fail, ValueError("label 7 is out of range")))
            with pytest.raises(InvalidArgument) as invalid:
                await pool.run(jobs.invalid)
            assert invalid.value.message == "targets: expected class indices in [0, 2], got 7"
            assert invalid.value.details == [{"field": "targets", "message": "out of range"}]
            # The job's own TimeoutError is not mistaken for the caller's deadline.
            with pytest.raises(TimeoutError, match="own timeout") as timed_out:
                await pool.run(
                    functools.partial(jobs.fail, TimeoutError("the job's own timeout")), timeout=5
                )
            assert not isinstance(timed_out.value, DeadlineExceeded)
            assert "In the worker process" in str(timed_out.value.__cause__)
            # One that cannot be rebuilt on this side still says what it was.
            with pytest.raises(
                Internal, match=r"exception \(UnpicklableError\) cannot be sent back"
            ):
                await pool.run(jobs.fail_unpicklable)
            assert await pool.run(jobs.Recorder(1)) == 1
            [stats] = pool.stats()
            assert (stats.failed, stats.completed, stats.replaced, stats.alive) == (4, 1, 0, True)

    run_async(body())


@pytest.mark.parametrize("fault", ["WorkerCrash", "SystemExit", "os._exit", "SIGKILL"])
def test_crash_fails_its_job_and_the_queued_jobs_run_on_a_replacement(
    fault: str, files: Files
) -> None:
    async def body() -> None:
        async with pool_of(["cpu", "cpu"], queue_depth=2) as pool:
            pids = pool.pids()
            crasher = jobs.Crasher(fault, files.ran("crasher"), files.release("crasher"))
            held = [
                asyncio.create_task(pool.run(crasher)),
                asyncio.create_task(pool.run(files.blocker("other", -1))),
            ]
            await files.reached("crasher")
            await files.reached("other")
            queued = [
                asyncio.create_task(pool.run(functools.partial(jobs.echo, i))) for i in range(4)
            ]
            await asyncio.sleep(0)
            assert column(pool, "queued") == [2, 2]  # 0 and 2 wait behind the crasher

            files.let_go("crasher")
            with pytest.raises(Unavailable, match=r"failed.*can be retried") as failed:
                await held[0]
            assert failed.value.retryable
            assert [await queued[0], await queued[2]] == [0, 2]
            assert pool.pids()[0] not in (pids[0], None)
            assert gone(pids[0])
            assert pool.stats()[0] == WorkerStats(
                "cpu", queued=0, running=0, alive=True, completed=2, failed=1, replaced=1
            )

            files.let_go("other")
            assert await asyncio.gather(*held[1:], *queued) == [-1, 0, 1, 2, 3]
            assert column(pool, "replaced") == [1, 0]
            assert pool.pids()[1] == pids[1]

    run_async(body())


def test_crash_names_what_killed_the_worker() -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            with pytest.raises(Unavailable, match=r"WorkerCrash: CUDA context lost"):
                await pool.run(jobs.Crasher("WorkerCrash"))
            with pytest.raises(Unavailable, match=r"killed by SIGKILL"):
                await pool.run(jobs.Crasher("SIGKILL"))
            with pytest.raises(Unavailable, match=r"exited with status 1"):
                await pool.run(jobs.Crasher("os._exit"))
            assert await pool.run(jobs.Recorder(1)) == 1
            assert column(pool, "replaced") == [3]

    run_async(body())


def test_a_worker_killed_while_idle_is_replaced() -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            [pid] = pool.pids()
            assert pid is not None
            os.kill(pid, 9)  # the kernel's OOM killer, say
            for _ in range(400):
                if pool.pids()[0] != pid and column(pool, "replaced") == [1]:
                    break
                await asyncio.sleep(0.005)
            assert column(pool, "replaced") == [1]
            assert (await pool.run(jobs.started))[0] not in (pid, None)

    run_async(body())


# -- out of memory -----------------------------------------------------------------------


def calls(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


@pytest.mark.parametrize("error", [MemoryError, torch.cuda.OutOfMemoryError])
def test_out_of_memory_splits_and_merges_in_the_worker(
    error: type[Exception], tmp_path: Path
) -> None:
    async def body() -> None:
        async with pool_of(CPUS, queue_depth=1) as pool:
            job = jobs.SumJob(np.arange(100), limit=30, calls=str(tmp_path / "c"), error=error)
            assert await pool.run(job, split=jobs.split_sum) == sum(range(100))
            assert calls(tmp_path / "c") == [100, 50, 25, 25, 50, 25, 25]
            assert column(pool, "completed") == [1, 0, 0]
            assert column(pool, "replaced") == [0, 0, 0]

    run_async(body())


def test_out_of_memory_without_split_asks_for_a_smaller_batch(tmp_path: Path) -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            job = jobs.SumJob(np.arange(100), 30, str(tmp_path / "c"), MemoryError)
            with pytest.raises(
                ResourceExhausted, match=r"did not fit in memory on cpu .*send a smaller batch"
            ):
                await pool.run(job)
            assert await pool.run(jobs.Recorder(1)) == 1
            assert column(pool, "failed") == [1]
            assert column(pool, "replaced") == [0]

    run_async(body())


def test_out_of_memory_split_stops_at_its_depth_limit(tmp_path: Path) -> None:
    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1, max_split_depth=2) as pool:
            job = jobs.SumJob(np.arange(64), 0, str(tmp_path / "c"), MemoryError)
            with pytest.raises(
                ResourceExhausted, match=r"even after splitting it into 4 parts.*smaller batch"
            ):
                await pool.run(job, split=jobs.split_sum)
            assert calls(tmp_path / "c") == [64, 32, 16]  # gives up at the first piece past it
            assert await pool.run(jobs.Recorder(1)) == 1

    run_async(body())


def test_the_loss_engine_jobs_and_splitter_run_in_the_worker() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 5)).astype(np.float32)
    targets = rng.integers(0, 5, size=64)
    request = LossRequest("focal", logits, targets, reduction="none", return_grad=True)

    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            job, split = LossEngine(pool, max_elements=10**6).prepare(request)
            whole = await pool.run(job, split=split)
            first, second, merge = split(job)  # what the worker does when memory runs out
            halves = merge(await pool.run(first), await pool.run(second))
            expected = torch.from_numpy(logits).requires_grad_()
            loss = losses.compute("focal", expected, torch.from_numpy(targets), reduction="none")
            (grad,) = torch.autograd.grad(loss.sum(), expected)
            for result in (whole, halves):
                np.testing.assert_allclose(result.value, loss.detach().numpy(), rtol=1e-6)
                np.testing.assert_allclose(result.grad, grad.numpy(), rtol=1e-6)
                assert result.device == "cpu"

    run_async(body())


# -- tensors across the boundary ---------------------------------------------------------


def warm_segments() -> list[str]:
    """This process's warm segments (one for jobs, one for results, per worker)."""
    return sorted(name for name in segments() if name.endswith(("wi", "wo")))


def test_large_arrays_reach_the_worker_in_shared_memory_without_a_copy() -> None:
    big = np.arange(8 * 1024 * 1024, dtype=np.float32)  # 32 MiB: the warm segment
    huge = np.zeros(20 * 1024 * 1024, dtype=np.float32)  # 80 MiB: a segment of its own
    small = np.arange(16, dtype=np.float32)

    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            where, writable, total = await pool.run(functools.partial(jobs.inspect, big))
            assert where.startswith("/dev/shm/lossserve-") and where.endswith("wi"), where
            assert writable
            assert total == float(big.sum(dtype=np.float64))
            where, writable, total = await pool.run(functools.partial(jobs.inspect, huge))
            assert where.startswith("/dev/shm/lossserve-") and where.endswith("i"), where
            assert (writable, total) == (True, 0.0)
            # Small ones travel in the pipe, and are writable too.
            where, writable, total = await pool.run(functools.partial(jobs.inspect, small))
            assert not where.startswith("/dev/shm/")
            assert (writable, total) == (True, 120.0)

            # The way back: a result from the warm segment is copied out (the next job
            # writes that segment); a larger one is a view of its own (unlinked) segment.
            result = await pool.run(functools.partial(jobs.ones, 4 * 1024 * 1024))
            assert not jobs.mapping_of(result).startswith("/dev/shm/")
            assert result.flags.writeable and result.shape == (4 * 1024 * 1024,)
            assert float(result.sum()) == 4 * 1024 * 1024
            again = await pool.run(functools.partial(jobs.ones, 1024 * 1024))
            assert float(result.sum()) == 4 * 1024 * 1024 and float(again.sum()) == 1024 * 1024
            larger = await pool.run(functools.partial(jobs.ones, 20 * 1024 * 1024))
            assert jobs.mapping_of(larger).endswith("(deleted)")
            assert float(larger.sum()) == 20 * 1024 * 1024
            # only the worker's two warm segments are left while it runs
            assert sorted(segments()) == warm_segments() and len(warm_segments()) == 2
        assert segments() == []

    run_async(body())


def _no_room(fd: int, offset: int, length: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_payload_dev_shm_cannot_hold_is_refused_before_it_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write to a page that a full /dev/shm cannot give kills the writer with SIGBUS (a
    container's /dev/shm is 64 MiB by default): pages are taken first, and a payload
    without them is not written. A worker then answers through its pipe; the parent, which
    sends jobs on its loop, refuses the request with RESOURCE_EXHAUSTED naming /dev/shm."""
    header, raws = _transport.dump(np.arange(1024 * 1024, dtype=np.float32))
    name = _transport.new_name("t")
    monkeypatch.setattr(_transport.os, "posix_fallocate", _no_room)
    try:
        with pytest.raises(_transport.NoRoomError, match=r"/dev/shm has no room"):
            _transport.pack(header, raws, name)
        with pytest.raises(_transport.NoRoomError):
            _transport.pack(header, raws, name + "w", warm=True)
        reply = pickle.loads(
            _child._reply(
                ("ok", np.ones(1024 * 1024)),
                _child.JobMessage(_transport.pack(b"", [], None), name + "r", name + "wr"),
            )
        )
        assert reply[0] == "done" and reply[1].segment is None  # inline, through the pipe
        assert np.array_equal(_transport.unpack(reply[1])[1], np.ones(1024 * 1024))
    finally:
        for suffix in ("", "w", "r", "wr"):
            _transport.forget(name + suffix)

    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            big = np.ones(4 * 1024 * 1024, dtype=np.float32)
            with pytest.raises(ResourceExhausted, match=r"/dev/shm has no room"):
                await pool.run(functools.partial(jobs.inspect, big))
            assert await pool.run(functools.partial(jobs.echo, 7)) == 7  # the worker is fine
            assert [name for name in segments() if not name.endswith(("wi", "wo"))] == []

    run_async(body())


def test_results_with_arrays_come_back_right() -> None:
    rng = np.random.default_rng(1)
    large = rng.normal(size=(300, 200))  # over INLINE_BYTES: through shared memory
    assert large.nbytes > INLINE_BYTES
    value = {
        "f32": rng.normal(size=(7, 3)).astype(np.float32),
        "f16": rng.normal(size=5).astype(np.float16),
        "i64": np.arange(-5, 5),
        "bool": np.array([True, False, True]),
        "fortran": np.asfortranarray(rng.normal(size=(4, 6))),
        "strided": np.arange(40)[::3],
        "scalar": np.float64(2.5),
        "zero_d": np.array(3.0),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "large": large,
        "large_fortran": np.asfortranarray(large),
        "nested": [large[:10], (np.int32(1), "text")],
    }

    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=1) as pool:
            got = await pool.run(functools.partial(jobs.echo, value))
            assert got.keys() == value.keys()
            for key in value:
                if key == "nested":
                    np.testing.assert_array_equal(got[key][0], value[key][0])
                    assert got[key][1] == value[key][1]
                    continue
                np.testing.assert_array_equal(got[key], value[key], err_msg=key)
                assert np.asarray(got[key]).dtype == np.asarray(value[key]).dtype, key
            assert got["fortran"].flags.f_contiguous
            assert got["large"].flags.writeable
            got["large"][0, 0] = 1.0  # the caller owns it
            assert sorted(segments()) == warm_segments()
        assert segments() == []

    run_async(body())


def test_shared_memory_segments_are_unlinked_after_success_error_and_kill(files: Files) -> None:
    big = np.zeros(4 * 1024 * 1024, dtype=np.float32)

    async def body() -> None:
        async with pool_of(["cpu"], queue_depth=2) as pool:
            await pool.run(functools.partial(jobs.echo, big))
            with pytest.raises(ValueError, match="boom"):
                await pool.run(functools.partial(jobs.fail, ValueError("boom")), timeout=5)
            with pytest.raises(Unavailable):
                await pool.run(jobs.Crasher("SIGKILL"))
            # Killed at its deadline while it holds a large input.
            long = asyncio.create_task(
                pool.run(functools.partial(jobs.sleep, 30, files.ran("long")), timeout=5)
            )
            await files.reached("long")
            with pytest.raises(DeadlineExceeded):
                await pool.run(functools.partial(jobs.inspect, big), timeout=0.05)  # queued
            long.cancel()
            with pytest.raises(asyncio.CancelledError):
                await long
            assert (await pool.run(functools.partial(jobs.inspect, big)))[2] == 0.0
            assert sorted(segments()) == warm_segments()

    run_async(body())
    assert segments() == []


# -- load --------------------------------------------------------------------------------


def expected_sum_of_squares(i: int) -> tuple[int, float]:
    return i, float(i * (i + 1) * (2 * i + 1) // 6)


async def stagger(i: int) -> None:
    """Client i submits after ``i % 7`` turns of the loop, so arrivals and completions mix."""
    for _ in range(i % 7):
        await asyncio.sleep(0)


def test_100_concurrent_requests_with_faults_mixed_in() -> None:
    async def body() -> None:
        async with pool_of(CPUS, queue_depth=2) as pool:

            async def client(i: int) -> tuple[int, float]:
                await stagger(i)
                return await pool.run(functools.partial(jobs.faulty, i), timeout=10)

            answers = await asyncio.gather(*(client(i) for i in range(100)), return_exceptions=True)
            crashed = raised = done = 0
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
                    done += 1
            # Clients 0, 7 and 14 arrive first, in one turn of the loop, and are admitted.
            assert crashed >= 1 and done >= 1
            assert sum(column(pool, "replaced")) == crashed
            assert sum(column(pool, "completed")) == done
            assert column(pool, "alive") == [True, True, True]
            assert column(pool, "queued") == [0, 0, 0]
            assert await pool.run(functools.partial(jobs.sum_of_squares, 9)) == (
                expected_sum_of_squares(9)
            )

    run_async(body())


# -- stopping ----------------------------------------------------------------------------


def test_stop_drains_queued_and_running_jobs(files: Files) -> None:
    async def body() -> None:
        pool = pool_of(["cpu"], queue_depth=2)
        await pool.start()
        [pid] = pool.pids()
        tasks = [
            asyncio.create_task(pool.run(job))
            for job in (files.blocker("running", "running"), jobs.Recorder("queued"))
        ]
        await files.reached("running")
        stopping = asyncio.create_task(pool.stop())
        await asyncio.sleep(0)
        with pytest.raises(Unavailable, match="shutting down"):
            await pool.run(jobs.Recorder())
        assert not stopping.done()
        files.let_go("running")
        await stopping
        assert await asyncio.gather(*tasks) == ["running", "queued"]
        assert column(pool, "alive") == [False]
        assert gone(pid)

    run_async(body())


def test_stop_without_drain_kills_running_and_fails_pending_jobs_as_retryable(
    files: Files,
) -> None:
    async def body() -> None:
        pool = pool_of(["cpu"], queue_depth=2)
        await pool.start()
        [pid] = pool.pids()
        queued_job = jobs.Recorder("queued", files.ran("queued"))
        tasks = [
            asyncio.create_task(pool.run(job)) for job in (files.blocker("running"), queued_job)
        ]
        await files.reached("running")
        await pool.stop(drain=False)
        for task in tasks:
            with pytest.raises(Unavailable, match="shut down"):
                await task
        assert gone(pid)  # killed, not left running
        assert not files.has_run("queued")

    run_async(body())


def test_stop_with_a_drain_timeout_kills_what_is_still_running(files: Files) -> None:
    async def body() -> None:
        pool = pool_of(["cpu"], queue_depth=1)
        await pool.start()
        [pid] = pool.pids()
        task = asyncio.create_task(pool.run(files.blocker("running")))
        await files.reached("running")
        started = time.monotonic()
        await pool.stop(timeout=0.2)
        assert time.monotonic() - started < 2
        with pytest.raises(Unavailable, match="shut down"):
            await task
        assert gone(pid)

    run_async(body())


def test_a_worker_on_a_device_this_machine_lacks_says_why_it_did_not_start() -> None:
    """The child's own error reaches the operator, not only "exited with status 1"."""

    async def body() -> None:
        pool = pool_of(["cuda:999"], queue_depth=1)  # an ordinal no machine has
        with pytest.raises(RuntimeError, match=r"on cuda:999 did not start: \w+Error: .+"):
            await pool.start()
        await pool.stop()

    run_async(body())


def test_a_reply_written_in_two_parts_arrives_whole_on_uvloop() -> None:
    """The server's loop is uvloop, whose add_reader makes the pipe non-blocking: a reply
    between 16 and 64 KiB (inline, written as a length and then the bytes) whose second part
    came late was lost, and its job hung until its deadline killed the worker."""
    uvloop = pytest.importorskip("uvloop")  # a dependency wherever it installs
    reply = ("done", b"x" * 40_000)
    body = pickle.dumps(reply)
    context = multiprocessing.get_context("spawn")

    async def main() -> None:
        parent, end = context.Pipe(duplex=True)
        process = context.Process(target=jobs.reply_in_two_writes, args=(end, body, 0.3))
        process.start()
        end.close()
        child = _Child(process, parent, asyncio.get_running_loop())
        try:
            assert await asyncio.wait_for(child.request(b"job"), 10) == reply
        finally:
            await child.stop()

    uvloop.run(asyncio.wait_for(main(), 30))
