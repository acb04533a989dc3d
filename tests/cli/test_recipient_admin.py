"""Recipient administration as an operator does it with the CLI on a real SQLite database, and what the operator
can read afterwards: `recipients delete`, admin changes in the audit trail as `cli:<os user>`, and why a
recipient's request was refused (in the server's log only: the recipient is told nothing)."""

from __future__ import annotations

import getpass
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lakegate.cli.main import app
from lakegate.config import load_config
from lakegate.server import build_app
from tests.cli.test_databases import _write
from tests.inprocess import AppClient
from tests.tables import build_plain

runner = CliRunner()


def _json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    build_plain(tmp_path / "tables" / "t")
    return _write(tmp_path / "a.yaml", ["share_a", "share_b"], warmUp=False)


def test_delete_removes_the_recipient_its_tokens_and_grants_and_is_audited(config: Path) -> None:
    token = _json("recipients", "create", "partner", "--share", "share_a", "-c", str(config))["profile"][
        "bearerToken"
    ]
    _json("recipients", "grant", "partner", "share_b", "-c", str(config))
    server = AppClient(build_app(load_config(config)), token)
    try:
        assert server.get("/shares").status_code == 200
        deleted = _json("recipients", "delete", "partner", "-c", str(config))
        assert deleted["name"] == "partner" and deleted["deleted"] is True
        assert server.get("/shares").status_code == 401  # on the running server's next request
    finally:
        server.close()
    assert _json("recipients", "list", "-c", str(config)) == []
    assert _json("shares", "show", "share_a", "-c", str(config))["recipients"] == []
    missing = runner.invoke(app, ["recipients", "delete", "partner", "-c", str(config)])
    assert missing.exit_code == 1 and missing.stderr == "error: recipient 'partner' not found\n"

    events = _json("audit", "-c", str(config))
    me = f"cli:{getpass.getuser()}"
    assert [(e["actor"], e["operation"], e["recipient"], e["table"]) for e in events] == [
        (me, "admin:recipient-create", "partner", None),
        (me, "admin:grant", "partner", "share_b"),
        (me, "admin:recipient-delete", "partner", None),
    ]
    text = runner.invoke(app, ["audit", "-c", str(config)]).stdout
    assert text.splitlines()[0].split()[-1] == "BY" and me in text


def test_admin_token_create_and_revoke_are_audited_with_the_tokens_name(config: Path) -> None:
    token = _json("admin-tokens", "create", "ops", "-c", str(config))["token"]
    server = AppClient(build_app(load_config(config)), token)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        assert server.raw("GET", "/admin/recipients", headers=auth).status_code == 200
        assert _json("admin-tokens", "revoke", "ops", "-c", str(config))["tokensRevoked"] == 1
        assert server.raw("GET", "/admin/recipients", headers=auth).status_code == 401
    finally:
        server.close()
    missing = runner.invoke(app, ["admin-tokens", "revoke", "nobody", "-c", str(config)])
    assert missing.exit_code == 1  # nothing changed: nothing audited

    events = _json("audit", "-c", str(config))
    me = f"cli:{getpass.getuser()}"
    assert [(e["actor"], e["operation"], e["recipient"], e["mode"]) for e in events] == [
        (me, "admin:admin-token-create", "ops", "admin"),
        (me, "admin:admin-token-revoke", "ops", "admin"),
    ]
    assert token not in json.dumps(events)


def test_the_bootstrap_recipient_is_deleted_in_the_yaml_not_the_cli(tmp_path: Path) -> None:
    config = _write(tmp_path / "a.yaml", ["share_a"], authorization={"bearerToken": "x" * 32})
    result = runner.invoke(app, ["recipients", "delete", "bootstrap", "-c", str(config)])
    assert result.exit_code == 1 and "remove that from the YAML" in result.stderr
    assert [r["name"] for r in _json("recipients", "list", "-c", str(config))] == ["bootstrap"]


def test_the_operator_learns_why_a_token_was_refused_the_recipient_does_not(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    revoked = _json("recipients", "create", "old", "--share", "share_a", "-c", str(config))["profile"]
    _json("recipients", "revoke", "old", "-c", str(config))
    brief = _json(
        "recipients", "create", "brief", "--share", "share_a", "--expires-in", "1", "-c", str(config)
    )["profile"]
    time.sleep(1.2)
    server = AppClient(build_app(load_config(config)), None)
    answers = {}
    try:
        with caplog.at_level(logging.INFO, logger="lakegate.auth"):
            for name, token in (
                ("revoked", revoked["bearerToken"]),
                ("expired", brief["bearerToken"]),
                ("unknown", "lg_" + "x" * 43),
                ("none", None),
            ):
                answers[name] = server.get("/shares", token=token)
    finally:
        server.close()
    assert {a.status_code for a in answers.values()} == {401}
    assert len({a.text for a in answers.values()}) == 1  # the same answer whatever the reason
    reasons = [r.getMessage() for r in caplog.records if r.name == "lakegate.auth"]
    assert len(reasons) == 4
    assert (
        reasons[0].startswith("refused (401): token ") and "of recipient 'old' was revoked at" in reasons[0]
    )
    assert "of recipient 'brief' expired at" in reasons[1]
    assert reasons[2:] == ["refused (401): unknown token", "refused (401): no bearer token"]


def test_the_access_log_names_client_and_recipient(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = _json("recipients", "create", "partner", "--share", "share_a", "-c", str(config))["profile"][
        "bearerToken"
    ]
    server = AppClient(build_app(load_config(config)), token)
    try:
        with caplog.at_level(logging.INFO):
            server.post("/shares/share_a/schemas/s/tables/t/query", json={})
    finally:
        server.close()
    access = [r.getMessage() for r in caplog.records if r.name == "lakegate.access"]
    audit = [r.getMessage() for r in caplog.records if r.name == "lakegate.audit"]
    assert access[-1].endswith(" client 127.0.0.1 recipient partner")
    assert audit[-1] == "partner query share_a.s.t: ok (client 127.0.0.1)"


def test_a_recipient_filter_selects_its_data_accesses_not_changes_made_to_it(config: Path) -> None:
    token = _json("recipients", "create", "partner", "--share", "share_a", "-c", str(config))["profile"][
        "bearerToken"
    ]
    server = AppClient(build_app(load_config(config)), token)
    try:
        server.get("/shares/share_a/schemas/s/tables/t/metadata")
    finally:
        server.close()
    mine = _json("audit", "--recipient", "partner", "-c", str(config))
    assert [(e["operation"], e["actor"]) for e in mine] == [("metadata", None)]
    everything = _json("audit", "-c", str(config))
    assert [e["operation"] for e in everything] == ["admin:recipient-create", "metadata"]


def test_recipients_with_oauth_credentials_from_the_cli(config: Path, tmp_path: Path) -> None:
    from tests.auth.keys import ec_pair

    created = _json("recipients", "create", "app", "--share", "share_a", "--auth", "oauth", "-c", str(config))
    assert created["profile"]["type"] == "oauth_client_credentials"
    assert created["profile"]["clientId"] == "app" and created["profile"]["clientSecret"].startswith("lgs_")
    public = tmp_path / "key.pub.pem"
    public.write_text(ec_pair().public_pem)
    rotated = _json(
        "recipients",
        "rotate",
        "app",
        "--auth",
        "private-key-jwt",
        "--public-key",
        str(public),
        "--key-id",
        "k1",
        "-c",
        str(config),
    )
    key = rotated["profile"]["auth"]["privateKey"]
    assert (key["keyId"], key["algorithm"]) == ("k1", "ES256")
    # the secret is untouched by a key rotation: the recipient holds both
    assert [c["status"] for c in rotated["recipient"]["clientSecrets"]] == ["active"]
    shown = runner.invoke(app, ["recipients", "show", "app", "-c", str(config)])
    assert shown.exit_code == 0 and "key ES256" in shown.stdout and "k1" in shown.stdout
    revoked = _json("recipients", "revoke", "app", "-c", str(config))
    assert revoked["credentialsRevoked"] == 2 and revoked["status"] == "inactive"
    for args, message in (
        (["--auth", "bogus"], "auth must be one of"),
        (["--auth", "private-key-jwt"], "needs --public-key"),
        (["--auth", "oauth", "--key-id", "k"], "go with --auth private-key-jwt"),
        (["--auth", "private-key-jwt", "--activation-link"], "holds its own key"),
        (
            ["--auth", "private-key-jwt", "--public-key", str(tmp_path / "missing.pem"), "--key-id", "k"],
            "missing.pem",
        ),
    ):
        result = runner.invoke(
            app, ["recipients", "create", "x", "--share", "share_a", *args, "-c", str(config)]
        )
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
