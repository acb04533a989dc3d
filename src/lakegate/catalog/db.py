"""The catalog's database: a SQLAlchemy engine tuned per backend, and the transactions the catalog uses.

SQLite (the default, a file beside the configuration) runs in WAL mode so a running server and the CLI can
use one file at once; write transactions take the write lock up front (`BEGIN IMMEDIATE`) so two writers wait
for each other instead of failing mid-transaction. PostgreSQL is the choice for several replicas.
"""

from __future__ import annotations

import logging
import math
import os
import time
import weakref
from collections.abc import Hashable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from lakegate.catalog.changes import NOTIFY, ChangeListener
from lakegate.exceptions import ConfigError
from lakegate.inline import must_not_block

LEGACY_FILE = "lakegate.db"  # every configuration's default database before 0.2 (see catalog/ownership.py)
BACKENDS = ("sqlite", "postgresql")
_WRITE = "lakegate_write"  # execution option marking a write transaction (SQLite: BEGIN IMMEDIATE)
MARK_SECONDS = 0.002  # how long one look at the changes file stands for (see `_changes_stat`)
_CHANGES_FILE_BYTES = 4096  # the changes file starts again past this (one byte per catalog change)
log = logging.getLogger("lakegate.db")


_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    """In a forked worker (`lakegate.workers`): the parent's pooled connections are not this process's to use
    or close (SQLAlchemy's advice for multiprocessing); each worker opens its own."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)


def utcnow() -> datetime:
    return datetime.now(UTC)


def resolve_url(url: str | None, base_dir: Path | None, default_file: Path | None = None) -> str:
    """The SQLAlchemy URL to use: the default SQLite file, relative SQLite paths resolved against the
    configuration's directory, and `postgresql://` mapped to the psycopg 3 driver lakegate ships with."""
    if not url:
        return f"sqlite:///{default_file or (base_dir or Path.cwd()) / LEGACY_FILE}"
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        # The value is not echoed (a URL may hold a password); a bare file name is the usual slip.
        raise ConfigError(
            "database: not a valid SQLAlchemy URL: use sqlite:///FILE (relative to the configuration) "
            "or postgresql://…"
        ) from None
    if parsed.get_backend_name() not in (*BACKENDS, "postgres"):
        raise ConfigError(
            f"database: {parsed.get_backend_name()} is not supported: use sqlite:///FILE or postgresql://…"
        )
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            parsed = parsed.set(database=str((base_dir or Path.cwd()) / path))
    return parsed.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url: URL = make_url(url)
        self.backend = self.url.get_backend_name()
        self.engine: Engine = _engine(self.url)
        _ENGINES.add(self.engine)
        # Write transactions committed through this object (see `change_mark`).
        self.generation = 0
        sqlite = self.sqlite_path
        # SQLite: the file every process's catalog change appends a byte to (see `change_mark`).
        self.changes_file = None if sqlite is None else f"{sqlite}-changes"
        self._stat: tuple[int, int, int] = (0, 0, 0)
        self._stat_until = -math.inf
        self._changes = ChangeListener(self.url) if self.backend == "postgresql" else None

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for an in-memory SQLite or another backend."""
        db = self.url.database
        return Path(db) if self.backend == "sqlite" and db and db != ":memory:" else None

    def change_mark(self) -> Hashable:
        """What changes when the catalog may have: this object's write transactions, and any process's catalog
        change (the CLI's, another worker's or server's). On a SQLite file each such commit is followed by one
        byte appended to `changes_file` beside the database, so one stat tells (the WAL file would tell too,
        but every worker's audit writes move it: with two workers each forgot the other's remembered catalog
        every 50 ms); on PostgreSQL each is announced (`lakegate.catalog.changes`). What the server remembers
        of the catalog (`lakegate.catalog.recent`) is forgotten when the mark changes; a change made without
        lakegate (an SQL shell) is seen when the memory expires (`catalogCacheSeconds`)."""
        if self._changes is not None:
            return self.generation, self._changes.mark()
        if self.changes_file is None:
            return self.generation
        return self.generation, self._changes_stat()

    def _changes_stat(self) -> tuple[int, int, int]:
        """The changes file's (mtime, size, inode), looked at most once per `MARK_SECONDS`: a stat cost ~5-15 µs
        on a busy machine and every request asks twice (authentication, table lookup). Another process's
        change is therefore seen up to that much later; this process's own at once (`generation`)."""
        now = time.monotonic()
        if now < self._stat_until:
            return self._stat
        try:
            changes = os.stat(self.changes_file or "")
            stat = changes.st_mtime_ns, changes.st_size, changes.st_ino
        except OSError:
            stat = (0, 0, 0)
        self._stat, self._stat_until = stat, now + MARK_SECONDS
        return stat

    def _announce_change(self) -> None:
        """After a catalog change committed on a SQLite file: tell every process's `change_mark`. Appending
        (rather than touching) moves the size too, which a timestamp of coarse resolution might not."""
        if self.changes_file is None:
            return
        try:
            fd = os.open(self.changes_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:  # a read-only directory: other processes see the change when memory expires
            log.warning("catalog change not announced to other processes (%s)", exc.__class__.__name__)
            return
        try:
            if os.fstat(fd).st_size >= _CHANGES_FILE_BYTES:
                os.ftruncate(fd, 0)
            os.write(fd, b".")
        finally:
            os.close(fd)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        must_not_block()  # a query: never on the event loop (lakegate.inline)
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self, *, catalog_change: bool = True) -> Iterator[Connection]:
        """One transaction, committed on success and rolled back on error. `catalog_change` False: it changes
        nothing a request's authentication or lookups read (audit events)."""
        must_not_block()
        try:
            with self.engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
                yield conn
                if catalog_change and self._changes is not None:
                    conn.exec_driver_sql(NOTIFY)  # delivered to every listener when this commits
        finally:
            if catalog_change:
                self.generation += 1
        if catalog_change:  # committed (announced after, so nothing read before the commit outlives the mark)
            self._announce_change()

    def ping(self) -> bool:
        try:
            with self.read() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def close(self) -> None:
        if self._changes is not None:
            self._changes.stop()
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)})"


# Starlette runs handlers on up to 40 worker threads; each may hold one connection while it authenticates,
# looks a table up or writes an audit event. Size the database's max_connections for 40 per replica.
POOL = {"pool_size": 10, "max_overflow": 30}


def _engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        # pre_ping: a replica survives a database restart or failover without serving errors.
        return sa.create_engine(url, pool_pre_ping=True, **POOL)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if not url.database or url.database == ":memory:":
        kwargs["poolclass"] = StaticPool  # one shared connection, or every connection sees an empty database
    else:
        _create_private_file(Path(url.database))
        kwargs.update(POOL)
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if url.database and url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: a full SQLAlchemy execution here would double the cost of each request's reads.
        begin = "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN"
        # Typed Optional (a pool may have detached it); inside a beginning transaction it is always there.
        conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]

    return engine


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only: it holds the token signing key and the audit
    trail (SQLite gives its -wal and -shm files the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
