"""Handing memory freed by a large build back to the operating system.

A snapshot's parts are built with table-sized temporaries (Arrow buffers, numpy arrays, bytes). Arrow's allocator
(mimalloc) and glibc's malloc both keep freed memory mapped for reuse; after a build that is ~0.3 KB per file of
resident memory nobody will use soon. Both are asked to return it: Arrow's pool with `release_unused`, glibc
with `malloc_trim` (where the C library has it: not on musl or macOS, where this is a no-op).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import pyarrow as pa


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, the C library's among them (no ldconfig lookup)
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _malloc_trim()


def release_unused() -> None:
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
