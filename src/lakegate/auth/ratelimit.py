"""The failed-authentication limit of the token endpoint: per client id and per source address.

In memory, per process: each replica (and each worker) counts its own failures, so a fleet of N allows up to N
times the limit, which still turns an online guess of a 256-bit secret from hopeless into more hopeless, and
keeps a flood of bad assertions from costing a signature check each. Only failures count; a success does not
reset the count (an attacker holding one valid secret must not unlock guessing another).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

_MAX_KEYS = 100_000  # bound the memory an attacker can make us spend on distinct keys


class FailureLimiter:
    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again (0: now)."""
        with self._lock:
            times = self._recent(key)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window - self._clock()))

    def failed(self, key: str) -> None:
        with self._lock:
            times = self._recent(key)
            if times is None:
                if len(self._failures) >= _MAX_KEYS:
                    self._failures.pop(next(iter(self._failures)))  # the oldest key
                times = self._failures[key] = deque()
            times.append(self._clock())
            while len(times) > self.limit:
                times.popleft()

    def _recent(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        cutoff = self._clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
