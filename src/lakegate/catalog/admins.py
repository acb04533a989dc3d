"""Admin tokens: the bearer tokens of the /admin API, distinct from recipients' tokens.

They are created with the CLI (`lakegate admin-tokens create NAME`), which works on the database directly, so
there is no chicken-and-egg: without an admin token the admin API refuses every request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.base import check_name
from lakegate.catalog.bearer_tokens import active, expiry, new_token, revoke_active, token_hash, view
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import AdminToken
from lakegate.catalog.recipients import MAX_SECONDS
from lakegate.exceptions import InvalidParameterError, NotFoundError, UnauthenticatedError


class AdminTokens:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(self, name: str, expires_in: int | None = None) -> tuple[dict[str, Any], str]:
        """The new token's description and the token itself (shown once)."""
        check_name("admin token", name)
        if expires_in is not None and not 1 <= expires_in <= MAX_SECONDS:  # 0 would be dead on arrival
            raise InvalidParameterError(f"expires-in must be 1 to {MAX_SECONDS} seconds")
        now, token = self.clock(), new_token()
        with self.db.write() as conn:
            conn.execute(
                sa.insert(AdminToken).values(
                    name=name,
                    token_hash=token_hash(token),
                    created_at=now,
                    expires_at=expiry(now, expires_in),
                )
            )
        return self.all(name)[-1], token

    def all(self, name: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(AdminToken).order_by(AdminToken.id)
        if name is not None:
            query = query.where(AdminToken.name == name)
        now = self.clock()
        with self.db.read() as conn:
            return [{"name": row.name, **view(row, now)} for row in conn.execute(query)]

    def revoke(self, name: str) -> dict[str, Any]:
        with self.db.write() as conn:
            count = revoke_active(conn, AdminToken, AdminToken.name == name, self.clock())
        if count == 0 and not self.all(name):
            raise NotFoundError(f"admin token '{name}' not found")
        return {"name": name, "tokensRevoked": count}

    def authenticate(self, bearer_token: str | None) -> str:
        """The admin token's name; UnauthenticatedError for a missing, wrong, expired or revoked token."""
        return self.identify(bearer_token)[1]

    def identify(self, bearer_token: str | None) -> tuple[int, str]:
        """The admin token's row id and name (the console's session remembers the id); UnauthenticatedError
        for a missing, wrong, expired or revoked token."""
        if not bearer_token:
            raise UnauthenticatedError("an admin bearer token is required")
        digest = token_hash(bearer_token)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(AdminToken.id, AdminToken.name).where(
                    AdminToken.token_hash == digest, active(AdminToken, self.clock())
                )
            ).first()
        # Matched by SHA-256 in the database: no constant-time comparison is needed (see SqlCatalog).
        if row is None:
            raise UnauthenticatedError("missing, invalid, expired or revoked admin token")
        return int(row.id), str(row.name)

    def still_active(self, token_id: int) -> str | None:
        """The name of admin token `token_id` while it may authenticate (not revoked, not expired), else None:
        a console session ends with the token it was opened with."""
        with self.db.read() as conn:
            name = conn.execute(
                sa.select(AdminToken.name).where(AdminToken.id == token_id, active(AdminToken, self.clock()))
            ).scalar()
        return None if name is None else str(name)
