"""Paged, refreshable and async queries, and the EndStreamAction rules (protocol.md §2.8–2.10, §4.3)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakegate.catalog import migrate
from lakegate.catalog.base import Catalog, Credential, Principal, TableInfo
from lakegate.catalog.db import Database
from lakegate.cloud.base import ObjectStore
from lakegate.cloud.local import LocalStore
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import parse_config
from lakegate.delta.cache import SnapshotCache
from lakegate.exceptions import StorageError
from lakegate.keys import KeyRing
from lakegate.protocol.capabilities import Capabilities
from lakegate.protocol.requests import QueryRequest
from lakegate.service.async_queries import AsyncQueries
from lakegate.service.context import TableContext
from lakegate.service.history import HistoryService
from lakegate.service.tables import TableService
from tests.e2e.history_fixtures import Raw, error_of, file_actions, history_shares, log_path, ndjson
from tests.e2e.server import start_server
from tests.tables import rows

END_STREAM = {"delta-sharing-capabilities": "includeendstreamaction=true"}
MISMATCH = "Query parameter mismatch detected for the next page query."


def _key(kind: str, f: dict) -> tuple:
    """A file line's identity, without its (per-response) URL."""
    return kind, f["id"], f.get("version"), log_path(f.get("url") or f.get("path") or "")


def _pages(fetch, max_files: int) -> tuple[list[list[dict]], list[str]]:
    """All pages of a query: `fetch(extra_params)` gives one response; returns each page's lines and headers."""
    pages, versions, token = [], [], None
    while True:
        response = fetch({"maxFiles": max_files, **({"pageToken": token} if token else {})})
        lines = ndjson(response)
        versions.append(response.headers["delta-table-version"])
        # maxFiles brings an EndStreamAction; the header confirms only what the client's capabilities asked
        assert "includeendstreamaction" not in response.headers["delta-sharing-capabilities"]
        end = lines[-1]["endStreamAction"]
        pages.append(lines[:-1])
        token = end.get("nextPageToken")
        if not token:
            return pages, versions
        assert len(file_actions(lines)) == max_files
        assert len(pages) < 100


def _union(pages: list[list[dict]]) -> list[tuple]:
    return [_key(kind, f) for page in pages for kind, f in file_actions(page)]


# -- snapshot pages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_files", [1, 5, 12, 50])
def test_snapshot_pages_cover_every_file_once(raw: Raw, max_files: int) -> None:
    everything = sorted(_key(k, f) for k, f in file_actions(ndjson(raw.query("pages"))))
    pages, versions = _pages(lambda extra: raw.query("pages", extra), max_files)
    assert sorted(_union(pages)) == everything and len(set(_union(pages))) == len(everything)
    assert set(versions) == {"5"}
    assert all(list(page[0]) == ["protocol"] and list(page[1]) == ["metaData"] for page in pages)


def test_time_travel_pages(raw: Raw) -> None:
    pages, versions = _pages(lambda extra: raw.query("pages", {"version": 1, **extra}), 4)
    assert set(versions) == {"1"} and len(_union(pages)) == 4
    assert all(f["version"] == 1 for page in pages for _, f in file_actions(page))


def test_pages_stay_on_their_version_while_the_table_moves(raw: Raw, history_tables: dict[str, str]) -> None:
    root = history_tables["moving"]
    version = DeltaTable(root).version()
    expected = sorted(pa.table(DeltaTable(root).get_add_actions()).column("path").to_pylist())
    first = raw.query("moving", {"maxFiles": 2})
    token = ndjson(first)[-1]["endStreamAction"]["nextPageToken"]
    seen = [log_path(f["url"]) for _, f in file_actions(ndjson(first))]
    write_deltalake(root, rows([100, 101]), mode="append")  # the table moves on between pages
    DeltaTable(root).delete("id = 1")
    while token:
        response = raw.query("moving", {"maxFiles": 2, "pageToken": token})
        assert response.headers["delta-table-version"] == str(version)
        lines = ndjson(response)
        seen += [log_path(f["url"]) for _, f in file_actions(lines)]
        token = lines[-1]["endStreamAction"].get("nextPageToken")
    assert sorted(seen) == expected
    assert ndjson(raw.query("moving", {"maxFiles": 100}))[1]["metaData"] is not None
    assert raw.query("moving").headers["delta-table-version"] == str(version + 2)


# -- streaming and change data feed pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_files", [1, 2, 3])
@pytest.mark.parametrize(
    "headers", [{}, {"delta-sharing-capabilities": "responseformat=delta"}], ids=["parquet", "delta"]
)
def test_streaming_pages_cover_every_change_once(raw: Raw, max_files: int, headers: dict) -> None:
    body = {"startingVersion": 1, "endingVersion": 7}
    whole = ndjson(raw.query("cdf", body, **headers))
    pages, versions = _pages(lambda extra: raw.query("cdf", {**body, **extra}, **headers), max_files)
    assert sorted(_union(pages)) == sorted(_key(k, f) for k, f in file_actions(whole))
    assert set(versions) == {"1"}


@pytest.mark.parametrize("max_files", [1, 4])
def test_changes_pages_cover_every_change_once(raw: Raw, max_files: int) -> None:
    params = {"startingVersion": 0, "includeHistoricalMetadata": "true"}
    whole = ndjson(raw.changes("schema", params))
    pages, versions = _pages(lambda extra: raw.changes("schema", {**params, **extra}), max_files)
    assert sorted(_union(pages)) == sorted(_key(k, f) for k, f in file_actions(whole))
    assert set(versions) == {"0"}
    # the historical metadata of v2 is sent exactly once, on the page holding v2's first file
    historical = [line for page in pages for line in page[2:] if "metaData" in line]
    assert [m["metaData"]["version"] for m in historical] == [2]


def test_changes_pages_keep_their_range_while_the_table_moves(
    raw: Raw, history_tables: dict[str, str]
) -> None:
    root = history_tables["moving"]
    start = DeltaTable(root).version()
    write_deltalake(root, rows([202]), mode="append")
    write_deltalake(root, rows([203]), mode="append")
    first = ndjson(raw.changes("moving", {"startingVersion": start, "maxFiles": 1}))
    end = start + 2
    token = first[-1]["endStreamAction"]["nextPageToken"]
    versions = [f["version"] for _, f in file_actions(first)]
    write_deltalake(root, rows([205]), mode="append")
    while token:
        lines = ndjson(raw.changes("moving", {"startingVersion": start, "maxFiles": 1, "pageToken": token}))
        versions += [f["version"] for _, f in file_actions(lines)]
        token = lines[-1]["endStreamAction"].get("nextPageToken")
    assert max(versions) == end  # the commit made after the first page is not part of this query


# -- page token checks ----------------------------------------------------------------------------------------------


def _first_token(response) -> str:
    return ndjson(response)[-1]["endStreamAction"]["nextPageToken"]


def test_page_tokens_are_tamper_evident_and_bound(raw: Raw) -> None:
    token = _first_token(raw.query("pages", {"maxFiles": 2}))
    body, _, signature = token.partition(".")
    payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["i"] = 0
    forged = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode() + "." + signature
    assert (
        error_of(raw.query("pages", {"maxFiles": 2, "pageToken": forged})) == "Error decoding the page token."
    )
    assert "does not match the table" in error_of(raw.query("cdf", {"maxFiles": 2, "pageToken": token}))
    assert MISMATCH in error_of(raw.query("pages", {"maxFiles": 2, "pageToken": token, "limitHint": 3}))
    assert MISMATCH in error_of(raw.query("pages", {"maxFiles": 2, "pageToken": token, "version": 3}))
    assert MISMATCH in error_of(
        raw.query(
            "pages",
            {"maxFiles": 2, "pageToken": token},
            **{"delta-sharing-capabilities": "responseformat=delta"},
        )
    )
    # a different page size is allowed
    assert raw.query("pages", {"maxFiles": 5, "pageToken": token}).status_code == 200


def test_page_tokens_do_not_cross_modes(raw: Raw) -> None:
    stream = _first_token(raw.query("pages", {"startingVersion": 0, "maxFiles": 1}))
    changes = _first_token(raw.changes("pages", {"startingVersion": 0, "maxFiles": 1}))
    snapshot = _first_token(raw.query("pages", {"maxFiles": 1}))
    assert MISMATCH in error_of(raw.query("pages", {"maxFiles": 1, "pageToken": stream}))
    assert MISMATCH in error_of(
        raw.query("pages", {"startingVersion": 0, "maxFiles": 1, "pageToken": snapshot})
    )
    assert MISMATCH in error_of(
        raw.query("pages", {"startingVersion": 1, "maxFiles": 1, "pageToken": stream})
    )
    assert (
        error_of(raw.query("pages", {"maxFiles": 1, "pageToken": changes}))
        == "Error decoding the page token."
    )
    assert (
        error_of(raw.changes("pages", {"startingVersion": 0, "maxFiles": 1, "pageToken": stream}))
        == "Error decoding the page token."
    )
    assert MISMATCH in error_of(
        raw.changes("pages", {"startingVersion": 1, "maxFiles": 1, "pageToken": changes})
    )


# -- EndStreamAction rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda raw, h: raw.query("cdf", {}, **h),
        lambda raw, h: raw.query("cdf", {"version": 2}, **h),
        lambda raw, h: raw.query("cdf", {"startingVersion": 2}, **h),
        lambda raw, h: raw.changes("cdf", {"startingVersion": 2}, **h),
    ],
    ids=["snapshot", "version", "streaming", "changes"],
)
def test_end_stream_action_only_when_asked(raw: Raw, call) -> None:
    for headers in ({}, {"delta-sharing-capabilities": "includeendstreamaction=false"}):
        response = call(raw, headers)
        assert not any("endStreamAction" in line for line in ndjson(response))
        assert "includeendstreamaction" not in response.headers["delta-sharing-capabilities"]
    asked = call(raw, {"delta-sharing-capabilities": "responseformat=parquet;IncludeEndStreamAction=TRUE"})
    assert asked.headers["delta-sharing-capabilities"] == "responseformat=parquet;includeendstreamaction=true"
    lines = ndjson(asked)
    end = lines[-1]["endStreamAction"]
    expirations = {f["expirationTimestamp"] for _, f in file_actions(lines)}
    assert end == {"minUrlExpirationTimestamp": min(expirations)}
    assert sum("endStreamAction" in line for line in lines) == 1


def test_end_stream_action_without_files(raw: Raw) -> None:
    # v4 is an OPTIMIZE: no data change, so no file, and no URL expiry to report
    lines = ndjson(raw.query("cdf", {"startingVersion": 4, "endingVersion": 4}, **END_STREAM))
    assert lines[2:] == [{"endStreamAction": {}}]


# -- refresh tokens -------------------------------------------------------------------------------------------------


def test_refresh_token_gives_the_same_files_with_fresh_urls(raw: Raw, history_tables: dict[str, str]) -> None:
    first = raw.query("moving", {"includeRefreshToken": True})
    lines = ndjson(first)
    end = lines[-1]["endStreamAction"]
    assert set(end) == {"refreshToken", "minUrlExpirationTimestamp"}
    write_deltalake(history_tables["moving"], rows([301]), mode="append")
    time.sleep(1.1)  # URLs are signed with a whole-second expiry
    again = raw.query("moving", {"refreshToken": end["refreshToken"]})
    assert again.headers["delta-table-version"] == first.headers["delta-table-version"]
    old = {f["id"]: f["url"] for _, f in file_actions(lines)}
    new = {f["id"]: f["url"] for _, f in file_actions(ndjson(again))}
    assert set(old) == set(new) and all(old[i] != new[i] for i in old)
    assert raw.query("moving").headers["delta-table-version"] != first.headers["delta-table-version"]


def test_refresh_token_errors(raw: Raw) -> None:
    token = ndjson(raw.query("moving", {"includeRefreshToken": True}))[-1]["endStreamAction"]["refreshToken"]
    page = _first_token(raw.query("pages", {"maxFiles": 1}))
    assert "does not match the table" in error_of(raw.query("pages", {"refreshToken": token}))
    assert error_of(raw.query("moving", {"refreshToken": token[:-2]})) == "Error decoding refresh token."
    assert "cannot be used when querying a specific version" in error_of(
        raw.query("moving", {"refreshToken": token, "version": 1})
    )
    assert "must be used in the first page request" in error_of(
        raw.query("pages", {"includeRefreshToken": True, "maxFiles": 1, "pageToken": page})
    )
    # a refresh token is no page token, and the reverse
    assert (
        error_of(raw.query("moving", {"pageToken": token, "maxFiles": 1})) == "Error decoding the page token."
    )
    # refreshed and paged: later pages follow with page tokens
    pages, versions = _pages(
        lambda extra: raw.query(
            "moving", {**extra, **({} if "pageToken" in extra else {"refreshToken": token})}
        ),
        1,
    )
    assert len(set(versions)) == 1 and len(_union(pages)) == len(set(_union(pages)))


# -- expiry, async queries (servers with their own settings) ---------------------------------------------------------


@pytest.fixture(scope="module")
def tuned_server(tmp_path_factory: pytest.TempPathFactory, history_tables: dict[str, str]) -> Iterator[Raw]:
    """Page and refresh tokens that expire at once; async from 2 files (or versions) on."""
    server = start_server(
        tmp_path_factory.mktemp("tuned"),
        {
            "shares": history_shares(history_tables),
            "queryTablePageTokenTtlMs": 1,
            "refreshTokenTtlMs": 1,
            "asyncQueryMinFiles": 2,
        },
    )
    client = Raw(server)
    yield client
    client.http.close()
    server.stop()


def test_expired_tokens(tuned_server: Raw) -> None:
    page = _first_token(tuned_server.query("pages", {"maxFiles": 1}))
    refresh = ndjson(tuned_server.query("pages", {"includeRefreshToken": True}))[-1]["endStreamAction"][
        "refreshToken"
    ]
    changes = _first_token(tuned_server.changes("pages", {"startingVersion": 0, "maxFiles": 1}))
    time.sleep(0.01)
    expired = "has expired. Please restart the query."
    assert expired in error_of(tuned_server.query("pages", {"maxFiles": 1, "pageToken": page}))
    assert expired in error_of(tuned_server.query("pages", {"refreshToken": refresh}))
    assert expired in error_of(
        tuned_server.changes("pages", {"startingVersion": 0, "maxFiles": 1, "pageToken": changes})
    )


ASYNC = {"delta-sharing-capabilities": "asyncquery=true;includeendstreamaction=true"}


def _submit(raw: Raw, table: str, body: dict, headers: dict = ASYNC) -> dict:
    response = raw.query(table, body, **headers)
    lines = ndjson(response)
    assert "asyncquery=true" in response.headers["delta-sharing-capabilities"]
    assert len(lines) == 1 and lines[0]["queryStatus"]["status"] == "pending"
    return lines[0]["queryStatus"]


def _poll(raw: Raw, table: str, query_id: str, body: dict | None = None, headers: dict = ASYNC) -> list[dict]:
    for _ in range(200):
        response = raw.http.post(raw.table(table) + f"/queries/{query_id}", json=body or {}, headers=headers)
        lines = ndjson(response)
        if "queryStatus" not in lines[0]:
            assert response.headers["delta-table-version"]
            return lines
        assert lines[0]["queryStatus"]["queryId"] == query_id
        time.sleep(0.02)
    raise AssertionError("the async query never finished")


def test_async_snapshot_query_in_pages(tuned_server: Raw, raw: Raw) -> None:
    everything = sorted(_key(k, f) for k, f in file_actions(ndjson(raw.query("pages"))))
    status = _submit(tuned_server, "pages", {"idempotencyKey": "k-pages"})
    seen, token = [], None
    while True:
        lines = _poll(
            tuned_server,
            "pages",
            status["queryId"],
            {"maxFiles": 5, **({"pageToken": token} if token else {})},
        )
        assert list(lines[0]) == ["protocol"] and list(lines[1]) == ["metaData"]
        seen += [_key(k, f) for k, f in file_actions(lines)]
        token = lines[-1]["endStreamAction"].get("nextPageToken")
        if not token:
            break
    assert sorted(seen) == everything
    # a retried submission (same key, same query) finds the same query; the snake_case key name works too
    assert _submit(tuned_server, "pages", {"idempotency_key": "k-pages"})["queryId"] == status["queryId"]


def test_async_streaming_query(tuned_server: Raw, raw: Raw) -> None:
    body = {"startingVersion": 1, "endingVersion": 6}
    expected = sorted(_key(k, f) for k, f in file_actions(ndjson(raw.query("cdf", body))))
    status = _submit(
        tuned_server,
        "cdf",
        {**body, "idempotencyKey": "k-stream"},
        headers={"delta-sharing-capabilities": "asyncquery=true"},
    )
    lines = _poll(tuned_server, "cdf", status["queryId"], headers={})
    assert not any("endStreamAction" in line for line in lines)  # nobody asked for one
    assert sorted(_key(k, f) for k, f in file_actions(lines)) == expected


def test_async_query_errors(tuned_server: Raw, raw: Raw) -> None:
    assert (
        error_of(tuned_server.query("pages", {}, **ASYNC)) == "idempotency_key is required for async query."
    )
    status = _submit(tuned_server, "pages", {"idempotencyKey": "k-reused"})
    assert "already used for a different query" in error_of(
        tuned_server.query("pages", {"idempotencyKey": "k-reused", "limitHint": 1}, **ASYNC)
    )
    unknown = tuned_server.http.post(tuned_server.table("pages") + "/queries/nope", json={})
    assert error_of(unknown, 404, "RESOURCE_DOES_NOT_EXIST")
    other_table = tuned_server.http.post(tuned_server.table("cdf") + f"/queries/{status['queryId']}", json={})
    assert error_of(other_table, 404, "RESOURCE_DOES_NOT_EXIST")
    # small queries are answered at once (the main server's threshold is the default)
    sync = raw.query("pages", {"idempotencyKey": "k-small"}, **ASYNC)
    assert "asyncquery" not in sync.headers["delta-sharing-capabilities"]
    assert len(file_actions(ndjson(sync))) == 12


def test_async_failure_is_reported_in_status(tuned_server: Raw, raw: Raw) -> None:
    # gap: commit 1 was cleaned up (a checkpoint at 2 keeps the table readable); reading the changes since 0
    # fails. Answered at once, that is a 400 before streaming; asynchronously, the failure is the query's status.
    assert "commit file is missing" in error_of(
        raw.query("gap", {"startingVersion": 0}), code="MALFORMED_REQUEST"
    )
    status = _submit(tuned_server, "gap", {"startingVersion": 0, "idempotencyKey": "k-gap"})
    lines: list[dict[str, Any]] = []
    for _ in range(200):
        lines = ndjson(
            tuned_server.http.post(tuned_server.table("gap") + f"/queries/{status['queryId']}", json={})
        )
        if lines[0]["queryStatus"]["status"] != "pending":
            break
        time.sleep(0.02)
    assert lines == [
        {
            "queryStatus": {
                "queryId": status["queryId"],
                "status": "failed",
                "errorMessage": lines[0]["queryStatus"]["errorMessage"],
            }
        }
    ]
    assert "commit file is missing" in lines[0]["queryStatus"]["errorMessage"]
    # a failed query can be submitted again under the same key (it starts over)
    assert (
        _submit(tuned_server, "gap", {"startingVersion": 0, "idempotencyKey": "k-gap"})["queryId"]
        != status["queryId"]
    )


# -- an error after streaming began (in process: a signer that fails mid-response) ------------------------------------


class _OneTable(Catalog):
    def __init__(self, location: str) -> None:
        self.info = TableInfo("t", "s", "share", location, history_shared=True)

    def authenticate(self, credential: Credential) -> Principal:
        return Principal("tester")

    def list_shares(self, principal: Principal) -> list:
        return []

    def get_share(self, principal: Principal, share: str):
        raise NotImplementedError

    def list_schemas(self, principal: Principal, share: str) -> list:
        return []

    def list_tables(self, principal: Principal, share: str, schema: str | None) -> list:
        return [self.info]

    def get_table(self, principal: Principal | None, share: str, schema: str, table: str) -> TableInfo:
        return self.info


@pytest.fixture
def failing_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    """URLs of two local files sign, then signing fails (as a cloud signer may mid-response). Batches of URLs
    sign file by file through the same signer (ObjectStore's generic batch signing)."""
    original = LocalStore.url_signer

    def url_signer(self, request):
        sign = original(self, request)
        signed: set[object] = set()

        def flaky(location):
            if location not in signed and len(signed) >= 2:
                raise StorageError("signing failed")
            signed.add(location)
            return sign(location)

        return flaky

    monkeypatch.setattr(LocalStore, "url_signer", url_signer)
    monkeypatch.setattr(LocalStore, "relative_signer", ObjectStore.relative_signer)
    monkeypatch.setattr(LocalStore, "relative_batch_signer", ObjectStore.relative_batch_signer)


def _services(location: str) -> tuple[TableService, HistoryService]:
    config = parse_config({"version": 1})
    keys = KeyRing.random()
    stores = StoreRegistry(config, keys)
    context = TableContext(config, _OneTable(location), SnapshotCache(stores), stores, keys)
    db = Database("sqlite://")
    migrate.upgrade(db)
    async_queries = AsyncQueries(context, db)
    return TableService(context, async_queries), HistoryService(context, async_queries)


@pytest.mark.usefixtures("failing_signer")
@pytest.mark.parametrize("mode", ["snapshot", "streaming", "changes"])
def test_error_after_streaming_began(history_tables: dict[str, str], mode: str) -> None:
    tables, history = _services(history_tables["pages"])
    principal = Principal("tester")

    def answer(caps: str):
        if mode == "changes":
            return history.changes(
                principal,
                "share",
                "s",
                "t",
                {"startingVersion": "0"},
                Capabilities.parse(caps),
                None,
                "http://server",
            )
        body = QueryRequest(starting_version=0 if mode == "streaming" else None)
        query = tables.query if mode == "snapshot" else history.stream_query
        return query(principal, "share", "s", "t", body, Capabilities.parse(caps), None, "http://server")

    lines = [orjson.loads(line) for line in answer("includeendstreamaction=true").lines]
    assert len(file_actions(lines)) == 2
    assert lines[-1] == {
        "endStreamAction": {
            "errorMessage": "The provider's storage could not be read; the server log has the details.",
            "httpStatusErrorCode": 500,
        }
    }
    # Without an EndStreamAction to carry it, the error breaks the stream (the client sees a truncated body).
    with pytest.raises(StorageError):
        list(answer("").lines)
