"""Async queries in the database (`async_queries`): what every replica needs to answer a poll for a query any
of them started. Rows expire; expired ones are deleted as new queries arrive."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import Base

QUERIES = Base.metadata.tables["async_queries"]  # models.AsyncQueryRow


def dedupe_key(recipient: str, table_key: str, idempotency_key: str) -> str:
    return hashlib.sha256(f"{recipient}\0{table_key}\0{idempotency_key}".encode()).hexdigest()


class QueryStore:
    def __init__(self, db: Database, ttl: timedelta) -> None:
        self.db = db
        self.ttl = ttl

    def find(self, dedupe: str) -> sa.Row[Any] | None:
        """The unexpired query submitted under this (recipient, table, idempotency key)."""
        with self.db.read() as conn:
            return conn.execute(
                sa.select(QUERIES).where(QUERIES.c.dedupe_key == dedupe, QUERIES.c.expires_at > utcnow())
            ).first()

    def get(self, query_id: str) -> sa.Row[Any] | None:
        if "\x00" in query_id:  # no id has one, and PostgreSQL refuses to compare it
            return None
        with self.db.read() as conn:
            return conn.execute(
                sa.select(QUERIES).where(QUERIES.c.id == query_id, QUERIES.c.expires_at > utcnow())
            ).first()

    def pending(self, recipient: str) -> int:
        with self.db.read() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(QUERIES)
                .where(
                    QUERIES.c.recipient == recipient,
                    QUERIES.c.status == "pending",
                    QUERIES.c.expires_at > utcnow(),
                )
            ).scalar()
        return int(count or 0)

    def insert(
        self, query_id: str, recipient: str, table_key: str, dedupe: str, checksum: str, spec: dict[str, Any]
    ) -> bool:
        """Record a new pending query, replacing an expired or failed one under the same key. False if another
        replica recorded a live one first (the caller then reads it with `find`)."""
        now = utcnow()
        try:
            with self.db.write() as conn:
                conn.execute(sa.delete(QUERIES).where(QUERIES.c.expires_at <= now))
                conn.execute(
                    sa.delete(QUERIES).where(QUERIES.c.dedupe_key == dedupe, QUERIES.c.status == "failed")
                )
                conn.execute(
                    sa.insert(QUERIES).values(
                        id=query_id,
                        recipient=recipient,
                        table_key=table_key,
                        dedupe_key=dedupe,
                        checksum=checksum,
                        spec=spec,
                        status="pending",
                        error=None,
                        created_at=now,
                        expires_at=now + self.ttl,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def finish(self, query_id: str, status: str, error: str | None) -> None:
        """Record the outcome (again, when another replica recomputed it); the query is kept `ttl` from now."""
        expires: datetime = utcnow() + self.ttl
        with self.db.write() as conn:
            conn.execute(
                sa.update(QUERIES)
                .where(QUERIES.c.id == query_id, QUERIES.c.status != status)
                .values(status=status, error=error, expires_at=expires)
            )
