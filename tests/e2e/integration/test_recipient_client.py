"""lakegate's recipient client end to end: tables on RGW and Azurite opened in directory mode with vended
credentials (deltalake), URL-only tables read through the official client, the `lakegate recipient` commands,
and the loopback proxy that carries GCS tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from lakegate.client import (
    DirectoryAccessUnavailable,
    SharedTable,
    load_as_pandas,
    load_as_pyarrow,
    open_table,
)
from lakegate.client.gcs_proxy import TokenProxy
from tests.e2e.integration.fake_http import serve
from tests.e2e.server import RunningServer
from tests.services.azurite import AzuriteService
from tests.services.rgw import RgwService


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["id"])


def _s3_options(rgw: RgwService) -> dict[str, str]:
    # Where the store is and how to reach it: the protocol carries credentials, not endpoints.
    return {"AWS_ENDPOINT_URL": rgw.endpoint, "AWS_REGION": rgw.region, "AWS_ALLOW_HTTP": "true"}


@pytest.mark.rgw
def test_open_table_reads_s3_in_directory_mode(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer
) -> None:
    url = f"{dir_server.profile()}#s3share.default.t2"
    expected = s3_dir_tables["expected_t2"]
    table = open_table(url, _s3_options(rgw))
    assert _sorted(table.to_pyarrow_table().to_pylist()) == expected
    assert _sorted(load_as_pyarrow(url, _s3_options(rgw)).to_pylist()) == expected
    assert sorted(load_as_pandas(url, _s3_options(rgw))["id"].tolist()) == [r["id"] for r in expected]
    assert open_table(url, _s3_options(rgw), version=0).version() == 0


@pytest.mark.rgw
def test_credentials_are_refreshed_before_they_expire(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer
) -> None:
    shared = SharedTable(f"{dir_server.profile()}#s3share.default.t2", _s3_options(rgw))
    calls = []
    vend = shared.client.temporary_credentials

    def counting_vend(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return vend(*a, **k)

    shared.client.temporary_credentials = counting_vend  # type: ignore[method-assign]
    first = shared.table()
    assert shared.table() is first and len(calls) == 1  # still fresh: reused
    shared.refresh_before_s = 10**7  # every credential now counts as about to expire
    renewed = shared.table()
    assert len(calls) == 2 and renewed is not first
    assert _sorted(renewed.to_pyarrow_table().to_pylist()) == s3_dir_tables["expected_t2"]


@pytest.mark.rgw
@pytest.mark.parametrize(
    ("table", "reason"), [("t1_nohistory", "URL access only"), ("t1", "auxiliary locations")]
)
def test_other_tables_fall_back_to_url_mode(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer, table: str, reason: str
) -> None:
    # t1 offers dir, but one DeltaTable cannot read an auxiliary location with its own credentials.
    url = f"{dir_server.profile()}#s3share.default.{table}"
    with pytest.raises(DirectoryAccessUnavailable, match=reason):
        open_table(url, _s3_options(rgw))
    frame = load_as_pandas(url)
    assert sorted(frame["id"].tolist()) == [r["id"] for r in s3_dir_tables["expected"]]


@pytest.mark.azurite
def test_open_table_reads_azure_in_directory_mode(
    azurite: AzuriteService, azure_tables: dict, az_server: RunningServer
) -> None:
    options = {"azure_storage_endpoint": azurite.blob_endpoint, "allow_invalid_certificates": "true"}
    table = open_table(f"{az_server.profile()}#azshare.default.t1", options)
    assert _sorted(table.to_pyarrow_table().to_pylist()) == azure_tables["t1"]
    assert table.load_cdf(starting_version=0).read_all().num_rows == len(azure_tables["t1"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lakegate", "recipient", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.rgw
def test_recipient_cli(rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer) -> None:
    listed = _cli("tables", dir_server.profile())
    assert listed.returncode == 0, listed.stderr
    assert "s3share.default.t1  [url,dir]  s3a://lakegate-dir/tables/t1" in listed.stdout
    assert "s3share.default.t3  [url]" in listed.stdout
    as_json = json.loads(_cli("tables", dir_server.profile(), "--output", "json").stdout)
    assert {t["name"] for t in as_json} == {"t1", "t2", "t1_nohistory", "t3"}

    options = [f"--storage-option={k}={v}" for k, v in _s3_options(rgw).items()]
    head = _cli("head", f"{dir_server.profile()}#s3share.default.t2", "-n", "3", *options)
    assert head.returncode == 0, head.stderr
    assert head.stdout.startswith("# first 3 rows, read in dir mode")
    assert len(head.stdout.strip().splitlines()) == 1 + 1 + 3  # summary, header, rows
    url_mode = _cli("head", f"{dir_server.profile()}#s3share.default.t1_nohistory")
    assert url_mode.returncode == 0 and "read in url mode" in url_mode.stdout, url_mode.stderr
    missing = _cli("head", f"{dir_server.profile()}#s3share.default.nope")
    assert missing.returncode == 1 and "RESOURCE_DOES_NOT_EXIST" in missing.stderr


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(
                {
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "range": self.headers.get("Range"),
                }
            )
            body = b"object bytes"
            self.send_response(206 if self.headers.get("Range") else 200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", '"e1"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = serve(Handler)
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_gcs_token_proxy_adds_the_current_token(upstream: tuple[str, list[dict[str, Any]]]) -> None:
    import httpx

    base, seen = upstream
    tokens = iter(["tok-1", "tok-2"])
    proxy = TokenProxy(base, lambda: next(tokens))
    try:
        first = httpx.get(f"{proxy.url}/bkt/tables%2Ft1%2F_delta_log%2F_last_checkpoint")
        second = httpx.get(f"{proxy.url}/bkt/x", headers={"Range": "bytes=0-3"})
        assert (first.status_code, first.content, first.headers["etag"]) == (200, b"object bytes", '"e1"')
        assert second.status_code == 206
        assert [s["auth"] for s in seen] == ["Bearer tok-1", "Bearer tok-2"]  # refreshed tokens are used
        assert seen[0]["path"] == "/bkt/tables%2Ft1%2F_delta_log%2F_last_checkpoint"
        assert seen[1]["range"] == "bytes=0-3"
        assert httpx.put(f"{proxy.url}/bkt/x", content=b"x").status_code == 405
        assert httpx.delete(f"{proxy.url}/bkt/x").status_code == 405
        assert len(seen) == 2
    finally:
        proxy.stop()
