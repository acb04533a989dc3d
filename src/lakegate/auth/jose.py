"""The JOSE rules for every JWT lakegate verifies that someone else signed (client assertions, federated
tokens), on PyJWT: the library checks signatures and registered claims; this module only fixes which
algorithms and key types are acceptable and how big a token may be.

Only asymmetric algorithms are accepted, and each registered key is bound to one algorithm: a token is verified
with `algorithms=[that algorithm]`, so `alg: none` and an HMAC "signed" with the public key (the classic
algorithm-confusion attack) are refused before any signature check.
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from lakegate.exceptions import InvalidParameterError

ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA")
MAX_JWT_BYTES = 8192  # a JWT past this is refused unparsed (a bearer or assertion is a few hundred bytes)
CLOCK_SKEW_SECONDS = 30  # leeway on exp / nbf / iat between our clock and the signer's
MIN_RSA_BITS = 2048

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1"}


def unverified_header(token: str) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, unverified, or None when `token` is not one (or is too large)."""
    if len(token) > MAX_JWT_BYTES or token.count(".") != 2:
        return None
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    return header


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The claims of a compact JWS, unverified (only to find whose key verifies it), or None."""
    if unverified_header(token) is None:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims


def load_public_key(pem: str, algorithm: str | None = None) -> tuple[PublicKey, str]:
    """A PEM public key and the one algorithm it will verify (given, or the natural one for the key type).
    InvalidParameterError for anything else: a private key, an unsupported key type, a key/algorithm mismatch."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise InvalidParameterError(
            "the public key is not a PEM public key (-----BEGIN PUBLIC KEY-----)"
        ) from None
    natural = _natural_algorithm(key)
    if natural is None:
        raise InvalidParameterError(
            "the public key must be RSA (2048 bits or more), EC P-256/P-384, or Ed25519"
        )
    chosen = algorithm or natural
    if chosen not in ASYMMETRIC:
        raise InvalidParameterError(f"algorithm must be one of {', '.join(ASYMMETRIC)}")
    if not _fits(key, chosen):
        raise InvalidParameterError(f"algorithm {chosen} does not fit this public key (use {natural})")
    return key, chosen  # type: ignore[return-value]


def _natural_algorithm(key: Any) -> str | None:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256" if key.key_size >= MIN_RSA_BITS else None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {v: k for k, v in _CURVES.items()}.get(key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    return None


def _fits(key: Any, algorithm: str) -> bool:
    if algorithm.startswith("RS"):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm in _CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == _CURVES[algorithm]
    return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
