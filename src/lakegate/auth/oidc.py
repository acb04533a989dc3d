"""Tokens from a recipient's own identity provider (OIDC federation): discovery, the key cache, verification.

A federated recipient presents a JWT its identity provider (IdP) signed. lakegate reads the token's `iss`
without trusting it, and only when a federation policy names that issuer does it look up the issuer's keys:
`{issuer}/.well-known/openid-configuration` → `jwks_uri` → the JSON Web Key Set. A token naming any other issuer
is refused without a single fetch, so a caller cannot make the server contact a host of its choosing.

Keys are cached per issuer (`jwksCacheSeconds`) and refetched when a token names a key id the cache does not
hold (the IdP rotated its keys), at most once per `jwksMinRefreshSeconds`, so tokens with made-up key ids cannot
make the server hammer the IdP. Fetches run in the request's worker thread (authentication is synchronous and
never on the event loop), one at a time per issuer, with a timeout and a size bound; an IdP that cannot be
reached is a 503 (the client retries), a token that does not verify a 401. When a refresh fails but keys are
cached, the cached keys stay in use.

PyJWT checks signatures and the registered claims; this module only picks the key and the algorithms. Only
asymmetric algorithms are accepted (never `none`, never HMAC, whose "secret" would be the public key).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

from lakegate.auth.jose import ASYMMETRIC
from lakegate.exceptions import IdpUnavailableError, UnauthenticatedError

log = logging.getLogger("lakegate.auth")

ALGORITHMS = ASYMMETRIC
# The algorithms a key of each type may verify (an EC key is bound to its curve's one algorithm).
_KEY_ALGORITHMS: dict[tuple[str, str | None], set[str]] = {
    ("RSA", None): {"RS256", "RS384", "RS512"},
    ("EC", "P-256"): {"ES256"},
    ("EC", "P-384"): {"ES384"},
    ("OKP", "Ed25519"): {"EdDSA"},
    ("OKP", "Ed448"): {"EdDSA"},
}
# IdP tokens are 1-3 KiB, but Entra ID access tokens carrying many group ids grow past jose.MAX_JWT_BYTES (meant
# for client assertions); anything larger than this is refused before it is parsed.
MAX_TOKEN_CHARS = 16 * 1024
MAX_DOCUMENT_BYTES = 512 * 1024  # a discovery document or key set larger than this is not an IdP's
WELL_KNOWN = "/.well-known/openid-configuration"


def looks_like_jwt(token: str) -> bool:
    """A compact JWS (header.payload.signature, the header a base64url JSON object), not an opaque token."""
    return token.startswith("eyJ") and token.count(".") == 2


def refused(reason: str, detail: str) -> UnauthenticatedError:
    """A 401 telling the caller `reason`; `detail` (which may name the issuer or subject) goes to the log."""
    log.info("refused (401): federated token: %s", detail)
    return UnauthenticatedError(f"invalid federated token: {reason}")


def unverified_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, read before any check: only to choose the policies and the key that will
    check it. Refuses what no policy could accept (too large, malformed, an algorithm not allowed)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise refused("the token is too large", f"{len(token)} characters")
    try:  # one parse for both (PyJWT checks every base64 character: a parse is most of a verification's cost)
        parsed = jwt.decode_complete(token, options={"verify_signature": False})
        header, claims = parsed["header"], parsed["payload"]
    except jwt.PyJWTError as exc:
        raise refused("the token is not a well-formed JWT", str(exc)) from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise refused(f"algorithm {str(alg)[:20]!r} is not accepted", f"alg {alg!r}")
    if not isinstance(claims.get("iss"), str):
        raise refused("the token has no issuer", "no string iss")
    return header, claims


def http_issuer_allowed(issuer: str) -> bool:
    """Plain http is accepted only for an IdP on this machine (tests, a local proxy); anything else is https."""
    parts = urlsplit(issuer)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class KeyCacheSettings:
    cache_seconds: float = 600.0  # how long a fetched key set is trusted before it is fetched again
    min_refresh_seconds: float = 60.0  # at most one refetch per issuer in this time for an unknown key id
    fetch_timeout_seconds: float = 5.0  # per HTTP request to the IdP (connect, then each read)
    failure_backoff_seconds: float = 10.0  # after a failed fetch with nothing cached, 503 without retrying


# (url, timeout) -> the JSON document; raises IdpUnavailableError.
Fetch = Callable[[str, float], Any]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Discovery and keys are read from the URLs named, never from wherever a redirect points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch_json(url: str, timeout: float) -> Any:
    """GET a JSON document from an IdP, bounded in time and size."""
    # S310: callers pass only http(s) URLs (policies' issuers, and jwks_uri checked by _same_security).
    request = urllib.request.Request(  # noqa: S310
        url, headers={"Accept": "application/json", "User-Agent": "lakegate"}
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise IdpUnavailableError(f"{url} answered HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, TLS failure
        raise IdpUnavailableError(f"{url} cannot be reached: {exc}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise IdpUnavailableError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise IdpUnavailableError(f"{url} did not answer JSON") from None


@dataclass
class _Issuer:
    """What is known of one issuer; `keys` is replaced whole, never changed, so readers need no lock."""

    keys: Mapping[str | None, _Key] | None = None
    expires_at: float = 0.0
    # The last refetch made for an unknown key id; first fetches and expiries do not count, so a rotation right
    # after the first token is still picked up.
    last_kid_refresh: float = float("-inf")
    failed_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class IssuerKeys:
    """The signing keys of the issuers federation policies name, fetched on first use and cached."""

    def __init__(
        self,
        settings: KeyCacheSettings | None = None,
        *,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or KeyCacheSettings()
        self._fetch = fetch
        self._clock = clock
        self._issuers: dict[str, _Issuer] = {}
        self._lock = threading.Lock()

    def key(self, issuer: str, kid: str | None, alg: str) -> jwt.PyJWK:
        """The issuer's key `kid` able to verify `alg`: from the cache, else after a (rate-limited) refetch."""
        state = self._state(issuer)
        cached = None if state.keys is None else _pick(state.keys, kid, alg)
        if cached is not None and self._clock() < state.expires_at:
            return cached
        # A refetch is needed (nothing cached, the cache expired, or an unknown key id): one thread at a time
        # per issuer. When the set merely expired, the others keep verifying with the cached key meanwhile;
        # otherwise they wait for the fetch rather than fetching the same document again.
        if cached is not None:
            if not state.lock.acquire(blocking=False):
                return cached
        elif not state.lock.acquire(timeout=3 * self.settings.fetch_timeout_seconds):
            raise IdpUnavailableError(f"issuer {issuer}: its keys are still being fetched")
        try:
            return self._key_locked(issuer, state, kid, alg)
        finally:
            state.lock.release()

    def _key_locked(self, issuer: str, state: _Issuer, kid: str | None, alg: str) -> jwt.PyJWK:
        now = self._clock()
        if state.keys is None or now >= state.expires_at:
            self._refresh(issuer, state, now)  # first use or expiry (another thread may just have done it)
        else:
            found = _pick(state.keys, kid, alg)
            if found is None and now - state.last_kid_refresh >= self.settings.min_refresh_seconds:
                log.info("issuer %s: token names unknown key id %r; refetching its keys", issuer, kid)
                state.last_kid_refresh = now
                self._refresh(issuer, state, now)
        assert state.keys is not None
        found = _pick(state.keys, kid, alg)
        if found is None:
            raise refused(
                "the token is signed by a key its issuer does not publish", f"issuer {issuer}, kid {kid!r}"
            )
        return found

    def _refresh(self, issuer: str, state: _Issuer, now: float) -> None:
        if state.keys is None and now < state.failed_until:
            raise IdpUnavailableError(f"issuer {issuer}: the last fetch of its keys failed")
        try:
            keys = self._fetch_keys(issuer)
        except IdpUnavailableError as exc:
            if state.keys is None:
                state.failed_until = now + self.settings.failure_backoff_seconds
                log.warning("issuer %s: %s", issuer, exc.message)
                raise
            # Keep the keys we have, and try again after the refresh interval, not on every request.
            state.expires_at = now + self.settings.min_refresh_seconds
            log.warning("issuer %s: keeping cached keys: %s", issuer, exc.message)
            return
        state.keys = keys
        state.expires_at = now + self.settings.cache_seconds
        log.info("issuer %s: fetched %d signing key(s)", issuer, len(keys))

    def _fetch_keys(self, issuer: str) -> dict[str | None, _Key]:
        timeout = self.settings.fetch_timeout_seconds
        discovery = self._fetch(issuer.rstrip("/") + WELL_KNOWN, timeout)
        if not isinstance(discovery, dict) or discovery.get("issuer") != issuer:
            # OpenID Connect Discovery §4.3: the document must name the very issuer it was fetched for.
            raise IdpUnavailableError("its discovery document names another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _same_security(issuer, jwks_uri):
            raise IdpUnavailableError("its discovery document has no usable jwks_uri")
        document = self._fetch(jwks_uri, timeout)
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise IdpUnavailableError(f"{jwks_uri} is not a JSON Web Key Set")
        return _signing_keys(entries)

    def _state(self, issuer: str) -> _Issuer:
        state = self._issuers.get(issuer)
        if state is None:
            with self._lock:
                state = self._issuers.setdefault(issuer, _Issuer())
        return state


def _same_security(issuer: str, url: str) -> bool:
    """The key set is fetched over https, or over http only from an issuer this machine allows http for."""
    scheme = urlsplit(url).scheme
    return scheme == "https" or (
        scheme == "http" and http_issuer_allowed(issuer) and http_issuer_allowed(url)
    )


@dataclass(frozen=True)
class _Key:
    jwk: jwt.PyJWK
    algorithms: frozenset[str]  # what it may verify: its type's algorithms, or the one its `alg` declares


def _signing_keys(entries: list[Any]) -> dict[str | None, _Key]:
    """The set's public signing keys by `kid`; keys for encryption, of other types, or unreadable are left out."""
    keys: dict[str | None, _Key] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or "d" in entry:
            continue
        allowed = _KEY_ALGORITHMS.get((str(entry.get("kty")), entry.get("crv")))
        if allowed is None or ("alg" in entry and entry["alg"] not in allowed):
            continue
        kid = entry.get("kid")
        try:
            jwk = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            log.info("JWKS key %r left out: %s", kid, exc)
            continue
        algorithms = frozenset({entry["alg"]} if "alg" in entry else allowed)
        keys[kid if isinstance(kid, str) else None] = _Key(jwk, algorithms)
    return keys


def _pick(keys: Mapping[str | None, _Key], kid: str | None, alg: str) -> jwt.PyJWK | None:
    """The key named `kid` (a token without one: the set's only key), if it may verify `alg`."""
    key = next(iter(keys.values())) if kid is None and len(keys) == 1 else keys.get(kid)
    return key.jwk if key is not None and alg in key.algorithms else None


def verified_claims(
    token: str, header: Mapping[str, Any], issuer: str, keys: IssuerKeys, skew: int
) -> dict[str, Any]:
    """The claims of a federated JWT (already read by `unverified_claims`) whose signature, `iss`, `exp` and
    `nbf` verify, with `skew` seconds of tolerance; its audience and subject are the policies' to check."""
    kid = header.get("kid")
    kid = kid if isinstance(kid, str) else None
    key = keys.key(issuer, kid, header["alg"])
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[header["alg"]],
            issuer=issuer,
            leeway=skew,
            options={"require": ["exp", "iss", "aud"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise refused("the token has expired", f"issuer {issuer}: expired") from None
    except jwt.ImmatureSignatureError:
        raise refused("the token is not valid yet", f"issuer {issuer}: nbf/iat in the future") from None
    except jwt.InvalidSignatureError:
        raise refused("the token's signature does not verify", f"issuer {issuer}, kid {kid!r}") from None
    except jwt.PyJWTError as exc:
        raise refused(str(exc), f"issuer {issuer}: {exc}") from None
    return claims


def audiences(claims: Mapping[str, Any]) -> set[str]:
    """The token's `aud`: one string or a list of them (RFC 7519 §4.1.3)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return {aud}
    if isinstance(aud, list):
        return {a for a in aud if isinstance(a, str)}
    return set()
