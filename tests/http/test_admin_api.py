"""The /admin API in process (tests/inprocess.py, no subprocess): every route, its status and its answer, the
admin-token check, the body checks, and the log line each change leaves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from tests.inprocess import AppClient, error_of, start_app

PUBLIC = "https://share.example.com/delta-sharing"
TABLE = {"schema": "sales", "name": "orders", "location": "s3://bucket/tables/orders"}


class Admin:
    """Requests with an admin token (or the headers given) to the in-process app."""

    def __init__(self, app: AppClient, token: str) -> None:
        self.app, self.auth = app, {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", self.auth)
        return self.app.raw(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[tuple[Admin, Database]]:
    """A server on a fresh SQLite catalog with an admin token, and the database (to check what the API did)."""
    app = start_app(tmp_path, {"publicUrl": PUBLIC}, token=None)
    db = Database(f"sqlite:///{tmp_path / 'lakegate.db'}")
    _, token = AdminTokens(db).create("ops")
    yield Admin(app, token), db
    app.close()
    db.close()


def _error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    error_of(response, response.status_code, body.get("errorCode", ""))  # the shape of an error answer
    return response.status_code, body["errorCode"]


def test_recipient_routes(admin: tuple[Admin, Database]) -> None:
    client, db = admin
    assert client.post("/admin/shares", json={"name": "s1"}).status_code == 201
    assert client.post("/admin/shares", json={"name": "s2"}).status_code == 201

    created = client.post("/admin/recipients", json={"name": "alice", "shares": ["s1"], "comment": "partner"})
    assert created.status_code == 201
    body = created.json()
    assert body["recipient"]["name"] == "alice" and body["recipient"]["shares"] == ["s1"]
    assert body["profile"]["endpoint"] == PUBLIC
    first_token = body["profile"]["bearerToken"]

    listed = client.get("/admin/recipients")
    assert listed.status_code == 200
    assert [r["name"] for r in listed.json()["items"]] == ["alice"]
    assert client.get("/admin/recipients/alice").json() == Recipients(db).get("alice")

    rotated = client.post("/admin/recipients/alice/rotate", json={"graceSeconds": 0})
    assert rotated.status_code == 200
    assert rotated.json()["profile"]["bearerToken"] != first_token

    granted = client.put("/admin/recipients/alice/grants/s2")
    assert (granted.status_code, granted.json()["shares"]) == (200, ["s1", "s2"])
    ungranted = client.delete("/admin/recipients/alice/grants/s1")
    assert (ungranted.status_code, ungranted.json()["shares"]) == (200, ["s2"])
    assert Recipients(db).get("alice")["shares"] == ["s2"]

    revoked = client.post("/admin/recipients/alice/revoke")
    assert (revoked.status_code, revoked.json()["tokensRevoked"]) == (200, 1)

    assert _error(client.get("/admin/recipients/nobody")) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert _error(client.post("/admin/recipients", json={"name": "alice"}))[0] == 409


def test_share_and_table_routes(admin: tuple[Admin, Database]) -> None:
    client, _ = admin
    created = client.post(
        "/admin/shares", json={"name": "s1", "displayName": "Share one", "properties": {"team": "a"}}
    )
    assert created.status_code == 201 and created.json()["name"] == "s1"
    assert [s["name"] for s in client.get("/admin/shares").json()["items"]] == ["s1"]

    added = client.post("/admin/shares/s1/tables", json={**TABLE, "historyShared": True})
    assert added.status_code == 201
    shown = client.get("/admin/shares/s1")
    assert shown.status_code == 200 and shown.json() == added.json()
    assert "orders" in str(shown.json()) and "sales" in str(shown.json())
    assert _error(client.post("/admin/shares/s1/tables", json=TABLE))[0] == 409

    removed = client.delete("/admin/shares/s1/schemas/sales/tables/orders")
    assert removed.status_code == 200 and "orders" not in str(removed.json())
    assert _error(client.delete("/admin/shares/s1/schemas/sales/tables/orders"))[0] == 404

    deleted = client.delete("/admin/shares/s1")
    assert deleted.status_code == 200 and deleted.json()["name"] == "s1"
    assert client.get("/admin/shares").json()["items"] == []
    assert _error(client.get("/admin/shares/s1")) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_audit_route(admin: tuple[Admin, Database]) -> None:
    client, _ = admin
    assert client.get("/admin/audit", params={"since": "1h", "recipient": "x", "limit": "5"}).json() == {
        "items": []
    }
    assert _error(client.get("/admin/audit", params={"since": "yesterday"})) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert _error(client.get("/admin/audit", params={"limit": "many"})) == (400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("token", [None, "lg_not-a-token"])
def test_every_route_needs_an_admin_token(admin: tuple[Admin, Database], token: str | None) -> None:
    client, _ = admin
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    routes = [
        ("GET", "/admin/recipients"),
        ("POST", "/admin/recipients"),
        ("GET", "/admin/recipients/alice"),
        ("POST", "/admin/recipients/alice/rotate"),
        ("POST", "/admin/recipients/alice/revoke"),
        ("PUT", "/admin/recipients/alice/grants/s1"),
        ("DELETE", "/admin/recipients/alice/grants/s1"),
        ("GET", "/admin/shares"),
        ("POST", "/admin/shares"),
        ("GET", "/admin/shares/s1"),
        ("DELETE", "/admin/shares/s1"),
        ("POST", "/admin/shares/s1/tables"),
        ("DELETE", "/admin/shares/s1/schemas/d/tables/t"),
        ("GET", "/admin/audit"),
    ]
    for method, path in routes:
        response = client.request(method, path, headers=headers)
        assert _error(response) == (401, "UNAUTHENTICATED"), (method, path)


def test_bodies_are_checked(admin: tuple[Admin, Database]) -> None:
    client, _ = admin
    assert _error(client.post("/admin/recipients", content=b"{not json")) == (400, "MALFORMED_REQUEST")
    assert _error(client.post("/admin/recipients", json={"name": "a", "unknown": 1})) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    missing = client.post("/admin/recipients", json={})
    assert _error(missing) == (400, "INVALID_PARAMETER_VALUE") and "name" in missing.json()["message"]
    wrong_type = client.post("/admin/shares", json={"name": "s", "properties": {"k": ["not", "text"]}})
    assert _error(wrong_type) == (400, "INVALID_PARAMETER_VALUE")
    assert "properties" in wrong_type.json()["message"]


def test_names_with_nul_are_not_found(admin: tuple[Admin, Database]) -> None:
    client, _ = admin
    assert _error(client.get("/admin/recipients/a%00b")) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_text_with_nul_is_refused(admin: tuple[Admin, Database]) -> None:
    """PostgreSQL cannot store a NUL in text (it was a 500 there); both databases answer 400."""
    client, _ = admin
    for path, body in (
        ("/admin/recipients", {"name": "r", "comment": "a\u0000b"}),
        ("/admin/shares", {"name": "s", "displayName": "\u0000"}),
        ("/admin/shares", {"name": "s", "properties": {"k": "v\u0000"}}),
        ("/admin/shares", {"name": "s", "properties": {"k\u0000": "v"}}),
    ):
        response = client.post(path, json=body)
        assert _error(response) == (400, "INVALID_PARAMETER_VALUE") and "NUL" in response.json()["message"]


def test_changes_are_logged_with_the_admin_name_reads_are_not(
    admin: tuple[Admin, Database], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = admin
    with caplog.at_level(logging.INFO, logger="lakegate.admin"):
        client.get("/admin/shares")
        client.post("/admin/shares", json={"name": "logged"})
    records = [r for r in caplog.records if r.name == "lakegate.admin"]
    assert [r.getMessage() for r in records] == ["admin 'ops': POST /admin/shares"]
    assert records[0].admin == {"token": "ops", "method": "POST", "path": "/admin/shares"}  # type: ignore[attr-defined]


def test_a_deleted_recipient_loses_its_tokens_and_grants(admin: tuple[Admin, Database]) -> None:
    client, _ = admin
    client.post("/admin/shares", json={"name": "s1"})
    token = client.post("/admin/recipients", json={"name": "gone", "shares": ["s1"]}).json()["profile"][
        "bearerToken"
    ]
    assert client.app.get("/shares", token=token).status_code == 200
    deleted = client.delete("/admin/recipients/gone")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert _error(client.get("/admin/recipients/gone")) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert client.app.get("/shares", token=token).status_code == 401
    assert client.get("/admin/shares/s1").json()["recipients"] == []
    assert _error(client.delete("/admin/recipients/gone")) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_admin_changes_are_in_the_audit_trail_with_who_and_what(admin: tuple[Admin, Database]) -> None:
    client, _ = admin
    client.post("/admin/shares", json={"name": "s1"})
    client.post("/admin/shares/s1/tables", json=TABLE)
    client.post("/admin/recipients", json={"name": "alice"})
    client.put("/admin/recipients/alice/grants/s1")
    client.post("/admin/recipients/alice/rotate", json={})
    client.delete("/admin/recipients/alice/grants/s1")
    client.post("/admin/recipients/alice/revoke")
    client.delete("/admin/recipients/alice")
    client.delete("/admin/shares/s1/schemas/sales/tables/orders")
    client.delete("/admin/shares/s1")
    client.get("/admin/recipients")  # reads are not changes
    events = [
        (e["actor"], e["operation"], e["recipient"], e["table"], e["mode"])
        for e in client.get("/admin/audit").json()["items"]
    ]
    assert events == [
        ("ops", "admin:share-create", None, "s1", "admin"),
        ("ops", "admin:table-add", None, "s1.sales.orders", "admin"),
        ("ops", "admin:recipient-create", "alice", None, "admin"),
        ("ops", "admin:grant", "alice", "s1", "admin"),
        ("ops", "admin:recipient-rotate", "alice", None, "admin"),
        ("ops", "admin:ungrant", "alice", "s1", "admin"),
        ("ops", "admin:recipient-revoke", "alice", None, "admin"),
        ("ops", "admin:recipient-delete", "alice", None, "admin"),
        ("ops", "admin:table-remove", None, "s1.sales.orders", "admin"),
        ("ops", "admin:share-delete", None, "s1", "admin"),
    ]


def test_federation_policy_routes(admin: tuple[Admin, Database]) -> None:
    client, db = admin
    assert client.post("/admin/recipients", json={"name": "acme"}).status_code == 201
    policy = {"issuer": "https://idp.example.com/tenant", "audiences": ["api://x"], "subject": "app-1"}
    added = client.post("/admin/recipients/acme/federation-policies", json=policy)
    assert added.status_code == 201
    [shown] = added.json()["federationPolicies"]
    assert (
        shown["issuer"],
        shown["audiences"],
        shown["subjectClaim"],
        shown["subject"],
        shown["status"],
    ) == (
        "https://idp.example.com/tenant",
        ["api://x"],
        "sub",
        "app-1",
        "active",
    )
    assert Recipients(db).get("acme")["federationPolicies"] == [shown]
    assert _error(client.post("/admin/recipients/acme/federation-policies", json=policy)) == (
        409,
        "RESOURCE_ALREADY_EXISTS",
    )
    bad = {**policy, "issuer": "http://idp.example.com"}
    assert _error(client.post("/admin/recipients/acme/federation-policies", json=bad)) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert _error(client.post("/admin/recipients/acme/federation-policies", json={"issuer": "x"}))[0] == 400
    assert _error(client.delete("/admin/recipients/acme/federation-policies/abc"))[0] == 400
    assert _error(client.delete("/admin/recipients/acme/federation-policies/999")) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    removed = client.delete(f"/admin/recipients/acme/federation-policies/{shown['id']}")
    assert removed.status_code == 200
    assert removed.json()["federationPolicies"] == []
    actions = [e["operation"] for e in client.get("/admin/audit").json()["items"]]
    assert {"admin:policy-add", "admin:policy-remove"} <= set(actions)


def test_recipients_with_oauth_credentials_through_the_admin_api(admin: tuple[Admin, Database]) -> None:
    from tests.auth.keys import ed_pair, rsa_pair

    client, _ = admin
    assert client.post("/admin/shares", json={"name": "s1"}).status_code == 201
    created = client.post("/admin/recipients", json={"name": "app", "shares": ["s1"], "auth": "oauth"})
    assert created.status_code == 201, created.text
    profile = created.json()["profile"]
    assert (profile["type"], profile["tokenEndpoint"]) == (
        "oauth_client_credentials",
        PUBLIC + "/oauth/token",
    )
    pair = ed_pair()
    body = {"auth": "private-key-jwt", "publicKey": pair.public_pem, "keyId": "k1", "graceSeconds": 0}
    rotated = client.post("/admin/recipients/app/rotate", json=body)
    assert rotated.status_code == 200, rotated.text
    auth = rotated.json()["profile"]["auth"]
    assert (auth["clientId"], auth["issuer"], auth["privateKey"]["algorithm"]) == ("app", PUBLIC, "EdDSA")
    again = client.post("/admin/recipients/app/rotate", json=body)  # a key id is never reused
    assert _error(again) == (409, "CONFLICT")
    for bad in (
        {"name": "b", "auth": "bogus"},
        {"name": "b", "auth": "private-key-jwt", "keyId": "k"},
        {"name": "b", "auth": "oauth", "publicKey": rsa_pair().public_pem, "keyId": "k"},
        {"name": "b", "auth": "private-key-jwt", "publicKey": rsa_pair().private_pem, "keyId": "k"},
    ):
        assert _error(client.post("/admin/recipients", json=bad)) == (400, "INVALID_PARAMETER_VALUE"), bad


def test_create_an_oidc_recipient(admin: tuple[Admin, Database]) -> None:
    client, db = admin
    policy = {
        "issuer": "https://login.microsoftonline.com/tenant/v2.0",
        "audiences": ["api://lakegate-acme"],
        "subject": "client-app-id",
        "subjectClaim": "azp",
    }
    body: dict[str, Any] = {
        "name": "acme",
        "auth": "oidc",
        "federationPolicy": policy,
        "tokenEndpoint": "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
        "scope": "api://lakegate-acme/.default",
    }
    created = client.post("/admin/recipients", json=body)
    assert created.status_code == 201
    profile = created.json()["profile"]
    assert (profile["type"], profile["endpoint"], profile["tokenEndpoint"], profile["scope"]) == (
        "oauth_client_credentials",
        PUBLIC,
        "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
        "api://lakegate-acme/.default",
    )
    # Without a scope the profile has none: the official client would send a placeholder as the scope.
    other_app = {**policy, "subject": "other-app-id"}
    unscoped = {**body, "name": "acme2", "federationPolicy": other_app, "scope": None}
    unscoped_profile = client.post("/admin/recipients", json=unscoped).json()["profile"]
    assert "scope" not in unscoped_profile
    assert "client id" in unscoped_profile["clientId"] and "client secret" in unscoped_profile["clientSecret"]
    [policy] = Recipients(db).get("acme")["federationPolicies"]
    assert (policy["subjectClaim"], policy["subject"]) == ("azp", "client-app-id")
    assert Recipients(db).get("acme")["tokens"] == []
    assert _error(client.post("/admin/recipients", json={"name": "b", "auth": "oidc"})) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    no_auth = {"name": "c", "tokenEndpoint": "https://idp.example.com/token"}
    assert _error(client.post("/admin/recipients", json=no_auth))[0] == 400
    assert _error(client.post("/admin/recipients", json={"name": "c", "scope": "x"}))[0] == 400
