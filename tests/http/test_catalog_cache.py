"""Two replicas (two apps over one PostgreSQL database) remember authentications and lookups for
`catalogCacheSeconds`: a revocation, a removed grant or a rotated token made elsewhere (the CLI, another replica)
takes effect on both within that second; one made through a replica's own database object at once. On a SQLite
file (one host) any process's change takes effect on the next request."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from tests.inprocess import AppClient, start_app
from tests.services.postgres import PostgresService

T = TypeVar("T")
_databases = itertools.count()
WITHIN_S = 1.0
SLACK_S = 0.5  # a request's own time and the polling step, on a busy 2-core machine


@pytest.fixture
def replicas(
    tmp_path: Path, app_tables: dict[str, str], postgres: PostgresService
) -> Iterator[tuple[list[AppClient], str]]:
    url = postgres.create_database(f"replicas_{next(_databases)}")
    config = {
        "database": url,
        "tokenSigningKey": "k" * 32,
        "catalogCacheSeconds": WITHIN_S,
        "shares": [
            {
                "name": "one",
                "schemas": [{"name": "s", "tables": [{"name": "t", "location": app_tables["plain"]}]}],
            },
            {
                "name": "two",
                "schemas": [{"name": "s", "tables": [{"name": "t", "location": app_tables["plain"]}]}],
            },
        ],
    }
    apps = [start_app(tmp_path / "a", config, token=None), start_app(tmp_path / "b", config, token=None)]
    yield apps, url
    for app in apps:
        app.close()


def _elsewhere(url: str, change: Callable[[Recipients], T]) -> tuple[T, float]:
    """Make a change through a database object of its own (as the CLI or a third replica): what it returned,
    and when it was made."""
    db = Database(url)
    try:
        return change(Recipients(db)), time.monotonic()
    finally:
        db.close()


def _token(url: str, name: str, shares: list[str]) -> str:
    return _elsewhere(url, lambda r: r.create(name, shares).token)[0]


def _seconds_until(done: Callable[[], bool], since: float) -> float:
    deadline = since + 5 * WITHIN_S
    while not done():
        assert time.monotonic() < deadline, "the change never took effect"
        time.sleep(0.02)
    return time.monotonic() - since


def _answers(app: AppClient, token: str) -> set[int]:
    """The statuses of a request authenticated in a worker thread and one authenticated on the event loop."""
    query = app.post("/shares/one/schemas/s/tables/t/query", token=token, json={})
    return {app.get("/shares", token=token).status_code, query.status_code}


@pytest.mark.postgres
def test_revocation_elsewhere_takes_effect_on_every_replica_within_a_second(replicas) -> None:
    apps, url = replicas
    token = _token(url, "alice", ["one"])
    assert all(_answers(app, token) == {200} for app in apps)  # now remembered
    _, made = _elsewhere(url, lambda r: r.revoke("alice"))
    took = _seconds_until(lambda: all(_answers(app, token) == {401} for app in apps), made)
    assert took <= WITHIN_S + SLACK_S


@pytest.mark.postgres
def test_a_removed_grant_takes_effect_within_a_second(replicas) -> None:
    apps, url = replicas
    token = _token(url, "bob", ["one", "two"])
    for app in apps:
        assert app.get("/shares/two/schemas/s/tables/t/version", token=token).status_code == 200
    _, made = _elsewhere(url, lambda r: r.ungrant("bob", "two"))
    took = _seconds_until(
        lambda: all(
            app.get("/shares/two/schemas/s/tables/t/version", token=token).status_code == 404 for app in apps
        ),
        made,
    )
    assert took <= WITHIN_S + SLACK_S
    assert all(
        app.get("/shares/one/schemas/s/tables/t/version", token=token).status_code == 200 for app in apps
    )


@pytest.mark.postgres
def test_a_rotated_token_works_at_once_and_the_old_one_stops_within_a_second(replicas) -> None:
    apps, url = replicas
    old = _token(url, "carol", ["one"])
    assert all(app.get("/shares", token=old).status_code == 200 for app in apps)
    new, made = _elsewhere(url, lambda r: r.rotate("carol").token)
    # A token never seen is looked up in the database: the new one works on every replica at once.
    assert all(app.get("/shares", token=new).status_code == 200 for app in apps)
    took = _seconds_until(lambda: all(app.get("/shares", token=old).status_code == 401 for app in apps), made)
    assert took <= WITHIN_S + SLACK_S


@pytest.mark.postgres
def test_a_revocation_through_the_replica_itself_is_immediate(replicas) -> None:
    apps, url = replicas
    token = _token(url, "dave", ["one"])
    assert apps[0].get("/shares", token=token).status_code == 200
    Recipients(apps[0].app.state.services.catalog.db).revoke("dave")  # what its admin API does
    assert apps[0].get("/shares", token=token).status_code == 401


def test_on_sqlite_a_change_by_another_process_is_seen_on_the_next_request(
    tmp_path: Path, app_tables: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    table = {"name": "t", "location": app_tables["plain"]}
    config = {
        "database": url,
        "catalogCacheSeconds": 60,
        "shares": [{"name": "one", "schemas": [{"name": "s", "tables": [table]}]}],
    }
    app = start_app(tmp_path, config, token=None)
    try:
        token = _token(url, "erin", ["one"])
        assert _answers(app, token) == {200}
        _elsewhere(url, lambda r: r.revoke("erin"))  # as the CLI: its own connection, the same file
        assert _answers(app, token) == {401}
    finally:
        app.close()
