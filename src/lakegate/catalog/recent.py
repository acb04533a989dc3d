"""What a replica may remember of the catalog for a moment: authentications and lookups, for at most
`catalogCacheSeconds` (default 1 s).

Every request authenticates and most look a table up; answered from the database each time, those queries cost
more than the rest of a small request. Remembering an answer for one second keeps the guarantee that matters: a
revocation, an expiry, a removed grant or a table change made anywhere (another replica, the CLI) takes effect
within that second on every replica. Changes made through this process's own database object take effect at
once, and on a SQLite file any process's commit too: each ends this memory (`Database.change_mark`). A token's
own expiry is checked on every request, not after a second (`lakegate.catalog.sql`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 10_000  # tokens and names are chosen by callers: a bound, not a size anyone reaches in 1 s


class Recent:
    """A memory of answers by key, each kept `seconds`; forgotten whole when `generation()` changes."""

    def __init__(
        self,
        seconds: float,
        generation: Callable[[], Hashable] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self._generation = generation
        self._clock = clock
        self._seen = generation() if seconds > 0 else None
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> Any:
        """The remembered answer for `key`, or None."""
        if self.seconds <= 0:
            return None
        self._check_generation(self._generation())
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The remembered answer for `key`, or `load()`'s (remembered unless it raises)."""
        if self.seconds <= 0:
            return load()
        now = self._clock()
        generation = self._generation()
        self._check_generation(generation)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            value: T = entry[1]
            return value
        value = load()
        if self._generation() == generation:  # not an answer read across a change made here
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (now + self.seconds, value)
        return value

    def _check_generation(self, generation: Hashable) -> None:
        if generation != self._seen:
            self.forget()
            self._seen = generation

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()
