"""lakegate's own OAuth access tokens, issued by the token endpoint.

They are JWTs signed (HS256) with a key derived from the server's token signing key, not opaque tokens stored
in the database: every replica holding the signing key verifies them without a database write per issued
token (a client re-exchanges its credential every hour, every replica would otherwise insert and purge rows).
They still die with the recipient: each names the credential that obtained it (a client secret or a registered
public key, by row id and creation time, as SQLite reuses the ids of deleted rows) and the recipient's row id,
and `SqlCatalog.authenticate` checks on every request that this credential is still active and reads the
recipient's current grants. Revoking, rotating (past its grace) or deleting ends the token on the next request
(within `catalogCacheSeconds`), not at its expiry.

HMAC here is right: the server is both signer and verifier, and the key never leaves it. The header is fixed,
so "is this ours?" is a prefix comparison (no parsing) on the hot path.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from lakegate.auth.jose import MAX_JWT_BYTES
from lakegate.keys import KeyRing

PURPOSE = "oauth-access-token"
ALGORITHM = "HS256"
_HEADERS = {"kid": "lakegate-access-v1", "typ": "at+jwt"}
# The encoded header of every access token (PyJWT sorts header keys, so it is one constant string).
PREFIX = jwt.encode({}, "k" * 32, algorithm=ALGORITHM, headers=_HEADERS).split(".")[0] + "."

Via = Literal["secret", "key"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class AccessGrant:
    """What a verified access token says: the recipient's row id, and which credential obtained it (its row id
    and creation time: together they name one credential forever, even where row ids are reused)."""

    recipient_id: int
    via: Via
    credential_id: int
    credential_created: datetime


def is_access_token(token: str) -> bool:
    """Whether `token` claims to be one of ours (unverified: the caller then verifies it, or refuses it)."""
    return token.startswith(PREFIX)


class AccessTokens:
    def __init__(self, keys: KeyRing, issuer: str, lifetime_seconds: int) -> None:
        self._key = keys.key(PURPOSE)
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds

    def mint(self, recipient: str, grant: AccessGrant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": recipient,  # for people reading a token; authorization uses the row ids below
            "iat": now,
            "exp": now + self.lifetime_seconds,
            "jti": secrets.token_urlsafe(12),
            "rid": grant.recipient_id,
            "via": grant.via,
            "cid": grant.credential_id,
            "cat": (grant.credential_created - _EPOCH) // _MICROSECOND,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers=_HEADERS)

    def verify(self, token: str) -> AccessGrant | None:
        """The grant of a valid, unexpired access token of ours; None for anything else."""
        if not is_access_token(token) or len(token) > MAX_JWT_BYTES:
            return None
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                # `iss` is not compared: without publicUrl each replica names itself after its host, and the
                # signature under our own derived key already says the token is ours.
                options={"require": ["exp", "iat", "rid", "via", "cid", "cat"]},
            )
        except jwt.PyJWTError:
            return None
        rid, via, cid, cat = claims["rid"], claims["via"], claims["cid"], claims["cat"]
        if not (all(isinstance(n, int) for n in (rid, cid, cat)) and via in ("secret", "key")):
            return None
        return AccessGrant(rid, via, cid, _EPOCH + cat * _MICROSECOND)
