"""Answers the fast lane keeps for repeated requests (lakegate.http.hot.KeptAnswers, lakegate.validity): given
again only to the same request of the same remembered caller, and never once what they depend on has changed:
a new commit, a revoked token, another second for a query's signed URLs. Driven through `lakegate serve`'s
protocol on the in-process app (tests/http/test_fast_lane.py)."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from deltalake import write_deltalake

from lakegate.catalog.recipients import Recipients
from lakegate.cloud.locations import Location
from tests.http.test_fast_lane import audit_of, fast, request, usual
from tests.inprocess import ENDPOINT, AppClient, start_one_table_app
from tests.tables import rows

TABLE = f"{ENDPOINT}/shares/s/schemas/d/tables/t"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[AppClient, str, str]]:
    """The app, a recipient's token (granted the share) and the table's root (written to by tests)."""
    app = start_one_table_app(tmp_path, {"historyShared": True})
    root = str(tmp_path / "t")
    token = Recipients(app.app.state.services.catalog.db).create("alice", ["s"]).token
    app.get("/shares", token=token)  # remembered from now on
    yield app, token, root
    app.close()


def answer(app: AppClient, raw: bytes) -> bytes:
    """The fast lane's answer, or the usual way's when it hands the request over."""
    return fast(app, raw) or usual(app, raw)


def kept(app: AppClient, raw: bytes) -> bytes:
    """The answer of a request made twice: the first reads the table's snapshot in a thread (the usual way,
    which keeps nothing), the second is answered at once, and kept when it may be."""
    answer(app, raw)
    return fast(app, raw)


def _broken(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the kept answer was not given")


def test_a_repeated_request_is_given_the_kept_answer_and_audited_each_time(
    served: tuple[AppClient, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, token, _ = served
    raw = request("GET", f"{TABLE}/metadata", token)
    first = kept(app, raw)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    audit_of(app).flush()
    audited = _audited(app)
    monkeypatch.setattr(app.app.state.services.tables, "table_metadata", _broken)
    again = fast(app, raw)
    assert _body(again) == _body(first)
    audit_of(app).flush()
    assert _audited(app) == audited + 1


def test_another_caller_or_header_is_not_given_it(
    served: tuple[AppClient, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, token, _ = served
    assert kept(app, request("GET", f"{TABLE}/version", token)).startswith(b"HTTP/1.1 200 OK\r\n")
    monkeypatch.setattr(app.app.state.services.tables, "table_version", _broken)
    assert (
        fast(app, request("GET", f"{TABLE}/version", token + "x")) == b""
    )  # a stranger: the database decides
    other = request("GET", f"{TABLE}/version", token, b"", "X-Other: 1")
    assert b"500 Internal Server Error" in answer(app, other)  # made afresh (by the broken service)


def test_a_new_commit_ends_the_kept_answer(served: tuple[AppClient, str, str]) -> None:
    app, token, root = served
    raw = request("GET", f"{TABLE}/version", token)
    assert b"delta-table-version: 0\r\n" in kept(app, raw)
    write_deltalake(root, rows([7]), mode="append")
    time.sleep(0.01)  # (a table's next commit is looked for at most once a millisecond)
    assert b"delta-table-version: 1\r\n" in answer(app, raw)


def test_a_revoked_token_is_refused_at_once(served: tuple[AppClient, str, str]) -> None:
    app, token, _ = served
    raw = request("POST", f"{TABLE}/query", token, b"{}")
    assert kept(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
    Recipients(app.app.state.services.catalog.db).revoke("alice")  # what the admin API does
    assert answer(app, raw).startswith(b"HTTP/1.1 401 Unauthorized\r\n")


def test_a_query_answer_is_given_again_only_within_the_second_its_urls_were_signed(
    served: tuple[AppClient, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, token, _ = served
    raw = request("POST", f"{TABLE}/query", token, b"{}")
    first = kept(app, raw)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 2)
    later = answer(app, raw)
    expiries = [_expiry(first), _expiry(later)]
    assert expiries[1] - expiries[0] >= 1000, expiries  # signed again, two seconds on


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"{TABLE}/metadata?version=0", b""),  # time travel
        ("POST", f"{TABLE}/query", b'{"version": 0}'),
        ("POST", f"{TABLE}/query", b'{"maxFiles": 1}'),  # a page
    ],
)
def test_time_travel_and_pages_are_made_afresh(
    served: tuple[AppClient, str, str], monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: bytes
) -> None:
    app, token, _ = served
    raw = request(method, path, token, body)
    assert answer(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
    monkeypatch.setattr(app.app.state.services.tables, "table_metadata", _broken)
    monkeypatch.setattr(app.app.state.services.tables, "query", _broken)
    assert b"500 Internal Server Error" in answer(app, raw)


def test_nothing_is_kept_when_the_catalog_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = start_one_table_app(tmp_path, catalogCacheSeconds=0)
    try:
        raw = request("GET", f"{TABLE}/version", app.token)
        assert answer(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
        monkeypatch.setattr(app.app.state.services.tables, "table_version", _broken)
        assert b"500 Internal Server Error" in answer(app, raw)
    finally:
        app.close()


def _body(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


def _expiry(answer: bytes) -> int:
    lines = [orjson.loads(line) for line in _body(answer).splitlines()]
    return int(next(line["file"]["expirationTimestamp"] for line in lines if "file" in line))


def _audited(app: AppClient) -> int:
    with app.app.state.services.catalog.db.read() as conn:
        return int(
            conn.exec_driver_sql("SELECT count(*) FROM audit_events WHERE recipient = 'alice'").scalar_one()
        )


def test_a_kept_answer_keeps_no_snapshot_alive(served: tuple[AppClient, str, str]) -> None:
    app, token, root = served
    assert b"delta-table-version: 0\r\n" in kept(app, request("GET", f"{TABLE}/version", token))
    snapshots = app.app.state.services.tables.context.snapshots
    old = weakref.ref(snapshots.latest(Location.parse(root)))
    write_deltalake(root, rows([7]), mode="append")
    time.sleep(0.01)
    assert b"delta-table-version: 1\r\n" in answer(
        app, request("GET", f"{TABLE}/version", token, b"", "X-Other: 1")
    )
    gc.collect()
    assert old() is None  # the cache moved on; the answer kept for version 0 does not hold its snapshot


class _FrozenMillisecond:
    """`time.time` of the hot module stopped inside one millisecond (the kept answers' checks are made once per
    millisecond); the rest of the process keeps the real clock."""

    def __init__(self) -> None:
        self.now = int(time.time()) + 0.2005

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_within_one_millisecond_the_checks_are_made_once(
    served: tuple[AppClient, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's lookup and the snapshot's check (~4 µs of a ~30 µs answer) are made once per millisecond per
    kept answer, and again in the next one."""
    app, token, _ = served
    monkeypatch.setattr("lakegate.http.hot.time", clock := _FrozenMillisecond())
    raw = request("GET", f"{TABLE}/metadata", token)
    assert kept(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
    lookups: list[object] = []
    catalog = app.app.state.services.catalog
    remembered = catalog.remembered

    def counted(credential: object) -> object:
        lookups.append(credential)
        return remembered(credential)

    monkeypatch.setattr(catalog, "remembered", counted)
    for _ in range(5):
        assert fast(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(lookups) == 1
    clock.now += 0.001
    assert fast(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(lookups) == 2


def test_a_revocation_counts_within_the_same_millisecond(
    served: tuple[AppClient, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change of the catalog made in this process ends what the checks of this millisecond said."""
    app, token, _ = served
    monkeypatch.setattr("lakegate.http.hot.time", _FrozenMillisecond())
    raw = request("POST", f"{TABLE}/query", token, b"{}")
    assert kept(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
    assert fast(app, raw).startswith(b"HTTP/1.1 200 OK\r\n")
    Recipients(app.app.state.services.catalog.db).revoke("alice")
    assert answer(app, raw).startswith(b"HTTP/1.1 401 Unauthorized\r\n")
