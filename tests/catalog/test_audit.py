"""The audit trail in the database: recorded, read back by time and recipient."""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakegate import audit as audit_module
from lakegate.audit import Access, AuditLog, parse_since
from lakegate.catalog.db import Database
from lakegate.catalog.models import AuditEvent
from lakegate.exceptions import InvalidParameterError
from tests.catalog.support import prepared

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def _access(recipient: str | None, minutes: int, **extra: object) -> Access:
    values: dict = {
        "operation": "query",
        "share": "s",
        "schema_name": "d",
        "table_name": "t",
        "mode": "url",
        "status": 200,
        "outcome": "ok",
        "version": 3,
        "files": 7,
        "data_bytes": 7168,
        "client": "10.0.0.1",
        "user_agent": "Delta-Sharing-Python/1.4.2",
        **extra,
    }
    return Access(recipient=recipient, at=T0 + timedelta(minutes=minutes), **values)


def test_record_and_query(db: Database) -> None:
    prepared(db)
    audit = AuditLog(db)
    audit.record(_access("alice", 0))
    audit.record(
        _access(
            "bob", 1, operation="temporary-credentials", mode="dir", files=None, version=None, data_bytes=None
        )
    )
    audit.record(_access(None, 2, status=408, outcome="REQUEST_TIMEOUT", user_agent="x" * 2000))
    audit.record(_access("alice", 3, status=404, outcome="RESOURCE_DOES_NOT_EXIST"))
    everything = audit.query()
    assert [e["recipient"] for e in everything] == ["alice", "bob", None, "alice"]
    assert everything[0] == {
        "time": "2026-07-01T12:00:00.000Z",
        "recipient": "alice",
        "operation": "query",
        "table": "s.d.t",
        "version": 3,
        "mode": "url",
        "files": 7,
        "status": 200,
        "outcome": "ok",
        "client": "10.0.0.1",
        "userAgent": "Delta-Sharing-Python/1.4.2",
        "replica": everything[0]["replica"],
        "actor": None,  # a data access; admin changes name who made them
        "bytes": 7168,
    }
    assert everything[1]["mode"] == "dir" and everything[2]["userAgent"] == "x" * 512
    assert [e["time"][11:16] for e in audit.query(since=T0 + timedelta(minutes=2))] == ["12:02", "12:03"]
    assert [e["outcome"] for e in audit.query(recipient="alice")] == ["ok", "RESOURCE_DOES_NOT_EXIST"]
    assert [e["time"][11:16] for e in audit.query(limit=2)] == ["12:02", "12:03"]
    with pytest.raises(InvalidParameterError):
        audit.query(limit=0)


def test_parse_since() -> None:
    assert parse_since("15m", T0) == T0 - timedelta(minutes=15)
    assert parse_since("2h", T0) == T0 - timedelta(hours=2)
    assert parse_since("7d", T0) == T0 - timedelta(days=7)
    assert parse_since("2026-06-30T00:00:00Z", T0) == datetime(2026, 6, 30, tzinfo=UTC)
    assert parse_since("2026-06-30T00:00:00", T0) == datetime(2026, 6, 30, tzinfo=UTC)
    with pytest.raises(InvalidParameterError):
        parse_since("yesterday", T0)


def test_names_the_database_cannot_hold_are_cleaned(db: Database) -> None:
    prepared(db)
    audit = AuditLog(db)
    audit.record(_access("eve\x00", 0, share="s" * 300, table_name="t\x00", client="c" * 100))
    event = audit.query(recipient="eve\x00")[0]
    assert event["table"] == "s" * 255 + ".d.t\ufffd" and event["client"] == "c" * 64


@pytest.mark.parametrize("text", ["999999999999d", "9" * 5000 + "s", "99999999999999999999w"])
def test_parse_since_too_far_back_is_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidParameterError, match="too far"):
        parse_since(text, T0)


def test_unauthenticated_requests_are_logged_not_stored(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Strangers can send many requests: each costs a log line, never a database write."""
    prepared(db)
    audit = AuditLog(db)
    with caplog.at_level(logging.INFO, logger="lakegate.audit"):
        for minute in range(3):
            audit.record(_access(None, minute, status=401, outcome="UNAUTHENTICATED"))
    audit.record(_access("alice", 4))
    assert [e["recipient"] for e in audit.query()] == ["alice"]
    logged = [
        r for r in caplog.records if r.name == "lakegate.audit" and "(unauthenticated)" in r.getMessage()
    ]
    assert len(logged) == 3


def _stored(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one())


def test_background_writer_stores_every_event_by_close(db: Database) -> None:
    prepared(db)
    audit = AuditLog(db, background=True)
    for i in range(1000):
        assert audit.record(_access(f"r{i}", 0))
    audit.close()  # a clean shutdown: nothing queued is lost
    assert _stored(db) == 1000
    audit.record(_access("late", 1))  # after close each event is written at once
    assert _stored(db) == 1001


def test_reading_the_trail_waits_for_the_queue(db: Database) -> None:
    prepared(db)
    audit = AuditLog(db, background=True)
    for i in range(200):
        audit.record(_access("alice", i))
    assert len(audit.query(limit=1000)) == 200
    audit.close()


def test_a_full_queue_hands_the_event_back_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy when the database is slower than the requests: the event is not dropped; the request's thread
    writes it (the middleware does that in a worker thread)."""
    path = tmp_path / "audit.db"
    db = Database(f"sqlite:///{path}")  # SQLite only: its write lock stalls the writer
    prepared(db)
    monkeypatch.setattr(audit_module, "MAX_PENDING", 2)
    audit = AuditLog(db, background=True)
    blocker = sqlite3.connect(path, timeout=30, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer waits for this lock with its first event
    try:
        assert audit.record(_access("first", 0))
        deadline = time.monotonic() + 5
        while audit._pending and time.monotonic() < deadline:
            time.sleep(0.01)  # the writer has taken the first event and waits for the lock
        assert audit.record(_access("a", 1), wait=False) and audit.record(_access("b", 2), wait=False)
        assert audit.record(_access("handed back", 3), wait=False) is False  # full: the caller stores it
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    audit.store([_access("handed back", 3)])
    audit.close()
    assert _stored(db) == 4
    db.close()


def test_the_writer_stores_rows_as_sqlalchemy_would(db: Database) -> None:
    """The writer hands plain tuples to the driver (lakegate.audit._Insert): the stored values, as the database
    holds them (SQLite keeps times as text), are those SQLAlchemy's own insert of the same event stores."""
    prepared(db)
    audit = AuditLog(db)
    events = [
        _access("alice", 0),  # a whole second: SQLite's text keeps its six zero digits
        _access(None, 1, version=None, files=None, user_agent=None)._replace(
            at=T0.replace(microsecond=123456)
        ),
    ]
    audit.store(events)
    columns = [c.name for c in AuditEvent.__table__.c if c.name != "id"]
    with db.write(catalog_change=False) as conn:
        conn.execute(sa.insert(AuditEvent), [dict(zip(Access._fields, e, strict=True)) for e in events])
    with db.read() as conn:
        raw = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM audit_events ORDER BY id").all()
    assert len(raw) == 4 and raw[:2] == raw[2:]


def test_an_event_has_every_column_of_the_audit_table() -> None:
    assert list(Access._fields) == [c.name for c in AuditEvent.__table__.c if c.name != "id"]


def test_a_batch_of_several_statements_stores_every_event_in_order(db: Database) -> None:
    prepared(db)
    events = [_access(f"r{i}", i) for i in range(2 * audit_module.ROWS_PER_INSERT + 7)]  # two full and a rest
    AuditLog(db).store(events)
    with db.read() as conn:
        stored = conn.exec_driver_sql("SELECT recipient, version FROM audit_events ORDER BY id").all()
    assert [tuple(row) for row in stored] == [(e.recipient, e.version) for e in events]
