"""Admission: a request is let in, or refused at once, before its body is read.

Two bounds, both checked on the event loop in constant time, so that a 429 /
RESOURCE_EXHAUSTED under overload costs microseconds and no body is parsed for it:

- each *lane* (the worker pool; each model's batcher) admits at most as many requests as
  it can run and queue; the rest are refused instead of waiting in front of the queue;
- the bodies of the requests admitted and not yet answered add up to at most
  ``max_inflight_bytes``. A body's size is its ``Content-Length``; a chunked or compressed
  one is counted as it streams in (:meth:`Ticket.grow`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from .errors import ResourceExhausted

__all__ = ["Admission", "Ticket"]


class Ticket:
    """One admitted request's hold on its lane and its bytes; :meth:`release` gives both back
    (also on ``with`` exit; releasing twice does nothing). :meth:`leave_lane` gives back the
    place in the lane alone, once the request's work is done and its answer is still being
    sent: a client slow to read its answer holds bytes, not a worker's queue."""

    __slots__ = ("_admission", "_in_lane", "_lane", "_released", "size")

    def __init__(self, admission: Admission, lane: str, size: int) -> None:
        self._admission = admission
        self._lane = lane
        self.size = size
        self._released = False
        self._in_lane = True

    def leave_lane(self) -> None:
        if self._in_lane:
            self._in_lane = False
            self._admission._leave(self._lane)

    def grow(self, size: int) -> None:
        """Count ``size`` bytes more of the body (a chunk that arrived, or an inflated one)."""
        self._admission._take_bytes(size, self._lane)
        self.size += size

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.leave_lane()
            self._admission.inflight_bytes -= self.size

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class Admission:
    """Bounded lanes and in-flight body bytes of one server process.

    Args:
        max_inflight_bytes: the bodies admitted and not yet answered, in all.
        lane_limit: the most requests a lane may hold (running and queued); ``None`` for a
            lane with no bound of its own (it still counts bytes).
    """

    def __init__(self, max_inflight_bytes: int, lane_limit: Callable[[str], int | None]) -> None:
        self.max_inflight_bytes = max_inflight_bytes
        self._lane_limit = lane_limit
        self._held: dict[str, int] = {}
        self.inflight_bytes = 0

    def held(self, lane: str) -> int:
        return self._held.get(lane, 0)

    def admit(self, lane: str, size: int = 0) -> Ticket:
        """A ticket for one request of ``size`` body bytes on ``lane``, or
        ``ResourceExhausted`` (nothing was taken)."""
        limit = self._lane_limit(lane)
        held = self._held.get(lane, 0)
        if limit is not None and held >= limit:
            raise ResourceExhausted(
                f"{lane}: {held} requests are running or queued, the most it takes; retry later"
            )
        self._take_bytes(size, lane)
        self._held[lane] = held + 1
        return Ticket(self, lane, size)

    def _take_bytes(self, size: int, lane: str) -> None:
        if self.inflight_bytes + size > self.max_inflight_bytes:
            raise ResourceExhausted(
                f"{lane}: the request bodies in flight ({self.inflight_bytes} bytes) and this "
                f"one ({size} bytes more) would pass the limit of {self.max_inflight_bytes} "
                "bytes (LOSSSERVE_MAX_INFLIGHT_BYTES); retry later"
            )
        self.inflight_bytes += size

    def _leave(self, lane: str) -> None:
        held = self._held.get(lane, 0) - 1
        if held > 0:
            self._held[lane] = held
        else:
            self._held.pop(lane, None)
