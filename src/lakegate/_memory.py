"""Handing memory freed by a large build or answer back to the operating system.

A snapshot's parts are built, and a big answer rendered, with table-sized temporaries (Arrow buffers, numpy
arrays, bytes). Arrow's allocator (mimalloc) and glibc's malloc both keep freed memory mapped for reuse; after a
build that is ~0.3 KB per file of resident memory nobody will use soon, and with several workers each keeps its
own. Both are asked to return it: Arrow's pool with `release_unused`, glibc with `malloc_trim` (where the C
library has it: not on musl or macOS, where these are no-ops).

glibc gives threads arenas of their own (up to 8 per core), and `malloc_trim` cannot shrink the top of a
thread's arena: after a checkpoint read into one 25 MB bytes object, glibc's adaptive thresholds keep up to
twice that mapped at the top of the arena of the thread that read it (~14 MB after a 100k-file cold query,
~140 B per cached file). `one_arena` makes every thread allocate from the main arena, whose top `malloc_trim`
does return; Python's GIL already serialises most allocations, and Arrow's buffers come from its own pool.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
RELEASE_AGAIN_SECONDS = 0.05  # once the last pieces (still held when the render ends) are sent and freed


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)  # the process's own symbols, the C library's among them (no ldconfig lookup)
    except OSError:
        return None


def _function(name: str, *argtypes: type) -> Callable[..., int] | None:
    function = getattr(_LIBC, name, None) if _LIBC is not None else None
    if function is None:
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_LIBC = _libc()
_TRIM = _function("malloc_trim", ctypes.c_size_t)
_MALLOPT = _function("mallopt", ctypes.c_int, ctypes.c_int)


def one_arena() -> bool:
    """Have every thread allocate from glibc's main arena (see the module's doc); whether it was set. Call it
    before threads start: `lakegate serve` does, before it imports pyarrow (whose import starts threads). Left
    alone when the environment chooses (MALLOC_ARENA_MAX, or glibc.malloc.arena_max in GLIBC_TUNABLES)."""
    if _MALLOPT is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    if "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    return _MALLOPT(M_ARENA_MAX, 1) == 1


def release_unused() -> None:
    """Return freed memory now, and once more shortly after: the caller (the end of a render, of a build) may
    still hold the last pieces it made, which are freed when they have been sent."""
    _release()
    _Later.arm()


def _release() -> None:
    import pyarrow as pa  # not at import: `one_arena` must run before pyarrow's import starts its threads

    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


class _Later:
    """One pending release at a time, however many renders end meanwhile."""

    _lock = threading.Lock()
    _timer: threading.Timer | None = None

    @classmethod
    def arm(cls) -> None:
        with cls._lock:
            if cls._timer is not None:
                return
            cls._timer = threading.Timer(RELEASE_AGAIN_SECONDS, cls._run)
            cls._timer.daemon = True
            cls._timer.start()

    @classmethod
    def _run(cls) -> None:
        with cls._lock:
            cls._timer = None
        _release()

    @classmethod
    def forget(cls) -> None:
        """In a forked child: the parent's pending timer thread does not exist there."""
        cls._lock = threading.Lock()
        cls._timer = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Later.forget)
