"""HTTPS with the reference server's `ssl` block: a given certificate (trusted by the official client, which
then reads a table over TLS) and `selfSigned`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lakegate.tls import self_signed_certificate
from tests.e2e.server import start_server
from tests.tables import build_plain


def _shares(root: str) -> list[dict]:
    return [{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": root}]}]}]


def test_certificate_files(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "t")
    cert, key = self_signed_certificate("127.0.0.1")
    server = start_server(
        tmp_path / "srv",
        {"ssl": {"certificateFile": str(cert), "certificateKeyFile": str(key)}, "shares": _shares(root)},
    )
    try:
        endpoint = server.endpoint.replace("http://", "https://")
        with pytest.raises(httpx.ConnectError):
            httpx.get(endpoint + "/shares", headers=server.headers(), timeout=5)  # not trusted by default
        profile = tmp_path / "https.share"
        profile.write_text(
            json.dumps({"shareCredentialsVersion": 1, "endpoint": endpoint, "bearerToken": server.token})
        )
        # A recipient process that trusts the provider's certificate (aiohttp reads SSL_CERT_FILE once, at
        # import, so this runs in its own process).
        env = {
            **os.environ,
            **{v: str(cert) for v in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")},
        }
        script = (
            "import delta_sharing; "
            f"print(len(delta_sharing.load_as_pandas('{profile}#s.d.t', use_delta_format=False)))"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.stdout.strip() == "3", result.stderr[-2000:]
    finally:
        server.stop()


def test_self_signed(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "srv", {"ssl": {"selfSigned": True}, "shares": _shares(build_plain(tmp_path / "t"))}
    )
    try:
        endpoint = server.endpoint.replace("http://", "https://")
        response = httpx.get(endpoint + "/shares", headers=server.headers(), verify=False)  # noqa: S501  - the self-signed test cert
        assert response.status_code == 200 and response.json()["items"][0]["name"] == "s"
    finally:
        server.stop()
