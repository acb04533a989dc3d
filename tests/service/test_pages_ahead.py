"""Pages rendered ahead: while a client reads a page, the next one is rendered in the server's own thread
(`lakegate.service.paging.PagesAhead`). What the client gets must be what it would have got otherwise (the same
files in the same pages, the token checks of the request), and a page made ahead is handed out only while its URLs
keep nearly all of their lifetime (at most a tenth of `preSignedUrlTimeoutSeconds`, and 5 s, after signing)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from lakegate.inline import must_not_block
from lakegate.service.paging import Ahead, PagesAhead
from tests.inprocess import AppClient, file_lines, ndjson, served_path, start_app
from tests.tables import build_plain

QUERY = "/shares/s/schemas/d/tables/t/query"
CAPS = {"delta-sharing-capabilities": "responseformat=parquet;includeendstreamaction=true"}


def _app(tmp_path: Path, timeout_s: int, **config: Any) -> AppClient:
    root = build_plain(tmp_path / "t", batches=6)
    tables = [{"name": "t", "location": root}]
    return start_app(
        tmp_path / "server",
        {
            "preSignedUrlTimeoutSeconds": timeout_s,
            "shares": [{"name": "s", "schemas": [{"name": "d", "tables": tables}]}],
            **config,
        },
    )


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppClient]:
    client = _app(tmp_path, 100)  # pages made ahead are handed out up to 5 s after signing
    yield client
    client.close()


def _page(app: AppClient, body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = ndjson(app.post(QUERY, json=body, headers=CAPS))
    return file_lines(lines), lines[-1]["endStreamAction"]


def _expiry_s(files: list[dict[str, Any]]) -> int:
    (expiry,) = {f["expirationTimestamp"] for f in files}
    return int(expiry) // 1000


def test_a_walk_is_the_whole_answer_page_by_page(app: AppClient) -> None:
    whole = sorted(served_path(f["url"]) for f in file_lines(ndjson(app.post(QUERY, json={}, headers=CAPS))))
    assert len(whole) == 6
    for size in (1, 2, 4):
        seen: list[str] = []
        body: dict[str, Any] = {"maxFiles": size}
        while True:
            files, end = _page(app, body)
            assert 0 < len(files) <= size
            seen += [served_path(f["url"]) for f in files]
            if "nextPageToken" not in end:
                break
            body = {"maxFiles": size, "pageToken": end["nextPageToken"]}
        assert seen == whole  # each file once, in the order of the unpaged answer


def test_the_next_page_is_signed_before_it_is_asked_for(app: AppClient) -> None:
    files, end = _page(app, {"maxFiles": 2})
    first = _expiry_s(files)
    time.sleep(1.2)  # a second later: a page rendered now would expire a second later too
    asked = int(time.time())
    files, _ = _page(app, {"maxFiles": 2, "pageToken": end["nextPageToken"]})
    assert _expiry_s(files) < asked + 100  # signed before it was asked for
    assert _expiry_s(files) - first <= 1  # right after the page before it
    assert _expiry_s(files) >= asked + 100 - 5  # within the 5 s a page made ahead may wait


def test_a_page_made_ahead_is_not_handed_out_past_its_time(tmp_path: Path) -> None:
    app = _app(tmp_path, 10)  # a tenth of the URLs' lifetime: 1 s
    try:
        _, end = _page(app, {"maxFiles": 2})
        time.sleep(1.6)
        asked = int(time.time())
        files, _ = _page(app, {"maxFiles": 2, "pageToken": end["nextPageToken"]})
        assert _expiry_s(files) >= asked + 10  # signed when asked for, with the URLs' whole lifetime
    finally:
        app.close()


def test_a_page_made_ahead_is_only_for_the_same_query_and_token(app: AppClient) -> None:
    _, end = _page(app, {"maxFiles": 2})
    token = end["nextPageToken"]
    time.sleep(0.2)  # the next page is made meanwhile
    changed = app.post(QUERY, json={"maxFiles": 2, "pageToken": token, "limitHint": 1}, headers=CAPS)
    assert changed.status_code == 400 and "parameter mismatch" in changed.json()["message"]
    forged = app.post(QUERY, json={"maxFiles": 2, "pageToken": token[:-2] + "xx"}, headers=CAPS)
    assert forged.status_code == 400 and "page token" in forged.json()["message"]
    files, _ = _page(app, {"maxFiles": 2, "pageToken": token})
    assert len(files) == 2


def test_a_page_made_ahead_is_refused_once_its_token_expired(tmp_path: Path) -> None:
    app = _app(tmp_path, 100, queryTablePageTokenTtlMs=300)
    try:
        _, end = _page(app, {"maxFiles": 2})
        time.sleep(0.6)  # the next page was made well before the token expired
        expired = app.post(QUERY, json={"maxFiles": 2, "pageToken": end["nextPageToken"]}, headers=CAPS)
        assert expired.status_code == 400 and "has expired" in expired.json()["message"]
    finally:
        app.close()


def _rendered(pages: PagesAhead, key: str) -> None:
    """Waits until the page for `key` has been rendered (or failed)."""
    slot = pages._pages.get(key)
    assert slot is not None
    slot.future.exception(timeout=10)


def _ahead(signed_at: float) -> Ahead:
    return Ahead(
        table=object(),  # type: ignore[arg-type]
        headers={},
        body=b"x",
        stats={"files": 0},
        signed_at=signed_at,
        token_expires_ms=int(signed_at * 1000) + 60_000,
    )


def test_pages_ahead_hand_out_a_page_once_while_it_is_recent() -> None:
    pages = PagesAhead()
    pages.render("k", lambda: _ahead(time.time()))
    _rendered(pages, "k")
    found = pages.get("k", max_age_s=5)
    assert found is not None and found.body == b"x"
    assert pages.get("k", max_age_s=5) is None  # handed out once
    pages.render("old", lambda: _ahead(time.time() - 10))
    _rendered(pages, "old")
    assert pages.get("old", max_age_s=5) is None


def test_pages_ahead_leave_a_failed_or_waiting_render_to_the_request() -> None:
    pages = PagesAhead()

    def failing() -> Ahead:
        raise RuntimeError("signing failed")

    pages.render("failed", failing)
    _rendered(pages, "failed")
    assert pages.get("failed", max_age_s=5) is None
    # A page whose render has not started (the thread is busy with another) is not waited for.
    started: Future[None] = Future()
    release: Future[None] = Future()

    def slow() -> Ahead:
        started.set_result(None)
        release.result(timeout=10)
        return _ahead(time.time())

    pages.render("slow", slow)
    started.result(timeout=10)
    ran: list[str] = []
    pages.render("queued", lambda: ran.append("queued") or _ahead(time.time()))  # type: ignore[func-returns-value]
    assert pages.get("queued", max_age_s=5) is None
    release.set_result(None)
    assert pages.get("slow", max_age_s=5) is not None  # under way: waited for
    assert ran == []


def test_pages_ahead_are_bounded_and_forgotten_when_never_asked_for() -> None:
    pages = PagesAhead(max_pages=2, keep_s=0.2)
    for key in ("a", "b", "c"):
        pages.render(key, lambda: _ahead(time.time()))
        _rendered(pages, key)
    assert pages.get("a", max_age_s=5) is None  # the least recently rendered of three, past the bound
    time.sleep(0.3)
    pages.render("d", lambda: _ahead(time.time()))
    assert [key for key, _ in pages._pages.items()] == ["d"]  # b and c were never asked for in time


def test_pages_ahead_render_nothing_once_their_thread_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    class Closed:
        def submit(self, *args: Any) -> None:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr("lakegate.service.paging._executor", Closed)
    pages = PagesAhead()
    pages.render("k", lambda: _ahead(time.time()))
    assert pages.get("k", max_age_s=5) is None  # nothing waits for a render that never starts
    assert not pages._pages.items()


def _waiting(app: AppClient) -> int:
    """Pages rendered ahead and not handed out, once the renders under way are done."""
    pages = app.app.state.services.tables._ahead
    futures = [slot.future for _, slot in pages._pages.items()]
    return sum(1 for future in futures if future.result(timeout=10) is not None)


def test_a_walk_keeps_two_pages_rendered_ahead(app: AppClient) -> None:
    _, end = _page(app, {"maxFiles": 1})
    time.sleep(0.3)
    assert _waiting(app) == 2  # pages 2 and 3, not 4 to 6
    files, end = _page(app, {"maxFiles": 1, "pageToken": end["nextPageToken"]})
    time.sleep(0.3)
    assert _waiting(app) == 2  # pages 3 and 4
    seen = [served_path(f["url"]) for f in files]
    while "nextPageToken" in end:
        files, end = _page(app, {"maxFiles": 1, "pageToken": end["nextPageToken"]})
        seen += [served_path(f["url"]) for f in files]
    assert len(seen) == len(set(seen)) == 5  # pages 2 to 6, each once
    time.sleep(0.3)
    assert _waiting(app) == 0  # nothing past the last page


def test_a_walk_rendered_ahead_in_the_thread_is_the_same(
    app: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages above `ON_LOOP_FILES` render in the thread: the same pages, kept two ahead as well."""
    whole = [served_path(f["url"]) for f in file_lines(ndjson(app.post(QUERY, json={}, headers=CAPS)))]
    monkeypatch.setattr("lakegate.service.tables.ON_LOOP_FILES", 0)
    _, end = _page(app, {"maxFiles": 1})
    time.sleep(0.3)
    assert _waiting(app) == 2
    seen = [served_path(f["url"]) for f in _page(app, {"maxFiles": 1})[0]]
    while "nextPageToken" in end:
        files, end = _page(app, {"maxFiles": 1, "pageToken": end["nextPageToken"]})
        seen += [served_path(f["url"]) for f in files]
    assert seen == whole


def test_a_render_on_the_loop_that_would_block_goes_to_the_thread() -> None:
    pages = PagesAhead()
    threads: list[str] = []

    def render() -> Ahead:
        threads.append(threading.current_thread().name)
        must_not_block()  # as a build of the table's parts would
        return _ahead(time.time())

    async def on_the_loop() -> None:
        assert pages.render("blocks", render, on_loop=True)
        assert pages.render("small", lambda: threads.append("loop") or _ahead(time.time()), on_loop=True)  # type: ignore[func-returns-value]

    asyncio.run(on_the_loop())
    _rendered(pages, "blocks")
    assert pages.get("blocks", max_age_s=5) is not None
    assert pages.get("small", max_age_s=5) is not None
    assert threads[0] == threading.current_thread().name  # tried on the loop first
    assert sorted(threads[1:]) == [
        "lakegate-page-ahead_0",
        "loop",
    ]  # then in the thread; the small one on the loop
