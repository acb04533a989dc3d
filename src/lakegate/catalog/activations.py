"""Recipient activation links: `{publicUrl}/activate/CODE`, opened once by the recipient to download its profile.

A link is made for a recipient's newest credential of one method (its creation or its last rotation): a bearer
token (methods token and basic) or an OAuth client secret (oauth). That credential's secret was shown to
nobody; the download replaces it with a new secret (new hash, same lifetime, counted from the download), so
the secret exists only in the profile the recipient downloads (version 1 for token, 2 for basic and oauth):
never in a URL, a log line or a page. A private-key-JWT recipient holds its own key: it gets no link. Only the
SHA-256 of the code is stored; the first download marks the link used; links expire.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.bearer_tokens import active, new_token, token_hash
from lakegate.catalog.client_credentials import new_client_secret
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import (
    ActivationLink,
    Grant,
    Recipient,
    RecipientClientSecret,
    RecipientToken,
    Share,
)
from lakegate.catalog.recipients import Issued, Recipients, recipient_not_found
from lakegate.catalog.sync import CONFIG
from lakegate.exceptions import ConflictError, InvalidParameterError

CODE_BYTES = 32
MAX_CODE_CHARS = 128  # longer paths are no code of ours: refused before hashing
# Method -> (the table of its secrets, the link's column naming the row, how a new secret is made).
METHODS: dict[str, tuple[Any, str, Callable[[], str]]] = {
    "token": (RecipientToken, "token_id", new_token),
    "basic": (RecipientToken, "token_id", new_token),
    "oauth": (RecipientClientSecret, "client_secret_id", new_client_secret),
}


@dataclass(frozen=True)
class LinkState:
    """What an activation page shows: `state` is ready, used, expired or void (its credential was revoked or
    replaced since the link was made)."""

    state: str
    recipient: str
    shares: list[str]
    expires_at: datetime
    used_at: datetime | None
    auth: str = "token"


def _hash(code: str) -> str:
    return token_hash(code)


def _no_code(code: str) -> bool:
    return not code or len(code) > MAX_CODE_CHARS


class ActivationLinks:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(self, recipient: str, validity_seconds: int, auth: str = "token") -> str:
        """A new link (its code, shown once) for the recipient's newest active credential of method `auth`;
        the recipient's earlier unused links stop working (one open link per recipient)."""
        if auth not in METHODS:
            raise InvalidParameterError(
                f"an activation link hands out a token or a client secret ({', '.join(METHODS)}); a "
                "private-key-jwt recipient signs with its own key: send it its profile instead"
            )
        model, column, _ = METHODS[auth]
        code, now = secrets.token_urlsafe(CODE_BYTES), self.clock()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(Recipient.id, Recipient.name, Recipient.managed_by).where(
                    Recipient.name_key == recipient.lower()
                )
            ).first()
            if row is None:
                raise recipient_not_found(recipient)
            if row.managed_by == CONFIG:
                raise ConflictError(
                    f"recipient '{row.name}' is the configuration's authorization.bearerToken: its token is "
                    "in the YAML"
                )
            credential_id = conn.execute(
                sa.select(model.id)
                .where(model.recipient_id == row.id, active(model, now))
                .order_by(model.id.desc())
                .limit(1)
            ).scalar()
            if credential_id is None:
                raise ConflictError(
                    f"recipient '{row.name}' has no active {auth} credential: rotate it to make one for the link"
                )
            conn.execute(
                sa.delete(ActivationLink).where(
                    ActivationLink.recipient_id == row.id, ActivationLink.used_at.is_(None)
                )
            )
            conn.execute(
                sa.insert(ActivationLink).values(
                    code_hash=_hash(code),
                    recipient_id=row.id,
                    auth=auth,
                    created_at=now,
                    expires_at=now + timedelta(seconds=validity_seconds),
                    **{column: credential_id},
                )
            )
        return code

    def state(self, code: str) -> LinkState | None:
        """The link of `code` as its page shows it; None for a code that is no link."""
        if _no_code(code):
            return None
        with self.db.read() as conn:
            return self._state(conn, _hash(code))

    def redeem(self, code: str) -> tuple[LinkState, Issued | None]:
        """Download: a ready link becomes used and its credential gets its secret (the Issued); any other
        state gives None. One transaction, so two downloads at once give one file."""
        if _no_code(code):
            raise recipient_not_found("(activation link)")
        now = self.clock()
        with self.db.write() as conn:
            found = self._state(conn, _hash(code))
            if found is None:
                raise recipient_not_found("(activation link)")
            if found.state != "ready":
                return found, None
            link = conn.execute(
                sa.select(ActivationLink).where(ActivationLink.code_hash == _hash(code))
            ).one()
            model, column, make = METHODS[link.auth]
            credential_id = getattr(link, column)
            old = conn.execute(sa.select(model).where(model.id == credential_id)).one()
            secret = make()
            lifetime = None if old.expires_at is None else old.expires_at - old.created_at
            expires_at = None if lifetime is None else now + lifetime
            conn.execute(
                sa.update(model)
                .where(model.id == credential_id)
                .values(token_hash=token_hash(secret), created_at=now, expires_at=expires_at)
            )
            conn.execute(sa.update(ActivationLink).where(ActivationLink.id == link.id).values(used_at=now))
        used = LinkState("used", found.recipient, found.shares, found.expires_at, now, link.auth)
        recipient = Recipients(self.db, self.clock).get(found.recipient)
        return used, Issued(recipient, secret, expires_at, auth=link.auth)

    def pending(self) -> dict[str, datetime]:
        """Recipient name -> expiry of its open (ready) link, for the console's recipient list."""
        with self.db.read() as conn:
            hashes = conn.execute(
                sa.select(ActivationLink.code_hash).where(
                    ActivationLink.used_at.is_(None), ActivationLink.expires_at > self.clock()
                )
            ).scalars()
            states = [self._state(conn, code_hash) for code_hash in list(hashes)]
        return {s.recipient: s.expires_at for s in states if s is not None and s.state == "ready"}

    def _state(self, conn: sa.Connection, code_hash: str) -> LinkState | None:
        now = self.clock()
        row: Any = conn.execute(
            sa.select(ActivationLink, Recipient.name.label("recipient"))
            .join(Recipient, Recipient.id == ActivationLink.recipient_id)
            .where(ActivationLink.code_hash == code_hash)
        ).first()
        if row is None:
            return None
        shares = list(
            conn.execute(
                sa.select(Share.name)
                .join(Grant, Grant.share_id == Share.id)
                .where(Grant.recipient_id == row.recipient_id)
                .order_by(Share.position, Share.id)
            ).scalars()
        )
        model, column, _ = METHODS.get(row.auth, METHODS["token"])
        live = conn.execute(
            sa.select(model.id).where(model.id == getattr(row, column), active(model, now))
        ).first()
        if row.used_at is not None:
            state = "used"
        elif row.expires_at <= now:
            state = "expired"
        elif live is None:
            state = "void"
        else:
            state = "ready"
        return LinkState(state, row.recipient, shares, row.expires_at, row.used_at, row.auth)
