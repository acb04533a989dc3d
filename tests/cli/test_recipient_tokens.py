"""Recipient token lifetimes through the CLI, as an operator uses it: a rotation keeps the lifetime the last
token had (or takes a new one), and a lifetime of zero is refused rather than making a dead token."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lakegate.cli.main import app
from tests.cli.test_databases import _write

runner = CliRunner()


def _json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _lifetimes(config: Path) -> list[float]:
    """Each active token's lifetime in seconds, oldest token first."""
    tokens = _json("recipients", "show", "partner", "-c", str(config))["tokens"]
    return [
        (datetime.fromisoformat(t["expiresAt"]) - datetime.fromisoformat(t["createdAt"])).total_seconds()
        if t["expiresAt"]
        else float("inf")
        for t in tokens
        if t["status"] == "active"
    ]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = _write(tmp_path / "a.yaml", ["share_a"])
    _json("recipients", "create", "partner", "--share", "share_a", "--expires-in", "2592000", "-c", str(path))
    return path


def test_rotation_keeps_the_tokens_lifetime(config: Path) -> None:
    rotated = _json("recipients", "rotate", "partner", "--grace", "3600", "-c", str(config))
    assert rotated["profile"]["expirationTime"]
    old, new = _lifetimes(config)
    assert new == 2592000 and 3600 <= old < 3660  # the old token lives out its grace period only
    _json("recipients", "rotate", "partner", "-c", str(config))  # and again, from the rotated token
    assert _lifetimes(config) == [2592000]


def test_rotation_takes_a_new_lifetime_or_none_when_told(config: Path) -> None:
    _json("recipients", "rotate", "partner", "--expires-in", "60", "-c", str(config))
    assert _lifetimes(config) == [60]
    rotated = _json("recipients", "rotate", "partner", "--never-expires", "-c", str(config))
    assert "expirationTime" not in rotated["profile"]
    assert _lifetimes(config) == [float("inf")]


@pytest.mark.parametrize(
    "command",
    [
        ["recipients", "create", "other", "--share", "share_a", "--expires-in", "0"],
        ["recipients", "rotate", "partner", "--expires-in", "0"],
        ["recipients", "rotate", "partner", "--expires-in", "-5"],
        ["admin-tokens", "create", "ops", "--expires-in", "0"],
    ],
)
def test_a_lifetime_of_zero_or_less_is_refused(config: Path, command: list[str]) -> None:
    before = _lifetimes(config)
    result = runner.invoke(app, [*command, "-c", str(config)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == f"error: expires-in must be 1 to {100 * 366 * 86400} seconds"
    assert _lifetimes(config) == before
