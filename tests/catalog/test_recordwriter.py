"""The record writer process (`lakegate.recordwriter`): a real child process storing into a real SQLite file, its
lines read from this process's standard error (which the child shares), and what happens when it is gone."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakegate import recordchild
from lakegate.audit import Access, AuditLog, audit_entry
from lakegate.catalog.db import Database
from lakegate.catalog.models import AuditEvent
from lakegate.metrics import AUDIT_FAILURES
from lakegate.recordwriter import ACCESS, RecordWriter
from tests.catalog.support import prepared

AT = datetime(2026, 7, 1, 12, 0, 0, 123457, tzinfo=UTC)  # handed over as a float: back to the microsecond


def _event(number: int, status: int = 200) -> Access:
    return Access(f"r{number}", "query", "s", "d", "t", "url", status, "ok", version=3, files=number, at=AT)


def _access_entry(number: int) -> tuple[object, ...]:
    return (ACCESS, 1_782_907_200.5, "GET", f"/p/{number}", "/p/{n}", 200, 0.0025, "10.0.0.1", f"r{number}")


def _stored(db: Database) -> list[int]:
    with db.read() as conn:
        return [row.files for row in conn.execute(sa.select(AuditEvent).order_by(AuditEvent.id))]


@pytest.fixture
def file_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'lakegate.db'}")
    prepared(db)
    yield db
    db.close()


def _writer(db: Database) -> tuple[AuditLog, RecordWriter]:
    audit = AuditLog(db, background=True, writer_process=True)
    assert audit.records is not None
    return audit, audit.records


def _child(records: RecordWriter) -> subprocess.Popen[bytes]:
    deadline = time.monotonic() + 30
    while records._child is None:  # started by the feeding thread
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return records._child


def test_the_child_stores_events_and_writes_both_lines(
    file_db: Database, capfd: pytest.CaptureFixture
) -> None:
    audit, records = _writer(file_db)
    try:
        assert records.add(_access_entry(1))
        assert records.add(audit_entry(_event(1), True, True))
        assert records.add(audit_entry(_event(2), False, True))  # its line written by the caller
        assert records.add(audit_entry(_event(3, status=401), True, False))  # a stranger's: a line, no row
        records.flush()
        assert _stored(file_db) == [1, 2]
        with file_db.read() as conn:
            assert set(conn.execute(sa.select(AuditEvent.at)).scalars()) == {AT}
        child = _child(records)
        assert child.poll() is None  # the same child stays for later batches
    finally:
        audit.close()
    assert child.returncode == 0  # ended at the end of its pipe
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "lakegate.access"]
    assert len(access) == 1
    assert access[0]["time"] == "2026-07-01T12:00:00.500+00:00"  # the request's time, not the child's
    assert access[0]["http"] == {
        "method": "GET",
        "path": "/p/1",
        "route": "/p/{n}",
        "status": 200,
        "durationMs": 2.5,
        "client": "10.0.0.1",
        "recipient": "r1",
    }
    assert access[0]["message"] == "GET /p/1 200 2.5ms client 10.0.0.1 recipient r1"
    assert {line["time"] for line in lines if line["logger"] == "lakegate.audit"} == {
        "2026-07-01T12:00:00.123+00:00"
    }
    audited = [line["audit"] for line in lines if line["logger"] == "lakegate.audit"]
    assert [(a["recipient"], a["status"], a["files"], a["time"]) for a in audited] == [
        ("r1", 200, 1, "2026-07-01T12:00:00.123Z"),
        ("r3", 401, 3, "2026-07-01T12:00:00.123Z"),
    ]


def test_a_clean_close_stores_everything_queued(file_db: Database) -> None:
    audit, records = _writer(file_db)
    for number in range(2000):
        assert records.add(audit_entry(_event(number), False, True))
    audit.close()  # no flush before: close sends and waits
    assert _stored(file_db) == list(range(2000))
    assert not records.add(audit_entry(_event(1), False, True))  # after close the caller writes its own


def test_a_killed_child_leaves_nothing_unwritten(file_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    audit, records = _writer(file_db)
    try:
        for number in range(100):
            records.add(audit_entry(_event(number), False, True))
        records.flush()
        child = _child(records)
        # Stopped, it takes the next batch into its pipe without acknowledging it; then it is killed.
        os.kill(child.pid, signal.SIGSTOP)
        for number in range(100, 300):
            records.add(audit_entry(_event(number), False, True))
        records._wake()
        time.sleep(0.5)
        os.kill(child.pid, signal.SIGKILL)
        records.flush()
        assert _stored(file_db) == list(range(300))  # the unacknowledged batch written by this process
        assert "the record writer process ended" in caplog.text
        # From now on the caller writes its own records (AuditLog.record stores them with its writer thread).
        assert not records.add(audit_entry(_event(300), False, True))
        audit.record(_event(300))
        audit.flush()
        assert _stored(file_db)[-1] == 300
    finally:
        audit.close()


def test_the_child_outlives_a_killed_server_to_store_what_it_received(
    file_db: Database, tmp_path: Path
) -> None:
    """The serving process is killed (SIGKILL: no shutdown at all) after handing over its events."""
    script = """
import os, signal, sys, time
from datetime import UTC, datetime
from lakegate.audit import Access, AuditLog, audit_entry
from lakegate.catalog.db import Database
audit = AuditLog(Database(sys.argv[1]), background=True, writer_process=True)
for n in range(500):
    audit.records.add(audit_entry(Access("x", "query", "s", "d", "t", "url", 200, "ok", files=n), False, True))
audit.records._wake()
deadline = time.monotonic() + 30
while audit.records._sent == 0 and time.monotonic() < deadline:
    time.sleep(0.01)
print(audit.records._child.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(file_db.url)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    child = int(done.stdout.strip())
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(_stored(file_db)) == list(range(500))


def test_no_child_for_an_in_memory_database() -> None:
    assert AuditLog(Database("sqlite://"), background=True, writer_process=True).records is None


def test_events_the_child_could_not_store_are_counted_here(
    file_db: Database, capfd: pytest.CaptureFixture
) -> None:
    with file_db.write() as conn:
        conn.exec_driver_sql("DROP TABLE audit_events")  # every INSERT of the child fails
    before = AUDIT_FAILURES._value.get()
    audit, records = _writer(file_db)
    try:
        for number in range(7):
            records.add(audit_entry(_event(number), False, True))
        records.flush()
    finally:
        audit.close()
    assert AUDIT_FAILURES._value.get() - before == 7
    errors = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"level":"error"' in line]
    assert [e["message"] for e in errors] == [
        "could not write 7 audit event(s) to the database: OperationalError"
    ]


def test_the_childs_lines_go_out_in_whole_lines_of_at_most_pipe_buf_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pipe keeps a write of at most PIPE_BUF bytes whole: no line of the serving process lands inside one."""
    writes: list[bytes] = []

    def write(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return len(data)

    monkeypatch.setattr(os, "write", write)
    lines = [json.dumps({"n": n, "pad": "x" * (n % 7 * 150)}) + "\n" for n in range(200)]
    lines.insert(50, json.dumps({"long": "y" * (select.PIPE_BUF * 2)}) + "\n")  # longer than PIPE_BUF: alone
    recordchild.write_lines(lines, fd=99)
    assert b"".join(writes).decode() == "".join(lines)
    assert all(w.endswith(b"\n") for w in writes)
    assert [len(w) for w in writes if len(w) > select.PIPE_BUF] == [len(lines[50])]
    assert len(writes) < len(lines) / 5  # several lines per write
