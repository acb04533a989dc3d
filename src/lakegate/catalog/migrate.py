"""Bringing a database up to date: Alembic migrations, then the YAML's shares, under one startup lock.

Several replicas may start at once on one database: each takes the lock (a PostgreSQL advisory lock, or a lock
file beside a SQLite database), so exactly one migrates and syncs while the others wait, then find nothing
left to do.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from lakegate.catalog.db import Database, redacted, resolve_url
from lakegate.catalog.keystore import ensure_signing_key
from lakegate.catalog.ownership import check_owner, claim, default_database
from lakegate.catalog.sync import sync_config
from lakegate.config import ServerConfig
from lakegate.exceptions import ConfigError
from lakegate.preflight import check_database_driver, check_locations, config_locations

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "lakegate_schema_version"
# Any fixed 64-bit number; it names lakegate's lock among other advisory locks on the same server.
ADVISORY_LOCK_KEY = 0x6C616B6567617465  # "lakegate"


@contextmanager
def startup_lock(db: Database) -> Iterator[None]:
    if db.backend == "postgresql":
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                conn.commit()
    elif db.sqlite_path is not None:
        with open(db.sqlite_path.with_name(db.sqlite_path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    else:
        yield  # in-memory SQLite: one process by definition


def _alembic(conn: sa.Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.read() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(db: Database) -> None:
    """Apply every pending migration (a no-op when the schema is current)."""
    with startup_lock(db):
        _upgrade(db)


def _upgrade(db: Database) -> None:
    before = current_revision(db)
    if before == head_revision():
        return
    with db.engine.connect() as conn:
        command.upgrade(_alembic(conn), "head")
        conn.commit()
    log.info("database schema upgraded from %s to %s", before or "empty", head_revision())


def migrate_and_sync(db: Database, config: ServerConfig) -> None:
    """Migrate, apply the YAML's shares and bootstrap token, and make sure replicas share a signing key; refused
    (ConfigError) when the database belongs to another configuration."""
    with startup_lock(db):
        _upgrade(db)
        with db.write() as conn:
            claim(conn, config, redacted(str(db.url)))
            sync_config(conn, config)
            if config.token_signing_key is None:
                ensure_signing_key(conn)


def database_url(config: ServerConfig) -> str:
    """The configuration's database URL: `database:`, else the SQLite file named after the configuration."""
    default = None if config.database else default_database(config)
    return resolve_url(config.database, config.base_dir, default)


def open_database(config: ServerConfig, read_only: bool = False) -> Database:
    """The configuration's database, migrated and in step with the YAML; ConfigError if it cannot be.
    `read_only` (list and show commands): the database as it is, with nothing written, not even the YAML."""
    # Before anything is written: the YAML's tables reach the database (and recipients) only once they parse.
    check_locations(config_locations(config))
    url = database_url(config)
    check_database_driver(sa.make_url(url))
    if read_only:
        return _open_as_is(url, config)
    try:
        db = Database(url)
    except OSError as exc:  # the SQLite file's directory is missing or not writable
        raise ConfigError(f"database {redacted(url)}: {exc.strerror}") from None
    try:
        migrate_and_sync(db, config)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        db.close()
        raise ConfigError(f"database {redacted(url)}: {_first_line(exc)}") from None
    return db


def _open_as_is(url: str, config: ServerConfig) -> Database:
    setup = "start the server or run `lakegate db upgrade` with this configuration first"
    parsed = sa.make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).exists():  # opening it would create it
        raise ConfigError(f"database {redacted(url)} does not exist yet: {setup}")
    db = Database(url)
    try:
        if current_revision(db) != head_revision():
            raise ConfigError(f"database {redacted(url)} is not up to date: {setup}")
        with db.read() as conn:
            check_owner(conn, config, redacted(url))
    except sa.exc.SQLAlchemyError as exc:
        db.close()
        raise ConfigError(f"database {redacted(url)}: {_first_line(exc)}") from None
    except ConfigError:
        db.close()
        raise
    return db


def _first_line(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return str(cause).strip().splitlines()[0]
