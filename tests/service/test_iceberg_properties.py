"""Vended credentials in the property names Iceberg clients read: checked against PyIceberg's own constants
(S3 and GCS end to end on RGW in tests/e2e/integration/test_iceberg_s3.py; Azure and GCS only here)."""

from __future__ import annotations

from pyiceberg import io as pyiceberg_io

from lakegate.cloud.base import TemporaryCredential
from lakegate.cloud.locations import Location
from lakegate.config import AwsStorageConfig
from lakegate.service.iceberg import client_properties

EXPIRES_MS = 1_900_000_000_000


def _credential(kind: str, **secret: str) -> TemporaryCredential:
    return TemporaryCredential("x", kind, secret, EXPIRES_MS)


def test_s3_names_and_the_storage_entry_s_endpoint() -> None:
    aws = AwsStorageConfig.model_validate(
        {"endpoint": "http://rgw:8000", "region": "eu-west-1", "pathStyle": True}
    )
    props = client_properties(
        Location.parse("s3://b/t"),
        _credential("awsTempCredentials", accessKeyId="AK", secretAccessKey="SK", sessionToken="ST"),
        aws,
    )
    assert props[pyiceberg_io.S3_ACCESS_KEY_ID] == "AK"
    assert props[pyiceberg_io.S3_SECRET_ACCESS_KEY] == "SK"
    assert props[pyiceberg_io.S3_SESSION_TOKEN] == "ST"
    assert props[pyiceberg_io.S3_ENDPOINT] == "http://rgw:8000"
    assert props[pyiceberg_io.S3_REGION] == "eu-west-1"
    assert props["s3.path-style-access"] == "true"  # Iceberg Java S3FileIO's name (PyIceberg: no path style)
    bare = client_properties(
        Location.parse("s3://b/t"),
        _credential("awsTempCredentials", accessKeyId="AK", secretAccessKey="SK", sessionToken="ST"),
    )
    assert pyiceberg_io.S3_ENDPOINT not in bare and pyiceberg_io.S3_REGION not in bare


def test_adls_sas_per_account() -> None:
    location = Location.parse("abfss://c@acct.dfs.core.windows.net/tables/t")
    props = client_properties(location, _credential("azureUserDelegationSas", sasToken="sv=1&sig=x"))
    assert props[f"{pyiceberg_io.ADLS_SAS_TOKEN}.acct.dfs.core.windows.net"] == "sv=1&sig=x"
    assert props[pyiceberg_io.ADLS_SAS_TOKEN] == "sv=1&sig=x"
    assert props[pyiceberg_io.ADLS_ACCOUNT_NAME] == "acct"


def test_gcs_token_and_its_expiry() -> None:
    props = client_properties(Location.parse("gs://b/t"), _credential("gcpOauthToken", oauthToken="ya29.x"))
    assert props == {pyiceberg_io.GCS_TOKEN: "ya29.x", pyiceberg_io.GCS_TOKEN_EXPIRES_AT_MS: str(EXPIRES_MS)}
