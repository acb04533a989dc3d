"""HTTPS with the reference server's `ssl` block: a given certificate (trusted by the official client, which
then reads a table over TLS) and `selfSigned`."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import stat
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
    cert, key = self_signed_certificate("127.0.0.1", tmp_path / "tls")
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


def _served_fingerprint(base_url: str) -> str:
    """The SHA-256 fingerprint of the certificate the server presents, as `AA:BB:…`."""
    host, port = base_url.removeprefix("http://").split(":")
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((host, int(port))))
    return hashlib.sha256(der).digest().hex(":").upper()


def test_self_signed(tmp_path: Path) -> None:
    """The certificate is made once beside the configuration (key 0600), its path and fingerprint are logged,
    and a restart serves the same one."""
    config = {"ssl": {"selfSigned": True}, "shares": _shares(build_plain(tmp_path / "t"))}
    fingerprints = []
    log = ""
    for _ in range(2):
        server = start_server(tmp_path / "srv", config)
        try:
            endpoint = server.endpoint.replace("http://", "https://")
            response = httpx.get(endpoint + "/shares", headers=server.headers(), verify=False)  # noqa: S501  - the self-signed test cert
            assert response.status_code == 200 and response.json()["items"][0]["name"] == "s"
            fingerprint = _served_fingerprint(server.base_url)
            assert fingerprint in server.log() and str(tmp_path / "srv" / ".lakegate-tls" / "cert.pem") in (
                server.log()
            )
            fingerprints.append(fingerprint)
        finally:
            server.stop()
        log = server.log()
    assert fingerprints[0] == fingerprints[1]
    key = tmp_path / "srv" / ".lakegate-tls" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "made a new certificate" in log and "reusing the certificate" in log  # one log file, both starts


def test_self_signed_certificate_for_another_host_is_replaced(tmp_path: Path) -> None:
    first, _ = self_signed_certificate("127.0.0.1", tmp_path)
    made = first.read_bytes()
    assert self_signed_certificate("127.0.0.1", tmp_path)[0].read_bytes() == made
    assert self_signed_certificate("lakegate.example", tmp_path)[0].read_bytes() != made
