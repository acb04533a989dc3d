"""`recipients create|rotate --activation-link`: a link instead of a profile, whose download (the server's
activation page, in process) hands out a token that works; the old token survives a rotation's grace."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakegate.cli.main import app
from lakegate.config import load_config
from lakegate.server import build_app
from tests.cli.test_databases import _write
from tests.inprocess import AppClient
from tests.services.postgres import PostgresService

runner = CliRunner()


def _cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _download(client: AppClient, link: str) -> dict:
    page = client.raw("GET", link)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert page.status_code == 200 and csrf, page.text
    answer = client.raw("POST", link, data={"csrf": csrf.group(1)})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_create_and_rotate_hand_out_links(tmp_path: Path) -> None:
    config = _write(tmp_path / "a.yaml", ["share_a"])
    created = _cli(
        "recipients", "create", "partner", "--share", "share_a", "--activation-link", "-c", str(config)
    )
    assert "profile" not in created and created["validSeconds"] == 7 * 86400
    link = created["activationLink"]
    assert re.fullmatch(r"http://localhost:8080/delta-sharing/activate/[A-Za-z0-9_-]{43}", link), link
    client = AppClient(build_app(load_config(config)), None)
    try:
        first = _download(client, link)
        assert client.get("/shares", token=first["bearerToken"]).status_code == 200
        rotated = _cli(
            "recipients", "rotate", "partner", "--grace", "3600", "--activation-link", "-c", str(config)
        )
        second = _download(client, rotated["activationLink"])
        assert second["bearerToken"] != first["bearerToken"]
        for profile in (first, second):  # the old token within its grace period, and the new one
            assert client.get("/shares", token=profile["bearerToken"]).status_code == 200
    finally:
        client.close()


def test_a_link_and_a_profile_file_are_one_or_the_other(tmp_path: Path) -> None:
    config = _write(tmp_path / "a.yaml", ["share_a"])
    out = tmp_path / "p.share"
    result = runner.invoke(
        app,
        [
            "recipients",
            "create",
            "partner",
            "--activation-link",
            "--profile-out",
            str(out),
            "-c",
            str(config),
        ],
    )
    assert result.exit_code == 1 and "not both" in result.output and not out.exists()


def test_a_private_key_jwt_recipient_gets_no_link(tmp_path: Path) -> None:
    config = _write(tmp_path / "a.yaml", ["share_a"])
    result = runner.invoke(
        app,
        ["recipients", "create", "k", "--auth", "private-key-jwt", "--activation-link", "-c", str(config)],
    )
    assert result.exit_code == 1 and "holds its own key" in result.output
    listed = _cli("recipients", "list", "-c", str(config))
    assert [r["name"] for r in listed] == []  # refused before anything was made


@pytest.mark.postgres
def test_a_recipient_opening_a_link_while_the_database_is_down_gets_a_page(
    postgres: PostgresService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The activation page is a browser's: with the database stopped it answers 503 as an HTML page saying to
    retry (it was the protocol's JSON error), and works again once the database is back. The error logged names
    the route, not the link's code (a secret: whoever has it can download the credential)."""
    config = _write(tmp_path / "a.yaml", ["share_a"], database=postgres.create_database("activation_down"))
    link = _cli(
        "recipients", "create", "partner", "--share", "share_a", "--activation-link", "-c", str(config)
    )["activationLink"]
    client = AppClient(build_app(load_config(config)), None)
    try:
        assert client.raw("GET", link).status_code == 200
        postgres.stop()
        try:
            for method in ("GET", "POST"):
                page = client.raw(method, link, data={"csrf": "x"} if method == "POST" else None)
                assert page.status_code == 503, page.text
                assert page.headers["content-type"].startswith("text/html"), page.text
                assert "try again" in page.text and "errorCode" not in page.text
        finally:
            postgres.start_again()
        assert "database unavailable on GET /delta-sharing/activate/{code}" in caplog.text
        assert link.rsplit("/", 1)[1] not in caplog.text
        assert _download(client, link)["bearerToken"]
    finally:
        client.close()
