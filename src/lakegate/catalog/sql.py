"""The catalog on a SQL database: what the protocol endpoints read on every request.

Every request authenticates with one indexed query (token hash → its recipient and granted shares) and looks
its table up with another. A server remembers both answers for `catalogCacheSeconds` (`lakegate.catalog.recent`:
default 1 s), so a revocation, an expiry or a grant change made by any replica or by the CLI takes effect within
that second everywhere; a token's expiry time is checked on every request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.base import (
    Catalog,
    Principal,
    SchemaInfo,
    ShareInfo,
    TableInfo,
    schema_not_found,
    share_not_found,
    table_not_found,
)
from lakegate.catalog.bearer_tokens import active, token_hash
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.federation import FederatedAuthenticator
from lakegate.catalog.models import SCHEMAS, SHARES, TABLES, Grant, Recipient, RecipientToken, UtcDateTime
from lakegate.catalog.recent import Recent
from lakegate.exceptions import UnauthenticatedError
from lakegate.oidc import looks_like_jwt
from lakegate.timestamps import iso

log = logging.getLogger("lakegate.auth")

UNAUTHENTICATED = "missing, invalid, expired or revoked bearer token"
ANONYMOUS = "anonymous"


class SqlCatalog(Catalog):
    def __init__(
        self,
        db: Database,
        *,
        allow_anonymous: bool = False,
        clock: Callable[[], datetime] = utcnow,
        federation: FederatedAuthenticator | None = None,
        cache_seconds: float = 0.0,
    ) -> None:
        self.db = db
        self._allow_anonymous = allow_anonymous
        self._clock = clock
        self._federation = federation
        self.recent = Recent(cache_seconds, generation=lambda: db.generation)

    def authenticate(self, bearer_token: str | None) -> Principal:
        if not bearer_token:
            if self._allow_anonymous:
                return Principal(ANONYMOUS)
            log.info("refused (401): no bearer token")
            raise UnauthenticatedError(UNAUTHENTICATED)
        if self._federation is not None:
            # A JWT from a recipient's own identity provider (OIDC federation); None: not one a policy takes.
            federated = self._federation.authenticate(bearer_token)
            if federated is not None:
                return federated
        digest = token_hash(bearer_token)
        now = self._clock()
        rows = self.recent.get(("token", digest), lambda: self._token_rows(digest, now))
        if rows and rows[0].expires_at is not None and rows[0].expires_at <= now:
            rows = self._token_rows(digest, now)  # remembered, but it has expired since
        if not rows:
            if self._allow_anonymous:
                # As the reference server without a token: clients always send their profile's token, and an
                # unknown one reads as anonymous (which sees every share anyway, so nothing is gained by it).
                return Principal(ANONYMOUS)
            log.info("refused (401): %s", self._why_refused(digest))
            raise UnauthenticatedError(UNAUTHENTICATED)
        return _principal(rows)

    def remembered(self, bearer_token: str | None) -> Principal | None:
        """The principal `authenticate` would answer from memory alone (no database, nothing that blocks: the
        event loop may call it), or None: then call `authenticate`."""
        if not bearer_token or (self._federation is not None and looks_like_jwt(bearer_token)):
            return None
        rows = self.recent.peek(("token", token_hash(bearer_token)))
        if not rows or (rows[0].expires_at is not None and rows[0].expires_at <= self._clock()):
            return None
        return _principal(rows)

    def _token_rows(self, digest: str, now: datetime) -> list[Any]:
        # No constant-time comparison is needed: the database matches the SHA-256 of the caller's input, and
        # how long that lookup takes can reveal at most the hash of a guess, nothing about a stored token.
        with self.db.read() as conn:
            return list(conn.execute(_AUTHENTICATE, {"digest": digest, "now": now}).all())

    def _why_refused(self, digest: str) -> str:
        """For the operator's log only (the caller is told nothing): whose token it was and why it failed."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    Recipient.name, RecipientToken.id, RecipientToken.revoked_at, RecipientToken.expires_at
                )
                .join(Recipient, Recipient.id == RecipientToken.recipient_id)
                .where(RecipientToken.token_hash == digest)
            ).first()
        if row is None:
            return "unknown token"
        if row.revoked_at is not None:
            return f"token {row.id} of recipient '{row.name}' was revoked at {iso(row.revoked_at)}"
        return f"token {row.id} of recipient '{row.name}' expired at {iso(row.expires_at)}"

    def list_shares(self, principal: Principal) -> list[ShareInfo]:
        return list(self.recent.get(("shares", principal.shares), lambda: self._list_shares(principal)))

    def _list_shares(self, principal: Principal) -> list[ShareInfo]:
        query = sa.select(SHARES).order_by(SHARES.c.position, SHARES.c.id)
        if principal.shares is not None:
            if not principal.shares:
                return []
            query = query.where(SHARES.c.name_key.in_(sorted(principal.shares)))
        with self.db.read() as conn:
            return [_share_info(row) for row in conn.execute(query)]

    def get_share(self, principal: Principal, share: str) -> ShareInfo:
        self._check_grant(principal, share)
        return self.recent.get(("share", share.lower()), lambda: self._get_share(share))

    def _get_share(self, share: str) -> ShareInfo:
        with self.db.read() as conn:
            row = conn.execute(_GET_SHARE, {"share": share.lower()}).first()
        if row is None:
            raise share_not_found(share)
        return _share_info(row)

    def list_schemas(self, principal: Principal, share: str) -> list[SchemaInfo]:
        self._check_grant(principal, share)
        return list(self.recent.get(("schemas", share.lower()), lambda: self._list_schemas(share)))

    def _list_schemas(self, share: str) -> list[SchemaInfo]:
        query = (
            sa.select(SHARES.c.name.label("share"), SCHEMAS.c.name)
            .select_from(SHARES.outerjoin(SCHEMAS, SCHEMAS.c.share_id == SHARES.c.id))
            .where(SHARES.c.name_key == share.lower())
            .order_by(SCHEMAS.c.position, SCHEMAS.c.id)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise share_not_found(share)
        return [SchemaInfo(row.name, row.share) for row in rows if row.name is not None]

    def list_tables(self, principal: Principal, share: str, schema: str | None) -> list[TableInfo]:
        self._check_grant(principal, share)
        key = ("tables", share.lower(), schema if schema is None else schema.lower())
        return list(self.recent.get(key, lambda: self._list_tables(share, schema)))

    def _list_tables(self, share: str, schema: str | None) -> list[TableInfo]:
        on_schema = SCHEMAS.c.share_id == SHARES.c.id
        if schema is not None:
            matches = SCHEMAS.c.name_key == schema.lower() if _comparable(schema) else sa.false()
            on_schema = sa.and_(on_schema, matches)
        query = (
            _table_columns()
            .select_from(
                SHARES.outerjoin(SCHEMAS, on_schema).outerjoin(TABLES, TABLES.c.schema_id == SCHEMAS.c.id)
            )
            .where(SHARES.c.name_key == share.lower())
            .order_by(SCHEMAS.c.position, SCHEMAS.c.id, TABLES.c.position, TABLES.c.id)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise share_not_found(share)
        if schema is not None and rows[0].schema is None:
            raise schema_not_found(share, schema)
        return [_table_info(row) for row in rows if row.name is not None]

    def get_table(self, principal: Principal | None, share: str, schema: str, table: str) -> TableInfo:
        if (principal is not None and not principal.may_see(share)) or not _comparable(share, schema, table):
            raise table_not_found(share, schema, table)
        names = {"share": share.lower(), "schema": schema.lower(), "table": table.lower()}
        row = self.recent.get(("table", *names.values()), lambda: self._table_row(names))
        if row is None:
            raise table_not_found(share, schema, table)
        return row

    def _table_row(self, names: dict[str, str]) -> TableInfo | None:
        with self.db.read() as conn:
            row = conn.execute(_GET_TABLE, names).first()
        return None if row is None else _table_info(row)

    @staticmethod
    def _check_grant(principal: Principal, share: str) -> None:
        # Ungranted answers exactly as nonexistent: the same exception, raised before any lookup.
        if not principal.may_see(share) or not _comparable(share):
            raise share_not_found(share)


# Built once: the token's recipient and granted shares, if the token is active at `now` (one indexed lookup).
_AUTHENTICATE = (
    sa.select(Recipient.name, Recipient.all_shares, SHARES.c.name_key, RecipientToken.expires_at)
    .select_from(RecipientToken)
    .join(Recipient, Recipient.id == RecipientToken.recipient_id)
    .outerjoin(Grant, Grant.recipient_id == Recipient.id)
    .outerjoin(SHARES, SHARES.c.id == Grant.share_id)
    .where(
        RecipientToken.token_hash == sa.bindparam("digest"),
        active(RecipientToken, sa.bindparam("now", type_=UtcDateTime())),
    )
)


_GET_SHARE = sa.select(SHARES).where(SHARES.c.name_key == sa.bindparam("share"))


def _principal(rows: list[Any]) -> Principal:
    """The recipient of an active token's rows (one per granted share)."""
    first = rows[0]
    if first.all_shares:
        return Principal(first.name)
    return Principal(first.name, frozenset(r.name_key for r in rows if r.name_key is not None))


def _comparable(*names: str) -> bool:
    """False for a name no row can have and PostgreSQL cannot even compare (a NUL character): not found."""
    return not any("\x00" in name for name in names)


def _table_columns() -> sa.Select[Any]:
    return sa.select(
        TABLES.c.name,
        SCHEMAS.c.name.label("schema"),
        SHARES.c.name.label("share"),
        TABLES.c.location,
        TABLES.c.public_id,
        SHARES.c.public_id.label("share_id"),
        TABLES.c.auxiliary_locations,
        TABLES.c.history_shared,
        TABLES.c.start_version,
    )


# Built once, like _AUTHENTICATE: a table by its names (lower-cased).
_GET_TABLE = (
    _table_columns()
    .select_from(
        SHARES.join(SCHEMAS, SCHEMAS.c.share_id == SHARES.c.id).join(
            TABLES, TABLES.c.schema_id == SCHEMAS.c.id
        )
    )
    .where(
        SHARES.c.name_key == sa.bindparam("share"),
        SCHEMAS.c.name_key == sa.bindparam("schema"),
        TABLES.c.name_key == sa.bindparam("table"),
    )
)


def _share_info(row: Any) -> ShareInfo:
    return ShareInfo(row.name, row.public_id, row.display_name, row.comment, dict(row.properties or {}))


def _table_info(row: Any) -> TableInfo:
    return TableInfo(
        name=row.name,
        schema=row.schema,
        share=row.share,
        location=row.location,
        id=row.public_id,
        share_id=row.share_id,
        auxiliary_locations=tuple(row.auxiliary_locations or ()),
        history_shared=bool(row.history_shared),
        start_version=int(row.start_version),
    )
