"""Recipient activation links: `{publicUrl}/activate/CODE`, opened once by the recipient to download its profile.

A link is made for a recipient's newest token (its creation or its last rotation). That token's secret was
shown to nobody; the download replaces it with a new secret (new hash, same lifetime, counted from the
download), so the bearer token exists only in the file the recipient downloads: never in a URL, a log line or
a page. Only the SHA-256 of the code is stored; the first download marks the link used; links expire.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.bearer_tokens import active, new_token, token_hash
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import ActivationLink, Grant, Recipient, RecipientToken, Share
from lakegate.catalog.recipients import Issued, Recipients, recipient_not_found
from lakegate.catalog.sync import CONFIG
from lakegate.exceptions import ConflictError

CODE_BYTES = 32
MAX_CODE_CHARS = 128  # longer paths are no code of ours: refused before hashing


@dataclass(frozen=True)
class LinkState:
    """What an activation page shows: `state` is ready, used, expired or void (its token was revoked or
    replaced since the link was made)."""

    state: str
    recipient: str
    shares: list[str]
    expires_at: datetime
    used_at: datetime | None


def _hash(code: str) -> str:
    return token_hash(code)


class ActivationLinks:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(self, recipient: str, validity_seconds: int) -> str:
        """A new link (its code, shown once) for the recipient's newest active token; the recipient's earlier
        unused links stop working (one open link per recipient)."""
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
            token_id = conn.execute(
                sa.select(RecipientToken.id)
                .where(RecipientToken.recipient_id == row.id, active(RecipientToken, now))
                .order_by(RecipientToken.id.desc())
                .limit(1)
            ).scalar()
            if token_id is None:
                raise ConflictError(
                    f"recipient '{row.name}' has no active token: rotate it to make one for the link"
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
                    token_id=token_id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=validity_seconds),
                )
            )
        return code

    def state(self, code: str) -> LinkState | None:
        """The link of `code` as its page shows it; None for a code that is no link."""
        if not code or len(code) > MAX_CODE_CHARS:
            return None
        with self.db.read() as conn:
            return self._state(conn, code)

    def redeem(self, code: str) -> tuple[LinkState, Issued | None]:
        """Download: a ready link becomes used and its token gets its secret (the Issued); any other state
        gives None. One transaction, so two downloads at once give one file."""
        if not code or len(code) > MAX_CODE_CHARS:
            raise recipient_not_found("(activation link)")
        now = self.clock()
        with self.db.write() as conn:
            found = self._state(conn, code)
            if found is None:
                raise recipient_not_found("(activation link)")
            if found.state != "ready":
                return found, None
            link = conn.execute(
                sa.select(ActivationLink).where(ActivationLink.code_hash == _hash(code))
            ).one()
            old = conn.execute(sa.select(RecipientToken).where(RecipientToken.id == link.token_id)).one()
            token = new_token()
            lifetime = None if old.expires_at is None else old.expires_at - old.created_at
            expires_at = None if lifetime is None else now + lifetime
            conn.execute(
                sa.update(RecipientToken)
                .where(RecipientToken.id == link.token_id)
                .values(token_hash=token_hash(token), created_at=now, expires_at=expires_at)
            )
            conn.execute(sa.update(ActivationLink).where(ActivationLink.id == link.id).values(used_at=now))
        used = LinkState("used", found.recipient, found.shares, found.expires_at, now)
        return used, Issued(Recipients(self.db, self.clock).get(found.recipient), token, expires_at)

    def pending(self) -> dict[str, datetime]:
        """Recipient name -> expiry of its open (ready) link, for the console's recipient list."""
        now = self.clock()
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(Recipient.name, ActivationLink.expires_at)
                .join(Recipient, Recipient.id == ActivationLink.recipient_id)
                .join(RecipientToken, RecipientToken.id == ActivationLink.token_id)
                .where(
                    ActivationLink.used_at.is_(None),
                    ActivationLink.expires_at > now,
                    active(RecipientToken, now),
                )
            ).all()
        return {r.name: r.expires_at for r in rows}

    def _state(self, conn: sa.Connection, code: str) -> LinkState | None:
        now = self.clock()
        row: Any = conn.execute(
            sa.select(ActivationLink, Recipient.name.label("recipient"))
            .join(Recipient, Recipient.id == ActivationLink.recipient_id)
            .where(ActivationLink.code_hash == _hash(code))
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
        token_live = conn.execute(
            sa.select(RecipientToken.id).where(RecipientToken.id == row.token_id, active(RecipientToken, now))
        ).first()
        if row.used_at is not None:
            state = "used"
        elif row.expires_at <= now:
            state = "expired"
        elif token_live is None:
            state = "void"
        else:
            state = "ready"
        return LinkState(state, row.recipient, shares, row.expires_at, row.used_at)
