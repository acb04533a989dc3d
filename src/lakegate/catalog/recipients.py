"""Managing recipients: create with grants and a first token, rotate, revoke, grant and ungrant, list.

Used by the CLI (directly on the database) and the admin API alike; every method returns what both show, as
JSON-ready dicts. A new token is returned once, in `Issued`, and never stored: only its hash is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.base import check_name
from lakegate.catalog.bearer_tokens import (
    active,
    expiry,
    new_token,
    profile,
    revoke_active,
    token_hash,
    view,
)
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.federation import add_policy, policy_views, remove_policy
from lakegate.catalog.models import FederationPolicy, Grant, Recipient, RecipientToken, Share
from lakegate.catalog.sql import ANONYMOUS
from lakegate.catalog.sync import BOOTSTRAP
from lakegate.exceptions import AlreadyExistsError, ConflictError, InvalidParameterError, NotFoundError
from lakegate.timestamps import iso

RESERVED = {BOOTSTRAP, ANONYMOUS}
MAX_SECONDS = 100 * 366 * 86400  # a century: beyond it, datetimes overflow and nothing is meant


@dataclass(frozen=True)
class Issued:
    """A recipient with a newly made token: the only moment the token exists outside the recipient's hands."""

    recipient: dict[str, Any]
    token: str
    expires_at: datetime | None

    def profile(self, endpoint: str) -> dict[str, Any]:
        return profile(endpoint, self.token, self.expires_at)


def recipient_not_found(name: str) -> NotFoundError:
    return NotFoundError(f"recipient '{name}' not found")


def share_id(conn: sa.Connection, name: str) -> int:
    if "\x00" in name:  # no share has one, and PostgreSQL refuses to compare it
        raise NotFoundError(f"share '{name}' not found")
    found = conn.execute(sa.select(Share.id).where(Share.name_key == name.lower())).scalar()
    if found is None:
        raise NotFoundError(f"share '{name}' not found")
    return int(found)


def _seconds(value: int | None, what: str, least: int = 0) -> int | None:
    if value is not None and not least <= value <= MAX_SECONDS:
        raise InvalidParameterError(f"{what} must be {least} to {MAX_SECONDS} seconds")
    return value


def _lifetime(value: int | None) -> int | None:
    """A token's lifetime in seconds (None: it never expires); 0 would make a token dead on arrival."""
    return _seconds(value, "expires-in", least=1)


class Recipients:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(
        self, name: str, shares: Iterable[str] = (), expires_in: int | None = None, comment: str | None = None
    ) -> Issued:
        check_name("recipient", name)
        if name.lower() in RESERVED:
            raise ConflictError(f"recipient name '{name}' is reserved")
        now, token = self.clock(), new_token()
        expires_at = expiry(now, _lifetime(expires_in))
        try:
            with self.db.write() as conn:
                if self._find(conn, name) is not None:
                    raise AlreadyExistsError(f"recipient '{name}' already exists")
                share_ids = {share_id(conn, s) for s in shares}
                recipient_id = conn.execute(
                    sa.insert(Recipient)
                    .values(
                        name=name,
                        name_key=name.lower(),
                        comment=comment,
                        all_shares=False,
                        managed_by="api",
                        created_at=now,
                    )
                    .returning(Recipient.id)
                ).scalar_one()
                for sid in sorted(share_ids):
                    conn.execute(
                        sa.insert(Grant).values(recipient_id=recipient_id, share_id=sid, created_at=now)
                    )
                self._issue(conn, recipient_id, token, now, expires_at)
        except sa.exc.IntegrityError:  # created concurrently by another replica or CLI
            raise AlreadyExistsError(f"recipient '{name}' already exists") from None
        return Issued(self.get(name), token, expires_at)

    def rotate(
        self, name: str, grace: int = 0, expires_in: int | None = None, never_expires: bool = False
    ) -> Issued:
        """A new token; the recipient's current tokens keep working for `grace` seconds, then stop. The new
        token lives as long as the last one issued did (from its creation to its expiry), unless `expires_in`
        or `never_expires` says otherwise: a rotation never quietly makes an expiring token permanent."""
        if never_expires and expires_in is not None:
            raise InvalidParameterError("give either an expiry or never-expires, not both")
        now, token = self.clock(), new_token()
        cutoff = now + timedelta(seconds=_seconds(grace, "grace") or 0)
        with self.db.write() as conn:
            recipient_id = self._require(conn, name).id
            mine = RecipientToken.recipient_id == recipient_id
            if expires_in is None and not never_expires:
                expires_in = self._last_lifetime(conn, mine)
            expires_at = expiry(now, _lifetime(expires_in))
            if grace:
                conn.execute(
                    sa.update(RecipientToken)
                    .where(
                        mine,
                        active(RecipientToken, now),
                        sa.or_(RecipientToken.expires_at.is_(None), RecipientToken.expires_at > cutoff),
                    )
                    .values(expires_at=cutoff)
                )
            else:
                revoke_active(conn, RecipientToken, mine, now)
            self._issue(conn, recipient_id, token, now, expires_at)
        recipient = self.get(name)
        recipient["previousTokensValidUntil"] = iso(cutoff)
        return Issued(recipient, token, expires_at)

    def revoke(self, name: str) -> dict[str, Any]:
        """Every token and federation policy of the recipient stops working now; its grants stay (rotate issues
        a new token, `policy add` a new policy)."""
        now = self.clock()
        with self.db.write() as conn:
            recipient_id = self._require(conn, name).id
            count = revoke_active(conn, RecipientToken, RecipientToken.recipient_id == recipient_id, now)
            conn.execute(
                sa.update(FederationPolicy)
                .where(FederationPolicy.recipient_id == recipient_id, FederationPolicy.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return {**self.get(name), "tokensRevoked": count}

    def delete(self, name: str) -> dict[str, Any]:
        """The recipient, its tokens and its grants are gone, at once, on every replica."""
        with self.db.write() as conn:
            row = self._require(conn, name)
            if row.managed_by == "config":
                raise ConflictError(
                    f"recipient '{row.name}' is the configuration's authorization.bearerToken: "
                    "remove that from the YAML instead"
                )
            view = self._views(Recipient.id == row.id, conn)[0]
            conn.execute(sa.delete(Recipient).where(Recipient.id == row.id))  # tokens and grants cascade
        return {**view, "deleted": True}

    def grant(self, name: str, share: str) -> dict[str, Any]:
        with self.db.write() as conn:
            recipient = self._require_grantable(conn, name)
            sid = share_id(conn, share)
            exists = conn.execute(
                sa.select(Grant.share_id).where(Grant.recipient_id == recipient.id, Grant.share_id == sid)
            ).first()
            if exists is None:
                conn.execute(
                    sa.insert(Grant).values(recipient_id=recipient.id, share_id=sid, created_at=self.clock())
                )
        return self.get(name)

    def ungrant(self, name: str, share: str) -> dict[str, Any]:
        with self.db.write() as conn:
            recipient = self._require_grantable(conn, name)
            sid = share_id(conn, share)
            conn.execute(sa.delete(Grant).where(Grant.recipient_id == recipient.id, Grant.share_id == sid))
        return self.get(name)

    def add_policy(
        self,
        name: str,
        issuer: str,
        audiences: Iterable[str],
        subject: str,
        subject_claim: str | None = None,
    ) -> dict[str, Any]:
        """A federation policy for the recipient (catalog/federation.py): JWTs from `issuer` for one of
        `audiences` whose `subject_claim` is `subject` authenticate as it, from the next request on."""
        with self.db.write() as conn:
            row = self._require(conn, name)
            add_policy(conn, row, issuer, audiences, subject, subject_claim, self.clock())
        return self.get(name)

    def remove_policy(self, name: str, policy_id: int) -> dict[str, Any]:
        """The policy is gone: tokens it accepted are refused from the next request on."""
        with self.db.write() as conn:
            remove_policy(conn, self._require(conn, name), policy_id)
        return self.get(name)

    def get(self, name: str) -> dict[str, Any]:
        found = self._views(Recipient.name_key == name.lower())
        if not found:
            raise recipient_not_found(name)
        return found[0]

    def all(self) -> list[dict[str, Any]]:
        return self._views(sa.true())

    # -- helpers ---------------------------------------------------------------------------------------------

    @staticmethod
    def _find(conn: sa.Connection, name: str) -> Any:
        return conn.execute(sa.select(Recipient).where(Recipient.name_key == name.lower())).first()

    def _require(self, conn: sa.Connection, name: str) -> Any:
        row = self._find(conn, name)
        if row is None:
            raise recipient_not_found(name)
        return row

    def _require_grantable(self, conn: sa.Connection, name: str) -> Any:
        row = self._require(conn, name)
        if row.all_shares:
            raise ConflictError(f"recipient '{row.name}' sees every share: its grants cannot be changed")
        return row

    @staticmethod
    def _last_lifetime(conn: sa.Connection, mine: sa.ColumnElement[bool]) -> int | None:
        """The lifetime of the recipient's most recent token, in whole seconds (None: it never expired)."""
        last = conn.execute(
            sa.select(RecipientToken.created_at, RecipientToken.expires_at)
            .where(mine)
            .order_by(RecipientToken.id.desc())
            .limit(1)
        ).first()
        if last is None or last.expires_at is None:
            return None
        lifetime: timedelta = last.expires_at - last.created_at
        return max(1, round(lifetime.total_seconds()))

    @staticmethod
    def _issue(
        conn: sa.Connection, recipient_id: int, token: str, now: datetime, expires_at: datetime | None
    ) -> None:
        conn.execute(
            sa.insert(RecipientToken).values(
                recipient_id=recipient_id, token_hash=token_hash(token), created_at=now, expires_at=expires_at
            )
        )

    def _views(
        self, condition: sa.ColumnElement[bool], conn: sa.Connection | None = None
    ) -> list[dict[str, Any]]:
        if conn is None:
            with self.db.read() as own:
                return self._views(condition, own)
        now = self.clock()
        recipients = conn.execute(sa.select(Recipient).where(condition).order_by(Recipient.name_key)).all()
        ids = [r.id for r in recipients]
        grants = conn.execute(
            sa.select(Grant.recipient_id, Share.name)
            .join(Share, Share.id == Grant.share_id)
            .where(Grant.recipient_id.in_(ids))
            .order_by(Share.position, Share.id)
        ).all()
        tokens = conn.execute(
            sa.select(RecipientToken).where(RecipientToken.recipient_id.in_(ids)).order_by(RecipientToken.id)
        ).all()
        policies = policy_views(conn, ids)
        out = []
        for r in recipients:
            mine = [view(t, now) for t in tokens if t.recipient_id == r.id]
            my_policies = policies.get(r.id, [])
            out.append(
                {
                    "name": r.name,
                    "comment": r.comment,
                    "allShares": r.all_shares,
                    "managedBy": r.managed_by,
                    "shares": [g.name for g in grants if g.recipient_id == r.id],
                    "createdAt": iso(r.created_at),
                    "status": "active"
                    if any(c["status"] == "active" for c in [*mine, *my_policies])
                    else "inactive",
                    "tokens": mine,
                    "federationPolicies": my_policies,
                }
            )
        return out


def active_token_count(db: Database) -> int:
    """How many recipient tokens can authenticate now (a server with none is closed to everyone)."""
    with db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(RecipientToken).where(active(RecipientToken, utcnow()))
            ).scalar_one()
        )
