"""HTTPS with the reference server's `ssl` block: a given certificate (trusted by the official client, which
then reads a table over TLS) and `selfSigned`."""

from __future__ import annotations

import json
from pathlib import Path

import delta_sharing
import httpx
import pytest

from lakegate.tls import self_signed_certificate
from tests.server import start_server
from tests.tables import build_plain


def _shares(root: str) -> list[dict]:
    return [{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": root}]}]}]


def test_certificate_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_plain(tmp_path / "t")
    cert, key = self_signed_certificate("127.0.0.1")
    server = start_server(tmp_path / "srv", {"ssl": {"certificateFile": str(cert), "certificateKeyFile": str(key)},
                                             "shares": _shares(root)})
    try:
        endpoint = server.endpoint.replace("http://", "https://")
        with pytest.raises(httpx.ConnectError):
            httpx.get(endpoint + "/shares", headers=server.headers(), timeout=5)  # not trusted by default
        for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
            monkeypatch.setenv(variable, str(cert))  # the recipient trusts the provider's certificate
        profile = tmp_path / "https.share"
        profile.write_text(json.dumps({"shareCredentialsVersion": 1, "endpoint": endpoint,
                                       "bearerToken": server.token}))
        assert len(delta_sharing.load_as_pandas(f"{profile}#s.d.t", use_delta_format=False)) == 3
    finally:
        server.stop()


def test_self_signed(tmp_path: Path) -> None:
    server = start_server(tmp_path / "srv", {"ssl": {"selfSigned": True}, "shares": _shares(build_plain(tmp_path / "t"))})
    try:
        endpoint = server.endpoint.replace("http://", "https://")
        response = httpx.get(endpoint + "/shares", headers=server.headers(), verify=False)
        assert response.status_code == 200 and response.json()["items"][0]["name"] == "s"
    finally:
        server.stop()
