"""The OAuth 2.0 token endpoint (RFC 6749 §4.4, §5; RFC 7523 §2.1) for recipients without a long-lived token.

Two grants:
- `client_credentials`, the client authenticated with its client id (= recipient name) and client secret, by
  HTTP Basic (`client_secret_basic`) or in the form (`client_secret_post`), RFC 6749 §2.3.1, or with a signed
  `client_assertion` (`private_key_jwt`, RFC 7523 §2.2, checked as the jwt-bearer grant's assertion);
- `urn:ietf:params:oauth:grant-type:jwt-bearer`, an assertion JWT the client signed with its private key:
  verified against the public key the recipient registered under the header's `kid`, `iss` = client id,
  `aud` = this server's issuer (or its token endpoint URL), `exp`/`iat` with a small skew, at most
  MAX_ASSERTION_SECONDS ahead, and a `jti` never seen before on any replica.
Both answer an access token (lakegate.auth.access_tokens). Errors are RFC 6749 §5.2 bodies, not the sharing
protocol's: this endpoint talks to OAuth clients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import jwt

from lakegate.auth.access_tokens import AccessGrant, AccessTokens, Via
from lakegate.auth.jose import (
    ASYMMETRIC,
    CLOCK_SKEW_SECONDS,
    load_public_key,
    unverified_claims,
    unverified_header,
)
from lakegate.auth.ratelimit import FailureLimiter
from lakegate.catalog.client_credentials import Client, ClientCredentials
from lakegate.exceptions import InvalidParameterError

log = logging.getLogger("lakegate.auth")

CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
GRANT_TYPES = (CLIENT_CREDENTIALS, JWT_BEARER)
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
# An assertion may claim to live at most this long from now: replay rows are kept until then.
MAX_ASSERTION_SECONDS = 600
REALM = 'Basic realm="lakegate", charset="UTF-8"'


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


def invalid_client(description: str) -> OAuthError:
    # 401 with a challenge (RFC 6749 §5.2: MUST when the client used the Authorization header; HTTP wants one
    # on every 401).
    return OAuthError(401, "invalid_client", description, {"WWW-Authenticate": REALM})


def _invalid_grant(description: str) -> OAuthError:
    return OAuthError(400, "invalid_grant", description)


# Why PyJWT refused an assertion, in words for the client (the most specific class first).
_REASONS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "the assertion has expired"),
    (jwt.ImmatureSignatureError, "the assertion is not yet valid (iat or nbf in the future)"),
    (jwt.InvalidIssuerError, "the assertion's iss must be the client id"),
    (jwt.InvalidSignatureError, "the assertion's signature does not verify with the registered key"),
]


def _why(exc: jwt.PyJWTError, audiences: Collection[str]) -> str:
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"the assertion's aud must name this server: {' or '.join(sorted(audiences))}"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the assertion lacks the {exc.claim} claim"
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return f"the assertion is invalid: {exc}"


class TokenEndpoint:
    def __init__(
        self,
        clients: ClientCredentials,
        tokens: AccessTokens,
        per_client: FailureLimiter,
        per_address: FailureLimiter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients = clients
        self.tokens = tokens
        self.per_client = per_client
        self.per_address = per_address
        self.clock = clock

    def exchange(
        self,
        form: Mapping[str, str],
        basic: tuple[str, str] | None,
        address: str,
        audiences: Collection[str],
    ) -> dict[str, Any]:
        """The access token answer for a token request (`form`: its parameters, each given once; `basic`: the
        HTTP Basic credentials, if any; `address`: the client's; `audiences`: what an assertion's `aud` may
        name). Raises OAuthError."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise invalid_request("grant_type is required")
        via: Via
        if grant_type == CLIENT_CREDENTIALS and "client_assertion" in form:
            if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or basic or "client_secret" in form:
                raise invalid_request(
                    f"client_assertion needs client_assertion_type {CLIENT_ASSERTION_TYPE} and no other "
                    "client authentication"
                )
            client, via = self._by_assertion(form["client_assertion"], address, audiences), "key"
            if form.get("client_id", client.name).lower() != client.name.lower():
                raise invalid_request("client_id names another client than the client_assertion's issuer")
        elif grant_type == CLIENT_CREDENTIALS:
            client, via = self._by_secret(form, basic, address), "secret"
        elif grant_type == JWT_BEARER:
            if not form.get("assertion"):
                raise invalid_request("assertion is required with the jwt-bearer grant")
            client, via = self._by_assertion(form["assertion"], address, audiences), "key"
        else:
            raise OAuthError(
                400, "unsupported_grant_type", f"grant_type must be one of {', '.join(GRANT_TYPES)}"
            )
        grant = AccessGrant(client.recipient_id, via, client.credential_id, client.credential_created)
        token = self.tokens.mint(client.name, grant)
        log.info(
            "access token issued to recipient '%s' (client %s #%d)", client.name, via, client.credential_id
        )
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.tokens.lifetime_seconds}

    # -- client_credentials --------------------------------------------------------------------------------------

    def _by_secret(self, form: Mapping[str, str], basic: tuple[str, str] | None, address: str) -> Client:
        if basic is not None:
            if "client_secret" in form:
                raise invalid_request("use one client authentication method: HTTP Basic or client_secret")
            client_id, secret = basic
            if form.get("client_id", client_id).lower() not in (
                client_id.lower(),
                unquote_plus(client_id).lower(),
            ):
                raise invalid_request("client_id names another client than the HTTP Basic credentials")
        elif "client_id" in form and "client_secret" in form:
            client_id, secret = form["client_id"], form["client_secret"]
        else:
            raise invalid_client(
                "client authentication is required (HTTP Basic, or client_id and client_secret)"
            )
        self._check_limits(client_id, address)
        client = self.clients.by_secret(client_id, secret)
        # RFC 6749 §2.3.1 form-encodes id and secret inside Basic; most clients (the official one too) do not.
        decoded = (unquote_plus(client_id), unquote_plus(secret))
        if client is None and basic is not None and decoded != basic:
            client = self.clients.by_secret(*decoded)
        if client is None:
            self._failed(client_id, address)
            raise invalid_client("unknown client, or a wrong, expired or revoked client secret")
        return client

    # -- jwt-bearer (RFC 7523) -----------------------------------------------------------------------------------

    def _by_assertion(self, assertion: str, address: str, audiences: Collection[str]) -> Client:
        header, claims = unverified_header(assertion), unverified_claims(assertion)
        if header is None or claims is None:
            self._failed(None, address)
            raise _invalid_grant("the assertion is not a signed JWT of at most 8 KiB")
        alg, kid, client_id = header.get("alg"), header.get("kid"), claims.get("iss")
        if alg not in ASYMMETRIC:
            self._failed(None, address)
            raise _invalid_grant(
                f"assertion algorithm {alg!r} is not accepted: use one of {', '.join(ASYMMETRIC)}"
            )
        if not isinstance(kid, str) or not isinstance(client_id, str) or not kid or not client_id:
            self._failed(None, address)
            raise _invalid_grant("the assertion needs a kid header and an iss claim (the client id)")
        self._check_limits(client_id, address)
        key = self.clients.key(client_id, kid)
        if key is None:
            self._failed(client_id, address)
            raise _invalid_grant(f"client {client_id!r} has no active public key with kid {kid!r}")
        try:
            claims = self._verify(assertion, key.pem, key.algorithm, client_id, audiences)
        except OAuthError:
            self._failed(client_id, address)
            raise
        jti, exp = claims["jti"], int(claims["exp"])
        if not self.clients.use_assertion(client_id, jti, datetime.fromtimestamp(exp, UTC)):
            self._failed(client_id, address)
            raise _invalid_grant("the assertion was already used (replayed jti)")
        return Client(key.recipient_id, key.name, key.key_id, key.created_at)

    def _verify(
        self, assertion: str, pem: str, algorithm: str, client_id: str, audiences: Collection[str]
    ) -> dict[str, Any]:
        """The assertion's claims, verified; raises invalid_grant saying what failed."""
        try:
            public_key, _ = load_public_key(pem, algorithm)
            claims: dict[str, Any] = jwt.decode(
                assertion,
                public_key,
                algorithms=[algorithm],  # the key's one algorithm: never none, never HMAC with this key
                audience=list(audiences),
                issuer=client_id,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except InvalidParameterError:
            raise _invalid_grant("the registered public key cannot be used") from None
        except jwt.PyJWTError as exc:
            raise _invalid_grant(_why(exc, audiences)) from None
        jti = claims["jti"]
        if claims.get("sub", client_id) != client_id:
            raise _invalid_grant("the assertion's sub, when given, must be the client id")
        if not isinstance(jti, str) or not 0 < len(jti) <= 255:
            raise _invalid_grant("the assertion's jti must be a string of 1 to 255 characters")
        if int(claims["exp"]) > self.clock() + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
            raise _invalid_grant(f"the assertion's exp is more than {MAX_ASSERTION_SECONDS} s ahead")
        return claims

    # -- the failed-authentication limit -------------------------------------------------------------------------

    def _check_limits(self, client_id: str, address: str) -> None:
        wait = max(self.per_client.retry_after(client_id.lower()), self.per_address.retry_after(address))
        if wait:
            raise OAuthError(
                429,
                "invalid_client",
                f"too many failed client authentications from this client or address; retry after {wait} s",
                {"Retry-After": str(wait)},
            )

    def _failed(self, client_id: str | None, address: str) -> None:
        log.info(
            "token endpoint: failed client authentication of %r from %s", (client_id or "?")[:255], address
        )
        if client_id is not None:
            self.per_client.failed(client_id.lower())
        self.per_address.failed(address)
