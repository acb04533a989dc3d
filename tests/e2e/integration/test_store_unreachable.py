"""A store nobody answers at (a closed port on loopback) for each cloud: the recipient gets a 503 that says the
storage cannot be reached, within seconds (the SDKs' default retries would hold the request for 1-2 minutes),
and nothing about where the storage is."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.server import RunningServer, start_server
from tests.services._proc import free_port

# The Azurite development account's well-known key: a valid key shape, no secret.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _service_account(path: Path, token_uri: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "lakegate-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "lakegate@lakegate-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return str(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    workdir = tmp_path_factory.mktemp("unreachable")
    tables = [
        {"name": "s3", "location": "s3://far-bucket/tables/t"},
        {
            "name": "azure",
            "location": "wasbs://far-container@devstoreaccount1.blob.core.windows.net/tables/t",
        },
        {"name": "gcs", "location": "gs://far-bucket/tables/t"},
    ]
    config = {
        "shares": [{"name": "far", "schemas": [{"name": "default", "tables": tables}]}],
        "storage": [
            {
                "location": "s3://far-bucket/",
                "aws": {
                    "endpoint": closed,
                    "region": "us-east-1",
                    "pathStyle": True,
                    "accessKeyId": "AKIDEXAMPLE",
                    "secretAccessKey": "not-a-real-secret",
                },
            },
            {
                "location": "wasbs://",
                "azure": {"endpoint": f"{closed}/devstoreaccount1", "accountKey": AZURITE_KEY},
            },
            {
                "location": "gs://far-bucket/",
                "gcp": {
                    "endpoint": closed,
                    "serviceAccountKeyFile": _service_account(workdir / "sa.json", f"{closed}/token"),
                },
            },
        ],
    }
    running = start_server(workdir / "srv", config)
    yield running
    running.stop()


@pytest.mark.parametrize("table", ["s3", "azure", "gcs"])
def test_unreachable_store_is_a_prompt_503(server: RunningServer, table: str) -> None:
    started = time.monotonic()
    response = httpx.post(
        f"{server.endpoint}/shares/far/schemas/default/tables/{table}/query",
        headers=server.headers(),
        json={},
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    body = response.json()
    assert body == {
        "errorCode": "TEMPORARILY_UNAVAILABLE",
        "message": "The provider's storage cannot be reached right now; try again shortly.",
    }
    assert elapsed < 20, elapsed
