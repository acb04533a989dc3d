"""Arrow tables kept as files in a directory that every worker process of a server maps into memory.

`lakegate serve --workers N` runs N processes; each would otherwise read the same checkpoints and build the same
file parts, and hold its own copy (memory × N, and a request landing on a worker that has not built a table yet
is cold). Instead the first process to build a table writes it once as an Arrow IPC file and every process
(the writer too, which then drops its heap copy) reads it memory-mapped and zero-copy: the pages exist once, in
the page cache, however many workers use them, and a worker started later (or a replacement after a crash)
finds them warm.

- A table is named by a key tuple holding everything its content depends on (plus `FORMAT` and lakegate's
  version), hashed to the file name; the key is stored in the file too and checked on open.
- One build per key across processes: an exclusive `fcntl.flock` on the key's lock file while building and
  writing (threads of one process contend too: each takes the lock through its own open file).
- Written to a temporary name, then `os.replace`d: a reader sees the whole file or none. A file that cannot
  be read back (truncated, corrupt, another key) is removed and built again; a directory that cannot be
  written to only costs the sharing (the built table is used from the heap).
- Bounded: past `max_bytes` the least recently used files (by modification time, touched on every open) are
  removed. A worker still mapping a removed file keeps using it (Linux keeps an unlinked file's pages until
  its last mapping goes); a worker needing it later builds it again.
- The default directory is private to one server run (`mkdtemp`: mode 0700) and removed when the process that
  made it exits (the supervisor, or the single process), so a restart is honestly cold; one left behind by a
  run that was killed is removed by the next start (nothing holds its lock any more). A configured
  directory is kept, and reused after a restart: keys name the files' sizes and modification times where
  they name log files, and lakegate's version.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakegate.metrics import SHARED_CACHE_BUILDS, SHARED_CACHE_READS

log = logging.getLogger("lakegate")

FORMAT = 1  # bump when what a key's file holds changes meaning
KEY_FIELD = b"lakegate.cache.key"
NAME_FIELD = b"lakegate.cache.name"  # the file's name, carried by the table read from it (see `name_of`)
LATER_FIELD = b"lakegate.cache.later"  # a table handed back before its file is written: the file's path
WRITE_LATER_SECONDS = 1.0  # a file handed back before written is written at the latest this long after
SUFFIX = ".arrow"
PRIVATE_PREFIX = "lakegate-snapshots-"
OWNER = ".owner"  # a private directory's lock file, held while its server runs


def _lakegate_version() -> str:
    try:
        return version("lakegate")
    except PackageNotFoundError:  # a source tree without installed metadata
        return "unknown"


class SharedCache:
    def __init__(self, directory: Path, max_bytes: int = 0, *, owned: bool = False) -> None:
        self.directory = directory
        self.max_bytes = max_bytes  # 0: no bound
        self._owner = os.getpid() if owned else None
        self._owner_fd: int | None = None
        self._version = _lakegate_version()
        self._lock = threading.Lock()
        self.hits = 0
        self.builds = 0
        self.removed = 0
        if owned:
            atexit.register(self.close)

    @classmethod
    def private(cls, max_bytes: int = 0) -> SharedCache:
        """A new directory for this server run only, removed when this process exits (or `close`s it). Those of
        runs that ended without removing theirs (killed, out of memory) are removed first."""
        remove_abandoned(Path(tempfile.gettempdir()))
        directory = Path(tempfile.mkdtemp(prefix=PRIVATE_PREFIX))
        cache = cls(directory, max_bytes, owned=True)
        # Held (shared) for the run by this process and the workers it forks, which inherit the open file: while
        # any of them lives the directory is in use; the kernel lets go when the last one dies, however it dies.
        pending = directory / (OWNER + ".new")
        cache._owner_fd = os.open(pending, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(cache._owner_fd, fcntl.LOCK_SH)
        os.replace(pending, directory / OWNER)  # only a locked owner file is ever seen under its name
        return cache

    @classmethod
    def at(cls, directory: str, max_bytes: int = 0) -> SharedCache:
        """A configured directory (made if missing, private to this user), kept across runs."""
        path = Path(directory)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            log.warning(
                "snapshotCacheDirectory %s can be read or written by other users: it holds the shared tables' "
                "file paths and statistics; make it private (chmod 700)",
                path,
            )
        return cls(path, max_bytes)

    def close(self) -> None:
        """Remove a private directory; only the process that made it does (forked workers share it)."""
        if self._owner == os.getpid():
            self._owner = None
            shutil.rmtree(self.directory, ignore_errors=True)
            if self._owner_fd is not None:
                os.close(self._owner_fd)
                self._owner_fd = None

    # -- tables ----------------------------------------------------------------------------------------------------

    def table(self, key: tuple[Any, ...], build: Callable[[], pa.Table], *, later: bool = False) -> pa.Table:
        """The table of `key`: mapped from its file, else built (once across processes), written and mapped.

        `later`: a table built here is handed back at once, and its file written once what needed it is done
        (`write_later`; at the latest `WRITE_LATER_SECONDS` after), not before an answer's first byte. The build lock
        is held until then (other processes wait for the file rather than build the table too), and whoever
        keeps the table swaps it for the mapped file then (`when_mapped`)."""
        text = repr((FORMAT, self._version, key))
        name = hashlib.sha256(text.encode()).hexdigest()[:40]
        path = self.directory / (name + SUFFIX)
        found = self._open(path, text) or _pending(path)
        if found is not None:
            return found
        fd = self._lock_exclusive(name)
        try:
            # Written by the process that held the lock before, or built by this one and not written yet.
            found = self._open(path, text) or _pending(path)
            if found is not None:
                return found
            table = build()
            with self._lock:
                self.builds += 1
            SHARED_CACHE_BUILDS.inc()
            labelled = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), KEY_FIELD: text.encode(), NAME_FIELD: name.encode()}
            )
            if later:
                _defer(_Later(self, path, text, labelled, fd))
                fd = None  # released once the file is written
                return _held(labelled, path)
            if not self._write(path, labelled):
                return labelled
        finally:
            if fd is not None:
                os.close(fd)  # releases the lock
        self._trim(keep=path)
        mapped = self._open(path, text)
        return mapped if mapped is not None else labelled

    def _write_later(self, later: _Later) -> pa.Table | None:
        """Write a table handed back before its file (`table(..., later=True)`), release its build lock, and
        give the mapped table (None when it could not be written: its holders keep their copy)."""
        try:
            if not self._write(later.path, later.table):
                return None
            self._trim(keep=later.path)
            return self._open(later.path, later.text)
        finally:
            if later.fd is not None:
                os.close(later.fd)

    def _open(self, path: Path, text: str) -> pa.Table | None:
        try:
            with pa.memory_map(str(path), "r") as source:
                table = pa.ipc.open_file(source).read_all()
            if (table.schema.metadata or {}).get(KEY_FIELD) != text.encode():
                raise ValueError("the file holds another key")
            table.validate()
        except FileNotFoundError:
            return None
        except (pa.ArrowException, OSError, ValueError) as exc:
            log.warning("snapshot cache file %s is unreadable (%s); building it again", path.name, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: trimmed last
        with self._lock:
            self.hits += 1
        SHARED_CACHE_READS.inc()
        return table

    def _write(self, path: Path, table: pa.Table) -> bool:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            os.close(
                os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            )  # private from the start
            with pa.OSFile(str(temporary), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            os.replace(temporary, path)
        except (OSError, pa.ArrowException) as exc:
            log.warning("cannot write to the snapshot cache directory (%s); this table is not shared", exc)
            with contextlib.suppress(OSError):
                temporary.unlink()
            return False
        return True

    def _lock_exclusive(self, name: str) -> int | None:
        """The key's lock file, locked exclusively (closing it releases the lock); None when there is no
        directory to lock in: build without the cross-process guard."""
        try:
            fd = os.open(self.directory / (name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _trim(self, keep: Path) -> None:
        """Remove the least recently used files until the directory fits `max_bytes`."""
        if not self.max_bytes:
            return
        files = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                if entry.name.endswith(SUFFIX):
                    with contextlib.suppress(OSError):
                        stat = entry.stat()
                        files.append((stat.st_mtime_ns, stat.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                path.with_suffix(".lock").unlink(missing_ok=True)
                total -= size
                with self._lock:
                    self.removed += 1

    def disk_bytes(self) -> int:
        total = 0
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                if entry.name.endswith(SUFFIX):
                    with contextlib.suppress(OSError):
                        total += entry.stat().st_size
        return total


def remove_abandoned(temporary: Path) -> None:
    """Remove this user's private cache directories that no live process holds (see `SharedCache.private`)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(temporary):
            if not entry.name.startswith(PRIVATE_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue
                fd = os.open(Path(entry.path) / OWNER, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its server runs
                    shutil.rmtree(entry.path, ignore_errors=True)
                    log.info(
                        "removed the snapshot cache directory of a server run that ended: %s", entry.path
                    )
                finally:
                    os.close(fd)


def name_of(table: pa.Table) -> str | None:
    """The cache file a table was read from (or written to), None for a table built in memory only: what the
    caches key tables derived from it by."""
    value = (table.schema.metadata or {}).get(NAME_FIELD)
    return value.decode() if value is not None else None


# -- files written later -----------------------------------------------------------------------------------------------


@dataclass
class _Later:
    cache: SharedCache
    path: Path
    text: str
    table: pa.Table | None  # until written
    fd: int | None  # the build lock, held until written
    swaps: list[Callable[[pa.Table], None]] = field(default_factory=list)
    mapped: weakref.ref[pa.Table] | None = None  # once written


# By path (`LATER_FIELD`): waiting, then written (their mapped tables weakly).
_LATER: dict[bytes, _Later] = {}
_LATER_LOCK = threading.Lock()
_WRITING = threading.Lock()


def _defer(later: _Later) -> None:
    with _LATER_LOCK:
        for path, done in list(_LATER.items()):  # forget those written whose mapped table is gone
            if done.mapped is not None and done.mapped() is None:
                del _LATER[path]
        _LATER[bytes(later.path)] = later
    timer = threading.Timer(WRITE_LATER_SECONDS, write_later, args=(bytes(later.path),))
    timer.daemon = True
    timer.start()


def _pending(path: Path) -> pa.Table | None:
    """The table of a file this process is still to write (`SharedCache.table(..., later=True)`)."""
    with _LATER_LOCK:
        later = _LATER.get(bytes(path))
        table = later.table if later is not None else None
    return _held(table, path) if table is not None else None


def _held(table: pa.Table, path: Path) -> pa.Table:
    """The table as handed back before its file is written: marked with the file's path (`when_mapped`)."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), LATER_FIELD: bytes(path)})


def write_later(path: bytes | None = None) -> None:
    """Write the files of the tables handed back before them (`SharedCache.table(..., later=True)`; or only
    the one of `path`), and hand the mapped tables to their holders (`when_mapped`): when the file parts built
    from them are, and by a timer. One caller at a time: a second one returns once the first has written
    what was waiting."""
    with _WRITING:
        with _LATER_LOCK:
            waiting = [
                later
                for key, later in _LATER.items()
                if later.table is not None and (path is None or key == path)
            ]
        for later in waiting:
            mapped = later.cache._write_later(later)
            with _LATER_LOCK:
                swaps, later.swaps, later.table = later.swaps, [], None
                if mapped is None:  # not written: its holders keep their copy
                    del _LATER[bytes(later.path)]
                    continue
                later.mapped = weakref.ref(mapped)
            for swap in swaps:
                swap(mapped)


def write_now(table: pa.Table) -> None:
    """Write the file of `table` now if it was handed back before it (`SharedCache.table(..., later=True)`)."""
    path = (table.schema.metadata or {}).get(LATER_FIELD)
    if path is not None:
        write_later(path)


def when_mapped(table: pa.Table, swap: Callable[[pa.Table], None]) -> None:
    """Have `swap` called with the mapped table once the file of `table` (handed back before it was written)
    is written: the holder then drops its copy in memory. At once if it has been; never for other tables."""
    path = (table.schema.metadata or {}).get(LATER_FIELD)
    if path is None:
        return
    with _LATER_LOCK:
        later = _LATER.get(path)
        if later is None:
            return
        if later.table is not None:
            later.swaps.append(swap)
            return
        mapped = later.mapped() if later.mapped is not None else None
    if mapped is not None:
        swap(mapped)
