"""The worker process: one device, one job at a time, read from and answered on a pipe.

Runs in the child only. The parent (``pool.py``) sends a pickled :class:`JobMessage`; the
child answers with one reply per job:

- ``("done", Packed)`` of ``("ok", value)`` or ``("error", exception, traceback_text)``;
- ``("crashed", description)`` just before it exits hard, when the job raised a
  non-:class:`Exception` (:class:`~lossserve.workers.WorkerCrash`, ``SystemExit``, ...).

Running out of memory is handled here, where it happens: the job is split and its halves
run one after the other (``split``), as the pool's docstring describes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import torch

from lossserve.core.errors import Internal, ResourceExhausted

from . import _transport
from ._transport import Packed

__all__ = ["FAILED", "KEEP_BYTES", "READY", "STOP", "JobMessage", "keep_freed_memory", "main"]

READY = b"ready"
FAILED = b"failed: "
"""The first message of a worker that could not set up, then why."""
STOP = b"stop"
CRASH_EXIT_STATUS = 70

OOM_ERRORS: tuple[type[BaseException], ...] = (torch.cuda.OutOfMemoryError, MemoryError)


@dataclass(frozen=True)
class JobMessage:
    job: Packed
    """``(job, split)``, packed."""
    result: str
    """The name of the segment the result goes into, when it is large."""
    warm_result: str | None = None
    """The worker's warm segment for results, used instead when the result fits it."""


def main(
    conn: Connection,
    device: str,
    threads: int,
    max_split_depth: int,
    cpus: tuple[int, ...] | None = None,
) -> None:
    """The child's whole life: set up, say ready, run jobs until told to stop. ``cpus``: the
    CPUs to run on, instead of those inherited (a frontend's own may be one CPU)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    _die_with_parent()
    keep_freed_memory()
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)
        torch.set_num_threads(threads)
        if device.startswith("cuda"):
            # "cuda": the first, as torch reads it (parsed here: torch.device keeps an 8-bit
            # index, and reads "cuda:999" as cuda:-25)
            index = int(device.partition(":")[2] or 0)
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if index >= count:  # set_device is lazy: it would fail at the first job
                raise RuntimeError(f"torch sees {count} CUDA device(s) here, not {device}")
            torch.cuda.set_device(index)
    except Exception as exc:  # a device this machine lacks: the parent's error says why
        conn.send_bytes(FAILED + f"{type(exc).__name__}: {exc}".encode(errors="replace"))
        return
    conn.send_bytes(READY)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):  # the parent has gone
            return
        if message == STOP:
            return
        conn.send_bytes(_serve(conn, pickle.loads(message), device, max_split_depth))


KEEP_BYTES = 256 * 1024 * 1024
"""Blocks up to this size come from the heap and stay there once freed, up to this much
free at its top (glibc's mmap and trim thresholds)."""


def keep_freed_memory() -> None:
    """glibc: let freed tensors be reused instead of returned to the kernel.

    By default glibc serves a block of 32 MiB or more (a 65536 x 128 float32 tensor is
    exactly that) with its own ``mmap`` and gives it back on ``free``, so each new tensor of
    a loss pays a page fault and a zeroed page for every 4 KiB it touches: cross-entropy's
    forward and backward at that size took 60 ms with them and 23 ms without, an
    element-wise loss with many intermediate tensors 4x longer. A worker keeps at most
    :data:`KEEP_BYTES` free at the top of its heap, on top of its largest job's peak. (Every
    worker calls it at start; the benchmarks call it in their own process to compare like
    with like.)
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None)
            libc.mallopt(-3, KEEP_BYTES)  # M_MMAP_THRESHOLD
            libc.mallopt(-1, KEEP_BYTES)  # M_TRIM_THRESHOLD


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the forkserver (our parent, which exits with the server) dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _serve(conn: Connection, message: JobMessage, device: str, max_split_depth: int) -> bytes:
    try:
        job, split = _transport.unpack(message.job)
        value = _call(job, split, device, 0, max_split_depth)
    except Exception as exc:
        return _reply(("error", exc, traceback.format_exc()), message)
    except BaseException as exc:  # WorkerCrash, SystemExit, ...: this worker is gone
        with contextlib.suppress(Exception):
            conn.send_bytes(pickle.dumps(("crashed", f"{type(exc).__name__}: {exc}"[:200])))
        os._exit(CRASH_EXIT_STATUS)
    return _reply(("ok", value), message)


def _reply(outcome: tuple[Any, ...], message: JobMessage) -> bytes:
    try:
        header, raws = _transport.dump(outcome)
        if outcome[0] == "error":  # it must also load on the other side
            pickle.loads(header, buffers=raws)
    except Exception as exc:
        kind = "exception" if outcome[0] == "error" else "result"
        what = type(outcome[1]).__name__
        error = Internal(f"the job's {kind} ({what}) cannot be sent back: {exc}"[:500])
        header, raws = _transport.dump(("error", error, "".join(traceback.format_exception(exc))))
    try:
        if message.warm_result is not None and _transport.fits_warm(header, raws):
            packed = _transport.pack(header, raws, message.warm_result, warm=True)
        else:
            packed = _transport.pack(header, raws, message.result)
    except _transport.NoRoomError:  # through the pipe: slower, but answered
        packed = _transport.pack(header, raws, None)
    return pickle.dumps(("done", packed), protocol=5)


def _call(
    job: Callable[[str], Any],
    split: Callable[[Any], tuple[Any, Any, Callable[[Any, Any], Any]]] | None,
    device: str,
    depth: int,
    max_depth: int,
) -> Any:
    try:
        return job(device)
    except OOM_ERRORS as exc:
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
    a = _call(first, split, device, depth + 1, max_depth)
    b = _call(second, split, device, depth + 1, max_depth)
    return merge(a, b)


def _release_cached_memory(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        with contextlib.suppress(Exception), torch.cuda.device(device):
            torch.cuda.empty_cache()
