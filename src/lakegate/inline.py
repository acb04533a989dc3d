"""Answering on the event loop when everything a request needs is already in memory.

A hop to Starlette's thread pool costs more than a small answer itself (two thread switches and the GIL handed
over twice: ~50-100 µs, as much as authenticating from memory, finding a cached table and encoding its version).
So a handler first runs its work on the event loop in *inline mode* (`run_inline`). Whatever may block — a
database query, a read from object storage or of a local file, loading or building a snapshot, vending a
credential, waiting for a lock someone else holds — first calls `must_not_block()` (or takes its lock with
`holding`), which in inline mode raises `WouldBlock`; the work then runs again from the start in the thread
pool. Work run this way must therefore have no lasting effect before the first point that may block (reading
caches and setting the request's record are fine: the second run does the same).

Outside inline mode (worker threads, the CLI, tests) these checks cost one context-variable read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")
# A query answered on the event loop lists at most this many files (a few ms of signing and encoding at most;
# a longer answer would hold up every other connection, so it is built in a worker thread).
MAX_INLINE_FILES = 500

_INLINE: ContextVar[bool] = ContextVar("lakegate_inline", default=False)


class WouldBlock(BaseException):  # BaseException: no `except Exception` on the way takes it
    """Raised in inline mode where the work would block the event loop."""


def active() -> bool:
    """Whether the caller runs in inline mode (on the event loop, where nothing may block)."""
    return _INLINE.get()


def must_not_block() -> None:
    """Call before anything that may block: in inline mode it hands the work over to a worker thread."""
    if _INLINE.get():
        raise WouldBlock


@contextmanager
def holding(lock: threading.Lock) -> Iterator[None]:
    """`with lock:`, except that in inline mode a lock held by someone else hands the work to a thread."""
    if not lock.acquire(blocking=not _INLINE.get()):
        raise WouldBlock
    try:
        yield
    finally:
        lock.release()


def run_inline(work: Callable[[], T]) -> tuple[T] | None:
    """`(work(),)` when it ran to its end in inline mode; None when it would have blocked (run it in a thread)."""
    token = _INLINE.set(True)
    try:
        return (work(),)
    except WouldBlock:
        return None
    finally:
        _INLINE.reset(token)
