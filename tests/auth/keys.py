"""Key pairs and assertions made in the tests, as a recipient would make them (PyJWT, cryptography)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


@dataclass(frozen=True)
class KeyPair:
    private: Any
    algorithm: str

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def private_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def rsa_pair() -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


def ec_pair() -> KeyPair:
    return KeyPair(ec.generate_private_key(ec.SECP256R1()), "ES256")


def ed_pair() -> KeyPair:
    return KeyPair(ed25519.Ed25519PrivateKey.generate(), "EdDSA")


def assertion(
    pair: KeyPair, client_id: str, audience: str, kid: str, *, lifetime: int = 120, **overrides: Any
) -> str:
    """A client assertion as the official client makes it (iss = client id, aud = issuer, 120 s, a jti)."""
    now = int(time.time())
    claims = {"iss": client_id, "aud": audience, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, pair.private, algorithm=pair.algorithm, headers={"kid": kid})
