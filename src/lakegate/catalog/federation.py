"""OIDC federation policies: managing them, and authenticating the JWTs they accept.

A policy says: a JWT from `issuer`, whose `aud` is one of `audiences` and whose claim `subject_claim` (default
`sub`) equals `subject`, authenticates as the recipient. The recipient's own identity provider issues the
token; lakegate holds no secret. A federated caller is authorised exactly as a token holder: by the recipient's
grants, read on every request, so removing a policy, revoking the recipient or changing a grant takes effect on
the next request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from lakegate.auth.oidc import (
    IssuerKeys,
    audiences,
    http_issuer_allowed,
    looks_like_jwt,
    refused,
    unverified_claims,
    verified_claims,
)
from lakegate.catalog.base import Principal
from lakegate.catalog.db import Database
from lakegate.catalog.models import SHARES, FederationPolicy, Grant, Recipient
from lakegate.exceptions import AlreadyExistsError, ConflictError, InvalidParameterError, NotFoundError
from lakegate.timestamps import iso, iso_or_none

log = logging.getLogger("lakegate.auth")

MAX_ISSUER_CHARS = 1024  # the column's width
MAX_VALUE_CHARS = 1024  # an audience or a subject
MAX_AUDIENCES = 20
DEFAULT_SUBJECT_CLAIM = "sub"


def check_policy(
    issuer: str, audience_list: Iterable[str], subject: str, subject_claim: str | None
) -> tuple[str, list[str], str, str]:
    """A policy's values as stored, or InvalidParameterError naming what is wrong."""
    parts = urlsplit(issuer)
    if (
        not 0 < len(issuer) <= MAX_ISSUER_CHARS
        or "\x00" in issuer
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        raise InvalidParameterError(
            f"issuer must be an https URL without query or fragment, not {issuer[:100]!r}"
        )
    if not http_issuer_allowed(issuer):
        raise InvalidParameterError(
            "issuer must be an https URL (plain http only for an IdP on this machine: localhost, 127.0.0.1, ::1)"
        )
    unique = list(dict.fromkeys(audience_list))
    if not 1 <= len(unique) <= MAX_AUDIENCES:
        raise InvalidParameterError(f"a policy needs 1 to {MAX_AUDIENCES} audiences")
    claim = subject_claim or DEFAULT_SUBJECT_CLAIM
    for what, value in [*(("audience", a) for a in unique), ("subject", subject), ("subject claim", claim)]:
        if not value.strip() or len(value) > MAX_VALUE_CHARS or "\x00" in value:
            raise InvalidParameterError(f"{what} must be 1 to {MAX_VALUE_CHARS} characters (no NUL)")
    return issuer, unique, subject, claim


def policy_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "issuer": row.issuer,
        "audiences": list(row.audiences),
        "subjectClaim": row.subject_claim,
        "subject": row.subject,
        "createdAt": iso(row.created_at),
        "revokedAt": iso_or_none(row.revoked_at),
        "status": "revoked" if row.revoked_at is not None else "active",
    }


def policy_views(conn: sa.Connection, recipient_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each recipient's policies, oldest first."""
    rows = conn.execute(
        sa.select(FederationPolicy)
        .where(FederationPolicy.recipient_id.in_(recipient_ids))
        .order_by(FederationPolicy.id)
    ).all()
    out: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row.recipient_id, []).append(policy_view(row))
    return out


def add_policy(
    conn: sa.Connection,
    recipient: Any,
    issuer: str,
    audience_list: Iterable[str],
    subject: str,
    subject_claim: str | None,
    now: datetime,
) -> int:
    """Store a policy for the recipient row; refuses one it has already and one that would let the same token
    authenticate as another recipient."""
    if recipient.managed_by == "config":
        raise ConflictError(f"recipient '{recipient.name}' is the configuration's bearer token recipient")
    issuer, wanted, subject, claim = check_policy(issuer, audience_list, subject, subject_claim)
    same = conn.execute(
        sa.select(FederationPolicy.recipient_id, FederationPolicy.audiences, Recipient.name)
        .join(Recipient, Recipient.id == FederationPolicy.recipient_id)
        .where(
            FederationPolicy.issuer == issuer,
            FederationPolicy.subject_claim == claim,
            FederationPolicy.subject == subject,
            FederationPolicy.revoked_at.is_(None),
        )
    ).all()
    for other in same:
        if not set(other.audiences) & set(wanted):
            continue
        if other.recipient_id == recipient.id:
            raise AlreadyExistsError(
                f"recipient '{recipient.name}' already has a policy for this issuer and subject"
            )
        raise ConflictError(
            f"recipient '{other.name}' has a policy for the same issuer, subject and an audience of this one: "
            "one token would authenticate as two recipients"
        )
    return int(
        conn.execute(
            sa.insert(FederationPolicy)
            .values(
                recipient_id=recipient.id,
                issuer=issuer,
                audiences=wanted,
                subject_claim=claim,
                subject=subject,
                created_at=now,
            )
            .returning(FederationPolicy.id)
        ).scalar_one()
    )


def remove_policy(conn: sa.Connection, recipient: Any, policy_id: int) -> None:
    removed = conn.execute(
        sa.delete(FederationPolicy).where(
            FederationPolicy.id == policy_id, FederationPolicy.recipient_id == recipient.id
        )
    ).rowcount
    if not removed:
        raise NotFoundError(f"recipient '{recipient.name}' has no federation policy {policy_id}")


# Built once: the active policies of an issuer whose subject is one of the token's claim values (so a recipient
# with a thousand policies on one tenant costs one indexed lookup), with their recipients' grants.
_CANDIDATES = (
    sa.select(
        FederationPolicy.id,
        FederationPolicy.audiences,
        FederationPolicy.subject_claim,
        FederationPolicy.subject,
        Recipient.name,
        Recipient.all_shares,
        SHARES.c.name_key,
    )
    .join(Recipient, Recipient.id == FederationPolicy.recipient_id)
    .outerjoin(Grant, Grant.recipient_id == Recipient.id)
    .outerjoin(SHARES, SHARES.c.id == Grant.share_id)
    .where(
        FederationPolicy.issuer == sa.bindparam("issuer"),
        FederationPolicy.revoked_at.is_(None),
        FederationPolicy.subject.in_(sa.bindparam("subjects", expanding=True)),
    )
)


class FederatedAuthenticator:
    """The recipient a federated JWT authenticates as."""

    def __init__(self, db: Database, keys: IssuerKeys, skew_seconds: int = 60) -> None:
        self.db = db
        self.keys = keys
        self.skew_seconds = skew_seconds

    def authenticate(self, token: str) -> Principal | None:
        """The principal, or None when no active policy names the token's issuer and one of its claim values
        (then it may still be another kind of token; nothing was fetched). Raises UnauthenticatedError for a
        token a policy would take that does not verify, IdpUnavailableError when its keys cannot be had."""
        found = self.verify(token)
        return None if found is None else found[0]

    def verify(self, token: str) -> tuple[Principal, float] | None:
        """`authenticate`'s principal with the token's `exp` (seconds since 1970), so a caller remembering the
        answer for a moment knows when it must stop."""
        if not looks_like_jwt(token):
            return None
        header, unverified = unverified_claims(token)
        issuer: str = unverified["iss"]
        if "\x00" in issuer or len(issuer) > MAX_ISSUER_CHARS:
            return None  # no policy can name it (and PostgreSQL refuses to compare a NUL)
        subjects = sorted(
            {
                v
                for v in unverified.values()
                if isinstance(v, str) and len(v) <= MAX_VALUE_CHARS and "\x00" not in v
            }
        )
        with self.db.read() as conn:
            rows = conn.execute(_CANDIDATES, {"issuer": issuer, "subjects": subjects}).all()
        if not rows:
            log.info(
                "refused (401): federated token: no policy names issuer %r with its subject", issuer[:200]
            )
            return None
        claims = verified_claims(token, header, issuer, self.keys, self.skew_seconds)
        token_audiences = audiences(claims)
        matched = [
            r for r in rows if claims.get(r.subject_claim) == r.subject and token_audiences & set(r.audiences)
        ]
        names = {r.name for r in matched}
        if len(names) != 1:
            why = (
                "no audience or subject matches"
                if not names
                else f"matches several recipients {sorted(names)}"
            )
            raise refused("the token matches no federation policy", f"issuer {issuer}: {why}")
        first, expires = matched[0], float(claims["exp"])
        if first.all_shares:
            return Principal(first.name), expires
        return Principal(
            first.name, frozenset(r.name_key for r in matched if r.name_key is not None)
        ), expires
