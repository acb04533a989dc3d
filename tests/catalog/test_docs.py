"""The admin CLI and API are documented: every command and route appears in docs/recipients.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from lakegate.cli.main import app
from lakegate.http.admin import admin_routes

DOC = (Path(__file__).parents[2] / "docs" / "recipients.md").read_text()
ADMIN_GROUPS = ("recipients", "shares", "tables", "admin-tokens", "db")


def _commands() -> list[str]:
    root = typer.main.get_command(app)
    out = ["audit"]
    for group in ADMIN_GROUPS:
        out += [f"{group} {name}" for name in root.commands[group].commands]  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize("command", _commands())
def test_every_admin_command_is_documented(command: str) -> None:
    group, _, name = command.partition(" ")
    assert f"lakegate {command}" in DOC or (name and f"lakegate {group}" in DOC and name in DOC)


def test_every_admin_route_is_documented() -> None:
    for route in admin_routes(None):  # type: ignore[arg-type]
        path = "/admin" + route.path.replace("{recipient}", "{name}")  # type: ignore[attr-defined]
        assert path in DOC, path
