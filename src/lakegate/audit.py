"""The audit trail: every data access (metadata, query, changes, temporary credentials), kept in the database
and written as one structured log line, whatever its outcome.

Writing an event never fails the request it describes: a failed write is logged and counted
(`lakegate_audit_write_failures_total`), and the log line is still written.

A server stores its events off the request path: its record writer process (`lakegate.recordwriter`) is handed
them in batches every 250 ms and stores each batch in one transaction. Without that process (it is gone, or the
database is an in-memory one) a background thread of the server writes them the same way. Either queue is bounded
(`MAX_PENDING`); when it is full the request's own thread writes its event, so the trail slows down to the
database's pace rather than losing events. A clean shutdown writes every queued event before the database is
closed, and reading the trail in the server's process waits for its queue first.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import socket
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any, NamedTuple

import sqlalchemy as sa

from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import AuditEvent
from lakegate.exceptions import InvalidParameterError
from lakegate.logs import info_line
from lakegate.metrics import AUDIT_FAILURES
from lakegate.recordwriter import ACCESS as ACCESS_ENTRY
from lakegate.recordwriter import AUDIT as AUDIT_ENTRY
from lakegate.recordwriter import PROCESS_ID, RecordWriter, access_line
from lakegate.timestamps import epoch_parts, iso, second_text

log = logging.getLogger("lakegate.audit")
ACCESS_LOG = logging.getLogger("lakegate.access")
HOST = socket.gethostname()
MAX_LIMIT = 10_000
UNAUTHENTICATED_STATUS = 401
ADMIN_MODE = "admin"  # the mode of admin changes (data accesses are "url" or "dir")
MAX_PENDING = 50_000  # events queued for the writer (~15 MB); past it requests write their own
MAX_BATCH = 5_000  # events per transaction
# Rows per INSERT statement: 500 (8,000 parameters) where SQLite allows 32,766 (3.32 and later) and on
# PostgreSQL, else 60 (960 of the older limit of 999).
ROWS_PER_INSERT = 500 if sqlite3.sqlite_version_info >= (3, 32) else 60
# How often the writer looks for events. Each batch written costs the event loop's thread GIL hand-overs with the
# writer whatever its size: at 0.25 s rather than 0.05 s (and 500 rows per statement rather than 60) a served
# audited request cost ~10 us less CPU (~75 -> ~65 us under 16 keep-alive connections; docs/performance.md).
WRITE_INTERVAL_SECONDS = 0.25
CLOSE_TIMEOUT_SECONDS = 30  # a clean shutdown waits this long for the queue to be written
_BACKGROUND: weakref.WeakSet[AuditLog] = weakref.WeakSet()  # this process's writers, waited for by reads
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# This process's "host:pid", made once and again in a forked worker (its id: `lakegate.recordwriter.PROCESS_ID`).
_REPLICA = [f"{HOST}:{os.getpid()}"]


def _forked() -> None:
    _REPLICA[0] = f"{HOST}:{os.getpid()}"


os.register_at_fork(after_in_child=_forked)


def _replica() -> str:
    return _REPLICA[0]


class _Columns(NamedTuple):
    """The audit table's columns in its order (the writer hands the tuple to the driver as it is)."""

    at: datetime
    recipient: str | None
    operation: str
    share: str | None
    schema_name: str | None
    table_name: str | None
    version: int | None
    mode: str
    files: int | None
    status: int
    outcome: str
    client: str | None
    user_agent: str | None
    replica: str | None
    actor: str | None
    data_bytes: int | None


class Access(_Columns):
    """One data access as the audit trail records it. A tuple (one is made per audited request: a frozen
    dataclass cost ~4x as much to build); `at` and `replica` are now and this process unless given."""

    __slots__ = ()

    def __new__(
        cls,
        recipient: str | None,
        operation: str,  # metadata | query | changes | temporary-credentials
        share: str | None,
        schema_name: str | None,
        table_name: str | None,
        mode: str,  # "url" (files by signed URL) or "dir" (directory access by temporary credentials)
        status: int,
        outcome: str,  # "ok", or the error code answered
        version: int | None = None,
        files: int | None = None,
        client: str | None = None,
        user_agent: str | None = None,
        at: datetime | None = None,
        replica: str | None = None,  # the worker process, when several
        actor: str | None = None,  # admin changes: who made it
        data_bytes: int | None = None,  # data answers: the total size of the files listed
    ) -> Access:
        return tuple.__new__(
            cls,
            (
                utcnow() if at is None else at,
                recipient,
                operation,
                share,
                schema_name,
                table_name,
                version,
                mode,
                files,
                status,
                outcome,
                client,
                user_agent,
                _REPLICA[0] if replica is None else replica,
                actor,
                data_bytes,
            ),
        )


def admin_change(
    actor: str,
    action: str,
    recipient: str | None = None,
    share: str | None = None,
    schema_name: str | None = None,
    table_name: str | None = None,
) -> Access:
    """An administrative change (operation `admin:<action>`, mode `admin`) made by `actor`. `recipient` names
    what the change is about: a recipient, or for `admin-token-create`/`admin-token-revoke` the admin token's
    name (no column of its own: the row says who made which admin token without a migration)."""
    return Access(
        recipient=recipient,
        operation=f"admin:{action}",
        share=share,
        schema_name=schema_name,
        table_name=table_name,
        mode=ADMIN_MODE,
        status=200,
        outcome="ok",
        actor=actor,
    )


def cli_actor() -> str:
    """`cli:<os user>`: who ran an admin command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in the environment or the password database
        return f"cli:uid{os.getuid()}"


def event_json(row: Any) -> dict[str, Any]:
    share, schema, name = row.share, row.schema_name, row.table_name
    if share and schema and name:  # a table's (nearly every event): no generator
        table: str | None = f"{share}.{schema}.{name}"
    else:
        table = ".".join(p for p in (share, schema, name) if p) or None
    return {
        "time": iso(row.at),
        "recipient": row.recipient,
        "operation": row.operation,
        "table": table,
        "version": row.version,
        "mode": row.mode,
        "files": row.files,
        "status": row.status,
        "outcome": row.outcome,
        "client": row.client,
        "userAgent": row.user_agent,
        "replica": row.replica,
        "actor": row.actor,
        "bytes": row.data_bytes,
    }


def audit_entry(access: Access, line: bool, store: bool) -> tuple[Any, ...]:
    """The record writer's entry of an event (`lakegate.recordwriter`): its time as a number (a datetime costs the
    batch's pickling ~6x more: 0.8 µs of the serving process per event), its other values as they are."""
    return (AUDIT_ENTRY, line, store, access.at.timestamp(), access[1:])


def from_entry(entry: tuple[Any, ...]) -> Access:
    """The event of an entry (its time back to the microsecond: a float holds today's to a quarter of one)."""
    return Access._make((datetime.fromtimestamp(entry[3], UTC), *entry[4]))


def audit_line(access: Access) -> tuple[str, dict[str, Any]]:
    """The audit log line's message and fields, wherever it is written."""
    event = event_json(access)
    who = f"{access.actor} on {access.recipient or '-'}" if access.actor else access.recipient
    message = (
        f"{who or '(unauthenticated)'} {access.operation} {event['table']}: {access.outcome} "
        f"(client {access.client or '-'})"
    )
    return message, event


class AuditLog:
    """`background`: events are stored by a writer thread (a server); else each in its own transaction (the
    CLI). `writer_process` (a server, with a database other processes can open): events and the log lines of busy
    moments are written by `lakegate.recordwriter`'s child process, the writer thread standing in while it is
    gone. `close()` ends the writers after they have stored everything queued."""

    def __init__(self, db: Database, *, background: bool = False, writer_process: bool = False) -> None:
        self.db = db
        shared = db.backend != "sqlite" or db.sqlite_path is not None  # (not an in-memory SQLite)
        self.records = (
            RecordWriter(db.url.render_as_string(hide_password=False), self._write_here)
            if background and writer_process and shared
            else None
        )
        # A deque, not a queue.Queue: appending wakes no thread (a wake-up per event cost more GIL time than the
        # request it described); the writer looks every WRITE_INTERVAL_SECONDS.
        self._pending: deque[Access] | None = deque() if background else None
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        self._starting = threading.Lock()
        self._wake = threading.Event()  # flush() and close() do not wait for the interval
        self._idle = threading.Condition()
        self._busy = False  # a batch taken from the queue is being written
        self._stopping = False
        self._insert: _Insert | None = None
        if background:
            _BACKGROUND.add(self)

    def _start_writer(self) -> None:
        """The writer thread of this process, started with the first event: a server forks its workers after
        building the app, and a thread does not survive a fork."""
        with self._starting:
            if self._writer_pid != os.getpid():
                self._writer = threading.Thread(target=self._write_queued, name="lakegate-audit", daemon=True)
                self._writer.start()
                self._writer_pid = os.getpid()

    def record(
        self, access: Access, *, wait: bool = True, soon: bool = False, lines_there: bool = False
    ) -> bool:
        """Log the event, and store it unless nobody was authenticated: a stranger's request costs no database
        write (strangers can send many), only this log line, the access log's and a metric.

        False only with `wait=False` when the writer's queue is full: the caller must `store` the event (from a
        thread that may wait for the database). `soon`: the log line may wait for the end of the event loop's
        turn (`lakegate.logs.info_line`); `lines_there`: the record writer process may write it (`takes_lines`)."""
        store = access.status != UNAUTHENTICATED_STATUS
        records = self.records
        if records is not None:
            line_there = soon and lines_there
            if (line_there or store) and records.add(audit_entry(access, line_there, store)):
                if not line_there:
                    self._log(access, soon)
                return True
        self._log(access, soon)
        if not store:
            return True
        pending = self._pending
        if pending is not None:
            if self._writer_pid != PROCESS_ID[0]:
                self._start_writer()
            if len(pending) < MAX_PENDING:
                pending.append(access)
                return True
            if not wait:
                return False
        self.store([access])
        return True

    def _log(self, access: Access, soon: bool = False, created: float | None = None) -> None:
        message, event = audit_line(access)
        info_line(log, message, "audit", event, soon, created)

    def _write_here(self, entries: list[tuple[Any, ...]]) -> None:
        """The record writer process's entries, written by this process (it is gone)."""
        events = []
        for entry in entries:
            if entry[0] == ACCESS_ENTRY:
                message, fields = access_line(*entry[2:])
                info_line(ACCESS_LOG, message, "http", fields, created=entry[1])
            else:
                access = from_entry(entry)
                if entry[1]:
                    self._log(access, created=entry[3])  # the line's time is the event's, not now
                if entry[2]:
                    events.append(access)
        if events:
            self.store(events)

    def has_room(self) -> bool:
        """Whether `record(…, wait=False)` will queue an event rather than ask its caller to store it (only the
        event loop's thread queues events; the writer only takes them)."""
        return self._pending is not None and len(self._pending) < MAX_PENDING

    def store(self, events: Sequence[Access | tuple[Any, ...]]) -> bool:
        """Write events in one transaction; False when they could not be (logged and counted, never raised). An
        event may be a tuple of an Access's values with its time as a Unix time (the record writer process's)."""
        try:
            with self.db.write(catalog_change=False) as conn:
                insert = self._insert
                if insert is None or insert.dialect is not conn.dialect:
                    insert = self._insert = _Insert(conn.dialect)
                insert.run(conn, events)
        except sa.exc.SQLAlchemyError as exc:
            AUDIT_FAILURES.inc(len(events))
            log.error(
                "could not write %d audit event(s) to the database: %s", len(events), exc.__class__.__name__
            )
            return False
        return True

    def _write_queued(self) -> None:
        pending = self._pending
        assert pending is not None
        while True:
            self._wake.wait(WRITE_INTERVAL_SECONDS)
            self._wake.clear()
            while pending:
                self._busy = True  # before taking: flush() sees either the queue or the batch
                batch = [pending.popleft() for _ in range(min(len(pending), MAX_BATCH))]
                try:
                    self.store(batch)
                finally:
                    self._busy = False
            with self._idle:
                self._idle.notify_all()
            if self._stopping:
                return

    def flush(self) -> None:
        """Wait until every event queued so far in this process is written."""
        if self.records is not None:
            self.records.flush()
        if self._pending is None or self._writer_pid != os.getpid():
            return
        self._wake.set()
        with self._idle:
            while self._pending or self._busy:
                self._idle.wait(WRITE_INTERVAL_SECONDS)

    def close(self) -> None:
        """Write what is queued, then stop the writers (a clean shutdown: no event is lost)."""
        if self.records is not None:
            self.records.close()
        pending = self._pending
        if pending is None or self._writer is None or self._writer_pid != os.getpid():
            return
        self._stopping = True
        self._wake.set()
        self._writer.join(CLOSE_TIMEOUT_SECONDS)
        if self._writer.is_alive():
            log.error(
                "the audit writer did not finish within %ss: %d queued events are lost",
                CLOSE_TIMEOUT_SECONDS,
                len(pending),
            )
            return
        self._pending = None  # from now on each event is written at once
        if pending:  # recorded while the writer was stopping
            self.store(list(pending))

    def query(
        self, since: datetime | None = None, recipient: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The most recent `limit` events (oldest first) since a time; with `recipient`, that recipient's data
        accesses only (admin changes naming it are not its accesses)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidParameterError(f"limit must be 1 to {MAX_LIMIT}")
        _flush_writers()
        query = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        if recipient is not None:
            query = query.where(
                AuditEvent.recipient == _fit_column("recipient", recipient), AuditEvent.mode != ADMIN_MODE
            )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [event_json(row) for row in reversed(rows)]

    def search(self, where: AuditFilter, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent `limit` events matching `where`, newest first (the console's Activity table)."""
        _flush_writers()
        query = sa.select(AuditEvent).where(*where.conditions()).order_by(AuditEvent.id.desc()).limit(limit)
        with self.db.read() as conn:
            return [event_json(row) for row in conn.execute(query)]

    def events_for_charts(self, where: AuditFilter, limit: int = MAX_LIMIT * 10) -> list[Any]:
        """(at, recipient, operation, mode, files, data_bytes, outcome) of the matching events, at most `limit` (the
        newest): the console sums them per day in Python, the same on SQLite and PostgreSQL."""
        _flush_writers()
        query = (
            sa.select(
                AuditEvent.at,
                AuditEvent.recipient,
                AuditEvent.operation,
                AuditEvent.mode,
                AuditEvent.files,
                AuditEvent.data_bytes,
                AuditEvent.outcome,
            )
            .where(*where.conditions())
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return list(conn.execute(query))


def _flush_writers() -> None:
    for writer in list(_BACKGROUND):  # what this process has answered is in the trail it shows
        writer.flush()


@dataclass(frozen=True)
class AuditFilter:
    """The console's Activity filters; each None matches everything. `table` is TABLE, SCHEMA.TABLE or
    SHARE.SCHEMA.TABLE; `outcome` is ok, error (anything but ok) or one error code."""

    recipient: str | None = None
    share: str | None = None
    table: str | None = None
    operation: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        found: list[sa.ColumnElement[bool]] = []
        if self.since is not None:
            found.append(AuditEvent.at >= self.since)
        if self.until is not None:
            found.append(AuditEvent.at < self.until)
        for column, value in (
            (AuditEvent.recipient, self.recipient),
            (AuditEvent.share, self.share),
            (AuditEvent.operation, self.operation),
        ):
            if value:
                found.append(sa.func.lower(column) == _fit_column("recipient", value).lower())
        if self.table:
            parts = self.table.lower().rsplit(".", 2)
            columns = (AuditEvent.share, AuditEvent.schema_name, AuditEvent.table_name)[-len(parts) :]
            found += [
                sa.func.lower(c) == _fit_column("recipient", p) for c, p in zip(columns, parts, strict=True)
            ]
        if self.outcome == "error":
            found.append(AuditEvent.outcome != "ok")
        elif self.outcome:
            found.append(AuditEvent.outcome == _fit_column("outcome", self.outcome))
        return found


def _fit_column(column: str, value: Any) -> Any:
    """Text as the audit table can hold it: cut to the column's length, NUL (refused by PostgreSQL) replaced."""
    if not isinstance(value, str):
        return value
    return value.replace("\x00", "\ufffd")[: _LENGTHS[column]]


class _Insert:
    """The writer's INSERT: one statement of up to `ROWS_PER_INSERT` rows, its values plain parameters given to
    the database driver. SQLite's driver releases the GIL around each statement it steps, so a row per statement
    (`executemany`, which SQLAlchemy's `insert()` of many rows uses) handed the GIL back and forth with the event
    loop once per event: ~30 µs of the server's CPU per audited request. SQLAlchemy still defines the table
    (models, migrations), quotes its names and converts its one typed column (`at`) with its own bind processor:
    rows are stored as before."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.dialect = dialect
        table = AuditEvent.__table__
        quote = dialect.identifier_preparer
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"  # SQLite's, psycopg's
        columns = ", ".join(quote.quote(c) for c in _Columns._fields)
        # Names from the table's definition, values as parameters: nothing of a request's in the text.
        self._head = f"INSERT INTO {quote.format_table(table)} ({columns}) VALUES "  # noqa: S608
        self._statements: dict[int, str] = {}
        at: Callable[[Any], Any] | None = table.c.at.type.dialect_impl(dialect).bind_processor(dialect)
        self._sqlalchemy_at: Callable[[Any], Any] = at or (lambda value: value)
        # SQLite keeps times as text, which SQLAlchemy's processor formats in Python (~5 µs, more than storing the
        # row); datetime's own isoformat makes the same text ~10x faster, used when it does (checked here).
        sample = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
        self._text_at = _iso_text(sample) == self._sqlalchemy_at(sample)

    def run(self, conn: sa.Connection, events: Sequence[Access | tuple[Any, ...]]) -> None:
        for start in range(0, len(events), ROWS_PER_INSERT):
            rows = self._rows(events[start : start + ROWS_PER_INSERT])
            conn.exec_driver_sql(self._statement(len(rows)), tuple(chain.from_iterable(rows)))

    def _rows(self, events: Sequence[Access | tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The events' values, column by column (C loops, not Python's per event: the writer's time is GIL
        time); only text too long for its column or holding a NUL is changed."""
        columns = list(zip(*events, strict=True))
        for index, length in _TEXT_LENGTHS:
            texts = [value for value in columns[index] if value.__class__ is str]
            if texts and (max(map(len, texts)) > length or "\x00" in "".join(texts)):
                return [self._row(access) for access in events]
        if all(at.__class__ is float for at in columns[0]):  # the record writer process's events
            columns[0] = tuple(map(self._stored_time, columns[0]))
        elif self._text_at and all(at.tzinfo is UTC for at in columns[0]):
            columns[0] = tuple(map(_iso_text, columns[0]))
        else:
            columns[0] = tuple(map(self._sqlalchemy_at, columns[0]))
        return list(zip(*columns, strict=True))

    def _stored_time(self, unix_time: float) -> Any:
        """The `at` column's value of a Unix time: that of `datetime.fromtimestamp(unix_time, UTC)`, as text made
        without the datetime where SQLite keeps text."""
        if not self._text_at:
            return self._sqlalchemy_at(datetime.fromtimestamp(unix_time, UTC))
        second, micro = epoch_parts(unix_time)
        text = second_text(second)
        return f"{text[:10]} {text[11:]}.{micro:06d}"

    def _statement(self, rows: int) -> str:
        statement = self._statements.get(rows)
        if statement is None:
            one = f"({', '.join([self._mark] * len(_Columns._fields))})"
            statement = self._head + ", ".join([one] * rows)
            if rows == ROWS_PER_INSERT:  # the others (a batch's last statement) are made when needed
                self._statements[rows] = statement
        return statement

    def _row(self, event: Access | tuple[Any, ...]) -> tuple[Any, ...]:
        """The event's values; only text too long for its column or holding a NUL is changed."""
        at = event[0]
        access = Access._make((datetime.fromtimestamp(at, UTC) if at.__class__ is float else at, *event[1:]))
        for index, length in _TEXT_LENGTHS:
            value = access[index]
            if value.__class__ is str and (len(value) > length or "\x00" in value):
                access = access._replace(
                    **{key: _fit_column(key, v) for key, v in zip(_Columns._fields, access, strict=True)}
                )
                break
        at = access.at
        stored = _iso_text(at) if self._text_at and at.tzinfo is UTC else self._sqlalchemy_at(at)
        return (stored, *access[1:])


def _iso_text(at: datetime) -> str:
    """`2026-01-02 03:04:05.000006` of an aware UTC datetime."""
    return at.isoformat(" ", "microseconds")[:26]


_LENGTHS = {c.name: getattr(c.type, "length", None) for c in AuditEvent.__table__.c}
# (index in an Access, column length) of the text columns
_TEXT_LENGTHS = tuple(
    (index, length) for index, key in enumerate(_Columns._fields) if (length := _LENGTHS[key])
)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30s`, `15m`, `2h`, `7d`, `1w` ago, or an ISO-8601 time (naive means UTC)."""
    now = now or utcnow()
    value = text.strip()
    relative = _RELATIVE.match(value.lower())
    if relative:
        try:
            return now - timedelta(seconds=int(relative.group(1)) * _UNITS[relative.group(2)])
        except (OverflowError, ValueError):  # before year 1, or more digits than int() takes
            raise InvalidParameterError(f"since: '{text}' reaches back too far") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParameterError(
            f"since: '{text}' is neither a duration like 15m, 2h, 7d nor an ISO time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
