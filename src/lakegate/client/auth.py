"""The Authorization header of the recipient client's requests, from its profile: a bearer token, HTTP Basic,
or an OAuth access token obtained at the profile's token endpoint, with the client secret
(`oauth_client_credentials`) or an assertion signed with the recipient's private key
(`oauth_jwt_bearer_private_key_jwt`, RFC 7523, as the official client makes it), renewed before it expires."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from lakegate.client.errors import ProfileError, SharingError
from lakegate.client.profile import Profile

RENEW_BEFORE_SECONDS = 60  # a new access token this long before the current one expires
ASSERTION_SECONDS = 120
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def authorization(profile: Profile, timeout_s: float) -> Callable[[], str]:
    """A function giving the Authorization header value for the next request."""
    if profile.kind == "basic":
        pair = f"{profile.fields['username']}:{profile.fields['password']}".encode()
        basic = "Basic " + base64.b64encode(pair).decode()
        return lambda: basic
    if profile.kind in ("oauth_client_credentials", "oauth_jwt_bearer_private_key_jwt"):
        return AccessTokens(profile, timeout_s).header
    bearer = f"Bearer {profile.bearer_token}"
    return lambda: bearer


class AccessTokens:
    """The current access token of an OAuth profile; a new one from the token endpoint when it runs out."""

    def __init__(self, profile: Profile, timeout_s: float) -> None:
        self.profile = profile
        self.timeout_s = timeout_s
        auth = profile.fields.get("auth") or profile.fields
        self.token_endpoint = str(auth["tokenEndpoint"])
        if urlsplit(self.token_endpoint).scheme.lower() not in ("http", "https"):
            raise ProfileError("the profile's tokenEndpoint must be an http:// or https:// URL")
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def header(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._renew_at:
                answer = self._request()
                self._token = str(answer["access_token"])
                lifetime = int(answer.get("expires_in", 3600))
                self._renew_at = time.time() + max(lifetime - RENEW_BEFORE_SECONDS, lifetime / 2)
            return f"Bearer {self._token}"

    def _request(self) -> dict[str, Any]:
        fields = self.profile.fields
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.profile.kind == "oauth_client_credentials":
            form = {"grant_type": "client_credentials"}
            pair = f"{fields['clientId']}:{fields['clientSecret']}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            form = {"grant_type": JWT_BEARER, "assertion": self._assertion(fields["auth"])}
        if (fields.get("auth") or fields).get("scope"):
            form["scope"] = str((fields.get("auth") or fields)["scope"])
        request = urllib.request.Request(  # noqa: S310  - checked to be http(s) above
            self.token_endpoint, data=urlencode(form).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())
            except ValueError:
                error = {}
            raise SharingError(
                exc.code,
                str(error.get("error", "HTTP_ERROR")),
                str(error.get("error_description", exc.reason)),
            ) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise SharingError(502, "INVALID_TOKEN_RESPONSE", "the token endpoint answered no access_token")
        return answer

    @staticmethod
    def _assertion(auth: dict[str, Any]) -> str:
        private = auth["privateKey"]
        try:
            key = load_pem_private_key(Path(private["privateKeyFile"]).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ProfileError(
                f"cannot read the private key {private.get('privateKeyFile')}: {exc}"
            ) from None
        now = int(time.time())
        claims = {
            "iss": auth["clientId"],
            "aud": auth["issuer"],
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            "jti": str(uuid.uuid4()),
        }
        algorithm = private.get("algorithm") or "RS256"
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": private.get("keyId")})  # type: ignore[arg-type]
