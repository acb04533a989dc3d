"""Recipients managed live: a running `lakegate serve` (SQLite, the default database) and the CLI run beside it,
as an operator would. Recipients read with the official delta-sharing client."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import delta_sharing
import httpx
import pytest
import requests

from tests.e2e.integration.admin_support import (
    files_containing,
    lakegate,
    lakegate_json,
    profile_token,
    status,
    wait_until,
)
from tests.e2e.server import RunningServer, start_server
from tests.tables import build_partitioned, build_plain, read_expected

ISSUED: list[str] = []  # every token made in this module: none may be found on the server's disk


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("recipient-tables")
    return {"sales": build_partitioned(base / "sales"), "plain": build_plain(base / "plain", batches=3)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tables: dict[str, str]) -> Iterator[RunningServer]:
    shares = [
        {
            "name": "share1",
            "schemas": [
                {
                    "name": "default",
                    "tables": [
                        {"name": "sales", "location": tables["sales"], "historyShared": True},
                        {"name": "plain", "location": tables["plain"]},
                    ],
                }
            ],
        },
        {
            "name": "share2",
            "schemas": [
                {
                    "name": "other",
                    "tables": [
                        {"name": "plain2", "location": tables["plain"]},
                    ],
                }
            ],
        },
    ]
    running = start_server(tmp_path_factory.mktemp("recipients-server"), {"shares": shares})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def config(server: RunningServer) -> Path:
    return server.workdir / "lakegate.yaml"


def create(config: Path, name: str, *args: str) -> Path:
    profile = config.parent / f"{name}.share"
    lakegate(config, "recipients", "create", name, *args, "--profile-out", str(profile))
    ISSUED.append(profile_token(profile))
    return profile


def _frame_ids(profile: Path, table: str) -> list[int]:
    return sorted(delta_sharing.load_as_pandas(f"{profile}#{table}")["id"].tolist())


def test_new_recipient_profile_works_and_shows_only_its_shares(
    server: RunningServer, config: Path, tables: dict[str, str]
) -> None:
    profile = create(config, "alice", "--share", "share2", "--expires-in", "3600")
    content = json.loads(profile.read_text())
    assert set(content) == {"shareCredentialsVersion", "endpoint", "bearerToken", "expirationTime"}
    assert content["shareCredentialsVersion"] == 1 and content["endpoint"] == server.endpoint
    assert stat.S_IMODE(os.stat(profile).st_mode) == 0o600
    client = delta_sharing.SharingClient(str(profile))
    assert [s.name for s in client.list_shares()] == ["share2"]
    assert [(t.share, t.schema, t.name) for t in client.list_all_tables()] == [("share2", "other", "plain2")]
    expected = sorted(r["id"] for r in read_expected(tables["plain"]))
    assert _frame_ids(profile, "share2.other.plain2") == expected
    with pytest.raises(requests.HTTPError) as denied:
        delta_sharing.load_as_pandas(f"{profile}#share1.default.plain")
    assert denied.value.response.status_code == 404


def test_profile_without_expiry_has_no_expiration_time(config: Path) -> None:
    profile = create(config, "forever", "--share", "share1")
    assert "expirationTime" not in json.loads(profile.read_text())


TABLE = "/shares/{share}/schemas/default/tables/sales"
ENDPOINTS = [
    ("GET", "/shares/{share}", None),
    ("GET", "/shares/{share}/schemas", None),
    ("GET", "/shares/{share}/schemas/default/tables", None),
    ("GET", "/shares/{share}/all-tables", None),
    ("HEAD", TABLE, None),
    ("GET", TABLE + "/version", None),
    ("GET", TABLE + "/metadata", None),
    ("POST", TABLE + "/query", {}),
    ("POST", TABLE + "/query", {"maxFiles": 1, "version": 1}),
    ("GET", TABLE + "/changes?startingVersion=0", None),
    ("POST", TABLE + "/queries/some-query-id", {}),
    ("POST", TABLE + "/temporary-table-credentials", {}),
]


@pytest.fixture(scope="module")
def share2_token(config: Path) -> str:
    return profile_token(create(config, "share2-only", "--share", "share2"))


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_ungranted_is_answered_exactly_as_nonexistent(
    server: RunningServer, share2_token: str, method: str, path: str, body: dict | None
) -> None:
    token = share2_token

    def answer(share: str) -> tuple[int, str | None, str]:
        response = httpx.request(
            method,
            server.endpoint + path.format(share=share),
            json=body,
            headers=server.headers(token),
            timeout=30,
        )
        return (
            response.status_code,
            response.headers.get("content-type"),
            response.text.replace(share, "<name>"),
        )

    ungranted, missing = answer("share1"), answer("nosuch")
    assert ungranted == missing
    assert ungranted[0] == 404
    # The bootstrap token sees share1, so the 404 above was the grant, not the request.
    assert (
        httpx.request(
            method,
            server.endpoint + path.format(share="share1"),
            json=body,
            headers=server.headers(),
            timeout=30,
        ).status_code
        != 404
        or "queries" in path
    )


def test_grants_apply_on_the_next_request(server: RunningServer, config: Path) -> None:
    profile = create(config, "bob")
    client = delta_sharing.SharingClient(str(profile))
    assert client.list_shares() == []
    lakegate(config, "recipients", "grant", "bob", "share1")
    assert [s.name for s in client.list_shares()] == ["share1"]
    assert len(_frame_ids(profile, "share1.default.plain")) == 9
    lakegate(config, "recipients", "ungrant", "bob", "share1")
    assert client.list_shares() == []
    assert (
        status(
            f"{server.endpoint}/shares/share1/schemas/default/tables/plain/version", profile_token(profile)
        )
        == 404
    )


def test_rotation_with_grace(server: RunningServer, config: Path) -> None:
    old = profile_token(create(config, "carol", "--share", "share1"))
    new_profile = config.parent / "carol-2.share"
    rotated = lakegate_json(
        config, "recipients", "rotate", "carol", "--grace", "3", "--profile-out", str(new_profile)
    )
    new = profile_token(new_profile)
    ISSUED.append(new)
    url = f"{server.endpoint}/shares"
    assert (status(url, old), status(url, new)) == (200, 200)
    wait_until(rotated["recipient"]["previousTokensValidUntil"])
    assert (status(url, old), status(url, new)) == (401, 200)
    assert [s.name for s in delta_sharing.SharingClient(str(new_profile)).list_shares()] == ["share1"]


def test_revocation_is_immediate(server: RunningServer, config: Path) -> None:
    profile = create(config, "dave", "--share", "share1")
    client = delta_sharing.SharingClient(str(profile))
    assert [s.name for s in client.list_shares()] == ["share1"]
    lakegate(config, "recipients", "revoke", "dave")
    response = httpx.get(f"{server.endpoint}/shares", headers=server.headers(profile_token(profile)))
    assert response.status_code == 401
    assert response.json()["errorCode"] == "UNAUTHENTICATED"
    with pytest.raises(requests.HTTPError) as refused:
        client.list_shares()
    assert refused.value.response.status_code == 401


def test_expiry_takes_effect_on_time(server: RunningServer, config: Path) -> None:
    profile = create(config, "erin", "--share", "share1", "--expires-in", "8")  # room for a loaded machine
    expires = json.loads(profile.read_text())["expirationTime"]
    url = f"{server.endpoint}/shares/share1/schemas/default/tables/plain/metadata"
    assert status(url, profile_token(profile)) == 200
    wait_until(expires)
    assert status(url, profile_token(profile)) == 401


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong", "Basic abc", "Bearer " + "x" * 4000])
def test_bad_credentials_are_401_json(server: RunningServer, header: str | None) -> None:
    response = httpx.get(f"{server.endpoint}/shares", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json() == {
        "errorCode": "UNAUTHENTICATED",
        "message": "missing, invalid, expired or revoked bearer token",
    }


def test_shares_and_tables_created_live(server: RunningServer, config: Path, tables: dict[str, str]) -> None:
    lakegate(config, "shares", "create", "live", "--comment", "made live", "--property", "team=data")
    shown = lakegate_json(config, "tables", "add", "live.sch.sales", tables["sales"], "--history")
    assert [t["name"] for t in shown["tables"]] == ["live.sch.sales"]
    profile = create(config, "frank", "--share", "live")
    assert _frame_ids(profile, "live.sch.sales") == sorted(r["id"] for r in read_expected(tables["sales"]))
    share = httpx.get(f"{server.endpoint}/shares/live", headers=server.headers(profile_token(profile))).json()
    assert share["share"]["comment"] == "made live" and share["share"]["properties"] == {"team": "data"}
    assert {s["name"] for s in lakegate_json(config, "shares", "list")} >= {"share1", "share2", "live"}
    refused = lakegate(config, "shares", "delete", "share1", check=False)
    assert refused.returncode == 1 and "configuration file" in refused.stderr
    lakegate(config, "shares", "delete", "live")
    assert status(f"{server.endpoint}/shares/live", profile_token(profile)) == 404


def test_cli_errors_are_messages_not_tracebacks(config: Path) -> None:
    for args in (
        ["recipients", "create", "x y"],
        ["recipients", "rotate", "nobody"],
        ["recipients", "grant", "alice", "nosuch"],
        ["tables", "add", "nodots", "/x"],
    ):
        proc = lakegate(config, *args, check=False)
        assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    proc = lakegate(config, "recipients", "rotate", "nobody", "--output", "json", check=False)
    assert json.loads(proc.stderr) == {
        "errorCode": "RESOURCE_DOES_NOT_EXIST",
        "message": "recipient 'nobody' not found",
    }


def test_admin_api(server: RunningServer, config: Path) -> None:
    admin = lakegate_json(config, "admin-tokens", "create", "ops")["token"]
    ISSUED.append(admin)
    base = server.base_url + "/admin"
    auth = {"Authorization": f"Bearer {admin}"}
    created = httpx.post(f"{base}/recipients", headers=auth, json={"name": "grace", "shares": ["share1"]})
    assert created.status_code == 201
    profile = created.json()["profile"]
    ISSUED.append(profile["bearerToken"])
    assert profile["endpoint"] == server.endpoint
    path = config.parent / "grace.share"
    path.write_text(json.dumps(profile))
    assert [s.name for s in delta_sharing.SharingClient(str(path)).list_shares()] == ["share1"]
    # Admin tokens read no data; recipients' tokens administer nothing; the bootstrap token neither.
    assert status(f"{server.endpoint}/shares", admin) == 401
    for token in (profile["bearerToken"], server.token, None):
        assert status(f"{base}/recipients", token) == 401
    rotated = httpx.post(f"{base}/recipients/grace/rotate", headers=auth, json={"graceSeconds": 0}).json()
    ISSUED.append(rotated["profile"]["bearerToken"])
    assert status(f"{server.endpoint}/shares", profile["bearerToken"]) == 401
    assert httpx.put(f"{base}/recipients/grace/grants/share2", headers=auth).json()["shares"] == [
        "share1",
        "share2",
    ]
    assert httpx.post(f"{base}/recipients/grace/revoke", headers=auth).json()["tokensRevoked"] == 1
    bad = httpx.post(f"{base}/recipients", headers=auth, content=b"{not json")
    assert (bad.status_code, bad.json()["errorCode"]) == (400, "MALFORMED_REQUEST")
    dup = httpx.post(f"{base}/recipients", headers=auth, json={"name": "grace"})
    assert (dup.status_code, dup.json()["errorCode"]) == (409, "RESOURCE_ALREADY_EXISTS")
    assert httpx.get(f"{base}/recipients/nobody", headers=auth).status_code == 404
    assert httpx.get(f"{base}/audit?recipient=grace", headers=auth).json()["items"] == []
    lakegate(config, "admin-tokens", "revoke", "ops")
    assert status(f"{base}/recipients", admin) == 401


def test_audit_records_every_data_access(server: RunningServer, config: Path, tables: dict[str, str]) -> None:
    profile = create(config, "heidi", "--share", "share1")
    token = profile_token(profile)
    delta_sharing.load_as_pandas(f"{profile}#share1.default.plain")
    status(f"{server.endpoint}/shares/share2/schemas/other/tables/plain2/metadata", token)  # not granted
    status(
        f"{server.endpoint}/shares/share1/schemas/default/tables/plain/temporary-table-credentials",
        token,
        "POST",
    )  # a local table has no directory access
    events = lakegate_json(config, "audit", "--recipient", "heidi", "--since", "10m")
    assert [(e["operation"], e["table"], e["mode"], e["outcome"]) for e in events] == [
        ("metadata", "share1.default.plain", "url", "ok"),
        ("query", "share1.default.plain", "url", "ok"),
        ("metadata", "share2.other.plain2", "url", "RESOURCE_DOES_NOT_EXIST"),
        ("temporary-credentials", "share1.default.plain", "dir", "UNSUPPORTED_OPERATION"),
    ]
    query = events[1]
    assert (query["version"], query["files"], query["mode"], query["status"]) == (2, 3, "url", 200)
    assert query["client"] == "127.0.0.1" and query["userAgent"].startswith("Delta-Sharing-Python/")
    assert events[2]["status"] == 404
    # The same events as structured JSON log lines.
    lines = [
        json.loads(line)
        for line in Path(server.daemon.log_path).read_text().splitlines()
        if line.startswith("{") and '"lakegate.audit"' in line
    ]
    logged = [line["audit"] for line in lines if line["audit"]["recipient"] == "heidi"]
    assert [(e["operation"], e["outcome"], e["files"]) for e in logged][:3] == [
        ("metadata", "ok", None),
        ("query", "ok", 3),
        ("metadata", "RESOURCE_DOES_NOT_EXIST", None),
    ]
    # A stranger's request is a log line and a metric, not a database row (strangers can send many).
    before = _metric(httpx.get(f"{server.base_url}/metrics").text, "lakegate_unauthenticated_requests_total")
    status(f"{server.endpoint}/shares/share1/schemas/default/tables/plain/metadata", "lg_wrong")
    latest = lakegate_json(config, "audit", "--limit", "1")
    assert latest[0]["recipient"] is not None and latest[0]["status"] != 401
    after = _metric(httpx.get(f"{server.base_url}/metrics").text, "lakegate_unauthenticated_requests_total")
    assert after == before + 1
    strangers = [
        json.loads(line)["audit"]
        for line in Path(server.daemon.log_path).read_text().splitlines()
        if line.startswith("{") and '"lakegate.audit"' in line and '"UNAUTHENTICATED"' in line
    ]
    assert strangers and strangers[-1]["recipient"] is None and strangers[-1]["status"] == 401


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_reflect_requests(server: RunningServer, config: Path) -> None:
    profile = create(config, "ivan", "--share", "share1")
    before = httpx.get(server.base_url + "/metrics").text
    for _ in range(2):
        delta_sharing.load_as_pandas(f"{profile}#share1.default.plain")
    status(f"{server.endpoint}/shares/nosuch", profile_token(profile))
    after = httpx.get(server.base_url + "/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    query = {
        "route": "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/query",
        "method": "POST",
        "status": "200",
    }
    missing = {"route": "/delta-sharing/shares/{share}", "method": "GET", "status": "404"}
    for labels, increase in ((query, 2), (missing, 1)):
        assert (
            _metric(after.text, "lakegate_http_requests_total", **labels)
            - _metric(before, "lakegate_http_requests_total", **labels)
            == increase
        )
    assert (
        _metric(after.text, "lakegate_files_signed_total") - _metric(before, "lakegate_files_signed_total")
        == 6
    )
    duration = {"route": query["route"], "method": "POST"}
    assert (
        _metric(after.text, "lakegate_http_request_duration_seconds_count", **duration)
        - _metric(before, "lakegate_http_request_duration_seconds_count", **duration)
        == 2
    )
    assert _metric(after.text, "lakegate_snapshot_cache_hits_total") > _metric(
        before, "lakegate_snapshot_cache_hits_total"
    )
    assert (
        "lakegate_credentials_vended_total" in after.text
        and "lakegate_credential_cache_hits_total" in after.text
    )


def test_health_and_readiness(server: RunningServer) -> None:
    assert httpx.get(server.base_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.base_url + "/readyz").json() == {"status": "ready"}


def test_no_token_in_clear_on_disk_or_in_logs(server: RunningServer, config: Path) -> None:
    profile = create(config, "judy", "--share", "share1")
    delta_sharing.load_as_pandas(f"{profile}#share1.default.plain")
    rotated = config.parent / "judy-2.share"
    lakegate(config, "recipients", "rotate", "judy", "--grace", "60", "--profile-out", str(rotated))
    ISSUED.append(profile_token(rotated))
    delta_sharing.SharingClient(str(rotated)).list_shares()
    lakegate(config, "recipients", "list")
    assert ISSUED
    assert files_containing(server.workdir, ISSUED) == []
    assert (
        any(server.workdir.glob("*.db-wal")) and (server.workdir / "lakegate.db").stat().st_mode & 0o077 == 0
    )


def test_closed_by_default_until_a_recipient_is_created(tmp_path: Path, tables: dict[str, str]) -> None:
    shares = [
        {"name": "only", "schemas": [{"name": "s", "tables": [{"name": "t", "location": tables["plain"]}]}]}
    ]
    running = start_server(tmp_path, {"shares": shares}, token=None)
    try:
        assert status(f"{running.endpoint}/shares", None) == 401
        assert "no recipient can connect" in running.log()
        profile = tmp_path / "first.share"
        lakegate(
            tmp_path / "lakegate.yaml",
            "recipients",
            "create",
            "first",
            "--share",
            "only",
            "--profile-out",
            str(profile),
        )
        assert [s.name for s in delta_sharing.SharingClient(str(profile)).list_shares()] == ["only"]
    finally:
        running.stop()
    # SIGTERM: uvicorn drains, then the lifespan closes the database, and the process exits cleanly.
    assert running.daemon.proc.returncode == 0 and "Application shutdown complete" in running.log()
