"""A bounded memo for what a client sends again and again (a request's header, the head of
its answer): at most ``size`` entries, emptied when full. The bound is what matters (a
client that never repeats itself costs a few entries' memory, never more); which entries to
evict hardly does, since a client that repeats itself refills the memo at once."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Memo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self._size:
            self._items.clear()
        self._items[key] = value
