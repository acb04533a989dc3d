"""The catalog's tables: shares, schemas, tables, recipients, tokens, grants, admin tokens, audit, settings.

Names are case-insensitive in the protocol, so every named row keeps the name as given (`name`, shown to
clients) and its lower-case form (`name_key`, unique and used for every lookup). Migrations in
`catalog/migrations/versions/` create exactly these tables (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names fixed by convention, so migrations can name what they alter on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
NAME = sa.String(255)  # protocol names are at most 255 characters
# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key for the audit trail.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, stored naive: SQLite keeps no time zone at all."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class _Named:
    """A row with a case-insensitive name: `name` as given, `name_key` its lower case (unique where it is)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    name_key: Mapped[str] = mapped_column(NAME)


class Share(_Named, Base):
    __tablename__ = "shares"
    __table_args__ = (sa.UniqueConstraint("name_key"),)
    # The protocol's share id: the YAML's `id` (may be empty, as in the reference server) or a UUID.
    public_id: Mapped[str] = mapped_column(sa.String(64), default="")
    display_name: Mapped[str | None] = mapped_column(NAME)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    properties: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    # "config": declared in the YAML, which wins at every start; "api": created with the CLI or admin API.
    managed_by: Mapped[str] = mapped_column(sa.String(16))
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SharedSchema(_Named, Base):
    __tablename__ = "share_schemas"
    __table_args__ = (sa.UniqueConstraint("share_id", "name_key"),)
    share_id: Mapped[int] = mapped_column(sa.ForeignKey("shares.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)


class SharedTable(_Named, Base):
    __tablename__ = "share_tables"
    __table_args__ = (sa.UniqueConstraint("schema_id", "name_key"),)
    schema_id: Mapped[int] = mapped_column(sa.ForeignKey("share_schemas.id", ondelete="CASCADE"))
    public_id: Mapped[str] = mapped_column(sa.String(64), default="")
    location: Mapped[str] = mapped_column(sa.Text)
    auxiliary_locations: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    history_shared: Mapped[bool] = mapped_column(default=False)
    start_version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    position: Mapped[int] = mapped_column(default=0)


class Recipient(_Named, Base):
    __tablename__ = "recipients"
    __table_args__ = (sa.UniqueConstraint("name_key"),)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    # The bootstrap recipient of the YAML's authorization.bearerToken sees every share, present and future.
    all_shares: Mapped[bool] = mapped_column(default=False)
    managed_by: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Grant(Base):
    __tablename__ = "grants"
    recipient_id: Mapped[int] = mapped_column(
        sa.ForeignKey("recipients.id", ondelete="CASCADE"), primary_key=True
    )
    share_id: Mapped[int] = mapped_column(
        sa.ForeignKey("shares.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class _TokenColumns:
    """A secret's SHA-256 (never the secret), and the times that bound its validity."""

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RecipientToken(_TokenColumns, Base):
    __tablename__ = "recipient_tokens"
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("recipients.id", ondelete="CASCADE"), index=True)


class RecipientClientSecret(_TokenColumns, Base):
    """An OAuth client secret of a recipient (client id = the recipient's name): only its SHA-256 is kept.
    Access tokens minted with it name its row, so revoking or expiring it ends them too."""

    __tablename__ = "recipient_client_secrets"
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("recipients.id", ondelete="CASCADE"), index=True)


class RecipientPublicKey(Base):
    """A recipient's registered public key for private-key JWT client authentication (RFC 7523), by `kid`."""

    __tablename__ = "recipient_public_keys"
    __table_args__ = (sa.UniqueConstraint("recipient_id", "kid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("recipients.id", ondelete="CASCADE"))
    kid: Mapped[str] = mapped_column(NAME)
    algorithm: Mapped[str] = mapped_column(sa.String(16))  # RS256 ... EdDSA: the only one accepted for it
    public_key: Mapped[str] = mapped_column(sa.Text)  # PEM (SubjectPublicKeyInfo)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class UsedAssertion(Base):
    """A client assertion's `jti` already exchanged (RFC 7523 §3 replay protection), kept until the assertion
    would have expired anyway; in the database so that every replica refuses the replay."""

    __tablename__ = "used_assertions"
    jti_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SHA-256 of client id + jti
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class FederationPolicy(Base):
    """An OIDC federation policy: a JWT from `issuer` whose `aud` is one of `audiences` and whose
    `subject_claim` equals `subject` authenticates as the recipient (no secret is ever shared)."""

    __tablename__ = "federation_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("recipients.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(sa.String(1024), index=True)
    audiences: Mapped[list[str]] = mapped_column(sa.JSON)
    subject_claim: Mapped[str] = mapped_column(NAME, default="sub")
    subject: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # `recipients revoke` stops it too


class ActivationLink(Base):
    """A one-time link a recipient opens to download its profile: only the code's SHA-256 is kept. `token_id`
    is the recipient token the link hands out; its secret is made anew at the download (lakegate.catalog.
    activations), so no usable token exists before the recipient has it."""

    __tablename__ = "activation_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("recipients.id", ondelete="CASCADE"), index=True)
    # The method (token, basic: a bearer token; oauth: a client secret) and the row of the credential.
    auth: Mapped[str] = mapped_column(sa.String(16), server_default="token")
    token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("recipient_tokens.id", ondelete="CASCADE"))
    client_secret_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("recipient_client_secrets.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AdminToken(_TokenColumns, Base):
    __tablename__ = "admin_tokens"
    name: Mapped[str] = mapped_column(NAME, index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    recipient: Mapped[str | None] = mapped_column(NAME, index=True)
    operation: Mapped[str] = mapped_column(sa.String(32))
    share: Mapped[str | None] = mapped_column(NAME)
    schema_name: Mapped[str | None] = mapped_column(NAME)
    table_name: Mapped[str | None] = mapped_column(NAME)
    version: Mapped[int | None] = mapped_column(sa.BigInteger)
    mode: Mapped[str] = mapped_column(sa.String(8))
    files: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[int] = mapped_column()
    outcome: Mapped[str] = mapped_column(sa.String(64))
    client: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    replica: Mapped[str | None] = mapped_column(sa.String(128))
    # Admin changes only: who made it (an admin token's name, or `cli:<os user>`).
    actor: Mapped[str | None] = mapped_column(NAME)
    # Data answers: the total size of the files listed (what the recipient can download with the URLs).
    data_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)


class Setting(Base):
    """Server-wide values every replica must agree on (the token signing key when not configured)."""

    __tablename__ = "server_settings"
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class AsyncQueryRow(Base):
    """An async query (protocol.md §2.8 `asyncquery`), shared by the replicas: any of them answers a poll. The
    result itself is not stored: `spec` describes it (the request, the pinned version or range), so a replica
    that did not compute it recomputes the same files."""

    __tablename__ = "async_queries"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # random, unguessable
    recipient: Mapped[str] = mapped_column(NAME, index=True)
    table_key: Mapped[str] = mapped_column(sa.Text)  # share.schema.table, lower case
    # SHA-256 of (recipient, table, idempotency key): a retried submission finds its query on any replica.
    dedupe_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    checksum: Mapped[str] = mapped_column(sa.String(64))  # the query parameters the key was first used with
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | succeeded | failed
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


# The Core tables of the share hierarchy, for queries that join and pick columns rather than load rows.
SHARES, SCHEMAS, TABLES = (Base.metadata.tables[name] for name in ("shares", "share_schemas", "share_tables"))
