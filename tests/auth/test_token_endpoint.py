"""The OAuth token endpoint in process: client secrets and signed assertions exchanged for access tokens, the
access tokens read through every sharing route, and they die with the recipient's credential or grant."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakegate.catalog.db import Database
from lakegate.catalog.recipients import PublicKeyRequest, Recipients
from lakegate.exceptions import InvalidParameterError
from tests.auth.keys import KeyPair, assertion, ec_pair, ed_pair, rsa_pair
from tests.inprocess import AppClient, error_of, start_app
from tests.tables import build_plain

ISSUER = "http://lakegate.test/delta-sharing"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _config(table: str, signing_key: str, **extra: Any) -> dict[str, Any]:
    one = {"name": "t", "location": table}
    return {
        "publicUrl": ISSUER,
        "tokenSigningKey": signing_key,
        "catalogCacheSeconds": 0,  # revocations count on the very next request
        "shares": [
            {"name": "s", "schemas": [{"name": "d", "tables": [one]}]},
            {"name": "other", "schemas": [{"name": "d", "tables": [one]}]},
        ],
        **extra,
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("oauth")
    config = _config(build_plain(base / "t"), secrets.token_urlsafe(32))
    config["database"] = f"sqlite:///{base / 'lakegate.db'}"
    config["oauth"] = {"maxFailedAuthenticationsPerAddress": 1000}
    return base, config


@pytest.fixture(scope="module")
def app(setup: tuple[Path, dict[str, Any]]) -> Iterator[AppClient]:
    client = start_app(setup[0], setup[1])
    yield client
    client.close()


@pytest.fixture(scope="module")
def recipients(setup: tuple[Path, dict[str, Any]], app: AppClient) -> Iterator[Recipients]:
    db = Database(setup[1]["database"])
    yield Recipients(db)
    db.close()


def _name() -> str:
    return "r" + secrets.token_hex(4)


def exchange(app: AppClient, **kwargs: Any) -> httpx.Response:
    return app.post("/oauth/token", token=None, **kwargs)


def oauth_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error and set(body) == {"error", "error_description"}, body
    return str(body["error_description"])


def access_token(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600, body
    return str(body["access_token"])


def shares(app: AppClient, token: str) -> list[str]:
    response = app.get("/shares", token=token)
    assert response.status_code == 200, response.text
    return [s["name"] for s in response.json()["items"]]


def with_key(recipients: Recipients, pair: KeyPair, kid: str = "k1") -> str:
    name = _name()
    recipients.create(name, ["s"], auth="private-key-jwt", public_key=PublicKeyRequest(pair.public_pem, kid))
    return name


# -- client credentials ------------------------------------------------------------------------------------------


def test_a_client_secret_by_basic_or_in_the_form_obtains_an_access_token_for_the_granted_shares(
    app: AppClient, recipients: Recipients
) -> None:
    name = _name()
    secret = recipients.create(name, ["s"], auth="oauth").token
    grant = {"grant_type": "client_credentials"}
    by_basic = access_token(exchange(app, auth=(name, secret), data=grant))
    by_post = access_token(exchange(app, data={**grant, "client_id": name, "client_secret": secret}))
    for token in (by_basic, by_post):
        assert shares(app, token) == ["s"]
        error_of(app.get("/shares/other", token=token), 404, "RESOURCE_DOES_NOT_EXIST")
        assert app.get("/shares/s/schemas/d/tables/t/version", token=token).status_code == 200
        assert app.post("/shares/s/schemas/d/tables/t/query", token=token, json={}).status_code == 200
    # the secret is not a bearer token, and the access token is not a client secret
    error_of(app.get("/shares", token=secret), 401, "UNAUTHENTICATED")
    oauth_error(exchange(app, auth=(name, by_basic), data=grant), 401, "invalid_client")


def test_wrong_unknown_or_missing_client_credentials_are_invalid_client_with_a_challenge(
    app: AppClient, recipients: Recipients
) -> None:
    name = _name()
    secret = recipients.create(name, ["s"], auth="oauth").token
    token_only = recipients.create(_name(), ["s"]).token  # a bearer token is no client secret
    grant = {"grant_type": "client_credentials"}
    for response in (
        exchange(app, auth=(name, secret + "x"), data=grant),
        exchange(app, auth=("nobody", secret), data=grant),
        exchange(app, auth=(name, token_only), data=grant),
        exchange(app, data={**grant, "client_id": name, "client_secret": "lgs_wrong"}),
        exchange(app, data=grant),
        exchange(app, headers={"Authorization": "Basic !!!"}, data=grant),
    ):
        oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic realm=")
    malformed = exchange(app, headers={"Authorization": "Basic !!!"}, data=grant)
    assert "malformed HTTP Basic client credentials" in malformed.json()["error_description"]


def test_a_client_id_other_than_the_basic_client_is_refused(app: AppClient, recipients: Recipients) -> None:
    """Basic authenticates one client while the form names another: which one the token is for would be a
    guess (was a token for the Basic client, the form's client_id ignored)."""
    name = _name()
    secret = recipients.create(name, ["s"], auth="oauth").token
    grant = {"grant_type": "client_credentials"}
    refused = exchange(app, auth=(name, secret), data={**grant, "client_id": _name()})
    assert "another client" in oauth_error(refused, 400, "invalid_request")
    access_token(exchange(app, auth=(name, secret), data={**grant, "client_id": name}))  # the same one: fine


@pytest.mark.parametrize(
    ("request_kwargs", "status", "error"),
    [
        ({"data": {}}, 400, "invalid_request"),
        (
            {"data": {"grant_type": "password", "username": "u", "password": "p"}},
            400,
            "unsupported_grant_type",
        ),
        ({"data": {"grant_type": JWT_BEARER}}, 400, "invalid_request"),
        ({"json": {"grant_type": "client_credentials"}}, 400, "invalid_request"),
        (
            {
                "content": b"grant_type=client_credentials&grant_type=client_credentials",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            400,
            "invalid_request",
        ),
        (
            {"content": b"\xff\xfe", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            400,
            "invalid_request",
        ),
        (
            {"auth": ("a", "b"), "data": {"grant_type": "client_credentials", "client_secret": "c"}},
            400,
            "invalid_request",
        ),
    ],
)
def test_malformed_token_requests(
    app: AppClient, request_kwargs: dict[str, Any], status: int, error: str
) -> None:
    oauth_error(exchange(app, **request_kwargs), status, error)


# -- private-key JWT (RFC 7523) ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [rsa_pair, ec_pair, ed_pair], ids=["RS256", "ES256", "EdDSA"])
def test_an_assertion_signed_with_the_registered_key_obtains_an_access_token(
    app: AppClient, recipients: Recipients, make: Any
) -> None:
    pair = make()
    name = with_key(recipients, pair)
    assert recipients.get(name)["publicKeys"][0]["algorithm"] == pair.algorithm
    for audience in (ISSUER, ISSUER + "/oauth/token"):
        signed = assertion(pair, name, audience, "k1")
        assert shares(
            app, access_token(exchange(app, data={"grant_type": JWT_BEARER, "assertion": signed}))
        ) == ["s"]
    client_assertion = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(pair, name, ISSUER, "k1"),
    }
    assert shares(app, access_token(exchange(app, data=client_assertion))) == ["s"]
    # a client_id beside the assertion must name its issuer (was ignored: a token for the issuer)
    client_assertion["client_assertion"] = assertion(pair, name, ISSUER, "k1")
    refused = exchange(app, data={**client_assertion, "client_id": _name()})
    assert "another client" in oauth_error(refused, 400, "invalid_request")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + (b64(sign(head.encode())) if sign else "")


def test_assertions_that_must_not_pass_are_invalid_grant(app: AppClient, recipients: Recipients) -> None:
    pair, stranger = rsa_pair(), rsa_pair()
    name = with_key(recipients, pair)
    other = with_key(recipients, rsa_pair())  # has a key "k1" too, not this one
    now = int(time.time())
    claims = {"iss": name, "aud": ISSUER, "iat": now, "exp": now + 120, "jti": "j-" + secrets.token_hex(8)}
    public_pem = pair.public_pem.encode()
    cases = {
        "expired": assertion(pair, name, ISSUER, "k1", iat=now - 600, exp=now - 300),
        "not yet valid": assertion(pair, name, ISSUER, "k1", iat=now + 600, exp=now + 700),
        "not before": assertion(pair, name, ISSUER, "k1", nbf=now + 600),
        "wrong audience": assertion(pair, name, "https://elsewhere.example/delta-sharing", "k1"),
        "wrong issuer": assertion(pair, other, ISSUER, "k1"),
        "unknown kid": assertion(pair, name, ISSUER, "k2"),
        "signed by another key": assertion(stranger, name, ISSUER, "k1"),
        "alg none": _unsigned({"alg": "none", "kid": "k1"}, claims),
        "HMAC with the public key": _unsigned(
            {"alg": "HS256", "kid": "k1", "typ": "JWT"},
            claims,
            lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
        ),
        "no jti": assertion(pair, name, ISSUER, "k1", jti=None),
        "exp too far ahead": assertion(pair, name, ISSUER, "k1", lifetime=7200),
        "sub of someone else": assertion(pair, name, ISSUER, "k1", sub=other),
        "too large": assertion(pair, name, ISSUER, "k1", pad="x" * 9000),
        "not a JWT": "not-a-jwt",
    }
    for case, signed in cases.items():
        response = exchange(app, data={"grant_type": JWT_BEARER, "assertion": signed})
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant", (
            case,
            response.text,
        )
    # and the key still works: nothing above was a replay of a valid assertion
    access_token(
        exchange(app, data={"grant_type": JWT_BEARER, "assertion": assertion(pair, name, ISSUER, "k1")})
    )


def test_a_replayed_assertion_is_refused_by_every_replica(
    setup: tuple[Path, dict[str, Any]], app: AppClient, recipients: Recipients
) -> None:
    pair = ec_pair()
    name = with_key(recipients, pair)
    signed = {"grant_type": JWT_BEARER, "assertion": assertion(pair, name, ISSUER, "k1")}
    replica = start_app(setup[0], setup[1])  # same database and signing key: another replica
    try:
        token = access_token(exchange(app, data=signed))
        assert "replayed" in oauth_error(exchange(replica, data=signed), 400, "invalid_grant")
        assert "replayed" in oauth_error(exchange(app, data=signed), 400, "invalid_grant")
        assert shares(replica, token) == ["s"]  # the access token itself is good on every replica
    finally:
        replica.close()


def test_keys_that_cannot_be_registered(recipients: Recipients) -> None:
    rsa, ec = rsa_pair(), ec_pair()
    for pem, algorithm in (
        (ec.public_pem, "RS256"),  # an algorithm the key cannot make
        (rsa.public_pem, "HS256"),  # never HMAC
        (rsa.private_pem, None),  # a private key
        ("not a key", None),
    ):
        with pytest.raises(InvalidParameterError):
            recipients.create(
                _name(), ["s"], auth="private-key-jwt", public_key=PublicKeyRequest(pem, "k", algorithm)
            )


# -- access tokens die with the recipient ----------------------------------------------------------------------------


def test_access_tokens_die_with_revocation_grant_removal_rotation_and_deletion(
    app: AppClient, recipients: Recipients
) -> None:
    grant = {"grant_type": "client_credentials"}

    def new_client(*share_names: str) -> tuple[str, str, str]:
        name = _name()
        secret = recipients.create(name, list(share_names), auth="oauth").token
        return name, secret, access_token(exchange(app, auth=(name, secret), data=grant))

    revoked, _, token = new_client("s")
    recipients.revoke(revoked)
    error_of(app.get("/shares", token=token), 401, "UNAUTHENTICATED")
    error_of(app.post("/shares/s/schemas/d/tables/t/query", token=token, json={}), 401, "UNAUTHENTICATED")

    ungranted, _, token = new_client("s", "other")
    recipients.ungrant(ungranted, "s")
    assert shares(app, token) == ["other"]
    error_of(app.get("/shares/s/schemas/d/tables/t/version", token=token), 404, "RESOURCE_DOES_NOT_EXIST")

    rotated, old_secret, token = new_client("s")
    new_secret = recipients.rotate(rotated, auth="oauth").token
    error_of(app.get("/shares", token=token), 401, "UNAUTHENTICATED")
    oauth_error(exchange(app, auth=(rotated, old_secret), data=grant), 401, "invalid_client")
    assert shares(app, access_token(exchange(app, auth=(rotated, new_secret), data=grant))) == ["s"]

    graced, old_secret, token = new_client("s")
    recipients.rotate(graced, grace=3600, auth="oauth")
    assert shares(app, token) == ["s"]  # within the grace period the old secret and its tokens still work
    access_token(exchange(app, auth=(graced, old_secret), data=grant))

    recreated, _, token = new_client("s")
    recipients.delete(recreated)
    recipients.create(recreated, ["s"], auth="oauth")  # the same name is another recipient
    error_of(app.get("/shares", token=token), 401, "UNAUTHENTICATED")


def test_rotating_a_key_ends_the_old_key_and_its_access_tokens(
    app: AppClient, recipients: Recipients
) -> None:
    old, new = rsa_pair(), ed_pair()
    name = with_key(recipients, old, "old")
    token = access_token(
        exchange(app, data={"grant_type": JWT_BEARER, "assertion": assertion(old, name, ISSUER, "old")})
    )
    recipients.rotate(name, auth="private-key-jwt", public_key=PublicKeyRequest(new.public_pem, "new"))
    error_of(app.get("/shares", token=token), 401, "UNAUTHENTICATED")
    oauth_error(
        exchange(app, data={"grant_type": JWT_BEARER, "assertion": assertion(old, name, ISSUER, "old")}),
        400,
        "invalid_grant",
    )
    fresh = exchange(app, data={"grant_type": JWT_BEARER, "assertion": assertion(new, name, ISSUER, "new")})
    assert shares(app, access_token(fresh)) == ["s"]


def test_forged_access_tokens_are_refused(
    setup: tuple[Path, dict[str, Any]], app: AppClient, recipients: Recipients
) -> None:
    name = _name()
    secret = recipients.create(name, ["s"], auth="oauth").token
    token = access_token(exchange(app, auth=(name, secret), data={"grant_type": "client_credentials"}))
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["cid"] += 1000  # someone else's credential
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    error_of(app.get("/shares", token=f"{head}.{forged_payload}.{signature}"), 401, "UNAUTHENTICATED")
    error_of(app.get("/shares", token=f"{head}.{payload}.{signature[:-4]}AAAA"), 401, "UNAUTHENTICATED")
    # another server (another signing key) on the same database does not accept this server's tokens
    elsewhere = start_app(setup[0], {**setup[1], "tokenSigningKey": secrets.token_urlsafe(32)})
    try:
        error_of(elsewhere.get("/shares", token=token), 401, "UNAUTHENTICATED")
    finally:
        elsewhere.close()


def test_failed_client_authentication_is_limited_per_client_and_per_address(tmp_path: Path) -> None:
    config = _config(build_plain(tmp_path / "t"), secrets.token_urlsafe(32))
    config["oauth"] = {"maxFailedAuthenticationsPerClient": 3, "maxFailedAuthenticationsPerAddress": 5}
    app = start_app(tmp_path, config)
    try:
        db = Database(f"sqlite:///{tmp_path / 'lakegate.db'}")
        target, other = (
            Recipients(db).create("target", ["s"], auth="oauth"),
            Recipients(db).create("other", ["s"], auth="oauth"),
        )
        db.close()
        grant = {"grant_type": "client_credentials"}
        for _ in range(3):
            oauth_error(exchange(app, auth=("target", "lgs_guess"), data=grant), 401, "invalid_client")
        limited = exchange(app, auth=("target", target.token), data=grant)  # even the right secret waits
        oauth_error(limited, 429, "invalid_client")
        assert 0 < int(limited.headers["retry-after"]) <= 300
        access_token(exchange(app, auth=("other", other.token), data=grant))  # another client is not
        for _ in range(2):
            oauth_error(exchange(app, auth=("other", "lgs_guess"), data=grant), 401, "invalid_client")
        oauth_error(
            exchange(app, auth=("other", other.token), data=grant), 429, "invalid_client"
        )  # the address
    finally:
        app.close()


# -- HTTP Basic and the metadata -----------------------------------------------------------------------------------


def test_basic_credentials_read_every_sharing_route(app: AppClient, recipients: Recipients) -> None:
    name = _name()
    token = recipients.create(name, ["s"], auth="basic").token
    assert recipients.create(_name(), ["s"], auth="basic").profile(ISSUER)["type"] == "basic"

    def get(path: str, auth: Any, **kwargs: Any) -> httpx.Response:
        return app.request(kwargs.pop("method", "GET"), path, token=None, auth=auth, **kwargs)

    assert [s["name"] for s in get("/shares", (name, token)).json()["items"]] == ["s"]
    assert get("/shares/s/schemas/d/tables/t/version", (name, token)).status_code == 200
    assert get("/shares/s/schemas/d/tables/t/query", (name, token), method="POST", json={}).status_code == 200
    for wrong in ((name.upper() + "x", token), (name, token + "x"), ("nobody", token)):
        error_of(get("/shares", wrong), 401, "UNAUTHENTICATED")
    error_of(
        app.get("/shares", token=None, headers={"Authorization": "Basic not-base64!"}), 401, "UNAUTHENTICATED"
    )
    assert get("/shares", (name.upper(), token)).status_code == 200  # names are case-insensitive


def test_the_authorization_server_metadata(app: AppClient) -> None:
    for url in (
        "/delta-sharing/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/delta-sharing",
    ):
        response = app.raw("GET", url)
        assert response.status_code == 200, response.text
        document = response.json()
        assert document["issuer"] == ISSUER and document["token_endpoint"] == ISSUER + "/oauth/token"
        assert set(document["grant_types_supported"]) == {"client_credentials", JWT_BEARER}
        assert "none" not in document["token_endpoint_auth_signing_alg_values_supported"]
        assert not any(
            a.startswith("HS") for a in document["token_endpoint_auth_signing_alg_values_supported"]
        )
