"""One database per configuration, as a provider with two configuration files in one folder meets it: each file
has its own database by default, a database refuses the shares of another configuration, and list/show
commands write nothing (not even the YAML's shares)."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from lakegate.cli.main import app
from tests.services.postgres import PostgresService

runner = CliRunner()
_databases = itertools.count()


def _write(path: Path, shares: list[str], **extra: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = {"name": "t", "location": (path.parent / "tables" / "t").as_uri()}
    config = {
        "version": 1,
        "shares": [{"name": s, "schemas": [{"name": "s", "tables": [table]}]} for s in shares],
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _ok(*args: str) -> str:
    result = _run(*args)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def _create_partner(config: Path) -> None:
    """Recipient `partner`, granted share_a, its profile written beside the configuration."""
    profile = str(config.parent / "partner.share")
    _ok("recipients", "create", "partner", "--share", "share_a", "-c", str(config), "--profile-out", profile)


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def test_two_configurations_in_one_folder_keep_their_own_databases(tmp_path: Path) -> None:
    a, b = _write(tmp_path / "a.yaml", ["share_a"]), _write(tmp_path / "b.yaml", ["share_b"])
    _create_partner(a)
    _ok("db", "upgrade", "-c", str(b))
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()
    assert not (tmp_path / "lakegate.db").exists()
    assert "share_a" not in _ok("shares", "list", "-c", str(b))
    listed = _ok("shares", "list", "-c", str(a))
    assert "share_a" in listed and "partner" in listed and "share_b" not in listed


def test_list_and_show_commands_write_nothing(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.yaml", ["share_a", "share_c"])
    _create_partner(a)
    before = _dump(tmp_path / "a.db")
    # The YAML changes (share_a dropped): reading must neither apply it nor delete share_a's grant.
    _write(a, ["share_c"])
    result = _run("shares", "list", "-c", str(a))
    assert result.exit_code == 0 and "no longer in the configuration" not in result.output
    for command in (
        ["recipients", "list"],
        ["recipients", "show", "partner"],
        ["shares", "show", "share_a"],
        ["admin-tokens", "list"],
        ["audit"],
    ):
        _ok(*command, "-c", str(a))
    assert _dump(tmp_path / "a.db") == before


def test_a_read_before_any_database_exists_says_how_to_create_it(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.yaml", ["share_a"])
    result = _run("shares", "list", "-c", str(a))
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "does not exist yet: start the server or run `lakegate db upgrade` with this configuration first"
    )
    assert not (tmp_path / "a.db").exists()


def test_a_database_refuses_another_configurations_shares(tmp_path: Path) -> None:
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    a = _write(tmp_path / "a.yaml", ["share_a"], database=shared)
    b = _write(tmp_path / "b.yaml", ["share_b"], database=shared)
    _create_partner(a)
    before = _dump(tmp_path / "shared.db")
    for command in (
        ["shares", "list"],
        ["db", "upgrade"],
        ["recipients", "grant", "partner", "share_b"],
        ["serve"],
    ):
        result = _run(*command, "-c", str(b))
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert "belongs to configuration 'a', not to this one ('b')" in line and "configId: a" in line
    assert _dump(tmp_path / "shared.db") == before
    # Declared a replica of 'a' on purpose, b is let in (and then applies its YAML, as a replica would).
    _write(b, ["share_a"], database=shared, configId="a")
    assert "partner" in _ok("shares", "list", "-c", str(b))


def test_an_earlier_versions_lakegate_db_keeps_working(tmp_path: Path) -> None:
    """Before one database per configuration, every configuration's database was lakegate.db: the configuration
    it belongs to keeps it; another configuration in the folder gets its own."""
    a = _write(tmp_path / "server.yaml", ["share_a"], database="sqlite:///lakegate.db")
    _create_partner(a)
    with sqlite3.connect(tmp_path / "lakegate.db") as conn:  # as written by an earlier version: no owner
        conn.execute("DELETE FROM server_settings WHERE key = 'config_id'")
    _write(a, ["share_a"])  # the default database from now on
    assert "partner" in _ok("recipients", "list", "-c", str(a))
    _ok("db", "upgrade", "-c", str(a))
    assert not (tmp_path / "server.db").exists()
    other = _write(tmp_path / "other.yaml", ["share_b"])
    _ok("db", "upgrade", "-c", str(other))
    assert (tmp_path / "other.db").exists()
    assert "partner" in _ok("recipients", "list", "-c", str(a))


@pytest.mark.postgres
def test_replicas_of_one_configuration_share_a_postgresql_database(
    tmp_path: Path, postgres: PostgresService
) -> None:
    url = postgres.create_database(f"owners_{next(_databases)}")
    first = _write(tmp_path / "one" / "lakegate.yaml", ["share_a"], database=url)
    replica = _write(tmp_path / "two" / "lakegate.yaml", ["share_a"], database=url, port=9090)
    _create_partner(first)
    _ok("recipients", "grant", "partner", "share_a", "-c", str(replica))
    stranger = _write(tmp_path / "two" / "other.yaml", ["share_b"], database=url)
    result = _run("recipients", "list", "-c", str(stranger))
    assert result.exit_code == 2 and "belongs to configuration 'lakegate'" in result.stderr
    assert "share_a" in _ok("recipients", "show", "partner", "-c", str(first))
