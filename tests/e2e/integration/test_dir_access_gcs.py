"""Directory access to GCS tables: a `lakegate serve` process exchanges its service account's token at a fake
Google STS on loopback (Google's STS runs nowhere else), and the test checks exactly what it asked for — the
Credential Access Boundary of the table's directory — and that the recipient gets the downscoped token, never
the server's own, even for a table at the bucket root."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.integration.conftest import vend
from tests.e2e.integration.google_sts import FakeGoogle
from tests.e2e.server import RunningServer, start_server

TABLES = "/shares/gshare/schemas/default/tables"
EXCHANGE = {
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
}


@pytest.fixture(scope="module")
def google(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeGoogle, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    fake = FakeGoogle(public)
    key_file = tmp_path_factory.mktemp("gcp") / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "lakegate-test",
                "private_key_id": "key-1",
                "private_key": key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
                "client_email": "lakegate@lakegate-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{fake.base}/token",
            }
        )
    )
    yield fake, str(key_file)
    fake.stop()


@pytest.fixture(scope="module")
def gcs_server(
    google: tuple[FakeGoogle, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    fake, key_file = google
    tables = [
        {
            "name": "t1",
            "location": "gs://lake/tables/t1",
            "historyShared": True,
            "auxiliaryLocations": ["gs://lake-archive/tables/t1/"],
        },
        {"name": "root", "location": "gs://whole-bucket", "historyShared": True},
        {"name": "quoted", "location": "gs://lake/tables/it's", "historyShared": True},
        {"name": "refused", "location": "gs://refused-bucket/t", "historyShared": True},
        {"name": "nodir", "location": "gs://plain/tables/t", "historyShared": True},
    ]
    gcp = {
        "serviceAccountKeyFile": key_file,
        "directoryAccess": True,
        "tokenExchangeEndpoint": f"{fake.base}/v1/token",
    }
    config = {
        "shares": [{"name": "gshare", "schemas": [{"name": "default", "tables": tables}]}],
        "storage": [
            {"location": f"gs://{b}", "gcp": gcp}
            for b in ("lake/", "lake-archive/", "whole-bucket", "refused-bucket/")
        ]
        + [{"location": "gs://plain/", "gcp": {"serviceAccountKeyFile": key_file}}],
    }
    server = start_server(tmp_path_factory.mktemp("gcsdir"), config)
    yield server
    server.stop()


def _vend(server: RunningServer, table: str, body: Any = None, token: str | None = None) -> httpx.Response:
    return vend(server, "gshare", table, body, token)


def _options(request: dict[str, str]) -> dict:
    """The STS `options` field: URL-quoted JSON inside the form (as google-auth's downscoping sends it)."""
    return json.loads(unquote(request["options"]))


def _boundary(bucket: str, prefix: str) -> dict:
    return {
        "accessBoundary": {
            "accessBoundaryRules": [
                {
                    "availableResource": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
                    "availablePermissions": ["inRole:roles/storage.objectViewer"],
                    "availabilityCondition": {
                        "expression": (
                            f"resource.name.startsWith('projects/_/buckets/{bucket}/objects/{prefix}') || "
                            "api.getAttribute('storage.googleapis.com/objectListPrefix', '')"
                            f".startsWith('{prefix}')"
                        )
                    },
                }
            ]
        }
    }


def test_the_sts_receives_exactly_the_tables_boundary(
    google: tuple[FakeGoogle, str], gcs_server: RunningServer
) -> None:
    fake, _ = google
    before = time.time() * 1000
    response = _vend(gcs_server, "t1")
    assert response.status_code == 200, response.text
    credentials = response.json()["credentials"]
    assert set(credentials) == {"location", "gcpOauthToken", "expirationTime"}
    assert credentials["location"] == "gs://lake/tables/t1"
    assert credentials["gcpOauthToken"]["oauthToken"] == fake.issued[-1]
    assert credentials["gcpOauthToken"]["oauthToken"] not in fake.source_tokens
    assert before + 3_590_000 <= credentials["expirationTime"] <= time.time() * 1000 + 3_600_000

    request = fake.exchanges[-1]
    assert {k: request[k] for k in EXCHANGE} == EXCHANGE
    assert request["subject_token"] in fake.source_tokens
    assert set(request) == {*EXCHANGE, "subject_token", "options"}
    assert _options(request) == _boundary("lake", "tables/t1/")


def test_auxiliary_location_and_bucket_root(
    google: tuple[FakeGoogle, str], gcs_server: RunningServer
) -> None:
    fake, _ = google
    response = _vend(gcs_server, "t1", {"location": "gs://lake-archive/tables/t1"})
    assert response.status_code == 200, response.text
    assert _options(fake.exchanges[-1]) == _boundary("lake-archive", "tables/t1/")

    response = _vend(gcs_server, "root")
    assert response.status_code == 200, response.text
    assert _options(fake.exchanges[-1]) == _boundary("whole-bucket", "")
    assert response.json()["credentials"]["gcpOauthToken"]["oauthToken"] not in fake.source_tokens


def test_quotes_are_cel_escaped(google: tuple[FakeGoogle, str], gcs_server: RunningServer) -> None:
    fake, _ = google
    assert _vend(gcs_server, "quoted").status_code == 200
    expression = _options(fake.exchanges[-1])["accessBoundary"]["accessBoundaryRules"][0][
        "availabilityCondition"
    ]["expression"]
    assert "objects/tables/it\\'s/')" in expression and ".startsWith('tables/it\\'s/')" in expression


def test_cached_then_no_new_exchange(google: tuple[FakeGoogle, str], gcs_server: RunningServer) -> None:
    fake, _ = google
    first = _vend(gcs_server, "t1").json()["credentials"]
    count = len(fake.exchanges)
    assert _vend(gcs_server, "t1", {"location": "gs://lake/tables/t1/"}).json()["credentials"] == first
    assert len(fake.exchanges) == count


def test_refusals_never_fall_back_to_a_wider_token(
    google: tuple[FakeGoogle, str], gcs_server: RunningServer
) -> None:
    fake, _ = google
    response = _vend(gcs_server, "refused")
    assert response.status_code == 500 and response.json()["errorCode"] == "CREDENTIAL_VENDING_FAILED"
    assert "refused" in response.json()["message"]
    for token in fake.source_tokens + fake.issued:
        assert token not in response.text
    count = len(fake.exchanges)
    for location in (
        "gs://lake/tables/t1_old",
        "gs://lake/tables",
        "gs://lake",
        "gs://lake/tables/t1/..",
        "gs://lake-archive/tables/t1_old",
        "gs://whole-bucket/tables/t1",
        "s3://lake/tables/t1",
    ):
        response = _vend(gcs_server, "t1", {"location": location})
        assert response.status_code == 403, (location, response.text)
    assert len(fake.exchanges) == count
    response = _vend(gcs_server, "nodir")
    assert response.status_code == 400 and response.json()["errorCode"] == "UNSUPPORTED_OPERATION"


def test_no_token_in_the_server_log(google: tuple[FakeGoogle, str], gcs_server: RunningServer) -> None:
    fake, _ = google
    _vend(gcs_server, "t1")
    log = gcs_server.daemon.log_path.read_text()
    for token in fake.source_tokens + fake.issued:
        assert token not in log
