"""A small real OpenID provider on loopback: the recipient's own identity provider in federation tests.

It serves what lakegate and the official client use of a real IdP, over HTTP on 127.0.0.1:
- `/.well-known/openid-configuration`: issuer, jwks_uri, token_endpoint (OpenID Connect Discovery 1.0);
- `/jwks`: its public signing keys (every hit counted, so tests can see the refetch rate limit);
- `/token`: the client_credentials grant with `client_secret_basic` (what the official client sends) or
  `client_secret_post`, answering a JWT signed with its current key: `iss`, `sub` (the client id, as Entra ID and
  Okta do for an application), `aud` (the client's registered audience), `iat`, `nbf`, `exp`, `jti`.
`rotate()` makes a new key with a new `kid` and signs with it from then on (the old key stays published, as IdPs
do during a rollover, unless `retire=True`). `mint()` signs any claims with any key, for the negative cases.

Tokens are made with PyJWT, the library lakegate verifies them with; the keys with `cryptography`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ALGORITHMS = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "ES256": "P-256",
    "ES384": "P-384",
    "EdDSA": "Ed",
}


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @staticmethod
    def generate(alg: str = "RS256", kid: str | None = None) -> SigningKey:
        kind = ALGORITHMS[alg]
        private: Any
        if kind == "RSA":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "Ed":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            private = ec.generate_private_key(ec.SECP256R1() if kind == "P-256" else ec.SECP384R1())
        return SigningKey(kid or f"key-{uuid.uuid4().hex[:12]}", alg, private)

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **(headers or {})}
        )


@dataclass
class Client:
    secret: str
    audience: str
    subject: str


@dataclass
class OpenIdProvider:
    """Start with `OpenIdProvider.start()`, stop with `stop()`; `issuer` is its base URL."""

    server: ThreadingHTTPServer
    keys: list[SigningKey]
    clients: dict[str, Client] = field(default_factory=dict)
    token_seconds: int = 3600
    jwks_hits: int = 0
    discovery_hits: int = 0
    token_hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, alg: str = "RS256") -> OpenIdProvider:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        provider = cls(server, [SigningKey.generate(alg)])
        server.provider = provider  # type: ignore[attr-defined]
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="oidc-provider", daemon=True
        ).start()
        return provider

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def register(self, client_id: str, audience: str, subject: str | None = None) -> str:
        """A client for the client_credentials grant; returns its secret. Its tokens' `sub` is `subject`
        (default: the client id)."""
        secret = secrets.token_urlsafe(24)
        self.clients[client_id] = Client(secret, audience, subject or client_id)
        return secret

    def rotate(self, alg: str | None = None, retire: bool = False) -> SigningKey:
        """Sign with a new key (new kid) from now on; `retire` also stops publishing the old ones."""
        key = SigningKey.generate(alg or self.current.alg)
        with self.lock:
            self.keys = [key] if retire else [*self.keys, key]
        return key

    def claims(self, subject: str, audience: str | list[str], lifetime: int | None = None) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + (self.token_seconds if lifetime is None else lifetime),
            "jti": uuid.uuid4().hex,
        }

    def mint(
        self, subject: str, audience: str | list[str], key: SigningKey | None = None, **overrides: Any
    ) -> str:
        """A token for `subject` and `audience` signed by `key` (default: the current one); keyword arguments
        replace or add claims (None removes one)."""
        claims = {**self.claims(subject, audience), **overrides}
        return (key or self.current).sign({k: v for k, v in claims.items() if v is not None})

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "token_endpoint": self.token_endpoint,
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self.keys}),
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        }

    def issue(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """The token endpoint (RFC 6749 §4.4): client authenticated by Basic or by the form."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(client.secret, secret or ""):
            return 401, {"error": "invalid_client"}
        token = self.current.sign(self.claims(client.subject, client.audience))
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_seconds}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """An `alg: none` token (PyJWT will not make one, so it is written out)."""
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def hmac_with_public_key(claims: dict[str, Any], key: SigningKey) -> str:
    """The algorithm-confusion attack: HS256 keyed with the issuer's public key in PEM (which anyone can have),
    hoping a verifier hands the key it would use for RS256 to HMAC. PyJWT refuses to make it: written out."""
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    @property
    def provider(self) -> OpenIdProvider:
        provider: OpenIdProvider = self.server.provider  # type: ignore[attr-defined]
        return provider

    def do_GET(self) -> None:
        provider = self.provider
        if self.path == "/.well-known/openid-configuration":
            with provider.lock:
                provider.discovery_hits += 1
            self._json(200, provider.discovery())
        elif self.path == "/jwks":
            with provider.lock:
                provider.jwks_hits += 1
                keys = [k.public_jwk() for k in provider.keys]
            self._json(200, {"keys": keys})
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        provider = self.provider
        if self.path != "/token":
            self._json(404, {"error": "not_found"})
            return
        length = int(self.headers.get("content-length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        with provider.lock:
            provider.token_hits += 1
        status, body = provider.issue(form, self.headers.get("authorization"))
        self._json(status, body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's parameter name
        return  # quiet: pytest shows failures, not every GET
