"""The record writer process (`lakegate.recordwriter`): a real child process storing into a real SQLite file, its
lines read from this process's standard error (which the child shares), and what happens when it is gone."""

from __future__ import annotations

import json
import logging
import os
import random
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
from lakegate.audit import Access, AuditLog, audit_entry, audit_line, from_entry
from lakegate.catalog.db import Database
from lakegate.catalog.models import AuditEvent
from lakegate.logs import json_line, line_time
from lakegate.metrics import AUDIT_FAILURES
from lakegate.recordwriter import ACCESS, AUDIT, RecordWriter, access_line, decode, encode
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
from lakegate.audit import Access, AuditLog, audit_entry, audit_line, from_entry
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


def test_lines_from_templates_are_the_lines_made_in_full() -> None:
    """The child makes a template per distinct entry and fills in times and durations: each line must be the one
    the serving process would write (its in-full making), whatever the text (quotes, non-ASCII, a newline, the
    template's own mark character) and the numbers."""
    lines = recordchild.Lines()
    rng = random.Random(3)
    times = [1_782_907_200.5, 1_782_907_200.9999996, 1_782_907_200.0004999, 1_782_907_259.123]
    times += [1_782_907_200 + rng.random() * 100_000 for _ in range(30)]
    durations = [0, 0.0, 0.00004999, 0.00005, 0.0025, 0.012345, 1.23456, 12.5, 3600.0]
    durations += [rng.random() * 0.1 for _ in range(30)]
    texts = ["/p/1", '/p/"q"\\', "/p/ünï☃", "/p/a\nb", "/p/\ue000T\ue000", "/p/\ue000D\ue000x"]
    for text in texts:
        for client, recipient in (("10.0.0.1", "r1"), (None, None), ("::1", text)):
            for moment, seconds in zip(times, durations, strict=False):
                entry = (ACCESS, moment, "GET", text, "/p/{n}", 404, seconds, client, recipient)
                message, fields = access_line(*entry[2:])
                made = json_line("lakegate.access", message, "http", fields, line_time(moment))
                assert lines.access(entry) == made
                event = Access(recipient, "query", text, "d", "t", "url", 200, "ok", 3, 7, client, text)
                audited = (AUDIT, True, True, moment, event[1:])
                message, fields = audit_line(from_entry(audited))
                assert lines.audit(audited) == json_line(
                    "lakegate.audit", message, "audit", fields, line_time(moment)
                )
    for moment in times:  # the same entry at other times and durations: its template filled in
        for seconds in durations:
            entry = (ACCESS, moment, "POST", "/q", "/q", 200, seconds, "10.0.0.2", "r2")
            message, fields = access_line(*entry[2:])
            assert lines.access(entry) == json_line(
                "lakegate.access", message, "http", fields, line_time(moment)
            )


def test_the_template_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordchild, "MAX_TEMPLATES", 10)
    lines = recordchild.Lines()
    for number in range(25):
        entry = (ACCESS, 1_782_907_200.5, "GET", f"/p/{number}", "/p/{n}", 200, 0.001, None, None)
        assert json.loads(lines.access(entry))["http"]["path"] == f"/p/{number}"
    assert len(lines._access) <= 10


def test_events_with_unix_times_are_stored_as_their_datetimes(file_db: Database) -> None:
    """The child stores (Unix time, the Access's other values): the row must be that of the datetime the time
    stands for, as the serving process would store it; text too long for its column is cut the same way."""
    rng = random.Random(5)
    moments = [1_782_907_200.9999996, 1_782_907_200.0000005] + [
        1_782_907_200 + rng.random() * 1e6 for _ in range(200)
    ]
    long_name = "r" * 1000
    audit = AuditLog(file_db)
    assert audit.store([(m, *_event(n)[1:]) for n, m in enumerate(moments)])
    assert audit.store([(moments[5], long_name, *_event(999)[2:])])  # (a batch with text to cut: row by row)
    assert audit.store([_event(1000)._replace(recipient=long_name)])
    with file_db.read() as conn:
        rows = conn.execute(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [row.at for row in rows[:-1]] == [datetime.fromtimestamp(m, UTC) for m in [*moments, moments[5]]]
    assert rows[-2].recipient == rows[-1].recipient == long_name[: len(rows[-1].recipient)]
    assert len(rows[-1].recipient) < len(long_name)


class Name(str):
    """Text marshal cannot write."""


def test_batches_are_marshalled_or_pickled_when_marshal_cannot() -> None:
    plain = (3, [(ACCESS, 1.5, "GET", "/p", "/p", 200, 0.1, None, "r")])
    assert encode(plain)[:1] == b"M"
    assert decode(encode(plain)) == plain
    odd = (4, [(ACCESS, 1.5, "GET", Name("/p"), "/p", 200, 0.1, None, "r")])
    assert encode(odd)[:1] == b"P"
    assert decode(encode(odd)) == odd


def test_a_batch_that_cannot_be_handed_over_is_written_here(
    file_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    class Local(str):  # neither marshal nor pickle can write it
        pass

    caplog.set_level(logging.INFO)
    audit, records = _writer(file_db)
    try:
        assert records.add(audit_entry(_event(1), False, True))
        assert records.add((ACCESS, 1_782_907_200.5, "GET", Local("/odd"), "/p/{n}", 200, 0.0025, None, "r"))
        records.flush()
        assert records.add(audit_entry(_event(2), False, True))  # the child takes the next batches
        records.flush()
        assert _child(records).poll() is None
    finally:
        audit.close()
    assert _stored(file_db) == [1, 2]
    assert "could not hand 2 records to the record writer process" in caplog.text
    assert "GET /odd 200 2.5ms client - recipient r" in caplog.messages
