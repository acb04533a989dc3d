"""Async queries per recipient are bounded: one recipient cannot fill the pool and memory with pending work."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lakegate.catalog import migrate
from lakegate.catalog.db import Database
from lakegate.exceptions import TooManyRequestsError
from lakegate.service.async_queries import QueryRegistry


def _blocked(release: threading.Event) -> Any:
    def work() -> Any:
        release.wait(30)
        raise RuntimeError("no result needed")

    return work


def test_pending_async_queries_are_bounded_per_recipient(tmp_path: Path) -> None:
    # A file database, as a server uses: an in-memory one is a single connection shared by the worker threads.
    db = Database(f"sqlite:///{tmp_path / 'lakegate.db'}")
    migrate.upgrade(db)
    registry = QueryRegistry(db, workers=2, max_pending_per_recipient=2)
    release = threading.Event()
    try:
        first = registry.submit(("alice", "s.d.t"), "k1", "c1", {}, _blocked(release))
        second = registry.submit(("alice", "s.d.u"), "k2", "c2", {}, _blocked(release))
        with pytest.raises(TooManyRequestsError, match="2 async queries of this recipient"):
            registry.submit(("alice", "s.d.t"), "k3", "c3", {}, _blocked(release))
        # a retry of a running query finds it; another recipient has its own bound
        assert registry.submit(("alice", "s.d.t"), "k1", "c1", {}, _blocked(release)).id == first.id
        registry.submit(("bob", "s.d.t"), "k1", "c1", {}, _blocked(release))
    finally:
        release.set()
    deadline = time.monotonic() + 30

    def status(query_id: str) -> str:
        row = registry.store.get(query_id)
        assert row is not None
        return str(row.status)

    while time.monotonic() < deadline and "pending" in {status(q.id) for q in (first, second)}:
        time.sleep(0.05)
    # finished ones do not count
    last = registry.submit(("alice", "s.d.t"), "k4", "c4", {}, _blocked(release))
    # Its failure is logged from the pool's thread: let it finish before the test's log capture closes.
    while time.monotonic() < deadline and status(last.id) == "pending":
        time.sleep(0.05)
    assert status(last.id) == "failed"
