"""Async queries (protocol.md §2.8 `asyncquery`, §2.10 Get Query Info) in process: the answer names a query,
polling it gives deltalake's file list, in pages when asked."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.inprocess import AppClient, deltalake_adds, error_of, ndjson, walk_pages

PAGED = "/shares/share1/schemas/default/tables/paged"
ASYNC = {"delta-sharing-capabilities": "asyncquery=true"}


def _submit(app: AppClient, key: str) -> str:
    response = app.post(f"{PAGED}/query", json={"idempotencyKey": key}, headers=ASYNC)
    assert "asyncquery=true" in response.headers["delta-sharing-capabilities"]
    ((kind, status),) = ndjson(response)[0].items()
    assert kind == "queryStatus" and status["status"] == "pending" and len(ndjson(response)) == 1
    return str(status["queryId"])


def _poll(app: AppClient, query_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    for _ in range(200):
        lines = ndjson(app.post(f"{PAGED}/queries/{query_id}", json=body))
        if not (len(lines) == 1 and "queryStatus" in lines[0]):
            return lines
        assert lines[0]["queryStatus"]["status"] == "pending", lines
        time.sleep(0.02)
    raise AssertionError("the async query did not finish")


def test_async_query_pages_cover_the_snapshot(app: AppClient, app_tables: dict[str, str]) -> None:
    key = str(uuid.uuid4())
    query_id = _submit(app, key)
    assert _submit(app, key) == query_id  # a retried submission finds the same query
    seen = walk_pages(lambda body: _poll(app, query_id, body), 2)
    assert sorted(seen) == sorted(deltalake_adds(app_tables["paged"]))


def test_async_query_needs_a_key_and_a_known_id(app: AppClient) -> None:
    message = error_of(app.post(f"{PAGED}/query", json={}, headers=ASYNC), 400, "INVALID_PARAMETER_VALUE")
    assert "idempotency_key is required" in message
    error_of(app.post(f"{PAGED}/queries/no-such-query", json={}), 404, "RESOURCE_DOES_NOT_EXIST")
    query_id = _submit(app, str(uuid.uuid4()))
    other = "/shares/share1/schemas/default/tables/plain"
    error_of(app.post(f"{other}/queries/{query_id}", json={}), 404, "RESOURCE_DOES_NOT_EXIST")
