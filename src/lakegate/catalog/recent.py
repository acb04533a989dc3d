"""What a replica may remember of the catalog for a moment: authentications and lookups, for at most
`catalogCacheSeconds` (default 1 s).

Every request authenticates and most look a table up; answered from the database each time, those queries cost
more than the rest of a small request. Remembering an answer for one second keeps the guarantee that matters: a
revocation, an expiry, a removed grant or a table change made anywhere (another replica, the CLI) takes effect
within that second on every replica. Changes made through this process's own database object take effect at
once, and any lakegate process's change to a SQLite file or announced on PostgreSQL a moment later: each ends
this memory (`Database.change_mark`). A token's own expiry is checked on every request, not after a second
(`lakegate.catalog.sql`).

An answer asked for in the second half of its time is loaded again in the background (`refresh-ahead`): the new
answer's time starts when its query started, so nothing is ever answered from a query older than the cache
time, and a key in steady use never expires on the request path (where a miss costs a hop to a worker thread
and a query; 16 clients of one token all missed at once, every second).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 10_000  # tokens and names are chosen by callers: a bound, not a size anyone reaches in 1 s
REFRESH_AFTER = 0.5  # of the cache time: an answer used after this is loaded again in the background

log = logging.getLogger("lakegate.catalog")


class _Entry(NamedTuple):
    expires: float
    refresh_at: float
    value: Any
    load: Callable[[], Any]


class Recent:
    """A memory of answers by key, each kept `seconds`; forgotten whole when `generation()` changes."""

    def __init__(
        self,
        seconds: float,
        generation: Callable[[], Hashable] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
        refresh: bool = True,
    ) -> None:
        self.seconds = seconds
        self._generation = generation
        self._clock = clock
        self._seen = generation() if seconds > 0 else None
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()
        self._refresh = refresh
        self._refreshing: set[Hashable] = set()
        self._jobs: queue.SimpleQueue[Hashable] = queue.SimpleQueue()
        self._refresher_pid = 0

    def peek(self, key: Hashable) -> Any:
        """The remembered answer for `key`, or None."""
        if self.seconds <= 0:
            return None
        self._check_generation(self._generation())
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        if entry.expires <= now:
            return None
        if entry.refresh_at <= now:
            self._refresh_soon(key)
        return entry.value

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The remembered answer for `key`, or `load()`'s (remembered unless it raises)."""
        if self.seconds <= 0:
            return load()
        now = self._clock()
        generation = self._generation()
        self._check_generation(generation)
        entry = self._entries.get(key)
        if entry is not None and entry.expires > now:
            if entry.refresh_at <= now:
                self._refresh_soon(key)
            value: T = entry.value
            return value
        value = load()
        self._remember(key, value, load, generation, now)
        return value

    def _remember(
        self, key: Hashable, value: Any, load: Callable[[], Any], generation: Hashable, started: float
    ) -> None:
        """Keep `value`, loaded from `started` on, unless the catalog changed since (an answer read across a
        change made here is not remembered)."""
        if self._generation() != generation:
            return
        with self._lock:
            newer = self._entries.get(key)
            if newer is not None and newer.expires > started + self.seconds:
                return  # a refresh that ended after a load started later: the later answer stays
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = _Entry(
                started + self.seconds, started + self.seconds * REFRESH_AFTER, value, load
            )

    def _check_generation(self, generation: Hashable) -> None:
        if generation != self._seen:
            self.forget()
            self._seen = generation

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()

    # -- refresh-ahead ----------------------------------------------------------------------------------------

    def _refresh_soon(self, key: Hashable) -> None:
        if not self._refresh:
            return
        if (
            self._refresher_pid != os.getpid()
        ):  # first use, or a forked worker (threads do not survive a fork)
            self._start_refresher()
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
        self._jobs.put(key)

    def _start_refresher(self) -> None:
        with self._lock:
            if self._refresher_pid == os.getpid():
                return
            self._refresher_pid = os.getpid()
            self._refreshing = set()  # a forked worker's: the parent's thread and queue are not its own
            jobs: queue.SimpleQueue[Hashable] = queue.SimpleQueue()
            self._jobs = jobs
        threading.Thread(
            target=self._refresher, args=(jobs,), name="lakegate-catalog-refresh", daemon=True
        ).start()

    def _refresher(self, jobs: queue.SimpleQueue[Hashable]) -> None:
        while True:
            key = jobs.get()
            try:
                self._refresh_one(key)
            except Exception as exc:  # noqa: BLE001  - the old answer stays until its time; then a request loads
                log.debug("catalog refresh failed (%s)", exc.__class__.__name__)
            finally:
                with self._lock:
                    self._refreshing.discard(key)

    def _refresh_one(self, key: Hashable) -> None:
        entry = self._entries.get(key)
        if entry is None:
            return
        started = self._clock()
        generation = self._generation()
        self._check_generation(generation)
        self._remember(key, entry.load(), entry.load, generation, started)
