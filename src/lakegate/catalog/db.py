"""The catalog's database: a SQLAlchemy engine tuned per backend, and the transactions the catalog uses.

SQLite (the default, a file beside the configuration) runs in WAL mode so a running server and the CLI can
use one file at once; write transactions take the write lock up front (`BEGIN IMMEDIATE`) so two writers wait
for each other instead of failing mid-transaction. PostgreSQL is the choice for several replicas.
"""

from __future__ import annotations

import os
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
        self._wal = None if sqlite is None else f"{sqlite}-wal"
        self._wal_alias: tuple[tuple[int, int], tuple[int, int]] | None = (
            None  # (WAL stat, the mark it counts as)
        )
        self._changes = ChangeListener(self.url) if self.backend == "postgresql" else None

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for an in-memory SQLite or another backend."""
        db = self.url.database
        return Path(db) if self.backend == "sqlite" and db and db != ":memory:" else None

    def change_mark(self) -> Hashable:
        """What changes when the database may have: this object's write transactions, and any process's commit
        (the CLI's, another server's): on a SQLite file each appends to the WAL file, so one stat tells; on
        PostgreSQL each is announced (`lakegate.catalog.changes`). What the server remembers of the catalog
        (`lakegate.catalog.recent`) is forgotten when the mark changes."""
        if self._changes is not None:
            return self.generation, self._changes.mark()
        if self._wal is None:
            return self.generation
        return self.generation, *self._wal_mark()

    def _wal_stat(self) -> tuple[int, int]:
        try:
            wal = os.stat(self._wal or "")
        except OSError:
            return 0, 0
        return wal.st_mtime_ns, wal.st_size

    def _wal_mark(self) -> tuple[int, int]:
        """The WAL file's (mtime, size), except that what this object's own audit writes appended does not
        count: the audit writer commits every 50 ms under load, and forgetting every remembered authentication
        each time cost a database query per request. Its mark is taken while the write lock is held, so only a
        commit by another process in the microseconds between the audit's commit and the stat that follows it
        goes unseen until the memory expires (`catalogCacheSeconds`)."""
        stat = self._wal_stat()
        alias = self._wal_alias
        return alias[1] if alias is not None and alias[0] == stat else stat

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
        quiet: tuple[int, int] | None = None
        try:
            with self.engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
                yield conn
                if catalog_change and self._changes is not None:
                    conn.exec_driver_sql(NOTIFY)  # delivered to every listener when this commits
                if not catalog_change and self._wal is not None:
                    quiet = (
                        self._wal_mark()
                    )  # SQLite: BEGIN IMMEDIATE holds the write lock, no commit but ours
        finally:
            if catalog_change:
                self.generation += 1
        if quiet is not None:  # committed: the WAL as it is now counts as it did before (see `_wal_mark`)
            self._wal_alias = (self._wal_stat(), quiet)

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
