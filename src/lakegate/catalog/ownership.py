"""One database per configuration: the default database is named after the configuration file, and a database
records the configuration that first used it, so another configuration cannot apply its shares to it (and
delete the first one's shares and grants as "no longer in the configuration").

A configuration's identity is its `configId`, else its file's name without extension (`a.yaml` -> "a"):
replicas of one configuration, which share one PostgreSQL database on purpose, have the same file name (or set
the same configId) wherever their files are.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

import sqlalchemy as sa

from lakegate.catalog.db import LEGACY_FILE
from lakegate.catalog.models import Setting
from lakegate.config import ServerConfig
from lakegate.exceptions import ConfigError

log = logging.getLogger(__name__)
CONFIG_ID = "config_id"


def default_database(config: ServerConfig) -> Path:
    """`<file name>.db` beside the configuration file; `lakegate.db` there instead when it is a database of an
    earlier version (which named every database so) that belongs to this configuration."""
    base = config.base_dir or Path.cwd()
    own, legacy = base / f"{config.file_stem}.db", base / LEGACY_FILE
    if own == legacy or own.exists() or not legacy.exists():
        return own
    owner, yaml_shares = _sqlite_owner(legacy)
    declared = {s.name.lower() for s in config.shares}
    if owner == config.identity or (owner is None and yaml_shares <= declared):
        log.info("using %s, the database of this configuration written by an earlier version", legacy)
        return legacy
    log.info(
        "not using %s: it belongs to configuration '%s'; this configuration's database is %s",
        legacy,
        owner or f"declaring share(s) {', '.join(sorted(yaml_shares - declared))}",
        own,
    )
    return own


def _sqlite_owner(path: Path) -> tuple[str | None, set[str]]:
    """The configuration id a SQLite database records, and the shares its YAML declared; read-only."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            owner = conn.execute("SELECT value FROM server_settings WHERE key = ?", (CONFIG_ID,)).fetchone()
            shares = conn.execute("SELECT name_key FROM shares WHERE managed_by = 'config'").fetchall()
    except sqlite3.Error:  # not a lakegate database, or an empty one
        return None, set()
    return (owner[0] if owner else None), {row[0] for row in shares}


def recorded_owner(conn: sa.Connection) -> str | None:
    return conn.execute(sa.select(Setting.value).where(Setting.key == CONFIG_ID)).scalar()


def check_owner(conn: sa.Connection, config: ServerConfig, database: str) -> None:
    """ConfigError when the database belongs to another configuration."""
    owner = recorded_owner(conn)
    if owner is not None and owner != config.identity:
        raise ConfigError(
            f"database {database} belongs to configuration '{owner}', not to this one ('{config.identity}'): "
            f"give this configuration its own database, or set `configId: {owner}` if it is a replica of "
            f"'{owner}' (docs/configuration.md)"
        )


def claim(conn: sa.Connection, config: ServerConfig, database: str) -> None:
    """Record this configuration as the database's owner, or refuse if another one is."""
    check_owner(conn, config, database)
    if recorded_owner(conn) is None:
        conn.execute(sa.insert(Setting).values(key=CONFIG_ID, value=config.identity))
