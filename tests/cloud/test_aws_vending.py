"""What the AWS vendor sends to STS and what it reports back, checked with botocore's own Stubber (the real
STS round trip is tested on Ceph RGW in tests/e2e/integration/test_dir_access_s3.py)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lakegate.cloud.aws.vending import AwsVendor
from lakegate.cloud.locations import Location
from lakegate.config import AwsStorageConfig
from lakegate.exceptions import VendingError
from tests.cloud.test_aws_policy import T1_POLICY

LOCATION = Location.parse("s3a://bucket/tables/t1/")
ROLE = "arn:aws:iam::123456789012:role/lakegate-reader"


def _vendor(**settings: object) -> tuple[AwsVendor, Stubber]:
    vendor = AwsVendor(AwsStorageConfig.model_validate({"roleArn": ROLE, **settings}))
    client = boto3.client(
        "sts", region_name="us-east-1", aws_access_key_id="AKIDBROKER", aws_secret_access_key="broker-secret"
    )
    vendor._client = client  # the stubbed client instead of one built from the settings
    return vendor, Stubber(client)


def _sts_answer(expiration: datetime) -> dict:
    return {
        "Credentials": {
            "AccessKeyId": "ASIAVENDEDEXAMPLE1",
            "SecretAccessKey": "vended-secret",
            "SessionToken": "vended-token",
            "Expiration": expiration,
        }
    }


def test_assume_role_with_the_session_policy_and_sts_expiry() -> None:
    vendor, stub = _vendor(externalId="ext-123", durationSeconds=7200, sessionName="lakegate-test")
    # STS may grant less than asked (role chaining caps at 1 h): the answer must carry STS's expiry.
    expiration = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3333)
    expected_policy = json.dumps(T1_POLICY, separators=(",", ":"))
    stub.add_response(
        "assume_role",
        _sts_answer(expiration),
        {
            "RoleArn": ROLE,
            "RoleSessionName": "lakegate-test",
            "Policy": expected_policy,
            "DurationSeconds": 7200,
            "ExternalId": "ext-123",
        },
    )
    with stub:
        credential = vendor.vend(LOCATION)
    stub.assert_no_pending_responses()
    assert credential.to_json() == {
        "location": "s3a://bucket/tables/t1/",
        "awsTempCredentials": {
            "accessKeyId": "ASIAVENDEDEXAMPLE1",
            "secretAccessKey": "vended-secret",
            "sessionToken": "vended-token",
        },
        "expirationTime": int(expiration.timestamp() * 1000),
    }


def test_sts_refusal_is_a_clear_error_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    vendor, stub = _vendor(externalId="very-secret-external-id")
    stub.add_client_error(
        "assume_role", "AccessDenied", "User broker is not authorized to assume role", http_status_code=403
    )
    with stub, caplog.at_level(logging.ERROR), pytest.raises(VendingError) as exc_info:
        vendor.vend(LOCATION)
    assert "refused" in exc_info.value.message and ROLE not in exc_info.value.message
    assert "AccessDenied" in caplog.text and "very-secret-external-id" not in caplog.text
    assert "broker-secret" not in caplog.text


def test_no_federation_token_fallback_unless_configured() -> None:
    with pytest.raises(ValueError, match="needs roleArn"):
        AwsVendor(AwsStorageConfig())
    vendor, stub = _vendor()
    stub.add_client_error("assume_role", "AccessDenied", "no")
    with stub, pytest.raises(VendingError):
        vendor.vend(LOCATION)
    stub.assert_no_pending_responses()  # and no get_federation_token call was queued or made


def test_federation_token_when_configured_explicitly() -> None:
    vendor = AwsVendor(AwsStorageConfig.model_validate({"federationToken": True, "sessionName": "x" * 40}))
    client = boto3.client("sts", region_name="us-east-1", aws_access_key_id="A", aws_secret_access_key="S")
    vendor._client = client
    expiration = datetime.now(UTC) + timedelta(hours=1)
    with Stubber(client) as stub:
        stub.add_response(
            "get_federation_token",
            _sts_answer(expiration),
            {"Name": "x" * 32, "Policy": ANY, "DurationSeconds": 3600},
        )
        assert vendor.vend(LOCATION).kind == "awsTempCredentials"


def test_identity_distinguishes_roles_without_revealing_the_external_id() -> None:
    a = AwsVendor(AwsStorageConfig.model_validate({"roleArn": ROLE, "externalId": "e1"}))
    b = AwsVendor(AwsStorageConfig.model_validate({"roleArn": ROLE, "externalId": "e2"}))
    c = AwsVendor(AwsStorageConfig.model_validate({"roleArn": ROLE + "2", "externalId": "e1"}))
    assert len({a.identity, b.identity, c.identity}) == 3
    assert "e1" not in a.identity.split("|")


def test_too_long_a_location_is_refused_before_calling_sts() -> None:
    vendor, stub = _vendor()
    with stub, pytest.raises(VendingError, match="2,048"):
        vendor.vend(Location.parse("s3://bucket/" + "d" * 600))
