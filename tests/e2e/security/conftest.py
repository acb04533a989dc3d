"""One running `lakegate serve` on real local Delta tables, with every kind of caller an attacker may be:
recipients with and without grants, revoked and expired ones, an admin, the configuration's bootstrap token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.integration.admin_support import lakegate_json
from tests.e2e.server import RunningServer, start_server
from tests.services.postgres import PostgresService
from tests.tables import build_partitioned, build_plain


@dataclass
class Target:
    """The server under attack and what an attacker must never learn from it."""

    server: RunningServer
    tables: dict[str, str]  # table name -> directory on the server's disk
    tokens: dict[str, str]  # caller -> bearer token: bootstrap, alice, bob, revoked, expired, admin
    signing_key: str
    issued: list[str] = field(default_factory=list)  # every token made, for the leak checks

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def auth(self, caller: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[caller]}"}

    def secrets(self) -> list[str]:
        """Strings no answer and no log line may contain."""
        return [self.signing_key, *self.tokens.values(), *self.issued]

    def server_paths(self) -> list[str]:
        """Server-side paths no recipient's answer may contain."""
        return [str(self.server.workdir), *self.tables.values()]

    def log(self) -> str:
        return self.server.daemon.log_path.read_text(errors="replace")


LINKED = {"links": {"default": ["escape", "via_link"]}}  # symlinked_tables
TABLES = {
    "share1": {"default": {"sales": "sales", "plain": "plain", "paged": "paged"}},
    "share2": {"other": {"plain2": "plain"}},
}


def shares_config(tables: dict[str, str]) -> list[dict]:
    return [
        {
            "name": share,
            "schemas": [
                {
                    "name": schema,
                    "tables": [
                        {"name": name, "location": tables[source], "historyShared": True}
                        for name, source in names.items()
                    ],
                }
                for schema, names in schemas.items()
            ],
        }
        for share, schemas in TABLES.items()
    ]


def symlinked_tables(base: Path, workdir: Path) -> dict:
    """Share `links`: `escape`, whose first data file is a symlink to a copy outside its root and which holds
    a directory symlink `up` to the server's own directory (config, database); `via_link`, a table whose
    location itself is a symlink to a real table directory (the real root: its files are the table's)."""
    escape = Path(build_plain(base / "escape", batches=2))
    outside = base / "outside"
    outside.mkdir()
    moved = min(escape.glob("*.parquet"))
    moved.rename(outside / moved.name)
    moved.symlink_to(outside / moved.name)
    (escape / "up").symlink_to(workdir, target_is_directory=True)
    via_link = base / "via-link"
    via_link.symlink_to(Path(build_plain(base / "linked-target")), target_is_directory=True)
    tables = [{"name": "escape", "location": str(escape)}, {"name": "via_link", "location": str(via_link)}]
    return {"name": "links", "schemas": [{"name": "default", "tables": tables}]}


def _admin_post(base: str, admin: str, path: str, body: dict | None = None) -> dict:
    response = httpx.post(
        f"{base}/admin{path}", json=body or {}, headers={"Authorization": f"Bearer {admin}"}, timeout=30
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@contextmanager
def running_target(tmp_path_factory: pytest.TempPathFactory, database: str | None = None) -> Iterator[Target]:
    """The server on its tables and its callers; `database` a SQLAlchemy URL (default: SQLite beside the config)."""
    base = tmp_path_factory.mktemp("attack-tables")
    tables = {
        "sales": build_partitioned(base / "sales"),
        "plain": build_plain(base / "plain"),
        "paged": build_plain(base / "paged", batches=5),
    }
    workdir = tmp_path_factory.mktemp("attack-server")
    links = symlinked_tables(base, workdir)
    # asyncQueryMinFiles 0: every query asking for `asyncquery=true` runs as an async query (a token to attack).
    config: dict = {"shares": [*shares_config(tables), links], "asyncQueryMinFiles": 0}
    if database is not None:
        config["database"] = database
    server = start_server(workdir, config)
    try:
        config_path = server.workdir / "lakegate.yaml"
        signing_key = str(yaml.safe_load(config_path.read_text())["tokenSigningKey"])
        admin = str(lakegate_json(config_path, "admin-tokens", "create", "attack-admin")["token"])

        def recipient(name: str, shares: list[str], **extra: int) -> str:
            body = {"name": name, "shares": shares, **extra}
            return str(_admin_post(server.base_url, admin, "/recipients", body)["profile"]["bearerToken"])

        tokens = {
            "bootstrap": str(server.token),
            "admin": admin,
            "alice": recipient("alice", ["share1", "share2", "links"]),
            "bob": recipient("bob", ["share2"]),
            "revoked": recipient("revoked", ["share1", "share2"]),
            "expired": recipient("expired", ["share1", "share2"], expiresInSeconds=1),
        }
        _admin_post(server.base_url, admin, "/recipients/revoked/revoke")
        time.sleep(1.1)  # until the expired recipient's token has expired
        yield Target(server, tables, tokens, signing_key)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running_target(tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="session")
def pg_target(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Target]:
    """The same server on PostgreSQL: names and tokens reach another SQL dialect (NUL bytes, collations…)."""
    with running_target(tmp_path_factory, postgres.create_database("attack")) as running:
        yield running
