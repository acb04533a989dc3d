"""Small answers from memory are given on the event loop, with no hop to the thread pool (lakegate.inline); what
needs a database query, a log read or a build still hops, and a new commit is seen by the next request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from deltalake import write_deltalake

from tests.inprocess import AppClient, ndjson, start_app
from tests.tables import build_plain, rows

TABLE = "/shares/s/schemas/d/tables/t"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AppClient, str, list[str]]]:
    location = build_plain(tmp_path / "t")
    config = {
        "catalogCacheSeconds": 60,  # nothing forgotten while the test runs
        "shares": [
            {"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": location}]}]}
        ],
    }
    app = start_app(tmp_path, config)
    hops: list[str] = []
    hop = anyio.to_thread.run_sync  # what every hop to Starlette's thread pool runs

    async def counted(work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(repr(work))
        return await hop(work, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    yield app, location, hops
    app.close()


def _files(app: AppClient) -> int:
    return sum("file" in line for line in ndjson(app.post(TABLE + "/query", json={})))


def test_answers_from_memory_stay_on_the_event_loop(served) -> None:
    app, _, hops = served
    requests: list[Callable[[], Any]] = [
        lambda: app.get("/shares"),
        lambda: app.get(TABLE + "/version"),
        lambda: app.get(TABLE + "/metadata"),
        lambda: app.post(TABLE + "/query", json={}),
    ]
    for request in requests:  # the first time: the database, the log, the file parts
        assert request().status_code == 200
    assert hops
    hops.clear()
    for request in requests:
        assert request().status_code == 200
    assert hops == []


def test_a_new_commit_is_read_in_a_thread_and_seen_at_once(served) -> None:
    app, location, hops = served
    assert app.get(TABLE + "/version").headers["delta-table-version"] == "0"
    assert _files(app) == 1
    hops.clear()
    write_deltalake(location, rows([100, 101]), mode="append")
    assert app.get(TABLE + "/version").headers["delta-table-version"] == "1"
    assert hops  # the new commit was read off the event loop
    assert _files(app) == 2


def test_errors_answered_on_the_event_loop_keep_their_shape(served) -> None:
    app, _, hops = served
    assert app.get(TABLE + "/version").status_code == 200
    hops.clear()
    for response in (
        app.get("/shares/s/schemas/d/tables/nope/version"),
        app.get(TABLE + "/metadata?version=x"),
        app.post(TABLE + "/query", json={"limitHint": "many"}),
    ):
        assert 400 <= response.status_code < 500
        assert set(response.json()) == {"errorCode", "message"}
    assert app.get(TABLE + "/version", token="wrong").status_code == 401
