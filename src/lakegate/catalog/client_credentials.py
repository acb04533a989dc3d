"""The token endpoint's view of the catalog: whose client secret this is, which registered key verifies an
assertion, and whether an assertion's `jti` was already used.

The client id of every recipient is its name. Client secrets are kept as SHA-256 only (see bearer_tokens: a
256-bit random secret needs no slow hash). Used `jti` values are rows of `used_assertions` with the primary key
as the replay check, so two replicas receiving the same assertion at the same moment cannot both accept it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lakegate.catalog.bearer_tokens import active, token_hash
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import Recipient, RecipientClientSecret, RecipientPublicKey, UsedAssertion

SECRET_PREFIX = "lgs_"  # noqa: S105 - the prefix of generated secrets


def new_client_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Client:
    """A recipient authenticated by one of its credentials (`credential_id`: the secret's or key's row)."""

    recipient_id: int
    name: str
    credential_id: int
    credential_created: datetime


@dataclass(frozen=True)
class RegisteredKey:
    recipient_id: int
    name: str
    key_id: int  # the row id
    created_at: datetime
    algorithm: str
    pem: str


def _named(client_id: str) -> sa.ColumnElement[bool]:
    return Recipient.name_key == client_id.lower()


class ClientCredentials:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def by_secret(self, client_id: str, secret: str) -> Client | None:
        """The recipient named `client_id` if `secret` is one of its active client secrets."""
        if not _comparable(client_id, secret):
            return None
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    Recipient.id,
                    Recipient.name,
                    RecipientClientSecret.id.label("credential_id"),
                    RecipientClientSecret.created_at,
                )
                .join(RecipientClientSecret, RecipientClientSecret.recipient_id == Recipient.id)
                .where(
                    _named(client_id),
                    RecipientClientSecret.token_hash == token_hash(secret),
                    active(RecipientClientSecret, self.clock()),
                )
            ).first()
        return None if row is None else Client(row.id, row.name, row.credential_id, row.created_at)

    def key(self, client_id: str, kid: str) -> RegisteredKey | None:
        """The active public key `kid` registered by the recipient named `client_id`."""
        if not _comparable(client_id, kid):
            return None
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    Recipient.id,
                    Recipient.name,
                    RecipientPublicKey.id.label("key_id"),
                    RecipientPublicKey.created_at,
                    RecipientPublicKey.algorithm,
                    RecipientPublicKey.public_key,
                )
                .join(RecipientPublicKey, RecipientPublicKey.recipient_id == Recipient.id)
                .where(
                    _named(client_id), RecipientPublicKey.kid == kid, active(RecipientPublicKey, self.clock())
                )
            ).first()
        return (
            None
            if row is None
            else RegisteredKey(row.id, row.name, row.key_id, row.created_at, row.algorithm, row.public_key)
        )

    def use_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record that the assertion `jti` of `client_id` was used; False if it already was (a replay). Rows
        of assertions past their expiry are removed on the way: a replay of those fails on `exp` anyway."""
        digest = hashlib.sha256(f"{client_id.lower()}\x00{jti}".encode()).hexdigest()
        now = self.clock()
        try:
            with self.db.write() as conn:
                conn.execute(sa.delete(UsedAssertion).where(UsedAssertion.expires_at < now))
                conn.execute(sa.insert(UsedAssertion).values(jti_hash=digest, expires_at=expires_at))
        except sa.exc.IntegrityError:
            return False
        return True


def _comparable(*texts: str) -> bool:
    """False for text no row can hold and PostgreSQL cannot compare (NUL), or absurdly long."""
    return all("\x00" not in text and len(text) <= 1024 for text in texts)
