"""OIDC federation end to end: a running `lakegate serve`, the CLI beside it, a real OpenID provider on loopback
(tests/services/oidc.py) as the recipient's own IdP, and the official delta-sharing client reading through an
`oauth_client_credentials` profile that points at that IdP's token endpoint (lakegate never sees a secret)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import delta_sharing
import httpx
import pytest
import requests

from lakegate.audit import AuditLog
from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from tests.e2e.integration.admin_support import lakegate, lakegate_json
from tests.e2e.server import RunningServer, start_server
from tests.services.oidc import OpenIdProvider, SigningKey, hmac_with_public_key, unsigned
from tests.tables import build_plain, read_expected

AUDIENCE = "api://lakegate-acme"
SUBJECT = "acme-etl"  # the recipient's application (client) id at its IdP


@pytest.fixture(scope="module")
def idp() -> Iterator[OpenIdProvider]:
    provider = OpenIdProvider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_plain(tmp_path_factory.mktemp("federated-table") / "plain", batches=2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, table: str) -> Iterator[RunningServer]:
    shares = [
        {
            "name": "share1",
            "schemas": [{"name": "default", "tables": [{"name": "plain", "location": table}]}],
        },
        {
            "name": "share2",
            "schemas": [{"name": "default", "tables": [{"name": "other", "location": table}]}],
        },
    ]
    # catalogCacheSeconds 0: changes made beside the server count on its very next request, not within the
    # second it may remember a verified token for (tests/catalog/test_federation.py covers that memory).
    config = {"shares": shares, "catalogCacheSeconds": 0}
    running = start_server(tmp_path_factory.mktemp("federation-server"), config)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def config(server: RunningServer) -> Path:
    return server.workdir / "lakegate.yaml"


@pytest.fixture(scope="module")
def recipients(server: RunningServer) -> Iterator[Recipients]:
    """The server's catalog, managed in this process (quicker than the CLI where the CLI is not under test)."""
    db = Database(f"sqlite:///{server.workdir / 'lakegate.db'}")
    yield Recipients(db)
    db.close()


@pytest.fixture(scope="module")
def acme(config: Path, idp: OpenIdProvider, server: RunningServer) -> dict[str, Any]:
    """Recipient acme, granted share1, created with `--auth oidc`: no lakegate secret, a policy on the IdP, and a
    profile naming the IdP's token endpoint, which the recipient completes with its own client credentials."""
    path = server.workdir / "acme.share"
    created = lakegate_json(
        config, "recipients", "create", "acme", "--share", "share1", "--auth", "oidc",
        "--issuer", idp.issuer, "--audience", AUDIENCE, "--audience", "api://other", "--subject", SUBJECT,
        "--token-endpoint", idp.token_endpoint, "--scope", AUDIENCE, "--profile-out", str(path),
    )  # fmt: skip
    recipient = created["recipient"]
    assert (recipient["tokens"], recipient["status"]) == ([], "active")
    [policy] = recipient["federationPolicies"]
    assert (policy["issuer"], policy["audiences"], policy["subjectClaim"], policy["subject"]) == (
        idp.issuer,
        [AUDIENCE, "api://other"],
        "sub",
        SUBJECT,
    )
    profile = json.loads(path.read_text())
    fixed = ("shareCredentialsVersion", "type", "endpoint", "tokenEndpoint", "scope")
    assert {k: profile[k] for k in fixed} == {
        "shareCredentialsVersion": 2,
        "type": "oauth_client_credentials",
        "endpoint": server.endpoint,
        "tokenEndpoint": idp.token_endpoint,
        "scope": AUDIENCE,
    }
    assert {"clientId", "clientSecret"} <= set(profile) and "bearerToken" not in profile
    secret = idp.register(SUBJECT, AUDIENCE)  # the recipient's own application at its own IdP
    # The recipient fills in only its own client credentials: the scope given at create is used as written.
    path.write_text(json.dumps({**profile, "clientId": SUBJECT, "clientSecret": secret}))
    return {"secret": secret, "policy": policy["id"], "profile": str(path)}


def _profile(
    server: RunningServer,
    idp: OpenIdProvider,
    secret: str,
    name: str = "acme.share",
    client_id: str = SUBJECT,
    scope: str = f"{AUDIENCE}/.default",
) -> str:
    """What the recipient writes: lakegate's endpoint, and its own IdP's token endpoint and credentials."""
    path = server.workdir / name
    path.write_text(
        json.dumps(
            {
                "shareCredentialsVersion": 2,
                "type": "oauth_client_credentials",
                "endpoint": server.endpoint,
                "tokenEndpoint": idp.token_endpoint,
                "clientId": client_id,
                "clientSecret": secret,
                "scope": scope,
            }
        )
    )
    return str(path)


def _get(server: RunningServer, token: str, path: str = "/shares") -> httpx.Response:
    return httpx.get(server.endpoint + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["errorCode"] == "UNAUTHENTICATED"
    return str(body["message"])


def test_official_client_reads_through_the_recipients_own_idp(
    server: RunningServer, idp: OpenIdProvider, acme: dict[str, Any], table: str
) -> None:
    before = idp.token_hits
    profile = acme["profile"]  # as `recipients create --auth oidc` wrote it, completed by the recipient
    client = delta_sharing.SharingClient(profile)
    assert [s.name for s in client.list_shares()] == ["share1"]
    assert [(t.share, t.schema, t.name) for t in client.list_all_tables()] == [("share1", "default", "plain")]
    frame = delta_sharing.load_as_pandas(f"{profile}#share1.default.plain")
    assert sorted(frame["id"].tolist()) == sorted(r["id"] for r in read_expected(table))
    assert idp.token_hits > before  # the client got its token from the IdP, not from lakegate
    # Not granted share2: answered as nonexistent, as for a token holder.
    assert _get(server, idp.mint(SUBJECT, AUDIENCE), "/shares/share2").status_code == 404
    # The audit trail names the recipient, as for a token holder (events are written in batches: wait a little).
    db = Database(f"sqlite:///{server.workdir / 'lakegate.db'}")
    deadline = time.monotonic() + 10
    events = AuditLog(db).query(None, "acme")
    while not any(e["operation"] == "query" for e in events) and time.monotonic() < deadline:
        time.sleep(0.1)
        events = AuditLog(db).query(None, "acme")
    db.close()
    assert any(e["operation"] == "query" and e["table"] == "share1.default.plain" for e in events)


def test_wrong_client_secret_at_the_idp(
    server: RunningServer, idp: OpenIdProvider, acme: dict[str, Any]
) -> None:
    client = delta_sharing.SharingClient(_profile(server, idp, "not-the-secret", "wrong.share"))
    with pytest.raises(requests.HTTPError, match="401"):  # the IdP's answer: lakegate was never asked
        client.list_shares()


def _bad_tokens(idp: OpenIdProvider) -> dict[str, str]:
    now = int(time.time())
    good = idp.claims(SUBJECT, AUDIENCE)
    return {
        "expired": idp.mint(SUBJECT, AUDIENCE, iat=now - 3600, nbf=now - 3600, exp=now - 600),
        "not yet valid": idp.mint(SUBJECT, AUDIENCE, nbf=now + 600),
        "wrong audience": idp.mint(SUBJECT, "api://someone-else"),
        "wrong issuer": idp.mint(SUBJECT, AUDIENCE, iss="https://login.example.com/other-tenant/v2.0"),
        "wrong subject": idp.mint("another-app", AUDIENCE),
        "unknown key": idp.mint(SUBJECT, AUDIENCE, key=SigningKey.generate("RS256")),
        "same kid, other key": idp.mint(
            SUBJECT, AUDIENCE, key=SigningKey.generate("RS256", kid=idp.current.kid)
        ),
        "alg none": unsigned(good, idp.current.kid),
        "HMAC with the public key": hmac_with_public_key(good, idp.current),
        "no exp": idp.mint(SUBJECT, AUDIENCE, exp=None),
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "not yet valid",
        "wrong audience",
        "wrong issuer",
        "wrong subject",
        "unknown key",
        "same kid, other key",
        "alg none",
        "HMAC with the public key",
        "no exp",
    ],
)
def test_bad_tokens_are_a_clear_401(
    server: RunningServer, idp: OpenIdProvider, acme: dict[str, Any], case: str
) -> None:
    assert _get(server, idp.mint(SUBJECT, AUDIENCE)).status_code == 200  # the good one passes
    _refused(_get(server, _bad_tokens(idp)[case]))
    _refused(_get(server, _bad_tokens(idp)[case], "/shares/share1/schemas/default/tables/plain/version"))


def _federated_recipient(recipients: Recipients, name: str, provider: OpenIdProvider, subject: str) -> None:
    """Recipient `name` granted share2, whose only credential is a policy on `provider` for `subject`."""
    recipients.create(name, ["share2"])
    recipients.revoke(name)
    recipients.add_policy(name, provider.issuer, [AUDIENCE], subject)


def test_key_rotation_at_the_idp_needs_no_restart(server: RunningServer, recipients: Recipients) -> None:
    idp = OpenIdProvider.start()  # its own issuer: no other test's unknown key ids used up its refetch
    try:
        _federated_recipient(recipients, "hooli", idp, "hooli-app")
        secret = idp.register("hooli-app", AUDIENCE)
        profile = _profile(server, idp, secret, "hooli.share", client_id="hooli-app")
        assert [s.name for s in delta_sharing.SharingClient(profile).list_shares()] == ["share2"]
        assert idp.jwks_hits == 1
        old = idp.current
        idp.rotate(alg="ES256", retire=True)  # signs with a new kid from now on
        # Another profile (scope), so the official client asks the IdP for a new token rather than reusing its own.
        rotated = _profile(server, idp, secret, "hooli-2.share", client_id="hooli-app", scope=f"{AUDIENCE}/x")
        assert [s.name for s in delta_sharing.SharingClient(rotated).list_shares()] == ["share2"]
        assert idp.jwks_hits == 2
        # The refetch brought the IdP's current set, which no longer holds the retired key.
        _refused(_get(server, idp.mint("hooli-app", AUDIENCE, key=old)))
    finally:
        idp.stop()


def test_policy_removal_and_revocation_take_effect_at_once(
    server: RunningServer, config: Path, idp: OpenIdProvider, acme: dict[str, Any], recipients: Recipients
) -> None:
    token = idp.mint(SUBJECT, AUDIENCE)
    assert _get(server, token).status_code == 200
    lakegate(config, "recipients", "policy", "remove", "acme", str(acme["policy"]))
    _refused(_get(server, token))
    again = lakegate_json(
        config, "recipients", "policy", "add", "acme",
        "--issuer", idp.issuer, "--audience", AUDIENCE, "--subject", SUBJECT,
    )  # fmt: skip
    acme["policy"] = again["federationPolicies"][-1]["id"]
    assert _get(server, token).status_code == 200
    revoked = recipients.revoke("acme")  # what `lakegate recipients revoke acme` does
    assert {p["status"] for p in revoked["federationPolicies"]} == {"revoked"}
    _refused(_get(server, token))
    again = recipients.add_policy("acme", idp.issuer, [AUDIENCE], SUBJECT)
    acme["policy"] = again["federationPolicies"][-1]["id"]
    assert _get(server, token).status_code == 200


def test_unknown_key_ids_refetch_the_key_set_at_most_once_a_minute(
    server: RunningServer, recipients: Recipients
) -> None:
    other = OpenIdProvider.start("ES256")  # its own issuer, so its hit counts are this test's alone
    try:
        _federated_recipient(recipients, "globex", other, "globex-app")
        assert _get(server, other.mint("globex-app", AUDIENCE)).status_code == 200
        assert (other.discovery_hits, other.jwks_hits) == (1, 1)
        for _ in range(15):
            _refused(_get(server, other.mint("globex-app", AUDIENCE, key=SigningKey.generate("ES256"))))
        assert other.jwks_hits == 2  # the first unknown kid refetched; the next 14 waited for the minute
        assert _get(server, other.mint("globex-app", AUDIENCE)).status_code == 200
        assert other.jwks_hits == 2
    finally:
        other.stop()


def test_an_unreachable_idp_is_a_503_not_a_500(server: RunningServer, recipients: Recipients) -> None:
    gone = OpenIdProvider.start()
    token = gone.mint("initech-app", AUDIENCE)
    gone.stop()
    _federated_recipient(recipients, "initech", gone, "initech-app")
    response = _get(server, token)
    assert response.status_code == 503
    assert response.json()["errorCode"] == "TEMPORARILY_UNAVAILABLE"
    assert gone.issuer not in response.text  # the caller hears that the IdP is unreachable, not where it is
