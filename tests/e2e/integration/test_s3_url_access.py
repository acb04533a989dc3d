"""URL access to tables on a real S3 (Ceph RGW, which verifies SigV4 signatures): the official client reads
them through lakegate's pre-signed URLs in both formats, with the endpoint taken from the environment or from a
`storage:` entry, and the URLs point at that endpoint (the reference server's bug #753)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import delta_sharing
import httpx
import pytest

from tests.e2e.protocol.test_official_client import _normalize, _rows
from tests.e2e.server import RunningServer, start_server
from tests.services.rgw import RgwService
from tests.tables import build_partitioned, build_plain, read_expected

pytestmark = pytest.mark.rgw
BUCKET = "lakegate-url"


@pytest.fixture(scope="module")
def s3_tables(rgw: RgwService, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rgw.create_bucket(BUCKET)
    saved = dict(os.environ)
    os.environ.update(rgw.env(rgw.owner))  # deltalake (object_store) reads the standard AWS variables
    try:
        tables = {
            "sales": build_partitioned(f"s3://{BUCKET}/tables/sales"),
            "plain": build_plain(f"s3://{BUCKET}/tables/plain name", batches=2),
        }
        expected = {name: read_expected(uri) for name, uri in tables.items()}
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {**tables, **{f"expected:{k}": v for k, v in expected.items()}}


def _shares(tables: dict[str, str], scheme: str = "s3") -> list[dict]:
    return [
        {
            "name": "s3share",
            "schemas": [
                {
                    "name": "default",
                    "tables": [
                        {
                            "name": "sales",
                            "location": tables["sales"].replace("s3://", f"{scheme}://"),
                            "historyShared": True,
                        },
                        {"name": "plain", "location": tables["plain"]},
                    ],
                }
            ],
        }
    ]


@pytest.fixture(scope="module")
def env_server(
    rgw: RgwService, s3_tables: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Endpoint and keys from the standard AWS environment variables."""
    server = start_server(
        tmp_path_factory.mktemp("s3env"), {"shares": _shares(s3_tables, "s3a")}, env=rgw.env(rgw.owner)
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def storage_server(
    rgw: RgwService, s3_tables: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Endpoint and keys from a `storage:` entry; the environment names no endpoint at all."""
    config = {
        "shares": _shares(s3_tables),
        "storage": [
            {
                "location": f"s3://{BUCKET}/",
                "aws": rgw.aws_settings(),
            }
        ],
    }
    clean_env = dict.fromkeys(
        ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ""
    )
    server = start_server(tmp_path_factory.mktemp("s3storage"), {**config}, env=clean_env)
    yield server
    server.stop()


@pytest.mark.parametrize("which", ["env_server", "storage_server"])
@pytest.mark.parametrize("table", ["sales", "plain"])
@pytest.mark.parametrize("use_delta_format", [False, True])
def test_official_client_reads_s3_tables(
    request: pytest.FixtureRequest, s3_tables: dict, which: str, table: str, use_delta_format: bool
) -> None:
    server: RunningServer = request.getfixturevalue(which)
    frame = delta_sharing.load_as_pandas(
        f"{server.profile()}#s3share.default.{table}", use_delta_format=use_delta_format
    )
    assert _normalize(_rows(frame)) == _normalize(s3_tables[f"expected:{table}"])


def _file_urls(server: RunningServer, table: str) -> list[str]:
    response = httpx.post(
        f"{server.endpoint}/shares/s3share/schemas/default/tables/{table}/query",
        headers=server.headers(),
        json={},
    )
    assert response.status_code == 200, response.text
    lines = [httpx.Response(200, content=line).json() for line in response.content.splitlines()]
    return [line["file"]["url"] for line in lines[2:]]


def test_urls_point_at_the_configured_endpoint_and_are_verified(
    rgw: RgwService, storage_server: RunningServer
) -> None:
    urls = _file_urls(storage_server, "plain")
    assert urls
    endpoint = urlsplit(rgw.endpoint)
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (endpoint.scheme, endpoint.netloc)
        assert parts.path.startswith(f"/{BUCKET}/tables/plain%20name/")
        assert httpx.get(url).status_code == 200
    # RGW checks the signature: an edited one, or a URL for another key, is refused.
    tampered = urls[0][:-4] + ("0000" if not urls[0].endswith("0000") else "1111")
    assert httpx.get(tampered).status_code == 403
    other_key = urls[0].replace("/tables/plain%20name/", "/tables/sales/", 1)
    assert httpx.get(other_key).status_code == 403


def test_storage_errors_are_not_leaked(
    storage_server: RunningServer, tmp_path: Path, rgw: RgwService
) -> None:
    """A table whose location does not exist answers a JSON error without internal details."""
    server = start_server(
        tmp_path,
        {
            "shares": [
                {
                    "name": "s",
                    "schemas": [
                        {
                            "name": "d",
                            "tables": [{"name": "missing", "location": f"s3://{BUCKET}/tables/nothing-here"}],
                        }
                    ],
                }
            ],
            "storage": [
                {
                    "location": f"s3://{BUCKET}/",
                    "aws": rgw.aws_settings(),
                }
            ],
        },
    )
    try:
        response = httpx.post(
            f"{server.endpoint}/shares/s/schemas/d/tables/missing/query", headers=server.headers(), json={}
        )
        assert response.status_code >= 400
        body = response.json()
        assert set(body) == {"errorCode", "message"}
        assert rgw.owner.secret_access_key not in response.text
    finally:
        server.stop()
