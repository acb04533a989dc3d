"""Azurite (Azure Blob emulator) over HTTPS with OAuth, so user-delegation SAS can be vended and enforced.

Azurite accepts a bearer token only over HTTPS, and only with ``--oauth basic``; it checks the token's
iss/aud/nbf/exp claims but not its signature, so the tests mint unsigned JWTs.

Azurite 3.35 rejects user-delegation SAS signed by azure-storage-blob >= 12.29 (signed version 2026-04-06 adds
fields to the string-to-sign): the test environment pins azure-storage-blob < 12.29 for that reason.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.services._proc import REPO_ROOT, Daemon, free_port, require_binary, run

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken
    from azure.storage.blob import BlobServiceClient

ACCOUNT_NAME = "devstoreaccount1"
# Azurite's well-known development account key (public, documented by Microsoft).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
NODE_BIN = REPO_ROOT / ".test-services" / "node" / "node_modules" / ".bin"


@dataclass
class FakeTokenCredential:
    """An azure-core TokenCredential handing out unsigned JWTs that Azurite accepts as Entra ID tokens."""

    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    lifetime_seconds: int = 3600

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + self.lifetime_seconds,
            "oid": self.object_id,
            "tid": self.tenant_id,
        }
        return AccessToken(_unsigned_jwt(claims), now + self.lifetime_seconds)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    header = {"alg": "none", "typ": "JWT"}
    return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}."


class AzuriteService:
    def __init__(self, workdir: Path, port: int, cert_path: Path, daemon: Daemon):
        self.workdir = workdir
        self.port = port
        self.blob_endpoint = f"https://127.0.0.1:{port}/{ACCOUNT_NAME}"
        self.account_name = ACCOUNT_NAME
        self.account_key = ACCOUNT_KEY
        self.cert_path = cert_path
        self._daemon = daemon

    @classmethod
    def start(cls, workdir: Path) -> AzuriteService:
        azurite = require_binary("azurite-blob", [NODE_BIN])
        openssl = require_binary("openssl")
        workdir = workdir.resolve()
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        cert, key = workdir / "cert.pem", workdir / "key.pem"
        req = "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext"
        san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
        run([openssl, *req.split(), san, "-keyout", str(key), "-out", str(cert)])
        port = free_port()
        # The SDK may speak a newer API version than the emulator knows; telemetry would try to phone home.
        flags = "--blobHost 127.0.0.1 --oauth basic --skipApiVersionCheck --disableTelemetry --silent"
        paths = ["--cert", str(cert), "--key", str(key), "--location", str(workdir / "data")]
        daemon = Daemon("azurite", [azurite, *flags.split(), "--blobPort", str(port), *paths], workdir)
        try:
            daemon.wait_for_port(port, 60)
        except BaseException:
            daemon.stop()
            raise
        return cls(workdir, port, cert, daemon)

    def stop(self) -> None:
        self._daemon.stop()

    def token_credential(self) -> FakeTokenCredential:
        return FakeTokenCredential()

    def blob_service_client(self, credential: Any = None) -> BlobServiceClient:
        """A BlobServiceClient trusting the emulator's certificate; account key unless another credential."""
        from azure.storage.blob import BlobServiceClient

        if credential is None:
            credential = {"account_name": self.account_name, "account_key": self.account_key}
        return BlobServiceClient(
            self.blob_endpoint, credential=credential, connection_verify=str(self.cert_path)
        )

    def create_container(self, name: str) -> None:
        self.blob_service_client().create_container(name)
