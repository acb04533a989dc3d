"""Bearer tokens for recipients and administrators: made random, shown once, kept only as a hash.

A token is `lg_` + 43 URL-safe characters (256 random bits). The database keeps its SHA-256: a fast hash is
right here, unlike for passwords, because a 256-bit random secret cannot be guessed, so there is nothing for
a slow hash to slow down; lookups stay one indexed equality per request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lakegate.timestamps import iso, iso_or_none

PREFIX = "lg_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def active(table: Any, now: datetime | sa.ColumnElement[datetime]) -> sa.ColumnElement[bool]:
    """The condition for a token row that may authenticate at `now` (a time or a bound parameter): not revoked,
    not expired."""
    return sa.and_(table.revoked_at.is_(None), sa.or_(table.expires_at.is_(None), table.expires_at > now))


def revoke_active(conn: sa.Connection, model: Any, condition: sa.ColumnElement[bool], now: datetime) -> int:
    """Revoke, as of `now`, the active tokens of `model` that match `condition`; returns how many."""
    result = conn.execute(sa.update(model).where(condition, active(model, now)).values(revoked_at=now))
    return int(result.rowcount)


def expiry(now: datetime, seconds: int | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)


def profile(endpoint: str, token: str, expires_at: datetime | None) -> dict[str, Any]:
    """A Delta Sharing profile file's content (protocol.md §8)."""
    out: dict[str, Any] = {"shareCredentialsVersion": 1, "endpoint": endpoint, "bearerToken": token}
    if expires_at is not None:
        out["expirationTime"] = iso(expires_at)
    return out


def status(row: Any, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def view(row: Any, now: datetime) -> dict[str, Any]:
    """A token row as the CLI and admin API show it: never the token, never its hash."""
    return {
        "id": row.id,
        "createdAt": iso(row.created_at),
        "expiresAt": iso_or_none(row.expires_at),
        "revokedAt": iso_or_none(row.revoked_at),
        "status": status(row, now),
    }
