"""A small answer of a repeatable query (latest snapshot, no page or token) is rendered at most once per second:
a new commit, another query, other capabilities or another table still get their own answer at once, and every
URL handed out carries the full lifetime counted from the second it was signed in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from deltalake import write_deltalake

from tests.inprocess import AppClient, ndjson, start_app
from tests.tables import build_plain, rows

TABLE = "/shares/s/schemas/d/tables/t"
TIMEOUT_S = 900


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[AppClient, str]]:
    location = build_plain(tmp_path / "t", batches=3)
    other = build_plain(tmp_path / "u")
    tables = [{"name": "t", "location": location}, {"name": "u", "location": other}]
    config = {
        "preSignedUrlTimeoutSeconds": TIMEOUT_S,
        "shares": [{"name": "s", "schemas": [{"name": "d", "tables": tables}]}],
    }
    app = start_app(tmp_path, config)
    yield app, location
    app.close()


def _files(lines: list[dict]) -> list[dict]:
    return [line["file"] for line in lines if "file" in line]


def test_a_commit_between_two_queries_is_in_the_second_answer(served) -> None:
    app, location = served
    before = _files(ndjson(app.post(TABLE + "/query", json={})))
    write_deltalake(location, rows([100, 101]), mode="append")
    after = ndjson(app.post(TABLE + "/query", json={}))
    assert len(_files(after)) == len(before) + 1
    assert {f["id"] for f in before} < {f["id"] for f in _files(after)}


def test_each_query_capability_and_table_gets_its_own_answer(served) -> None:
    app, _ = served
    every = _files(ndjson(app.post(TABLE + "/query", json={})))
    assert len(_files(ndjson(app.post(TABLE + "/query", json={"limitHint": 1})))) < len(every)
    delta = ndjson(
        app.post(TABLE + "/query", json={}, headers={"delta-sharing-capabilities": "responseformat=delta"})
    )
    assert len(_files(delta)) == len(every)
    assert all("deltaSingleAction" in f for f in _files(delta)) and not any("url" in f for f in _files(delta))
    other = _files(ndjson(app.post("/shares/s/schemas/d/tables/u/query", json={})))
    assert not {f["id"] for f in other} & {f["id"] for f in every}
    again = _files(ndjson(app.post(TABLE + "/query", json={})))
    # The same files; the same URLs, or (a second boundary passed under load) URLs signed later.
    signed = ("url", "expirationTimestamp")
    assert [{k: v for k, v in f.items() if k not in signed} for f in again] == [
        {k: v for k, v in f.items() if k not in signed} for f in every
    ]
    for later, first in zip(again, every, strict=True):
        assert later == first or later["expirationTimestamp"] > first["expirationTimestamp"]


def test_urls_handed_out_keep_their_whole_lifetime_across_seconds(served) -> None:
    app, _ = served
    deadline = time.time() + 2.2  # several second boundaries
    seen_expiries = set()
    while time.time() < deadline:
        asked = int(time.time())
        for file in _files(ndjson(app.post(TABLE + "/query", json={}))):
            expires_s = file["expirationTimestamp"] // 1000
            assert expires_s >= asked + TIMEOUT_S  # signed in the second asked or later, never earlier
            assert int(parse_qs(urlsplit(file["url"]).query)["Expires"][0]) == expires_s
            seen_expiries.add(expires_s)
    assert len(seen_expiries) >= 2  # answers were made again as seconds passed
