"""A bounded memo of a pure function: for values parsed again and again from what clients send (a capability
header, a small query body), where parsing costs more than the rest of a small answer."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """`compute(key)`, remembered by key (forgotten whole at `limit` keys: callers choose the keys). Errors are
    not remembered. Thread-safe enough: a race computes a value twice, never a wrong one."""

    def __init__(self, compute: Callable[[K], V], limit: int = 1024) -> None:
        self._compute = compute
        self._limit = limit
        self._values: dict[K, V] = {}

    def __call__(self, key: K) -> V:
        try:
            return self._values[key]
        except KeyError:
            pass
        value = self._compute(key)
        if len(self._values) >= self._limit:
            self._values.clear()
        self._values[key] = value
        return value
