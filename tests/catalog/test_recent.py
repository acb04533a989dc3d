"""What a server remembers of the catalog (lakegate.catalog.recent): for at most its time, never across a change
made through its own database object, and a token's expiry checked on every request."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from lakegate.catalog.db import Database
from lakegate.catalog.recent import Recent
from lakegate.catalog.recipients import Recipients
from lakegate.catalog.sql import SqlCatalog
from lakegate.exceptions import UnauthenticatedError
from tests.catalog.support import SHARES, Clock, prepared


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_remembered_for_its_time_only() -> None:
    ticks, loads = Ticks(), []
    recent = Recent(1.0, clock=ticks)

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert [recent.get("k", load) for _ in range(3)] == [1, 1, 1]
    ticks.now += 0.999
    assert recent.get("k", load) == 1
    ticks.now += 0.001
    assert recent.get("k", load) == 2


def test_a_change_through_the_same_database_object_ends_the_memory() -> None:
    generation = [0]
    recent = Recent(60.0, generation=lambda: generation[0])
    assert recent.get("k", lambda: "before") == "before"
    generation[0] += 1
    assert recent.get("k", lambda: "after") == "after"


def test_an_error_is_not_remembered() -> None:
    recent = Recent(60.0)

    def fail() -> str:
        raise UnauthenticatedError("no")

    with pytest.raises(UnauthenticatedError):
        recent.get("k", fail)
    assert recent.get("k", lambda: "ok") == "ok"


def test_revocation_through_this_database_object_is_immediate(db: Database) -> None:
    prepared(db, shares=SHARES)
    catalog = SqlCatalog(db, cache_seconds=60)
    token = Recipients(db).create("alice", ["share1"]).token
    assert catalog.authenticate(token).recipient == "alice"
    Recipients(db).revoke("alice")  # the admin API of this server writes through the same object
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(token)


def test_grant_removed_by_another_process_is_seen_on_the_next_requests(db: Database, db_url: str) -> None:
    """SQLite: the other process's commit changes the WAL file; PostgreSQL: it is announced (NOTIFY), a moment
    later. Either way well before the cache time (60 s here)."""
    prepared(db, shares=SHARES)
    catalog = SqlCatalog(db, cache_seconds=60)
    token = Recipients(db).create("alice", ["share1", "share2"]).token
    assert catalog.authenticate(token).shares == frozenset({"share1", "share2"})
    other = Database(db_url)  # another replica, or the CLI
    try:
        Recipients(other).ungrant("alice", "share2")
    finally:
        other.close()
    deadline = time.monotonic() + 5
    while catalog.authenticate(token).shares != frozenset({"share1"}):
        assert time.monotonic() < deadline, "the change was never seen"
        time.sleep(0.05)


def test_expiry_is_checked_on_every_request_even_when_remembered(db: Database, clock: Clock) -> None:
    prepared(db, shares=SHARES)
    catalog = SqlCatalog(db, clock=clock, cache_seconds=60)
    token = Recipients(db, clock).create("alice", ["share1"], expires_in=60).token
    assert catalog.authenticate(token).recipient == "alice"
    clock.advance(60)
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(token)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_an_answer_used_late_in_its_time_is_loaded_again_in_the_background_from_then_on() -> None:
    ticks, loads = Ticks(), []
    recent = Recent(1.0, clock=ticks)

    def load() -> int:
        loads.append(ticks.now)
        return len(loads)

    assert recent.get("k", load) == 1  # loaded at 100.0: good until 101.0
    ticks.now = 100.4
    assert recent.peek("k") == 1 and len(loads) == 1  # first half: nothing loaded
    ticks.now = 100.6
    assert recent.peek("k") == 1  # second half: answered, and loaded again behind the answer
    _wait_for(lambda: len(loads) == 2 and not recent._refreshing, "no refresh")
    assert loads[1] == 100.6
    ticks.now = 101.5  # past the first load's time, within the refresh's (from 100.6)
    assert recent.get("k", load) == 2
    _wait_for(
        lambda: len(loads) == 3 and not recent._refreshing, "no refresh"
    )  # 101.5 is in the second half of the refresh's time
    ticks.now = 102.6  # past every load's time: the request loads itself
    assert recent.get("k", load) == 4 and loads[3] == 102.6


def test_a_failed_refresh_keeps_the_answer_until_its_time_only() -> None:
    ticks, calls = Ticks(), []
    recent = Recent(1.0, clock=ticks)

    def load() -> str:
        calls.append(ticks.now)
        if len(calls) > 1:
            raise RuntimeError("database down")
        return "first"

    assert recent.get("k", load) == "first"
    ticks.now = 100.9
    assert recent.get("k", load) == "first"
    _wait_for(lambda: len(calls) == 2, "no refresh")
    ticks.now = 101.0
    with pytest.raises(RuntimeError):
        recent.get("k", load)
