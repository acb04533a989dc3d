"""Faults of the services lakegate depends on, each with a clear error while it lasts and recovery without a
restart once it ends:

- the object store (Ceph RGW's gateway process, stopped for real while clients query) -> 503;
- the STS token service (the path to it cut by a loopback proxy, S3 itself still up) -> directory access answers
  a clear 5xx while URL access keeps working;
- PostgreSQL stopped and started again while clients query -> 503 in the gap, success after.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from deltalake import DeltaTable

from tests.e2e.integration.tcp_proxy import TcpProxy
from tests.e2e.server import RunningServer, start_server
from tests.services.postgres import PostgresService
from tests.services.rgw import RgwService
from tests.tables import build_plain

BUCKET = "lakegate-faults"
UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
# What no recipient may see in an error: the bucket, the table's key, the store's address.
SECRETS = (BUCKET, "tables/t", "127.0.0.1:")


def _query(server: RunningServer, share: str, table: str = "t") -> httpx.Response:
    url = f"{server.endpoint}/shares/{share}/schemas/default/tables/{table}/query"
    return httpx.post(url, headers=server.headers(), json={}, timeout=60)


def _files(response: httpx.Response) -> int:
    return sum(1 for line in response.text.splitlines() if line.startswith('{"file"'))


def _assert_clean_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errorCode", "message"} and body["errorCode"] == code, body
    for secret in SECRETS:
        assert secret not in body["message"], body


class Load:
    """Client threads sending `request` in a loop until stopped, keeping every answer's status and body."""

    def __init__(self, request: Callable[[], httpx.Response], threads: int = 3) -> None:
        self.request = request
        self.answers: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                response = self.request()
                self.answers.append((time.monotonic(), response.status_code, response.text))
            except httpx.HTTPError as exc:  # a dropped connection would be a failure too
                self.answers.append((time.monotonic(), 0, repr(exc)))
            time.sleep(0.02)


def _wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


# -- S3 and STS on Ceph RGW ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_table(rgw: RgwService) -> dict[str, Any]:
    """A table in a bucket of the broker (lakegate's identity), and a role the broker may assume."""
    rgw.boto3_client("s3", rgw.broker).create_bucket(Bucket=BUCKET)
    saved = dict(os.environ)
    os.environ.update(rgw.env(rgw.broker))  # deltalake (object_store) reads the standard AWS variables
    try:
        uri = build_plain(f"s3://{BUCKET}/tables/t", batches=3)
        files = len(DeltaTable(uri).file_uris())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    role = rgw.create_role(
        "lakegate-faults-reader",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]},
    )
    return {"uri": uri, "files": files, "role": role}


@pytest.fixture(scope="module")
def sts_proxy(rgw: RgwService) -> Iterator[TcpProxy]:
    endpoint = urlsplit(rgw.endpoint)
    proxy = TcpProxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80)
    yield proxy
    proxy.cut()


@pytest.fixture(scope="module")
def s3_server(
    rgw: RgwService, s3_table: dict[str, Any], sts_proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """S3 reads and URL signing go straight to RGW; STS calls go through the proxy the tests can cut."""
    aws = {
        "endpoint": rgw.endpoint,
        "region": rgw.region,
        "pathStyle": True,
        "accessKeyId": rgw.broker.access_key_id,
        "secretAccessKey": rgw.broker.secret_access_key,
        "roleArn": s3_table["role"],
        "stsEndpoint": sts_proxy.url,
        "durationSeconds": 900,
        "sessionName": "lakegate-faults",
    }
    table = {"name": "t", "location": s3_table["uri"], "historyShared": True}
    config = {
        "shares": [{"name": "s3", "schemas": [{"name": "default", "tables": [table]}]}],
        "storage": [{"location": f"s3://{BUCKET}/", "aws": aws}],
    }
    clean_env = dict.fromkeys(("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "")
    server = start_server(tmp_path_factory.mktemp("faults-s3"), config, env=clean_env)
    yield server
    server.stop()


def _vend(server: RunningServer) -> httpx.Response:
    url = f"{server.endpoint}/shares/s3/schemas/default/tables/t/temporary-table-credentials"
    return httpx.post(url, headers=server.headers(), timeout=60)


@pytest.mark.rgw
def test_sts_down_fails_directory_access_only(s3_server: RunningServer, sts_proxy: TcpProxy) -> None:
    sts_proxy.cut()
    try:
        refused = _vend(s3_server)
        assert refused.status_code == 500, refused.text
        body = refused.json()
        assert body["errorCode"] == "CREDENTIAL_VENDING_FAILED" and "token service" in body["message"], body
        for secret in (*SECRETS, "arn:"):
            assert secret not in body["message"], body
        # URL access needs no token service: the server signs with its own keys.
        query = _query(s3_server, "s3")
        assert query.status_code == 200 and _files(query) == 3, query.text
    finally:
        sts_proxy.restore()
    vended = _vend(s3_server)
    assert vended.status_code == 200, vended.text
    assert vended.json()["credentials"]["awsTempCredentials"]["sessionToken"]


@pytest.mark.rgw
def test_object_store_outage_mid_query(
    rgw: RgwService, s3_server: RunningServer, s3_table: dict[str, Any]
) -> None:
    """The real gateway process is stopped while clients query, then started again (this takes a few seconds
    on memstore: the cluster and its pools survive)."""
    assert _files(_query(s3_server, "s3")) == s3_table["files"]
    with Load(lambda: _query(s3_server, "s3")) as load:
        time.sleep(0.5)
        stopped = time.monotonic()
        rgw.stop_gateway()
        try:
            during = _query(s3_server, "s3")
            _assert_clean_error(during, 503, UNAVAILABLE)
            assert time.monotonic() - stopped < 30  # refused connections are retried briefly, not for minutes
            # The outage lasts until the load met it too (its requests may have waited behind one that began
            # before the stop).
            _wait_for(
                lambda: any(a[1] != 200 for a in load.answers), 30, "a loaded request to meet the outage"
            )
        finally:
            rgw.start_gateway()
        started = time.monotonic()
        _wait_for(lambda: _query(s3_server, "s3").status_code == 200, 30, "queries to succeed again")
        time.sleep(0.5)
    statuses = {status for _, status, _ in load.answers}
    assert statuses <= {200, 503}, [a for a in load.answers if a[1] not in (200, 503)][:3]
    assert 503 in statuses, "no request fell in the outage"
    for _at, status, text in load.answers:
        if status == 503:
            _assert_clean_error(httpx.Response(503, text=text), 503, UNAVAILABLE)
        elif status == 200:
            assert sum(1 for line in text.splitlines() if line.startswith('{"file"')) == s3_table["files"]
    assert any(status == 200 and at > started for at, status, _ in load.answers)
    errors = [
        line for line in s3_server.daemon.log_path.read_text().splitlines() if '"level":"error"' in line
    ]
    assert any("/tables/t/query" in line and "failed" in line for line in errors), errors[-3:]


# -- PostgreSQL ------------------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_database_stopped_and_started_under_load(postgres: PostgresService, tmp_path: Path) -> None:
    table = build_plain(tmp_path / "plain", batches=2)
    config = {
        "database": postgres.create_database("faults"),
        "shares": [
            {"name": "pg", "schemas": [{"name": "default", "tables": [{"name": "t", "location": table}]}]}
        ],
    }
    server = start_server(tmp_path / "srv", config)
    try:
        assert _query(server, "pg").status_code == 200
        with Load(lambda: _query(server, "pg")) as load:
            time.sleep(0.5)
            postgres.stop()
            try:
                time.sleep(0.5)
                _assert_clean_error(_query(server, "pg"), 503, UNAVAILABLE)
                shares = httpx.get(f"{server.endpoint}/shares", headers=server.headers(), timeout=30)
                _assert_clean_error(shares, 503, UNAVAILABLE)
            finally:
                postgres.start_again()
            back = time.monotonic()
            # The pool pings a connection before reusing it, so the first request after the restart succeeds.
            first = _query(server, "pg")
            assert first.status_code == 200 and _files(first) == 2, first.text
            time.sleep(1)
        statuses = [status for _, status, _ in load.answers]
        assert set(statuses) <= {200, 503}, [a for a in load.answers if a[1] not in (200, 503)][:3]
        assert 503 in statuses
        after = [(status, text) for at, status, text in load.answers if at > back + 0.2]
        assert after and all(status == 200 for status, _ in after), after[:3]
        assert "database unavailable" in server.daemon.log_path.read_text()
    finally:
        server.stop()
