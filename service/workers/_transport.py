"""Objects across the process boundary: pickle protocol 5, large buffers in shared memory.

An object is pickled with ``buffer_callback``, so the data of every contiguous numpy array
(and anything else that offers out-of-band buffers) is left out of the pickle stream.
Small payloads (``INLINE_BYTES`` in all) travel inline, in the pipe message. Larger ones
are copied once into a POSIX shared-memory segment, named by the parent, that the other
side maps and unpickles from with ``pickle.loads(..., buffers=...)``: the arrays it gets
are views of that mapping, not copies, and stay valid after the segment is unlinked.

Ownership: the parent names every segment of a job (its input and its result), registers
both names with multiprocessing's resource tracker (the backstop if the parent itself is
killed), and unlinks and unregisters both when the job ends, however it ends. The worker
process creates and maps segments without touching the tracker.

Warm segments: a new segment's pages are allocated and zeroed by the kernel as they are
first written (about 20 ms for 32 MiB here, six times the copy itself). So each worker has
two segments of :data:`WARM_BYTES` (its jobs' inputs, its results) that live as long as
the worker does and stay mapped on both sides: a payload that fits is copied into pages
already there (``pack(..., warm=True)``), and the side that reads it copies it out
(``unpack(..., copy=True)``) before the segment is written again. Larger payloads take a
segment of their own, as above. Copies go through numpy, which lets other threads (the
event loop's) run meanwhile.
"""

from __future__ import annotations

import _posixshmem  # type: ignore[import-not-found]  # CPython's module behind SharedMemory
import contextlib
import itertools
import mmap
import os
import pickle
import secrets
from dataclasses import dataclass
from multiprocessing import resource_tracker
from typing import Any, cast

import numpy as np

__all__ = [
    "INLINE_BYTES",
    "WARM_BYTES",
    "NoRoomError",
    "Packed",
    "dump",
    "fits_warm",
    "forget",
    "new_name",
    "pack",
    "unpack",
]

INLINE_BYTES = 64 * 1024
"""Payloads up to this size (pickle stream and buffers together) travel in the pipe."""
WARM_BYTES = 64 * 1024 * 1024
"""The size of a worker's warm segments: what they hold at most (only the pages a payload
has touched are memory)."""

_ALIGN = 64
_RTYPE = "shared_memory"
_counter = itertools.count()
_token = secrets.token_hex(4)


class NoRoomError(Exception):
    """``/dev/shm`` has no room for a payload: it was not written (a write to a page the
    kernel cannot give would have killed the process with SIGBUS)."""


@dataclass(frozen=True)
class Packed:
    """A pickled object, ready to send: inline, or as spans of a shared-memory segment."""

    header: bytes
    """The pickle stream, when inline (empty when it is in the segment)."""
    buffers: tuple[bytearray, ...]
    """The out-of-band buffers, when inline (bytearrays, so the arrays come back writable)."""
    segment: str | None = None
    spans: tuple[tuple[int, int], ...] = ()
    """(offset, length) in the segment: the pickle stream first, then each buffer."""
    warm: bool = False
    """The segment is a warm one (mapped once, written again by the next payload)."""

    @property
    def size(self) -> int:
        if self.segment is not None:
            return self.spans[-1][0] + self.spans[-1][1]
        return len(self.header) + sum(len(b) for b in self.buffers)


def new_name(kind: str) -> str:
    """A segment name unique to this process and call, registered with the resource tracker.

    The caller must :func:`forget` it once the job that uses it has ended.
    """
    name = f"/lossserve-{os.getpid()}-{_token}-{next(_counter)}{kind}"
    resource_tracker.register(name, _RTYPE)
    return name


def forget(name: str) -> None:
    """Unlink the segment ``name`` if it exists, and unregister it (and unmap it here)."""
    unmap(name)
    with contextlib.suppress(FileNotFoundError):
        _posixshmem.shm_unlink(name)
    resource_tracker.unregister(name, _RTYPE)


_WARM: dict[str, mmap.mmap] = {}
"""This process's mappings of warm segments, by name."""


def _warm(name: str) -> mmap.mmap:
    """The mapping of the warm segment ``name`` (created at :data:`WARM_BYTES`)."""
    memory = _WARM.get(name)
    if memory is None:
        memory = _WARM[name] = _map(name, at_least=WARM_BYTES)
    return memory


def unmap(name: str) -> None:
    """Drop this process's mapping of the warm segment ``name``, if it has one."""
    _RESERVED.pop(name, None)
    memory = _WARM.pop(name, None)
    if memory is not None:
        with contextlib.suppress(BufferError):  # a view still exported: the GC unmaps it
            memory.close()


def dump(obj: object) -> tuple[bytes, list[memoryview]]:
    """Pickle ``obj`` (protocol 5): the stream, and the raw out-of-band buffers (no copies)."""
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return header, [buffer.raw() for buffer in buffers]


def size_of(header: bytes, raws: list[memoryview]) -> int:
    return len(header) + sum(raw.nbytes for raw in raws)


def fits_warm(header: bytes, raws: list[memoryview]) -> bool:
    """Whether the payload fits a warm segment, with room for the alignment of its spans."""
    return size_of(header, raws) + _ALIGN * (len(raws) + 1) <= WARM_BYTES


def pack(
    header: bytes, raws: list[memoryview], segment: str | None, *, warm: bool = False
) -> Packed:
    """Inline when small (or without a ``segment`` name), else copied once into ``segment``:
    a new one, or with ``warm`` the warm segment of that name (the payload must fit
    :data:`WARM_BYTES`). :class:`NoRoomError` when ``/dev/shm`` cannot hold it."""
    if segment is None or size_of(header, raws) <= INLINE_BYTES:
        return Packed(header, tuple(bytearray(raw) for raw in raws))
    spans = []
    offset = 0
    for length in (len(header), *(raw.nbytes for raw in raws)):
        spans.append((offset, length))
        offset = -(-(offset + length) // _ALIGN) * _ALIGN
    if warm and offset > WARM_BYTES:
        raise ValueError(f"{offset} bytes do not fit a warm segment of {WARM_BYTES}")
    memory = _warm(segment) if warm else _map(segment, create=max(offset, 1))
    try:
        _reserve(segment, offset, keep=warm)
    except OSError as exc:  # /dev/shm is full (a container's is 64 MiB by default)
        if not warm:
            memory.close()
        raise NoRoomError(
            f"/dev/shm has no room for {offset} bytes ({exc.strerror}); give the server "
            "more shared memory (a container's --shm-size)"
        ) from None
    try:
        target = np.frombuffer(memory, dtype=np.uint8)
        target[0 : len(header)] = np.frombuffer(header, dtype=np.uint8)
        for (start, length), raw in zip(spans[1:], raws, strict=True):
            target[start : start + length] = np.frombuffer(raw.cast("B"), dtype=np.uint8)
        del target
    finally:
        if not warm:
            memory.close()
    return Packed(b"", (), segment, tuple(spans), warm)


_RESERVED: dict[str, int] = {}
"""The bytes of each warm segment given pages by this process (they stay until it goes)."""


def _reserve(name: str, size: int, *, keep: bool) -> None:
    """Give pages to the first ``size`` bytes of the segment ``name`` before they are
    written: a write to a page that a full ``/dev/shm`` cannot give kills the process with
    SIGBUS, where ``posix_fallocate`` raises OSError (ENOSPC). ``keep``: remember the size
    (a warm segment; the walk over pages already there costs ~1 ms per 32 MiB)."""
    if keep and _RESERVED.get(name, 0) >= size:
        return
    fd = cast(int, _posixshmem.shm_open(name, os.O_RDWR, mode=0o600))
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    if keep:
        _RESERVED[name] = size


def unpack(packed: Packed, *, copy: bool = False) -> Any:
    """Rebuild the object; arrays from a segment are views of its mapping (zero-copy), or
    with ``copy`` arrays of their own (for a warm segment, written again while they live)."""
    if packed.segment is None:
        return pickle.loads(packed.header, buffers=packed.buffers)
    view = memoryview(_warm(packed.segment) if packed.warm else _map(packed.segment))
    (start, length), *spans = packed.spans
    if not copy:
        buffers = [view[o : o + n] for o, n in spans]
        return pickle.loads(view[start : start + length], buffers=buffers)
    source = np.frombuffer(view, dtype=np.uint8)
    buffers = [source[o : o + n].copy().data for o, n in spans]
    header = bytes(view[start : start + length])
    del source, view
    return pickle.loads(header, buffers=buffers)


def _map(name: str, *, create: int = 0, at_least: int = 0) -> mmap.mmap:
    """Map the segment ``name``: a new one of ``create`` bytes when that is not 0, else the
    one of that name, created or grown to ``at_least`` bytes when it has fewer."""
    if create:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL
    else:
        flags = os.O_RDWR | (os.O_CREAT if at_least else 0)
    fd = cast(int, _posixshmem.shm_open(name, flags, mode=0o600))
    try:
        current = 0 if create else os.fstat(fd).st_size
        size = create or max(at_least, current)
        if size > current:
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)
