"""Two `lakegate serve` processes on one real PostgreSQL behave as one server: recipients, grants, rotations and
revocations made through either (or the CLI) are honoured by both at once, and tokens, page tokens and file URLs
minted by one replica work on the other. No tokenSigningKey is configured: the replicas share the key kept in
the database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import delta_sharing
import httpx
import psycopg
import pytest

from tests.e2e.integration.admin_support import (
    files_containing,
    lakegate,
    lakegate_json,
    profile_token,
    status,
)
from tests.e2e.server import RunningServer, start_server
from tests.services.postgres import PostgresService
from tests.tables import build_plain

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def database(postgres: PostgresService) -> str:
    return postgres.create_database("replicas")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[list[RunningServer]]:
    table = build_plain(tmp_path_factory.mktemp("replica-tables") / "plain", batches=4)
    base = tmp_path_factory.mktemp("replicas")
    config = {
        "database": database,
        "tokenSigningKey": None,
        "asyncQueryMinFiles": 2,  # the 4-file table runs as an async query when the client asks for one
        "shares": [
            {
                "name": "share1",
                "schemas": [{"name": "default", "tables": [{"name": "plain", "location": table}]}],
            },
            {
                "name": "share2",
                "schemas": [{"name": "default", "tables": [{"name": "plain", "location": table}]}],
            },
        ],
    }
    token = "bootstrap-token-for-the-replica-test"
    # Started together on an empty database: both race to migrate and sync, under the advisory lock.
    with ThreadPoolExecutor(2) as pool:
        running = list(
            pool.map(lambda name: start_server(base / name, config, token=token, name="lakegate"), ["a", "b"])
        )
    yield running
    for server in running:
        server.stop()


@pytest.fixture(scope="module")
def admin(replicas: list[RunningServer]) -> str:
    return lakegate_json(_config(replicas[0]), "admin-tokens", "create", "ops")["token"]


def _config(server: RunningServer) -> Path:
    return server.workdir / "lakegate.yaml"


def _profile_for(server: RunningServer, profile: dict, name: str) -> str:
    """The same credential pointed at another replica."""
    path = server.workdir / f"{name}.share"
    path.write_text(json.dumps({**profile, "endpoint": server.endpoint}))
    return str(path)


def _create_via_admin(server: RunningServer, admin: str, name: str, shares: list[str]) -> dict:
    response = httpx.post(
        f"{server.base_url}/admin/recipients",
        headers={"Authorization": f"Bearer {admin}"},
        json={"name": name, "shares": shares},
    )
    assert response.status_code == 201, response.text
    return response.json()["profile"]


def test_replicas_started_together_share_one_catalog(replicas: list[RunningServer]) -> None:
    a, b = replicas
    for server in replicas:
        assert httpx.get(server.base_url + "/readyz").status_code == 200
        assert "tokenSigningKey" not in server.log()
    assert sum("database schema upgraded" in server.log() for server in replicas) == 1
    assert [s.name for s in delta_sharing.SharingClient(a.profile()).list_shares()] == ["share1", "share2"]
    assert [s.name for s in delta_sharing.SharingClient(b.profile()).list_shares()] == ["share1", "share2"]


def test_recipient_created_on_one_replica_reads_from_both(replicas: list[RunningServer], admin: str) -> None:
    a, b = replicas
    profile = _create_via_admin(a, admin, "alice", ["share1"])
    for server in (a, b):
        path = _profile_for(server, profile, f"alice-{server.base_url[-5:]}")
        client = delta_sharing.SharingClient(path)
        assert [s.name for s in client.list_shares()] == ["share1"]
        assert len(delta_sharing.load_as_pandas(f"{path}#share1.default.plain")) == 12


def test_cli_grant_and_revoke_are_honoured_by_both_at_once(replicas: list[RunningServer]) -> None:
    a, b = replicas
    profile_path = a.workdir / "bob.share"
    lakegate(_config(b), "recipients", "create", "bob", "--profile-out", str(profile_path))
    token = profile_token(profile_path)
    url = "/shares/share2/schemas/default/tables/plain/version"
    assert [status(s.endpoint + url, token) for s in replicas] == [404, 404]
    lakegate(_config(a), "recipients", "grant", "bob", "share2")
    assert [status(s.endpoint + url, token) for s in replicas] == [200, 200]
    lakegate(_config(b), "recipients", "revoke", "bob")
    assert [status(s.endpoint + url, token) for s in replicas] == [401, 401]


def test_rotation_with_grace_across_replicas(replicas: list[RunningServer], admin: str) -> None:
    a, b = replicas
    old = _create_via_admin(a, admin, "carol", ["share1"])["bearerToken"]
    rotated = httpx.post(
        f"{b.base_url}/admin/recipients/carol/rotate",
        headers={"Authorization": f"Bearer {admin}"},
        json={"graceSeconds": 2},
    ).json()
    new = rotated["profile"]["bearerToken"]
    assert [status(s.endpoint + "/shares", t) for s in replicas for t in (old, new)] == [200] * 4
    time.sleep(2.3)
    assert [status(s.endpoint + "/shares", t) for s in replicas for t in (old, new)] == [401, 200, 401, 200]


def test_page_tokens_and_file_urls_from_one_replica_work_on_the_other(replicas: list[RunningServer]) -> None:
    a, b = replicas
    listing = httpx.get(f"{a.endpoint}/shares?maxResults=1", headers=a.headers()).json()
    assert [s["name"] for s in listing["items"]] == ["share1"]
    rest = httpx.get(
        f"{b.endpoint}/shares?maxResults=1&pageToken={listing['nextPageToken']}", headers=b.headers()
    ).json()
    assert [s["name"] for s in rest["items"]] == ["share2"]

    query = "/shares/share1/schemas/default/tables/plain/query"
    first = httpx.post(a.endpoint + query, headers=a.headers(), json={"maxFiles": 2}).text.splitlines()
    end = json.loads(first[-1])["endStreamAction"]
    second = httpx.post(
        b.endpoint + query, headers=b.headers(), json={"maxFiles": 2, "pageToken": end["nextPageToken"]}
    )
    assert second.status_code == 200
    files = [json.loads(line)["file"] for line in first + second.text.splitlines() if '"file"' in line]
    assert len({f["id"] for f in files}) == 4
    # A file URL signed by replica A, fetched from replica B.
    url = files[0]["url"].replace(a.base_url, b.base_url)
    assert httpx.get(url).status_code == 200


ASYNC = {"delta-sharing-capabilities": "asyncquery=true"}
PLAIN = "/shares/share1/schemas/default/tables/plain"


def _lines(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def _poll(server: RunningServer, query_id: str, body: dict, token: str | None = None) -> list[dict]:
    """Get Query Info on `server` until the query is done; its answer's lines."""
    deadline = time.monotonic() + 60
    while True:
        lines = _lines(
            httpx.post(
                f"{server.endpoint}{PLAIN}/queries/{query_id}",
                headers=server.headers(token, **ASYNC),
                json=body,
            )
        )
        if "queryStatus" not in lines[0]:
            return lines
        assert lines[0]["queryStatus"]["status"] == "pending", lines
        assert time.monotonic() < deadline, "the async query never finished"
        time.sleep(0.2)


def test_async_query_started_on_one_replica_is_answered_by_the_other(
    replicas: list[RunningServer], admin: str
) -> None:
    a, b = replicas
    body = {"idempotencyKey": "replicas-async-1", "maxFiles": 3}
    started = _lines(httpx.post(a.endpoint + PLAIN + "/query", headers=a.headers(**ASYNC), json=body))
    query_id = started[0]["queryStatus"]["queryId"]
    assert len(query_id) >= 32  # random, unguessable
    # A retried submission reaching the other replica finds the same query.
    again = _lines(httpx.post(b.endpoint + PLAIN + "/query", headers=b.headers(**ASYNC), json=body))
    assert again[0]["queryStatus"]["queryId"] == query_id
    # Polled on B, which did not run it; the next page is fetched from A with B's page token.
    first = _poll(b, query_id, {})
    token = first[-1]["endStreamAction"]["nextPageToken"]
    rest = _poll(a, query_id, {"pageToken": token})
    assert rest[-1]["endStreamAction"].get("nextPageToken") is None
    ids = [line["file"]["id"] for line in first + rest if "file" in line]
    synchronous = _lines(httpx.post(a.endpoint + PLAIN + "/query", headers=a.headers(), json={}))
    assert sorted(ids) == sorted(line["file"]["id"] for line in synchronous if "file" in line)
    assert len(ids) == 4
    # Bound to its recipient and its table, on both replicas.
    other = _create_via_admin(a, admin, "frank", ["share1", "share2"])["bearerToken"]
    for server in (a, b):
        for token_, table in ((other, PLAIN), (None, PLAIN.replace("share1", "share2"))):
            response = httpx.post(
                f"{server.endpoint}{table}/queries/{query_id}", headers=server.headers(token_), json={}
            )
            assert response.status_code == 404, response.text


def test_audit_gathers_both_replicas(replicas: list[RunningServer], admin: str) -> None:
    profile = _create_via_admin(replicas[1], admin, "dave", ["share1"])
    for server in replicas:
        path = _profile_for(server, profile, f"dave-{server.base_url[-5:]}")
        delta_sharing.load_as_pandas(f"{path}#share1.default.plain")
    events = lakegate_json(_config(replicas[0]), "audit", "--recipient", "dave")
    assert [e["operation"] for e in events].count("query") == 2
    assert len({e["replica"] for e in events}) == 2


def test_no_token_in_clear_in_the_database_or_on_disk(
    replicas: list[RunningServer], admin: str, database: str
) -> None:
    tokens = [admin, replicas[0].token or ""]
    tokens.append(_create_via_admin(replicas[0], admin, "erin", ["share1"])["bearerToken"])
    for server in replicas:
        tokens += [profile_token(p) for p in server.workdir.glob("*.share")]
    tokens = sorted({t for t in tokens if t})
    url = database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        dump = "\n".join(str(row) for name in names for row in conn.execute(f'SELECT * FROM "{name}"'))
    assert [t[:6] for t in tokens if t in dump] == []
    for server in replicas:
        # The YAML holds the bootstrap token by design; nothing else may.
        assert files_containing(server.workdir, tokens, skip_suffixes=(".share", ".yaml")) == []


def test_names_postgresql_cannot_hold_are_not_found(replicas: list[RunningServer], admin: str) -> None:
    a = replicas[0]
    table = "/shares/share1/schemas/default/tables/plain"
    for path in (
        "/shares/sh%00are1",
        "/shares/share1/schemas/de%00fault/tables",
        table.replace("plain", "pl%00ain") + "/metadata",
        "/shares/share1/schemas/%00/tables/plain/query",
    ):
        response = httpx.request(
            "POST" if path.endswith("query") else "GET", a.endpoint + path, json={}, headers=a.headers()
        )
        assert (response.status_code, response.json()["errorCode"]) == (404, "RESOURCE_DOES_NOT_EXIST"), path
    response = httpx.get(f"{a.base_url}/admin/recipients/x%00y", headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 404
    events = lakegate_json(_config(a), "audit", "--limit", "2")
    assert [e["outcome"] for e in events] == ["RESOURCE_DOES_NOT_EXIST"] * 2
