"""Recipients without a long-lived bearer token, end to end: `lakegate recipients create --auth …` beside a
running server on Ceph RGW, and the profiles it writes read by the official delta-sharing client (parquet and
delta format) and by lakegate's own recipient client (directory mode: temporary table credentials from RGW's
STS)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import delta_sharing
import pytest

from lakegate.client import open_table
from tests.auth.keys import KeyPair, ec_pair, rsa_pair
from tests.e2e.integration.admin_support import lakegate, lakegate_json
from tests.e2e.server import RunningServer
from tests.services.rgw import RgwService

pytestmark = pytest.mark.rgw
TABLE = "s3share.default.t2"


def _config(server: RunningServer) -> Path:
    return server.workdir / "lakegate.yaml"


def _create(server: RunningServer, name: str, auth: str, *extra: str) -> Path:
    profile = server.workdir / f"{name}.share"
    lakegate(
        _config(server),
        "recipients",
        "create",
        name,
        "--share",
        "s3share",
        "--auth",
        auth,
        *extra,
        "--profile-out",
        str(profile),
    )
    return profile


def _with_private_key(server: RunningServer, name: str, pair: KeyPair) -> Path:
    """A private-key-jwt recipient; its profile completed as the recipient would (privateKeyFile)."""
    public = server.workdir / f"{name}.pub.pem"
    public.write_text(pair.public_pem)
    profile = _create(server, name, "private-key-jwt", "--public-key", str(public), "--key-id", f"{name}-1")
    private = server.workdir / f"{name}.key.pem"
    private.write_text(pair.private_pem)
    data = json.loads(profile.read_text())
    data["auth"]["privateKey"]["privateKeyFile"] = str(private)
    profile.write_text(json.dumps(data))
    return profile


def _rows(frame: Any) -> list[dict[str, Any]]:
    return sorted(frame.to_dict("records"), key=lambda r: r["id"])


def _s3_options(rgw: RgwService) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": rgw.endpoint, "AWS_REGION": rgw.region, "AWS_ALLOW_HTTP": "true"}


def test_the_official_client_reads_through_every_profile_type(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer
) -> None:
    expected = sorted(s3_dir_tables["expected_t2"], key=lambda r: r["id"])
    profiles = {
        "oauth": _create(dir_server, "oc-oauth", "oauth"),
        "private-key-jwt RS256": _with_private_key(dir_server, "oc-rsa", rsa_pair()),
        "private-key-jwt ES256": _with_private_key(dir_server, "oc-ec", ec_pair()),
        "basic": _create(dir_server, "oc-basic", "basic"),
    }
    kinds = {name: json.loads(path.read_text())["type"] for name, path in profiles.items()}
    assert kinds == {
        "oauth": "oauth_client_credentials",
        "private-key-jwt RS256": "oauth_jwt_bearer_private_key_jwt",
        "private-key-jwt ES256": "oauth_jwt_bearer_private_key_jwt",
        "basic": "basic",
    }
    for name, profile in profiles.items():
        tables = delta_sharing.SharingClient(str(profile)).list_all_tables()
        assert "t2" in {t.name for t in tables}, name
        url = f"{profile}#{TABLE}"
        assert _rows(delta_sharing.load_as_pandas(url)) == expected, name
        assert _rows(delta_sharing.load_as_pandas(url, use_delta_format=True)) == expected, name


def test_the_recipient_client_gets_temporary_table_credentials_with_oauth_profiles(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer
) -> None:
    expected = sorted(s3_dir_tables["expected_t2"], key=lambda r: r["id"])
    for profile in (
        _create(dir_server, "rc-oauth", "oauth"),
        _with_private_key(dir_server, "rc-key", ec_pair()),
        _create(dir_server, "rc-basic", "basic"),
    ):
        table = open_table(f"{profile}#{TABLE}", _s3_options(rgw))  # directory mode: vended RGW credentials
        assert sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"]) == expected


def test_a_revoked_recipient_holding_an_access_token_reads_nothing_more(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer
) -> None:
    profile = _create(dir_server, "revoked-oauth", "oauth")
    url = f"{profile}#{TABLE}"
    assert len(delta_sharing.load_as_pandas(url)) == len(s3_dir_tables["expected_t2"])
    revoked = lakegate_json(_config(dir_server), "recipients", "revoke", "revoked-oauth")
    assert revoked["credentialsRevoked"] == 1 and revoked["status"] == "inactive"
    time.sleep(1.2)  # past the server's catalogCacheSeconds (1 s)
    # the client still holds its access token (valid for an hour): the server refuses it
    with pytest.raises(Exception, match="401"):
        delta_sharing.load_as_pandas(url)
    with pytest.raises(Exception, match="401"):
        open_table(url, _s3_options(rgw))
