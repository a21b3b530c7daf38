"""System shared memory: tensors a client on the same host passes by place, not by value.

The Open Inference Protocol's ``system_shared_memory`` extension, as Triton serves it. A
client creates a POSIX shared-memory object (``shm_open``; ``tritonclient.utils.
shared_memory`` does it), registers a *region* of it under a name (its key, an offset into
it and a byte size), and from then on names a region, an offset into it and a byte size in
an input's parameters (``shared_memory_region``, ``shared_memory_offset``,
``shared_memory_byte_size``) instead of sending the input's bytes, and in a requested
output's parameters to have the answer written there instead of sent. Nothing of those
tensors crosses a socket.

Off unless ``allow_shared_memory`` (``LOSSSERVE_ALLOW_SHARED_MEMORY``): a client that may
register a region may have the server read and write any shared-memory object the server's
user may open (the server's own worker segments, ``/lossserve-<pid>-*``, excepted). Triton leaves
it on; here it is for a client beside its server (a trainer and its loss server, a
sidecar), switched on where every client is trusted that far. A client that shrinks an
object under a registered region makes the server fault on it: that too is trust.

**Registrations** are files in one directory (``shared_memory_registry``, which ``lossserve
serve`` creates for its frontends), one a region, created with ``link()`` so that a name is
taken once: a region registered through one connection serves requests that arrive on any
frontend. Unregistering removes the file; requests that already hold the region's mapping
finish with it, later ones naming it are refused.

**Zero copy.** A numeric input in a region is a view of this process's mapping of the
object (:class:`RegionArray`), not a copy. Pickled to a worker process, such a view travels
as its place (object, inode, offset), not its bytes: the worker maps the same object and
views the same bytes; an output a worker writes into a region comes back the same way. So a
loss's gradient is computed from the client's memory and written into it.

Errors are :class:`~lossserve.core.errors.InvalidArgument` naming the region, the parameter
and what was expected (an unknown region, an offset or size past the region's end, a size
that does not match the tensor), :class:`~lossserve.core.errors.NotFound` for the status of
an unknown region, and :class:`~lossserve.core.errors.PermissionDenied` when the extension
is off.
"""

from __future__ import annotations

import _posixshmem  # type: ignore[import-not-found]  # CPython's module behind SharedMemory
import contextlib
import hashlib
import json
import math
import mmap
import os
import re
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..models.oip import BYTES, DATATYPES, check_datatype, decode_raw
from .errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted

__all__ = [
    "PARAMETERS",
    "Held",
    "Region",
    "RegionArray",
    "SharedInput",
    "SharedMemoryRegistry",
    "SharedRef",
    "attach",
    "shared_parameters",
    "shared_ref",
]

REGION = "shared_memory_region"
BYTE_SIZE = "shared_memory_byte_size"
OFFSET = "shared_memory_offset"
PARAMETERS = (REGION, BYTE_SIZE, OFFSET)
"""A tensor's parameters that place it in a registered region."""

MAX_NAME = 128
"""Characters of a region's name."""
_KEY = re.compile(r"/?[A-Za-z0-9_.-]{1,200}")
_OWN = re.compile(r"/?lossserve-[0-9]+-")
"""The names of the server's own segments (its workers'), which no client may register."""
_RECORD = re.compile(r"[0-9a-f]{64}")
"""A record file's name (:meth:`SharedMemoryRegistry._file`); anything else there is not
one of ours."""
_MAPPINGS = 16
"""Objects a process keeps mapped (the least recently used beyond it is let go)."""
_PRUNE_S = 1.0


@dataclass(frozen=True)
class Region:
    """A registered region: ``byte_size`` bytes from ``offset`` of the object ``key``."""

    name: str
    key: str
    offset: int
    byte_size: int


@dataclass(frozen=True)
class SharedRef:
    """A tensor's place in a region: ``byte_size`` bytes from ``offset`` of the region."""

    region: str
    byte_size: int
    offset: int = 0


@dataclass(frozen=True)
class SharedInput:
    """An input tensor in a region, not read yet: its place, datatype and shape."""

    ref: SharedRef
    datatype: str
    shape: tuple[int, ...]


def _count(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{where}{name}: expected a non-negative integer, got {value!r}")
    return value


def shared_ref(parameters: Mapping[str, Any], where: str) -> SharedRef | None:
    """A tensor's place from its parameters (``where``: the tensor, for messages), or None
    when they name no region."""
    region = parameters.get(REGION)
    if region is None:
        for name in (BYTE_SIZE, OFFSET):
            if name in parameters:
                raise InvalidArgument(f"{where}{name}: given without {REGION}")
        return None
    if not isinstance(region, str) or not region:
        raise InvalidArgument(f"{where}{REGION}: expected a region's name, got {region!r}")
    if BYTE_SIZE not in parameters:
        raise InvalidArgument(f"{where}{BYTE_SIZE}: expected with {REGION}, got none")
    size = _count(parameters[BYTE_SIZE], BYTE_SIZE, where)
    offset = _count(parameters.get(OFFSET, 0), OFFSET, where)
    return SharedRef(region, size, offset)


def shared_parameters(ref: SharedRef) -> dict[str, Any]:
    """The parameters of an output written to ``ref`` (the protocol's answer says where)."""
    parameters: dict[str, Any] = {REGION: ref.region, BYTE_SIZE: ref.byte_size}
    if ref.offset:
        parameters[OFFSET] = ref.offset
    return parameters


# -- mappings (every process: frontends and workers) ----------------------------------------


@dataclass(frozen=True)
class _Place:
    """Where a :class:`RegionArray`'s bytes are: the object, its inode, the first byte, and
    whether the view may write them (an output's place; an input's is read-only)."""

    key: str
    inode: int
    start: int
    writable: bool = False


_MAPPED: OrderedDict[str, tuple[int, mmap.mmap]] = OrderedDict()
"""This process's mappings, by key: the object's inode and the mapping of all of it. A
mapping keeps its object's inode allocated, so a new object under the same key has another
inode: comparing inodes tells them apart."""
_SWEEP_S = 1.0
_SWEPT = [0.0]  # when _forget_gone last ran (monotonic seconds)
_ALLOCATED: dict[str, tuple[int, set[tuple[int, int]]]] = {}
"""The output places given pages already, by key: the object's inode and ``(start, size)``
ranges. ``posix_fallocate`` walks every page of its range even when all are there (1.2 ms
for 32 MiB), and pages stay until the object goes (or its client shrinks it: trust)."""
_MAX_ALLOCATED = 64
"""Ranges remembered for one object (past it, they are forgotten and allocated again)."""


def _allocated(key: str, inode: int, place: tuple[int, int]) -> bool:
    """Whether this process gave pages to ``place`` of this object (``key``, ``inode``)."""
    known = _ALLOCATED.get(key)
    if known is None or known[0] != inode or len(known[1]) >= _MAX_ALLOCATED:
        _ALLOCATED.pop(key, None)
        return False
    return place in known[1]


def _open(
    key: str, at_least: int, inode: int | None = None, *, allocate: tuple[int, int] | None = None
) -> tuple[int, mmap.mmap]:
    """The inode and mapping of the object ``key``, which must have ``at_least`` bytes (and,
    given ``inode``, still be that object); mapped once per process while it is in use.
    ``allocate``: ``(start, size)`` bytes to give pages now (an output's place), so that
    writing them later cannot fault on a full ``/dev/shm``."""
    try:
        fd = cast(int, _posixshmem.shm_open(key, os.O_RDWR, mode=0o600))
    except FileNotFoundError:
        raise InvalidArgument(f"key: no shared-memory object {key!r} on this host") from None
    except PermissionError:
        raise InvalidArgument(
            f"key: the server may not read and write the shared-memory object {key!r}"
        ) from None
    except OSError as exc:  # a directory, a link, a name too long ...
        raise InvalidArgument(
            f"key: cannot open the shared-memory object {key!r}: {exc.strerror}"
        ) from None
    try:
        status = os.fstat(fd)
        if inode is not None and status.st_ino != inode:
            raise InvalidArgument(
                f"key: the shared-memory object {key!r} was replaced since the request began"
            )
        if status.st_size < at_least:
            raise InvalidArgument(
                f"key: the shared-memory object {key!r} has {status.st_size} bytes, "
                f"expected at least {at_least}"
            )
        if (
            allocate is not None
            and allocate[1] > 0
            and not _allocated(key, status.st_ino, allocate)
        ):
            try:
                os.posix_fallocate(fd, *allocate)
            except OSError as exc:
                raise ResourceExhausted(
                    f"key: no room for {allocate[1]} bytes of output in the shared-memory "
                    f"object {key!r} ({exc.strerror}: is the host's /dev/shm full?)"
                ) from None
            _ALLOCATED.setdefault(key, (status.st_ino, set()))[1].add(allocate)
        kept = _MAPPED.get(key)
        if kept is not None and kept[0] == status.st_ino and len(kept[1]) >= at_least:
            _MAPPED.move_to_end(key)
            if time.monotonic() - _SWEPT[0] > _SWEEP_S:  # not on every request: syscalls
                _forget_gone(keep=key)
            return kept
        try:
            memory = mmap.mmap(fd, status.st_size)
        except OSError as exc:
            raise InvalidArgument(
                f"key: cannot map the shared-memory object {key!r}: {exc.strerror}"
            ) from None
    finally:
        os.close(fd)
    _MAPPED[key] = (status.st_ino, memory)
    while len(_MAPPED) > _MAPPINGS:
        _MAPPED.popitem(last=False)  # unmapped once no view of it is left
    _forget_gone(keep=key)
    return status.st_ino, memory


def _forget_allocated() -> None:
    """Drop the allocated places of the objects no longer mapped (bounds the record)."""
    for key in [key for key in list(_ALLOCATED) if key not in _MAPPED]:
        _ALLOCATED.pop(key, None)  # (a worker's thread may map meanwhile)


def _forget_gone(keep: str) -> None:
    """Let go of the mappings whose object is gone or replaced (its client unlinked it):
    a mapping would keep its pages allocated. Run with every new mapping, and at most
    once every :data:`_SWEEP_S` seconds when a request finds its mapping kept."""
    _SWEPT[0] = time.monotonic()
    for key, (inode, _) in list(_MAPPED.items()):
        if key == keep:
            continue
        try:
            fd = cast(int, _posixshmem.shm_open(key, os.O_RDONLY, mode=0o600))
        except OSError:
            del _MAPPED[key]
            continue
        try:
            if os.fstat(fd).st_ino != inode:
                del _MAPPED[key]
        finally:
            os.close(fd)
    _forget_allocated()


class RegionArray(np.ndarray):
    """A view of a region's bytes that pickles as its place (a worker maps the same bytes),
    not as a copy of them. Arrays derived from it (slices, reshapes) are ordinary views
    that pickle their values."""

    place: _Place | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self.place = None

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.place is None:
            return np.asarray(self).__reduce_ex__(protocol)
        return attach, (self.place, self.dtype.str, self.shape)


def _view(memory: mmap.mmap, place: _Place, dtype: np.dtype[Any], shape: tuple[int, ...]) -> Any:
    count = math.prod(shape)
    array = np.frombuffer(memory, dtype, count, place.start).reshape(shape).view(RegionArray)
    array.flags.writeable = place.writable
    array.place = place
    return array


def attach(place: _Place, dtype: str, shape: tuple[int, ...]) -> RegionArray:
    """The view of the bytes at ``place`` in this process (unpickling a
    :class:`RegionArray`)."""
    dt = np.dtype(dtype)
    _, memory = _open(place.key, place.start + math.prod(shape) * dt.itemsize, place.inode)
    return cast(RegionArray, _view(memory, place, dt, shape))


def _forget_unused(keys: set[str]) -> None:
    for key in [key for key in _MAPPED if key not in keys]:
        del _MAPPED[key]
    _forget_allocated()


# -- the registry ---------------------------------------------------------------------------


class SharedMemoryRegistry:
    """The regions registered with a server, shared by its frontends through ``directory``
    (None: a directory of its own, removed by :meth:`close`)."""

    def __init__(self, directory: Path | None, *, enabled: bool) -> None:
        self.enabled = enabled
        self._own = directory is None and enabled
        self._dir = Path(tempfile.mkdtemp(prefix="lossserve-regions-")) if self._own else directory
        if enabled and self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
        self._pruned = 0.0

    def close(self) -> None:
        if self._own and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def check(self) -> Path:
        """The records' directory; :class:`PermissionDenied` when the extension is off."""
        if not self.enabled or self._dir is None:
            raise PermissionDenied(
                "system shared memory is off on this server "
                "(LOSSSERVE_ALLOW_SHARED_MEMORY=true turns it on)"
            )
        return self._dir

    @staticmethod
    def _file(name: str) -> str:
        """A region's record file: a hash of its name (any name fits a file name)."""
        return hashlib.sha256(name.encode(errors="surrogatepass")).hexdigest()

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        """Register ``byte_size`` bytes from ``offset`` of the object ``key`` as ``name``."""
        directory = self.check()
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise InvalidArgument(
                f"name: expected a region name of 1 to {MAX_NAME} characters, got {name!r}"
            )
        if not isinstance(key, str) or not _KEY.fullmatch(key) or key.strip("/") in (".", ".."):
            raise InvalidArgument(
                f"key: expected a shared-memory object's name ('/' and up to 200 letters, "
                f"digits, '_', '.' or '-'), got {key!r}"
            )
        if _OWN.match(key):
            raise InvalidArgument(f"key: {key!r} names one of the server's own segments")
        _count(offset, "offset", "")
        if _count(byte_size, "byte_size", "") == 0:
            raise InvalidArgument("byte_size: expected a positive size, got 0")
        _open(key, offset + byte_size)  # the object is there, big enough, and ours to map
        record = json.dumps({"name": name, "key": key, "offset": offset, "byte_size": byte_size})
        fd, scratch = tempfile.mkstemp(dir=directory, prefix=".new-")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(record)
            try:
                os.link(scratch, directory / self._file(name))
            except FileExistsError:
                raise InvalidArgument(
                    f"name: a region {name!r} is registered already; unregister it first"
                ) from None
        finally:
            os.unlink(scratch)

    def unregister(self, name: str = "") -> None:
        """Unregister the region ``name`` (every region when empty); an unknown name is no
        error, as in Triton."""
        directory = self.check()
        files = [self._file(name)] if name else self._names(directory)
        for file in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / file)
        self._prune(force=True)

    def status(self, name: str = "") -> list[Region]:
        """The region ``name`` (:class:`NotFound` when it is not registered), or every
        region, by name."""
        directory = self.check()
        if name:
            region = self._region(name)
            if region is None:
                raise NotFound(f"no shared-memory region {name!r} is registered")
            return [region]
        regions = (self._read(directory, file) for file in self._names(directory))
        return sorted((r for r in regions if r is not None), key=lambda r: r.name)

    @staticmethod
    def _names(directory: Path) -> list[str]:
        return [entry for entry in os.listdir(directory) if _RECORD.fullmatch(entry)]

    @staticmethod
    def _read(directory: Path, file: str) -> Region | None:
        """The record ``file``, read anew each time (a file name, even an inode, is reused
        once a region is unregistered and registered again); None when it is not there."""
        try:
            return Region(**json.loads((directory / file).read_text()))
        except (OSError, ValueError, TypeError):  # gone, or not one of ours
            return None

    def _region(self, name: str) -> Region | None:
        return self._read(self.check(), self._file(name))

    def _prune(self, *, force: bool = False) -> None:
        """Let go of the mappings no registered region uses any more (at most once a
        second, unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._pruned < _PRUNE_S:
            return
        self._pruned = now
        _forget_unused({region.key for region in self.status()})

    # -- tensors ----------------------------------------------------------------------------

    def hold(self, ref: SharedRef, label: str, *, writable: bool = True) -> Held:
        """The place ``ref`` names, mapped: what a request keeps from its start, so that
        the region's unregistering meanwhile does not affect it. ``writable``: an output's
        (its pages allocated now); else an input's (read-only views)."""
        self.check()
        region = self._region(ref.region)
        if region is None:
            raise InvalidArgument(f"{label}: {REGION} {ref.region!r}: no such region is registered")
        if ref.offset + ref.byte_size > region.byte_size:
            raise InvalidArgument(
                f"{label}: {OFFSET} {ref.offset} + {BYTE_SIZE} {ref.byte_size} exceed region "
                f"{ref.region!r}'s {region.byte_size} bytes"
            )
        start = region.offset + ref.offset
        allocate = (start, ref.byte_size) if writable else None
        inode, memory = _open(region.key, start + ref.byte_size, allocate=allocate)
        self._prune()
        return Held(ref, memory, _Place(region.key, inode, start, writable))

    def read(self, shared: SharedInput, label: str) -> np.ndarray:
        """An input from its region: a view of the client's bytes (``BYTES``: decoded)."""
        datatype = check_datatype(shared.datatype, label)
        held = self.hold(shared.ref, label, writable=False)
        size = shared.ref.byte_size
        if datatype == BYTES:
            data = memoryview(held.memory)[held.place.start : held.place.start + size]
            return decode_raw(data, datatype, shared.shape, label)
        dtype = DATATYPES[datatype]
        nbytes = math.prod(shared.shape) * dtype.itemsize
        if size != nbytes:
            raise InvalidArgument(
                f"{label}: expected {BYTE_SIZE} {nbytes} for its shape and datatype, got {size}"
            )
        array: np.ndarray = _view(held.memory, held.place, dtype, shared.shape)
        return array


@dataclass(frozen=True)
class Held:
    """A place in a region, mapped (:meth:`SharedMemoryRegistry.hold`): where an output goes."""

    ref: SharedRef
    memory: mmap.mmap
    place: _Place

    def destination(self, dtype: np.dtype[Any], shape: tuple[int, ...], label: str) -> np.ndarray:
        """Where an output of ``shape`` goes: a view of the region (its size checked)."""
        nbytes = math.prod(shape) * dtype.itemsize
        if self.ref.byte_size < nbytes:
            raise InvalidArgument(
                f"{label}: the output takes {nbytes} bytes, {BYTE_SIZE} is {self.ref.byte_size}"
            )
        array: np.ndarray = _view(self.memory, self.place, dtype, shape)
        return array

    def write(self, array: np.ndarray, label: str) -> None:
        """Put an output here (nothing to do when it was computed here)."""
        if array.dtype == object:
            raise InvalidArgument(f"{label}: a BYTES output cannot be written to shared memory")
        target = self.destination(array.dtype, array.shape, label)
        if not self.holds(array):
            np.copyto(target, array, casting="no")

    def holds(self, array: np.ndarray) -> bool:
        """Whether ``array`` is this place's bytes already (computed here: a loss's gradient
        a worker wrote into its client's region)."""
        if array.dtype == object or not array.flags.c_contiguous:
            return False
        start = _address(np.frombuffer(self.memory, np.uint8, 1, self.place.start))
        return _address(array) == start and array.nbytes <= self.ref.byte_size


def _address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])
