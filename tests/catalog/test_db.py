"""Database URLs, the default SQLite file, and failing clearly when the database cannot be reached."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lakegate.catalog.db import MARK_SECONDS, Database, resolve_url
from lakegate.catalog.migrate import open_database
from lakegate.config import load_config
from lakegate.exceptions import ConfigError

UNREACHABLE = "postgresql://lakegate:s3cret-pw@127.0.0.1:1/lakegate"


def test_urls(tmp_path: Path) -> None:
    assert resolve_url(None, tmp_path) == f"sqlite:///{tmp_path}/lakegate.db"
    assert resolve_url("sqlite:///rel/cat.db", tmp_path) == f"sqlite:///{tmp_path}/rel/cat.db"
    assert resolve_url("sqlite:////abs/cat.db", tmp_path) == "sqlite:////abs/cat.db"
    assert resolve_url("postgresql://u:p@h:5432/d", tmp_path) == "postgresql+psycopg://u:p@h:5432/d"
    assert resolve_url("postgres://u@h/d", tmp_path) == "postgresql+psycopg://u@h/d"
    with pytest.raises(ConfigError):
        resolve_url("not a url", tmp_path)
    with pytest.raises(
        ConfigError, match=r"^database: mysql is not supported: use sqlite:///FILE or postgresql"
    ):
        resolve_url("mysql://u@h/d", tmp_path)


def test_default_database_is_a_private_sqlite_file_beside_the_config(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "server.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"version": 1, "shares": [{"name": "s"}]}))
    db = open_database(load_config(path))
    db.close()
    assert (path.parent / "server.db").stat().st_mode & 0o777 == 0o600  # named after the configuration


def test_unreachable_database(tmp_path: Path) -> None:
    assert Database(resolve_url(UNREACHABLE, None)).ping() is False
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "database": UNREACHABLE}))
    with pytest.raises(
        ConfigError, match=r"database postgresql\+psycopg://lakegate:\*\*\*@127.0.0.1:1/lakegate"
    ):
        open_database(load_config(path))
    proc = subprocess.run(
        [sys.executable, "-m", "lakegate", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "error: database" in proc.stderr
    assert "s3cret-pw" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_audit_writes_leave_the_change_mark_and_any_catalog_change_moves_it(tmp_path: Path) -> None:
    """Audit writes — this object's or another's (another worker, another server on the file) — do not end what
    a process remembers of the catalog (they change nothing it reads); a catalog change through any database
    object does, each one (the CLI's, another worker's, its own)."""
    url = f"sqlite:///{tmp_path / 'marks.db'}"
    db, other = Database(url), Database(url)
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE events (n INTEGER)")
        mark = db.change_mark()
        for n in range(3):
            for writer in (db, other):
                with writer.write(catalog_change=False) as conn:
                    conn.exec_driver_sql(f"INSERT INTO events VALUES ({n})")
                assert db.change_mark() == mark
        seen = {mark}
        for n in range(3):  # back to back: each is seen, after at most MARK_SECONDS
            with other.write() as conn:
                conn.exec_driver_sql(f"INSERT INTO events VALUES ({10 + n})")
            time.sleep(MARK_SECONDS)
            assert db.change_mark() not in seen
            seen.add(db.change_mark())
        with db.write() as conn:  # a catalog change of its own
            conn.exec_driver_sql("INSERT INTO events VALUES (20)")
        assert db.change_mark() not in seen
        assert Path(f"{tmp_path / 'marks.db'}-changes").stat().st_mode & 0o077 == 0  # the owner's only
    finally:
        db.close()
        other.close()
