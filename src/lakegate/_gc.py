"""Pausing the cyclic garbage collector while building large, acyclic structures.

Building a 100k-file snapshot allocates ~10^6 dicts and strings, none in cycles, and every generation-0 overflow
would scan the growing heap again; pausing collection for the build saves 10–20 % of a cold query. Reference
counting still frees everything as usual. The pause is process-wide, so concurrent pauses are counted.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    global _depth, _was_enabled  # noqa: PLW0603  - one process-wide pause counter, under _lock
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
