"""The least-recently-used bookkeeping shared by the snapshot, history and commit caches. Not thread-safe:
each cache keeps its own lock around it."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value (marked as just used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def items(self) -> list[tuple[K, V]]:
        """Every entry, least recently used first (without marking any as used)."""
        return list(self._items.items())

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list[V]:
        """Oldest first."""
        return list(self._items.values())

    def pop_oldest(self) -> V:
        return self._items.popitem(last=False)[1]
