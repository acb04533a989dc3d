"""The catalog on a SQL database: what the protocol endpoints read on every request.

Every request authenticates with one indexed query (token hash, or the credential an access token names → its
recipient and granted shares) and looks its table up with another. A server remembers both answers for
`catalogCacheSeconds` (`lakegate.catalog.recent`: default 1 s), so a revocation, an expiry or a grant change
made by any replica or by the CLI takes effect within that second everywhere; a credential's expiry time is
checked on every request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from lakegate.auth.access_tokens import AccessTokens, is_access_token
from lakegate.auth.oidc import looks_like_jwt
from lakegate.catalog.base import (
    BasicCredentials,
    Catalog,
    Credential,
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
from lakegate.catalog.models import (
    SCHEMAS,
    SHARES,
    TABLES,
    Grant,
    Recipient,
    RecipientClientSecret,
    RecipientPublicKey,
    RecipientToken,
    UtcDateTime,
)
from lakegate.catalog.recent import Recent
from lakegate.exceptions import UnauthenticatedError
from lakegate.timestamps import iso

log = logging.getLogger("lakegate.auth")

UNAUTHENTICATED = "missing, invalid, expired or revoked bearer token"
ANONYMOUS = "anonymous"
# How to find a credential's recipient: (memory key, query, its parameters).
Lookup = tuple[tuple[Any, ...], sa.Select[Any], dict[str, Any]]


class SqlCatalog(Catalog):
    def __init__(
        self,
        db: Database,
        *,
        allow_anonymous: bool = False,
        clock: Callable[[], datetime] = utcnow,
        access_tokens: AccessTokens | None = None,
        federation: FederatedAuthenticator | None = None,
        cache_seconds: float = 0.0,
    ) -> None:
        """`access_tokens`: verifies the token endpoint's access tokens (None: none are accepted);
        `federation`: OIDC federation (JWTs from recipients' own identity providers)."""
        self.db = db
        self._allow_anonymous = allow_anonymous
        self._clock = clock
        self._access_tokens = access_tokens
        self._federation = federation
        self.recent = Recent(cache_seconds, generation=db.change_mark)

    def authenticate(self, credential: Credential) -> Principal:
        """The one place every request is authenticated, whatever the method: an opaque bearer token, Basic
        credentials, an access token of the token endpoint, or a federated JWT. Each ends in one indexed query
        of the recipient's current state (remembered for `catalogCacheSeconds`), so revocations and grant
        changes count within that time, and a credential's own expiry on every request."""
        if not credential:
            return self._refuse("no bearer token")
        if self._federation is not None and self._may_be_federated(credential):
            # A JWT from a recipient's own identity provider (OIDC federation); None: not one a policy takes.
            federated = self._federated(str(credential), self._federation)
            if federated is not None:
                return federated
        lookup = self._lookup(credential)
        if lookup is None:
            return self._refuse("an access token that does not verify, or Basic credentials no row can hold")
        key, query, params = lookup

        def load() -> _Found | None:
            # No constant-time comparison is needed: the database matches the SHA-256 of the caller's input,
            # and how long that lookup takes can reveal at most the hash of a guess, nothing about a stored one.
            with self.db.read() as conn:
                rows = list(conn.execute(query, {**params, "now": self._clock()}).all())
            return _Found(_principal(rows), rows[0].expires_at) if rows else None

        found = self.recent.get(key, load)
        if found is not None and found.expires_at is not None and found.expires_at <= self._clock():
            found = load()  # remembered, but it has expired since
        if found is None:
            return self._refuse(self._why_refused(key, params))
        return found.principal

    def remembered(self, credential: Credential) -> Principal | None:
        """The principal `authenticate` would answer from memory alone (no database, nothing that blocks: the
        event loop may call it), or None: then call `authenticate`."""
        if not credential:
            return None
        if self._may_be_federated(credential):
            jwt = self.recent.peek(("jwt", token_hash(str(credential))))
            return jwt[0] if jwt is not None and jwt[1] > self._clock().timestamp() else None
        lookup = self._lookup(credential)
        found: _Found | None = None if lookup is None else self.recent.peek(lookup[0])
        if found is None or (found.expires_at is not None and found.expires_at <= self._clock()):
            return None
        return found.principal

    def change_mark(self) -> Hashable:
        return self.db.change_mark()

    def _may_be_federated(self, credential: str | BasicCredentials) -> bool:
        """Whether `credential` may be a federated JWT (then federation is asked first)."""
        return (
            self._federation is not None
            and isinstance(credential, str)
            and not is_access_token(credential)
            and looks_like_jwt(credential)
        )

    def _federated(self, token: str, federation: FederatedAuthenticator) -> Principal | None:
        """A federated JWT's principal, remembered as a token's is (the same bytes verified a moment ago verify
        again; policy and grant changes are seen within the same second); its `exp` is checked every time."""
        key = ("jwt", token_hash(token))
        found = self.recent.get(key, lambda: federation.verify(token))
        if found is not None and found[1] <= self._clock().timestamp():
            found = federation.verify(token)  # remembered, but it has expired since: refused now
        return None if found is None else found[0]

    def _lookup(self, credential: str | BasicCredentials) -> Lookup | None:
        """How to find the recipient of `credential`: (memory key, query, parameters); None when it cannot be
        anyone's (an access token that does not verify, Basic credentials no row can hold)."""
        if isinstance(credential, BasicCredentials):
            if not _comparable(credential.user, credential.password):
                return None
            digest, name = token_hash(credential.password), credential.user.lower()
            return ("basic", name, digest), _AUTHENTICATE_BASIC, {"digest": digest, "name": name}
        if is_access_token(credential):
            # An access token is as alive as the client secret or public key that obtained it, and its recipient.
            grant = None if self._access_tokens is None else self._access_tokens.verify(credential)
            if grant is None:
                return None
            params = {
                "rid": grant.recipient_id,
                "cid": grant.credential_id,
                "created": grant.credential_created,
            }
            return ("access", grant.via, *params.values()), _ACCESS[grant.via], params
        digest = token_hash(credential)
        return ("token", digest), _AUTHENTICATE, {"digest": digest}

    def _refuse(self, why: str) -> Principal:
        if self._allow_anonymous:
            # As the reference server without a token: clients always send their profile's token, and an
            # unknown one reads as anonymous (which sees every share anyway, so nothing is gained by it).
            return Principal(ANONYMOUS)
        log.info("refused (401): %s", why)
        raise UnauthenticatedError(UNAUTHENTICATED)

    def _why_refused(self, key: tuple[Any, ...], params: dict[str, Any]) -> str:
        """For the operator's log only (the caller is told nothing): whose credential it was and why it failed."""
        if key[0] == "access":
            return (
                f"access token of recipient #{params['rid']}: its client {key[1]} #{params['cid']} or the "
                "recipient was revoked, expired or deleted"
            )
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    Recipient.name, RecipientToken.id, RecipientToken.revoked_at, RecipientToken.expires_at
                )
                .join(Recipient, Recipient.id == RecipientToken.recipient_id)
                .where(RecipientToken.token_hash == params["digest"])
            ).first()
        basic = "Basic: " if key[0] == "basic" else ""
        if row is None:
            return f"{basic}unknown token"
        if row.revoked_at is not None:
            return f"{basic}token {row.id} of recipient '{row.name}' was revoked at {iso(row.revoked_at)}"
        if row.expires_at is not None and row.expires_at <= self._clock():
            return f"{basic}token {row.id} of recipient '{row.name}' expired at {iso(row.expires_at)}"
        return f"Basic: token {row.id} is not one of user {params.get('name')!r}'s"

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


# Built once: the recipient and granted shares of a token (or another credential), if active at `now`, with
# the credential's expiry: one indexed lookup per request.
_NOW = sa.bindparam("now", type_=UtcDateTime())


def _recipient_and_grants(credential: Any, condition: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return (
        sa.select(Recipient.name, Recipient.all_shares, SHARES.c.name_key, credential.expires_at)
        .select_from(credential)
        .join(Recipient, Recipient.id == credential.recipient_id)
        .outerjoin(Grant, Grant.recipient_id == Recipient.id)
        .outerjoin(SHARES, SHARES.c.id == Grant.share_id)
        .where(condition, active(credential, _NOW))
    )


_AUTHENTICATE = _recipient_and_grants(RecipientToken, RecipientToken.token_hash == sa.bindparam("digest"))
_AUTHENTICATE_BASIC = _AUTHENTICATE.where(Recipient.name_key == sa.bindparam("name"))
_ACCESS = {
    via: _recipient_and_grants(
        model,
        sa.and_(
            model.id == sa.bindparam("cid"),
            model.created_at == sa.bindparam("created", type_=UtcDateTime()),
            model.recipient_id == sa.bindparam("rid"),
        ),
    )
    for via, model in (("secret", RecipientClientSecret), ("key", RecipientPublicKey))
}


_GET_SHARE = sa.select(SHARES).where(SHARES.c.name_key == sa.bindparam("share"))


class _Found(NamedTuple):
    """An active credential's recipient, as remembered: its principal and the credential's expiry."""

    principal: Principal
    expires_at: datetime | None


def _principal(rows: list[Any]) -> Principal:
    """The recipient of an active token's rows (one per granted share)."""
    first = rows[0]
    if first.all_shares:
        return Principal(first.name)
    return Principal(first.name, frozenset(r.name_key for r in rows if r.name_key is not None))


def _comparable(*names: str) -> bool:
    """False for a name no row can have and PostgreSQL cannot even compare (a NUL character): not found."""
    return "\x00" not in "".join(names)  # one search, no generator: every lookup asks


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
