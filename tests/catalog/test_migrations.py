"""Migrations: they build exactly the models' schema, run once, and are safe when replicas start together."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from lakegate.catalog import migrate
from lakegate.catalog.db import Database
from lakegate.catalog.models import Base, Share
from lakegate.catalog.recipients import Recipients
from tests.catalog.support import SHARES, config, prepared


def test_upgrade_creates_the_models_schema(db: Database) -> None:
    assert migrate.current_revision(db) is None
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision()
    with db.read() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": migrate.VERSION_TABLE}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    migrate.upgrade(db)
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision()


def test_prepare_keeps_data_across_restarts(db: Database) -> None:
    prepared(db, shares=SHARES)
    Recipients(db).create("alice", ["share1"])
    prepared(db, shares=SHARES)
    assert Recipients(db).get("alice")["shares"] == ["share1"]


def test_concurrent_starts_migrate_and_sync_once(db_url: str) -> None:
    """Eight 'replicas' (own engines, own connections) prepare one empty database at the same moment."""
    settings = config(shares=SHARES, authorization={"bearerToken": "t" * 32})

    def start(_: int) -> None:
        database = Database(db_url)
        try:
            migrate.migrate_and_sync(database, settings)
        finally:
            database.close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(start, range(8)))
    database = Database(db_url)
    with database.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Share)).scalar_one() == 3
    assert [r["name"] for r in Recipients(database).all()] == ["bootstrap"]
    database.close()


def test_db_upgrade_commands_in_parallel_processes(db_url: str, tmp_path: Path) -> None:
    """`lakegate db upgrade` from several processes at once, as replicas started together would."""
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "database": db_url, "shares": SHARES}))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lakegate", "db", "upgrade", "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(code == 0 for _, _, code in results), results
    assert all(f"revision {migrate.head_revision()}" in out for out, _, _ in results)
