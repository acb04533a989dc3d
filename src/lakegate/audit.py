"""The audit trail: every data access (metadata, query, changes, temporary credentials), kept in the database
and written as one structured log line, whatever its outcome.

Writing an event never fails the request it describes: a failed write is logged and counted
(`lakegate_audit_write_failures_total`), and the log line is still written.

A server stores its events off the request path: a background thread writes what has queued up, every 50 ms,
in one transaction per batch. The queue is bounded
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
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import AuditEvent
from lakegate.exceptions import InvalidParameterError
from lakegate.logs import info_line
from lakegate.metrics import AUDIT_FAILURES
from lakegate.timestamps import iso

log = logging.getLogger("lakegate.audit")
HOST = socket.gethostname()
MAX_LIMIT = 10_000
UNAUTHENTICATED_STATUS = 401
ADMIN_MODE = "admin"  # the mode of admin changes (data accesses are "url" or "dir")
MAX_PENDING = 10_000  # events queued for the writer (a few MB); past it requests write their own
MAX_BATCH = 500  # events per transaction
WRITE_INTERVAL_SECONDS = 0.05  # how often the writer looks for events
CLOSE_TIMEOUT_SECONDS = 30  # a clean shutdown waits this long for the queue to be written
_BACKGROUND: weakref.WeakSet[AuditLog] = weakref.WeakSet()  # this process's writers, waited for by reads
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


_REPLICA: list[tuple[int, str]] = [(0, "")]  # (pid, "host:pid") of this process: made once, not per event


def _replica() -> str:
    pid = os.getpid()
    known = _REPLICA[0]
    if known[0] != pid:  # a forked worker's own
        known = _REPLICA[0] = (pid, f"{HOST}:{pid}")
    return known[1]


@dataclass(frozen=True)
class Access:
    """One data access as the audit trail records it."""

    recipient: str | None
    operation: str  # metadata | query | changes | temporary-credentials
    share: str | None
    schema_name: str | None
    table_name: str | None
    mode: str  # "url" (files by signed URL) or "dir" (directory access by temporary credentials)
    status: int
    outcome: str  # "ok", or the error code answered
    version: int | None = None
    files: int | None = None
    client: str | None = None
    user_agent: str | None = None
    at: datetime = field(default_factory=utcnow)
    replica: str = field(default_factory=_replica)  # the worker process, when several
    actor: str | None = None  # admin changes: who made it
    data_bytes: int | None = None  # data answers: the total size of the files listed


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
    table = ".".join(p for p in (row.share, row.schema_name, row.table_name) if p) or None
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


class AuditLog:
    """`background`: events are stored by a writer thread (a server); else each in its own transaction (the
    CLI). `close()` ends the writer after it has stored everything queued."""

    def __init__(self, db: Database, *, background: bool = False) -> None:
        self.db = db
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

    def record(self, access: Access, *, wait: bool = True, soon: bool = False) -> bool:
        """Log the event, and store it unless nobody was authenticated: a stranger's request costs no database
        write (strangers can send many), only this log line, the access log's and a metric.

        False only with `wait=False` when the writer's queue is full: the caller must `store` the event (from a
        thread that may wait for the database). `soon`: the log line may wait for the end of the event loop's
        turn (`lakegate.logs.info_line`)."""
        event = event_json(access)
        who = f"{access.actor} on {access.recipient or '-'}" if access.actor else access.recipient
        info_line(
            log,
            f"{who or '(unauthenticated)'} {access.operation} {event['table']}: {access.outcome} "
            f"(client {access.client or '-'})",
            "audit",
            event,
            soon,
        )
        if access.status == UNAUTHENTICATED_STATUS:
            return True
        pending = self._pending
        if pending is not None:
            if self._writer_pid != os.getpid():
                self._start_writer()
            if len(pending) < MAX_PENDING:
                pending.append(access)
                return True
            if not wait:
                return False
        self.store([access])
        return True

    def store(self, events: list[Access]) -> None:
        """Write events in one transaction (a failure is logged and counted, never raised)."""
        rows = [_row(e) for e in events]
        try:
            with self.db.write(catalog_change=False) as conn:
                conn.execute(sa.insert(AuditEvent), rows)
        except sa.exc.SQLAlchemyError as exc:
            AUDIT_FAILURES.inc(len(rows))
            log.error(
                "could not write %d audit event(s) to the database: %s", len(rows), exc.__class__.__name__
            )

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
        if self._pending is None or self._writer_pid != os.getpid():
            return
        self._wake.set()
        with self._idle:
            while self._pending or self._busy:
                self._idle.wait(WRITE_INTERVAL_SECONDS)

    def close(self) -> None:
        """Write what is queued, then stop the writer (a clean shutdown: no event is lost)."""
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


def _row(access: Access) -> dict[str, Any]:
    """The event's columns. A copy of its attributes (its fields only: a dataclass), not dataclasses.asdict, which
    deep-copies every value; only text too long or holding a NUL is changed (the writer's time is GIL time)."""
    row = dict(vars(access))
    for key, length in _TEXT_LENGTHS:
        value = row[key]
        if isinstance(value, str) and (len(value) > length or "\x00" in value):
            row[key] = _fit_column(key, value)
    return row


_FIELDS = tuple(f.name for f in fields(Access))
_LENGTHS = {c.name: getattr(c.type, "length", None) for c in AuditEvent.__table__.c}
_TEXT_LENGTHS = tuple((key, length) for key, length in _LENGTHS.items() if length and key in _FIELDS)


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
