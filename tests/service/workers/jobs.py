"""Picklable jobs for the worker-pool tests.

They run in worker processes, so they are module-level and light to import (a worker
imports this module when it unpickles its first job). They tell the test how far they got
through files: a job writes ``ran`` (its pid and device) when it starts, and a blocking job
waits until the test creates ``release``.
"""

from __future__ import annotations

import os
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossserve.core.errors import InvalidArgument
from lossserve.workers import WorkerCrash

WAIT_S = 10.0


def _mark(path: str | None, device: str) -> None:
    """Write ``path`` whole at once (a rename), so a test that sees it reads its content,
    never the empty file ``write_text`` makes first."""
    if path is not None:
        partial = Path(f"{path}.partial")
        partial.write_text(f"{os.getpid()} {device} {time.monotonic()!r}")
        partial.replace(path)


def _wait(path: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never released this job")
        time.sleep(0.002)


@dataclass(frozen=True)
class Recorder:
    """Returns ``value``; writes ``ran`` first."""

    value: Any = None
    ran: str | None = None

    def __call__(self, device: str) -> Any:
        _mark(self.ran, device)
        return self.value


@dataclass(frozen=True)
class Blocker:
    """Writes ``ran``, holds its worker until ``release`` exists, then returns ``value``."""

    value: Any
    ran: str
    release: str

    def __call__(self, device: str) -> Any:
        _mark(self.ran, device)
        _wait(self.release)
        return self.value


@dataclass(frozen=True)
class Crasher:
    """Writes ``ran``, waits for ``release`` (when given), then kills its worker."""

    fault: str
    ran: str | None = None
    release: str | None = None

    def __call__(self, device: str) -> Any:
        _mark(self.ran, device)
        if self.release is not None:
            _wait(self.release)
        if self.fault == "WorkerCrash":
            raise WorkerCrash("CUDA context lost")
        if self.fault == "SystemExit":
            raise SystemExit(3)
        if self.fault == "os._exit":
            os._exit(1)
        if self.fault == "SIGKILL":
            os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError(f"unknown fault {self.fault}")


def sleep(seconds: float, ran: str, device: str) -> float:
    _mark(ran, device)
    time.sleep(seconds)
    return seconds


def started(device: str) -> tuple[int, float]:
    """This worker's pid, and when the job started (``time.monotonic``, shared by processes)."""
    return os.getpid(), time.monotonic()


def placement(device: str) -> tuple[list[int], int]:
    """The CPUs the worker runs on, and its torch threads."""
    return sorted(os.sched_getaffinity(0)), torch.get_num_threads()


def echo(value: Any, device: str) -> Any:
    return value


def fail(error: BaseException, device: str) -> None:
    raise error


def invalid(device: str) -> None:
    raise InvalidArgument(
        "targets: expected class indices in [0, 2], got 7",
        details=[{"field": "targets", "message": "out of range"}],
    )


class UnpicklableError(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a} {b}")


def fail_unpicklable(device: str) -> None:
    raise UnpicklableError(1, 2)


def mapping_of(array: np.ndarray) -> str:
    """The file backing the memory at ``array``'s data, from /proc/self/maps ("" if none)."""
    address = array.ctypes.data
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= address < high:
                return fields[5].strip() if len(fields) == 6 else ""
    return ""


def inspect(array: np.ndarray, device: str) -> tuple[str, bool, float]:
    """Where the array the job got lives, whether it is writable, and its sum."""
    return mapping_of(array), bool(array.flags.writeable), float(array.sum(dtype=np.float64))


def ones(n: int, device: str) -> np.ndarray:
    return np.ones(n, dtype=np.float32)


@dataclass(frozen=True)
class SumJob:
    """Sums ``values[lo:hi]`` with torch, running out of memory above ``limit`` of them; each
    call appends its size to the file ``calls``."""

    values: np.ndarray
    limit: int
    calls: str
    error: type[Exception]
    lo: int = 0
    hi: int | None = None

    def __call__(self, device: str) -> int:
        part = self.values[self.lo : self.hi]
        with open(self.calls, "a") as f:
            f.write(f"{len(part)}\n")
        if len(part) > self.limit:
            raise self.error(f"tried to allocate {len(part)} items")
        return int(torch.from_numpy(part).to(device).sum())


def add(a: int, b: int) -> int:
    return a + b


def split_sum(
    job: Callable[[str], int],
) -> tuple[Callable[[str], int], Callable[[str], int], Callable[[int, int], int]]:
    assert isinstance(job, SumJob)
    lo, hi = job.lo, len(job.values) if job.hi is None else job.hi
    mid = (lo + hi) // 2
    first = SumJob(job.values, job.limit, job.calls, job.error, lo, mid)
    second = SumJob(job.values, job.limit, job.calls, job.error, mid, hi)
    return first, second, add


def sum_of_squares(i: int, device: str) -> tuple[int, float]:
    values = torch.arange(i + 1, dtype=torch.float64, device=device)
    return i, float((values * values).sum())


def faulty(i: int, device: str) -> tuple[int, float]:
    if i % 10 == 7:
        raise WorkerCrash(f"crash {i}")
    if i % 10 == 4:
        raise ValueError(f"bad {i}")
    return sum_of_squares(i, device)


def reply_in_two_writes(conn: Any, body: bytes, pause: float) -> None:
    """A worker process's stand-in: it answers one message with ``body`` framed as
    ``Connection.send_bytes`` frames it, but pauses ``pause`` seconds between the length and
    the bytes (``send_bytes`` writes a message over 16 KiB in those two writes), then waits
    for the next message (the parent's STOP) and exits."""
    conn.recv_bytes()
    os.write(conn.fileno(), struct.pack("!i", len(body)))
    time.sleep(pause)
    os.write(conn.fileno(), body)
    conn.recv_bytes()
