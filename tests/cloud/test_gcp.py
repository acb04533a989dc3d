"""GCS: the access boundary (CEL literals escaped, trailing slash forced) and V4 signed URLs (RSA compared
with
google-cloud-storage byte for byte; the HMAC key chain checked against AWS's published SigV4 example)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lakegate._hmac import v4_signing_key
from lakegate.cloud.gcp.signing import GcsUrlSigner
from lakegate.cloud.gcp.vending import access_boundary, cel_string
from lakegate.cloud.locations import Location

NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "literal"),
    [
        ("tables/t1/", "'tables/t1/'"),
        ("", "''"),
        ("it's", r"'it\'s'"),
        ("back\\slash", r"'back\\slash'"),
        ('dq"x', r"'dq\"x'"),
        ("') || true || ('", r"'\') || true || (\''"),
        ("\\'", r"'\\\''"),
        ("ünï €/日本", "'ünï €/日本'"),
    ],
)
def test_cel_string(raw: str, literal: str) -> None:
    assert cel_string(raw) == literal


@pytest.mark.parametrize("raw", ["a\nb", "a\rb", "a\x00b", "a\x7fb", "a\ud800b", "\t"])
def test_cel_string_refuses_control_characters(raw: str) -> None:
    with pytest.raises(ValueError, match="control characters are not allowed"):
        cel_string(raw)


def test_access_boundary_for_a_table() -> None:
    assert access_boundary(Location.parse("gs://bkt/tables/t1")) == {
        "accessBoundary": {
            "accessBoundaryRules": [
                {
                    "availableResource": "//storage.googleapis.com/projects/_/buckets/bkt",
                    "availablePermissions": ["inRole:roles/storage.objectViewer"],
                    "availabilityCondition": {
                        "expression": (
                            "resource.name.startsWith('projects/_/buckets/bkt/objects/tables/t1/') || "
                            "api.getAttribute('storage.googleapis.com/objectListPrefix', '')"
                            ".startsWith('tables/t1/')"
                        )
                    },
                }
            ]
        }
    }


def test_several_directories_get_one_rule_each() -> None:
    """One downscoped token for a table's root and its generated Iceberg metadata (service/iceberg.py)."""
    locations = [Location.parse("gs://bkt/tables/t1"), Location.parse("gs://meta/iceberg/ab12")]
    rules = access_boundary(*locations)["accessBoundary"]["accessBoundaryRules"]
    assert rules == [access_boundary(loc)["accessBoundary"]["accessBoundaryRules"][0] for loc in locations]
    assert rules[1]["availableResource"].endswith("/buckets/meta")
    assert "objects/iceberg/ab12/'" in rules[1]["availabilityCondition"]["expression"]


def test_trailing_slash_is_forced_and_never_doubled() -> None:
    for uri in ("gs://bkt/tables/t1", "gs://bkt/tables/t1/", "gs://bkt//tables/t1//"):
        expression = access_boundary(Location.parse(uri))["accessBoundary"]["accessBoundaryRules"][0][
            "availabilityCondition"
        ]["expression"]
        assert "objects/tables/t1/'" in expression and ".startsWith('tables/t1/')" in expression
        assert "t1//" not in expression


def test_bucket_root_is_still_downscoped_to_the_bucket() -> None:
    rule = access_boundary(Location.parse("gs://whole"))["accessBoundary"]["accessBoundaryRules"][0]
    assert rule["availableResource"] == "//storage.googleapis.com/projects/_/buckets/whole"
    assert rule["availabilityCondition"]["expression"].startswith(
        "resource.name.startsWith('projects/_/buckets/whole/objects/')"
    )


def test_quotes_in_paths_stay_inside_the_literal() -> None:
    expression = access_boundary(Location("gs", "b", "t') || true || ('x"))["accessBoundary"][
        "accessBoundaryRules"
    ][0]["availabilityCondition"]["expression"]
    assert "startsWith('projects/_/buckets/b/objects/t\\') || true || (\\'x/')" in expression


@cache
def _service_account() -> tuple[dict[str, str], Any]:
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "reader@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return info, service_account.Credentials.from_service_account_info(info)


NAMES = [
    "tables/t1/part-0.parquet",
    "with space/a b.parquet",
    "ünï/日本.parquet",
    "plus+eq=/x",
    "tilde~/~",
    "a",
]


@pytest.mark.parametrize("name", NAMES)
def test_rsa_urls_equal_google_cloud_storage(name: str) -> None:
    from google.cloud.storage._signing import generate_signed_url_v4

    _, credentials = _service_account()
    signer = GcsUrlSigner(rsa=(credentials.service_account_email, credentials.signer.sign))
    ours = signer.batch(900, NOW)("bkt", name)
    from urllib.parse import quote

    theirs = generate_signed_url_v4(
        credentials,
        f"/bkt/{quote(name, safe='/~')}",
        expiration=timedelta(seconds=900),
        _request_timestamp=NOW.strftime("%Y%m%dT%H%M%SZ"),
    )
    assert ours == theirs


def _goog4_key(secret: str, date: str) -> bytes:
    """GCS's V4 HMAC key chain written out from its documentation, independently of the code under test."""
    key = ("GOOG4" + secret).encode()
    for part in (date, "auto", "storage", "goog4_request"):
        key = hmac.new(key, part.encode(), "sha256").digest()
    return key


def test_hmac_key_chain_matches_the_sigv4_reference() -> None:
    # AWS's documented SigV4 derivation example (same chain GCS uses with GOOG4 / goog4_request).
    key = v4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_hmac_urls() -> None:
    signer = GcsUrlSigner("http://127.0.0.1:9023", hmac_key=("GOOG1EXAMPLE", "secret"))
    url = signer.batch(600, NOW)("bkt", "tables/t1/part 0.parquet")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "http",
        "127.0.0.1:9023",
        "/bkt/tables/t1/part%200.parquet",
    )
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["X-Goog-Algorithm"] == "GOOG4-HMAC-SHA256"
    assert q["X-Goog-Credential"] == "GOOG1EXAMPLE/20260506/auto/storage/goog4_request"
    assert q["X-Goog-Date"] == "20260506T070809Z" and q["X-Goog-Expires"] == "600"
    assert q["X-Goog-SignedHeaders"] == "host"
    canonical = (
        "GET\n/bkt/tables/t1/part%200.parquet\n"
        + parts.query.rsplit("&X-Goog-Signature=", 1)[0]
        + "\nhost:127.0.0.1:9023\n\nhost\nUNSIGNED-PAYLOAD"
    )
    to_sign = (
        "GOOG4-HMAC-SHA256\n20260506T070809Z\n20260506/auto/storage/goog4_request\n"
        + hashlib.sha256(canonical.encode()).hexdigest()
    )
    expected = hmac.new(_goog4_key("secret", "20260506"), to_sign.encode(), "sha256").hexdigest()
    assert q["X-Goog-Signature"] == expected


def test_sign_many_equals_one_by_one() -> None:
    _, credentials = _service_account()
    signer = GcsUrlSigner(rsa=(credentials.service_account_email, credentials.signer.sign))
    objects = [("bkt", f"t/part-{i}.parquet") for i in range(80)]
    batch = signer.batch(300, NOW)
    # RSA PKCS#1 v1.5 signatures are deterministic: threads must give exactly the sequential URLs, in order.
    assert signer.sign_many(objects, 300, NOW) == [batch(b, n) for b, n in objects]


def test_signer_needs_exactly_one_key() -> None:
    with pytest.raises(ValueError, match="give exactly one of hmac_key"):
        GcsUrlSigner()
    with pytest.raises(ValueError, match="give exactly one of hmac_key"):
        GcsUrlSigner(hmac_key=("a", "b"), rsa=("e", lambda b: b))
    with pytest.raises(ValueError, match=r"^expires_in must be 1\.\.604800 seconds, not 604801$"):
        GcsUrlSigner(hmac_key=("a", "b")).batch(7 * 24 * 3600 + 1)


class _Response:
    def __init__(self, body: dict) -> None:
        import json

        self.status, self.data = 200, json.dumps(body).encode()
        self.headers: dict[str, str] = {}


class _CapturingRequest:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict | None = None,
        **kwargs: object,
    ) -> _Response:
        self.calls.append((url, body or b""))
        return _Response({"access_token": "downscoped", "expires_in": 3600})


class _SourceStore:
    identity_name = "sa:test"

    def access_token(self, min_remaining_s: int) -> str:
        return "source-token"


def test_exchange_request_is_byte_for_byte_google_auths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our exchange (configurable endpoint) sends exactly what google-auth's downscoped.Credentials sends."""
    import google.auth.transport.requests
    from google.auth import credentials as auth_credentials
    from google.auth import downscoped

    from lakegate.cloud.gcp.vending import GcsVendor
    from lakegate.config import GcpStorageConfig

    location = Location.parse("gs://bkt/tables/t1")
    rule = access_boundary(location)["accessBoundary"]["accessBoundaryRules"][0]
    boundary = downscoped.CredentialAccessBoundary(
        [
            downscoped.AccessBoundaryRule(
                rule["availableResource"],
                rule["availablePermissions"],
                downscoped.AvailabilityCondition(rule["availabilityCondition"]["expression"]),
            )
        ]
    )

    class Source(auth_credentials.Credentials):
        def refresh(self, request: object) -> None:
            self.token = "source-token"

    theirs = _CapturingRequest()
    downscoped.Credentials(Source(), boundary).refresh(theirs)

    ours = _CapturingRequest()
    monkeypatch.setattr(google.auth.transport.requests, "Request", lambda *a, **k: ours)
    vendor = GcsVendor(_SourceStore(), GcpStorageConfig())  # type: ignore[arg-type]
    credential = vendor.vend(location)
    assert ours.calls == theirs.calls
    assert ours.calls[0][0] == "https://sts.googleapis.com/v1/token"
    assert credential.secret == {"oauthToken": "downscoped"}
