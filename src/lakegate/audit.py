"""The audit trail: every data access (metadata, query, changes, temporary credentials), kept in the database
and written as one structured log line, whatever its outcome.

Writing an event never fails the request it describes: a failed write is logged and counted
(`lakegate_audit_write_failures_total`), and the log line is still written.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import AuditEvent
from lakegate.exceptions import InvalidParameterError
from lakegate.metrics import AUDIT_FAILURES
from lakegate.timestamps import iso

log = logging.getLogger("lakegate.audit")
REPLICA = f"{socket.gethostname()}:{os.getpid()}"
MAX_LIMIT = 10_000
UNAUTHENTICATED_STATUS = 401
ADMIN_MODE = "admin"  # the mode of admin changes (data accesses are "url" or "dir")
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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
    replica: str = REPLICA
    actor: str | None = None  # admin changes: who made it


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
    }


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, access: Access) -> None:
        """Log the event, and store it unless nobody was authenticated: a stranger's request costs no database
        write (strangers can send many), only this log line, the access log's and a metric."""
        event = event_json(access)
        who = f"{access.actor} on {access.recipient or '-'}" if access.actor else access.recipient
        log.info(
            "%s %s %s: %s (client %s)",
            who or "(unauthenticated)",
            access.operation,
            event["table"],
            access.outcome,
            access.client or "-",
            extra={"audit": event},
        )
        if access.status == UNAUTHENTICATED_STATUS:
            return
        values = {key: _fit_column(key, value) for key, value in asdict(access).items()}
        try:
            with self.db.write() as conn:
                conn.execute(sa.insert(AuditEvent).values(**values))
        except sa.exc.SQLAlchemyError as exc:
            AUDIT_FAILURES.inc()
            log.error("could not write the audit event to the database: %s", exc.__class__.__name__)

    def query(
        self, since: datetime | None = None, recipient: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The most recent `limit` events (oldest first) since a time; with `recipient`, that recipient's data
        accesses only (admin changes naming it are not its accesses)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidParameterError(f"limit must be 1 to {MAX_LIMIT}")
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
        query = sa.select(AuditEvent).where(*where.conditions()).order_by(AuditEvent.id.desc()).limit(limit)
        with self.db.read() as conn:
            return [event_json(row) for row in conn.execute(query)]

    def events_for_charts(self, where: AuditFilter, limit: int = MAX_LIMIT * 10) -> list[Any]:
        """(at, recipient, operation, mode, files, outcome) of the matching events, at most `limit` (the
        newest): the console sums them per day in Python, the same on SQLite and PostgreSQL."""
        query = (
            sa.select(
                AuditEvent.at,
                AuditEvent.recipient,
                AuditEvent.operation,
                AuditEvent.mode,
                AuditEvent.files,
                AuditEvent.outcome,
            )
            .where(*where.conditions())
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return list(conn.execute(query))


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
    length = getattr(AuditEvent.__table__.c[column].type, "length", None)
    return value.replace("\x00", "\ufffd")[:length]


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
