"""A stand-in for the Azure App Service managed-identity endpoint, so a `lakegate serve` process authenticates
to Azurite the way it would in Azure: azure-identity's ManagedIdentityCredential, configured only by the
IDENTITY_ENDPOINT and IDENTITY_HEADER variables. It hands out unsigned tokens; Azurite accepts them (it checks
a token's claims, not its signature, so there is no real Entra ID in these tests either way)."""

from __future__ import annotations

import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.e2e.integration.fake_http import send_json, serve


class FakeManagedIdentity:
    def __init__(self, credential: Any) -> None:
        self.header = secrets.token_urlsafe(16)
        self.requests: list[dict[str, list[str]]] = []
        identity = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                identity.requests.append(query)
                if self.headers.get("X-IDENTITY-HEADER") != identity.header:
                    send_json(self, 401, {"error": "bad identity header"})
                    return
                token = credential.get_token(query["resource"][0] + "/.default")
                send_json(
                    self,
                    200,
                    {
                        "access_token": token.token,
                        "expires_on": str(token.expires_on),
                        "resource": query["resource"][0],
                        "token_type": "Bearer",
                    },
                )

            def log_message(self, *args: Any) -> None:
                pass

        self._server = serve(Handler)

    @property
    def env(self) -> dict[str, str]:
        return {
            "IDENTITY_ENDPOINT": f"http://127.0.0.1:{self._server.server_address[1]}/msi/token",
            "IDENTITY_HEADER": self.header,
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
