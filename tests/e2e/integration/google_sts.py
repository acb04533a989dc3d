"""A fake of Google's two token endpoints on loopback — the only mock in the directory-access tests, because
Google's STS exists nowhere else. It checks what lakegate sends rather than pretending to enforce anything:

* `POST /token`: the OAuth JWT-bearer grant a service account uses for its own token; the assertion's RSA
  signature is verified with the account's public key.
* `POST /v1/token`: the STS token exchange; every request's form is recorded for the test to inspect.
"""

from __future__ import annotations

import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.e2e.integration.fake_http import send_json, serve


class FakeGoogle:
    def __init__(self, public_key_pem: str, refuse_bucket: str = "refused-bucket") -> None:
        self.source_tokens: list[str] = []
        self.exchanges: list[dict[str, str]] = []
        self.issued: list[str] = []
        google = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path == "/token":
                    self._answer(*google._oauth(form, public_key_pem))
                elif self.path == "/v1/token":
                    google.exchanges.append(form)
                    self._answer(*google._exchange(form, refuse_bucket))
                else:
                    self._answer(404, {"error": "not_found"})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                send_json(self, status, body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = serve(Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _oauth(self, form: dict[str, str], public_key_pem: str) -> tuple[int, dict[str, Any]]:
        from google.auth import jwt

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            # google-auth always addresses the assertion to Google's token URI, wherever it posts it.
            jwt.decode(
                form["assertion"], certs=public_key_pem, audience="https://oauth2.googleapis.com/token"
            )
        except Exception as exc:  # noqa: BLE001  - any bad assertion is an invalid grant
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        token = "source-" + secrets.token_urlsafe(16)
        self.source_tokens.append(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _exchange(self, form: dict[str, str], refuse_bucket: str) -> tuple[int, dict[str, Any]]:
        if form.get("subject_token") not in self.source_tokens:
            return 401, {"error": "invalid_grant", "error_description": "unknown subject token"}
        if refuse_bucket in form.get("options", ""):
            return 400, {"error": "invalid_request", "error_description": "The access boundary is refused."}
        token = "downscoped-" + secrets.token_urlsafe(16)
        self.issued.append(token)
        return 200, {
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 3599,
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
