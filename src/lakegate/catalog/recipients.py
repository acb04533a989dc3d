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

from lakegate.auth.jose import load_public_key
from lakegate.catalog import profiles
from lakegate.catalog.base import check_name
from lakegate.catalog.bearer_tokens import active, expiry, new_token, revoke_active, token_hash, view
from lakegate.catalog.client_credentials import new_client_secret
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.federation import add_policy, policy_views, remove_policy
from lakegate.catalog.models import (
    FederationPolicy,
    Grant,
    Recipient,
    RecipientClientSecret,
    RecipientPublicKey,
    RecipientToken,
    Share,
)
from lakegate.catalog.sql import ANONYMOUS
from lakegate.catalog.sync import BOOTSTRAP
from lakegate.exceptions import AlreadyExistsError, ConflictError, InvalidParameterError, NotFoundError
from lakegate.timestamps import iso

RESERVED = {BOOTSTRAP, ANONYMOUS}
MAX_SECONDS = 100 * 366 * 86400  # a century: beyond it, datetimes overflow and nothing is meant


# The ways a recipient can authenticate that issue it a credential here (OIDC federation adds policies).
AUTH_METHODS = ("token", "basic", "oauth", "private-key-jwt", "oidc")


@dataclass(frozen=True)
class Issued:
    """A recipient with a newly made credential: the only moment a secret exists outside the recipient's hands.
    `token` is the bearer token (methods token and basic) or the client secret (oauth); empty for a registered
    public key (private-key-jwt: ""), whose `key` is {"keyId", "algorithm"}."""

    recipient: dict[str, Any]
    token: str
    expires_at: datetime | None
    auth: str = "token"
    key: dict[str, str] | None = None
    token_endpoint: str | None = None  # oidc: the recipient's IdP's, for its profile
    scope: str | None = None  # oidc: the scope the recipient asks its IdP for, for its profile

    def profile(self, endpoint: str) -> dict[str, Any]:
        if self.auth == "oidc":
            return profiles.federated(endpoint, self.token_endpoint, self.scope)
        return profiles.for_method(
            self.auth, endpoint, self.recipient["name"], self.token, self.expires_at, self.key
        )


@dataclass(frozen=True)
class PolicyRequest:
    """An OIDC federation policy to create a recipient with (catalog/federation.py); `token_endpoint`, the
    recipient's IdP's, and `scope` only go into its profile."""

    issuer: str
    audiences: tuple[str, ...]
    subject: str
    subject_claim: str | None = None
    token_endpoint: str | None = None
    scope: str | None = None


@dataclass(frozen=True)
class PublicKeyRequest:
    """A public key to register for private-key JWT: PEM, the recipient's key id, and (optionally) the one
    algorithm it signs with (default: the natural one for the key type)."""

    pem: str
    key_id: str
    algorithm: str | None = None


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
        self,
        name: str,
        shares: Iterable[str] = (),
        expires_in: int | None = None,
        comment: str | None = None,
        auth: str = "token",
        public_key: PublicKeyRequest | None = None,
        policy: PolicyRequest | None = None,
    ) -> Issued:
        """A recipient with grants and a first credential of method `auth` (AUTH_METHODS); for `oidc`, no
        credential but the federation `policy`."""
        check_name("recipient", name)
        if name.lower() in RESERVED:
            raise ConflictError(f"recipient name '{name}' is reserved")
        _check_method(auth, public_key)
        if (auth == "oidc") != (policy is not None):
            raise InvalidParameterError("a federation policy (issuer, audience, subject) goes with auth oidc")
        now = self.clock()
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
                if policy is not None:
                    if expires_in is not None:
                        raise InvalidParameterError("an oidc recipient's tokens expire as its IdP says")
                    add_policy(
                        conn,
                        self._require(conn, name),
                        policy.issuer,
                        policy.audiences,
                        policy.subject,
                        policy.subject_claim,
                        now,
                    )
                    secret, expires_at, key = "", None, None
                else:
                    secret, expires_at, key = _issue(
                        conn, recipient_id, auth, now, _lifetime(expires_in), public_key
                    )
        except sa.exc.IntegrityError:  # created concurrently by another replica or CLI
            raise AlreadyExistsError(f"recipient '{name}' already exists") from None
        if policy is None:
            return Issued(self.get(name), secret, expires_at, auth, key)
        return Issued(self.get(name), secret, expires_at, auth, key, policy.token_endpoint, policy.scope)

    def rotate(
        self,
        name: str,
        grace: int = 0,
        expires_in: int | None = None,
        never_expires: bool = False,
        auth: str = "token",
        public_key: PublicKeyRequest | None = None,
    ) -> Issued:
        """A new credential of method `auth`; the recipient's current ones of the same kind (tokens, client
        secrets or public keys) keep working for `grace` seconds, then stop; other kinds are untouched, so
        rotating to a new method is how a recipient moves from a token to OAuth. A new token or secret lives
        as long as the last one of its kind did, unless `expires_in` or `never_expires` says otherwise: a
        rotation never quietly makes an expiring credential permanent."""
        if never_expires and expires_in is not None:
            raise InvalidParameterError("give either an expiry or never-expires, not both")
        _check_method(auth, public_key)
        if auth == "oidc":
            raise InvalidParameterError(
                "an oidc recipient holds no lakegate credential to rotate: "
                "change its federation policies (recipients policy add|remove)"
            )
        now = self.clock()
        cutoff = now + timedelta(seconds=_seconds(grace, "grace") or 0)
        model = _MODELS[auth]
        with self.db.write() as conn:
            recipient_id = self._require(conn, name).id
            mine = model.recipient_id == recipient_id
            if expires_in is None and not never_expires and model is not RecipientPublicKey:
                expires_in = self._last_lifetime(conn, model, mine)
            _retire(conn, model, mine, now, cutoff)
            try:  # the error rolls the whole rotation back
                secret, expires_at, key = _issue(
                    conn, recipient_id, auth, now, _lifetime(expires_in), public_key
                )
            except sa.exc.IntegrityError:
                raise ConflictError(
                    f"recipient '{name}' already has a public key with key id "
                    f"'{public_key.key_id if public_key else ''}': choose a new key id"
                ) from None
        recipient = self.get(name)
        recipient["previousCredentialsValidUntil"] = recipient["previousTokensValidUntil"] = iso(cutoff)
        return Issued(recipient, secret, expires_at, auth, key)

    def revoke(self, name: str) -> dict[str, Any]:
        """Every credential of the recipient stops working now (tokens, client secrets and the access tokens
        they obtained, public keys, federation policies); its grants stay (rotate issues a new credential)."""
        now = self.clock()
        with self.db.write() as conn:
            recipient_id = self._require(conn, name).id
            counts = {
                model: revoke_active(conn, model, model.recipient_id == recipient_id, now)
                for model in (RecipientToken, RecipientClientSecret, RecipientPublicKey)
            }
            policies = conn.execute(
                sa.update(FederationPolicy)
                .where(FederationPolicy.recipient_id == recipient_id, FederationPolicy.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        total = sum(counts.values()) + int(policies)
        return {**self.get(name), "tokensRevoked": counts[RecipientToken], "credentialsRevoked": total}

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
    def _last_lifetime(conn: sa.Connection, model: Any, mine: sa.ColumnElement[bool]) -> int | None:
        """The lifetime of the recipient's most recent token or secret, in whole seconds (None: it never
        expired, or there was none)."""
        last = conn.execute(
            sa.select(model.created_at, model.expires_at).where(mine).order_by(model.id.desc()).limit(1)
        ).first()
        if last is None or last.expires_at is None:
            return None
        lifetime: timedelta = last.expires_at - last.created_at
        return max(1, round(lifetime.total_seconds()))

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
        tokens, secrets, keys = (
            conn.execute(sa.select(model).where(model.recipient_id.in_(ids)).order_by(model.id)).all()
            for model in (RecipientToken, RecipientClientSecret, RecipientPublicKey)
        )
        policies = policy_views(conn, ids)
        out = []
        for r in recipients:
            mine = [view(t, now) for t in tokens if t.recipient_id == r.id]
            my_secrets = [view(t, now) for t in secrets if t.recipient_id == r.id]
            my_keys = [
                {**view(k, now), "keyId": k.kid, "algorithm": k.algorithm}
                for k in keys
                if k.recipient_id == r.id
            ]
            my_policies = policies.get(r.id, [])
            credentials = [*mine, *my_secrets, *my_keys, *my_policies]
            out.append(
                {
                    "name": r.name,
                    "comment": r.comment,
                    "allShares": r.all_shares,
                    "managedBy": r.managed_by,
                    "shares": [g.name for g in grants if g.recipient_id == r.id],
                    "createdAt": iso(r.created_at),
                    "status": "active" if any(c["status"] == "active" for c in credentials) else "inactive",
                    "tokens": mine,
                    "clientSecrets": my_secrets,
                    "publicKeys": my_keys,
                    "federationPolicies": my_policies,
                }
            )
        return out


def active_token_count(db: Database) -> int:
    """How many recipient tokens, client secrets, public keys and federation policies can authenticate now (a
    server with none is closed to everyone)."""
    now = utcnow()
    with db.read() as conn:
        policies = conn.execute(
            sa.select(sa.func.count())
            .select_from(FederationPolicy)
            .where(FederationPolicy.revoked_at.is_(None))
        ).scalar_one()
        return int(policies) + sum(
            int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(model).where(active(model, now))
                ).scalar_one()
            )
            for model in (RecipientToken, RecipientClientSecret, RecipientPublicKey)
        )


# The table each method's credentials live in.
_MODELS: dict[str, Any] = {
    "token": RecipientToken,
    "basic": RecipientToken,  # a basic profile carries a bearer token as its password
    "oauth": RecipientClientSecret,
    "private-key-jwt": RecipientPublicKey,
}


def _check_method(auth: str, public_key: PublicKeyRequest | None) -> None:
    if auth not in AUTH_METHODS:
        raise InvalidParameterError(f"auth must be one of {', '.join(AUTH_METHODS)}")
    if (auth == "private-key-jwt") != (public_key is not None):
        raise InvalidParameterError("a public key and key id go with auth private-key-jwt, and only with it")


def _retire(
    conn: sa.Connection, model: Any, mine: sa.ColumnElement[bool], now: datetime, cutoff: datetime
) -> None:
    """The active credentials `mine` of `model` stop at `cutoff` (now: revoked)."""
    if cutoff <= now:
        revoke_active(conn, model, mine, now)
        return
    conn.execute(
        sa.update(model)
        .where(mine, active(model, now), sa.or_(model.expires_at.is_(None), model.expires_at > cutoff))
        .values(expires_at=cutoff)
    )


def _issue(
    conn: sa.Connection,
    recipient_id: int,
    auth: str,
    now: datetime,
    lifetime: int | None,
    public_key: PublicKeyRequest | None,
) -> tuple[str, datetime | None, dict[str, str] | None]:
    """A new credential of method `auth`: (its secret, "" for a public key; its expiry; the registered key's
    id and algorithm)."""
    owner = {"recipient_id": recipient_id, "created_at": now}
    if public_key is not None:
        check_name("key id", public_key.key_id)
        _, algorithm = load_public_key(public_key.pem, public_key.algorithm)
        conn.execute(
            sa.insert(RecipientPublicKey).values(
                **owner, kid=public_key.key_id, algorithm=algorithm, public_key=public_key.pem.strip() + "\n"
            )
        )
        return "", None, {"keyId": public_key.key_id, "algorithm": algorithm}
    secret = new_client_secret() if auth == "oauth" else new_token()
    expires_at = expiry(now, lifetime)
    conn.execute(
        sa.insert(_MODELS[auth]).values(**owner, token_hash=token_hash(secret), expires_at=expires_at)
    )
    return secret, expires_at, None
