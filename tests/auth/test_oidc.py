"""The federated-token verifier against a real OpenID provider on loopback (tests/services/oidc.py)."""

from __future__ import annotations

import base64
import json
import threading
import time

import jwt
import pytest

from lakegate.auth.oidc import IssuerKeys, KeyCacheSettings, fetch_json, unverified_claims, verified_claims
from lakegate.exceptions import IdpUnavailableError, UnauthenticatedError
from tests.services.oidc import OpenIdProvider, SigningKey, hmac_with_public_key, unsigned

AUD = "api://lakegate-test"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verify(token: str, keys: IssuerKeys, issuers: tuple[str, ...]) -> dict:
    """What the federation authenticator does once a policy names the token's issuer."""
    header, unverified = unverified_claims(token)
    assert unverified["iss"] in issuers
    return verified_claims(token, header, unverified["iss"], keys, skew=60)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"])
def test_every_accepted_algorithm_verifies(alg: str) -> None:
    provider = OpenIdProvider.start(alg)
    try:
        token = provider.mint("client-a", AUD)
        claims = _verify(token, IssuerKeys(), (provider.issuer,))
        assert (claims["sub"], claims["aud"], claims["iss"]) == ("client-a", AUD, provider.issuer)
    finally:
        provider.stop()


def test_token_from_the_token_endpoint_verifies(oidc_provider: OpenIdProvider) -> None:
    secret = oidc_provider.register("app-1", AUD)
    status, body = oidc_provider.issue(
        {"grant_type": "client_credentials", "client_id": "app-1", "client_secret": secret}, None
    )
    assert status == 200
    assert _verify(body["access_token"], IssuerKeys(), (oidc_provider.issuer,))["sub"] == "app-1"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 300}, "not valid yet"),
        ({"exp": None}, "exp"),
        ({"aud": None}, "aud"),
    ],
)
def test_times_and_required_claims(oidc_provider: OpenIdProvider, claims: dict, reason: str) -> None:
    token = oidc_provider.mint("client-a", AUD, **claims)
    with pytest.raises(UnauthenticatedError, match=reason):
        _verify(token, IssuerKeys(), (oidc_provider.issuer,))


def test_small_clock_skew_is_tolerated(oidc_provider: OpenIdProvider) -> None:
    token = oidc_provider.mint("client-a", AUD, exp=int(time.time()) - 20, nbf=int(time.time()) + 20)
    assert _verify(token, IssuerKeys(), (oidc_provider.issuer,))["sub"] == "client-a"


def test_a_key_the_issuer_does_not_publish_is_refused(oidc_provider: OpenIdProvider) -> None:
    stranger = SigningKey.generate("RS256", kid=oidc_provider.current.kid)  # same kid, other key
    with pytest.raises(UnauthenticatedError, match="signature does not verify"):
        _verify(oidc_provider.mint("c", AUD, key=stranger), IssuerKeys(), (oidc_provider.issuer,))
    unknown = SigningKey.generate("RS256")
    with pytest.raises(UnauthenticatedError, match="key its issuer does not publish"):
        _verify(oidc_provider.mint("c", AUD, key=unknown), IssuerKeys(), (oidc_provider.issuer,))


def test_alg_none_is_refused(oidc_provider: OpenIdProvider) -> None:
    token = unsigned(oidc_provider.claims("client-a", AUD), oidc_provider.current.kid)
    with pytest.raises(UnauthenticatedError, match="algorithm 'none' is not accepted"):
        _verify(token, IssuerKeys(), (oidc_provider.issuer,))


def test_hmac_signed_with_the_public_key_is_refused(oidc_provider: OpenIdProvider) -> None:
    token = hmac_with_public_key(oidc_provider.claims("client-a", AUD), oidc_provider.current)
    with pytest.raises(UnauthenticatedError, match="algorithm 'HS256' is not accepted"):
        _verify(token, IssuerKeys(), (oidc_provider.issuer,))
    assert oidc_provider.jwks_hits == 0


def test_algorithm_must_fit_the_key(oidc_provider: OpenIdProvider) -> None:
    # An RS384 token under a key the IdP declares for RS256 is refused, though RSA could verify it.
    key = oidc_provider.current
    token = jwt.encode(
        oidc_provider.claims("c", AUD), key.private, algorithm="RS384", headers={"kid": key.kid}
    )
    with pytest.raises(UnauthenticatedError, match="does not publish"):
        _verify(token, IssuerKeys(), (oidc_provider.issuer,))


def test_oversized_and_malformed_tokens_are_refused(oidc_provider: OpenIdProvider) -> None:
    big = oidc_provider.mint("c", AUD, padding="x" * 20_000)
    with pytest.raises(UnauthenticatedError, match="too large"):
        _verify(big, IssuerKeys(), (oidc_provider.issuer,))
    with pytest.raises(UnauthenticatedError, match="not a well-formed JWT"):
        _verify("eyJhbGciOi.bad.token", IssuerKeys(), (oidc_provider.issuer,))


def test_rotation_is_picked_up_and_unknown_kids_refetch_at_most_once_a_minute(
    oidc_provider: OpenIdProvider,
) -> None:
    clock = Clock()
    keys = IssuerKeys(clock=clock)
    issuers = (oidc_provider.issuer,)
    _verify(oidc_provider.mint("c", AUD), keys, issuers)
    assert oidc_provider.jwks_hits == 1
    _verify(oidc_provider.mint("c", AUD), keys, issuers)
    assert oidc_provider.jwks_hits == 1  # cached

    oidc_provider.rotate(retire=True)
    clock.now += 5
    assert _verify(oidc_provider.mint("c", AUD), keys, issuers)["sub"] == "c"  # new kid: one refetch
    assert oidc_provider.jwks_hits == 2

    # Made-up key ids: refused, and no further fetch within the minute however many arrive.
    for _ in range(20):
        with pytest.raises(UnauthenticatedError, match="does not publish"):
            _verify(oidc_provider.mint("c", AUD, key=SigningKey.generate("ES256")), keys, issuers)
    assert oidc_provider.jwks_hits == 2
    clock.now += 61
    with pytest.raises(UnauthenticatedError):
        _verify(oidc_provider.mint("c", AUD, key=SigningKey.generate("ES256")), keys, issuers)
    assert oidc_provider.jwks_hits == 3


def test_the_cache_expires(oidc_provider: OpenIdProvider) -> None:
    clock = Clock()
    keys = IssuerKeys(KeyCacheSettings(cache_seconds=300), clock=clock)
    _verify(oidc_provider.mint("c", AUD), keys, (oidc_provider.issuer,))
    clock.now += 301
    _verify(oidc_provider.mint("c", AUD), keys, (oidc_provider.issuer,))
    assert oidc_provider.jwks_hits == 2


def test_unreachable_issuer_is_a_503_and_backs_off(oidc_provider: OpenIdProvider) -> None:
    token = oidc_provider.mint("c", AUD)
    oidc_provider.stop()
    calls: list[str] = []

    def counting_fetch(url: str, timeout: float) -> object:
        calls.append(url)
        return fetch_json(url, timeout)

    clock = Clock()
    keys = IssuerKeys(KeyCacheSettings(fetch_timeout_seconds=1), fetch=counting_fetch, clock=clock)
    for _ in range(3):
        with pytest.raises(IdpUnavailableError):
            _verify(token, keys, (oidc_provider.issuer,))
    assert len(calls) == 1  # then backed off


def test_cached_keys_outlive_a_failed_refresh(oidc_provider: OpenIdProvider) -> None:
    clock = Clock()
    keys = IssuerKeys(KeyCacheSettings(cache_seconds=300, fetch_timeout_seconds=1), clock=clock)
    token = oidc_provider.mint("c", AUD)
    _verify(token, keys, (oidc_provider.issuer,))
    oidc_provider.stop()
    clock.now += 301
    assert _verify(token, keys, (oidc_provider.issuer,))["sub"] == "c"


def test_discovery_must_name_its_own_issuer(oidc_provider: OpenIdProvider) -> None:
    def lying_fetch(url: str, timeout: float) -> object:
        document = fetch_json(url, timeout)
        if url.endswith("openid-configuration"):
            document["issuer"] = "https://evil.example"
        return document

    with pytest.raises(IdpUnavailableError, match="another issuer"):
        _verify(oidc_provider.mint("c", AUD), IssuerKeys(fetch=lying_fetch), (oidc_provider.issuer,))


def test_an_expired_set_keeps_serving_while_one_thread_refetches(oidc_provider: OpenIdProvider) -> None:
    release = threading.Event()
    fetching = threading.Event()
    fetched: list[str] = []

    def slow_fetch(url: str, timeout: float) -> object:
        if len(fetched) >= 2:  # the first discovery and key set come at once, any later fetch waits
            fetching.set()
            release.wait(10)
        fetched.append(url)
        return fetch_json(url, timeout)

    clock = Clock()
    keys = IssuerKeys(KeyCacheSettings(cache_seconds=300), fetch=slow_fetch, clock=clock)
    token = oidc_provider.mint("c", AUD)
    _verify(token, keys, (oidc_provider.issuer,))
    clock.now += 301
    refresher = threading.Thread(target=_verify, args=(token, keys, (oidc_provider.issuer,)))
    refresher.start()
    assert fetching.wait(10)
    started = time.monotonic()
    assert _verify(token, keys, (oidc_provider.issuer,))["sub"] == "c"  # not waiting for the refetch
    assert time.monotonic() - started < 1
    release.set()
    refresher.join(10)
    assert oidc_provider.jwks_hits == 2
