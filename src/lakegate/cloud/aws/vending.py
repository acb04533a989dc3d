"""Temporary S3 credentials: sts:AssumeRole with an inline session policy limited to one table directory.

The broker identity (the `storage:` entry's keys, profile or the standard AWS chain) assumes `roleArn`; the
session policy (lakegate.cloud.aws.policy) narrows the role to reading that directory. The answer's expiry is
STS's `Expiration`, not a computed one: STS may shorten a session (role chaining caps it at one hour).
GetFederationToken is used only when `federationToken: true` is configured and no role is: its credentials
derive from long-term IAM user keys, which many providers would rather not keep on a server.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

from lakegate.cloud.aws.policy import MAX_PLAINTEXT, partition_of, read_policy, to_json
from lakegate.cloud.aws.storage import make_session
from lakegate.cloud.base import CredentialVendor, TemporaryCredential
from lakegate.cloud.locations import Location
from lakegate.config import AwsStorageConfig
from lakegate.exceptions import VendingError

log = logging.getLogger(__name__)
KIND = "awsTempCredentials"


class AwsVendor(CredentialVendor):
    def __init__(self, settings: AwsStorageConfig) -> None:
        if not (settings.role_arn or settings.federation_token):
            raise ValueError("an AWS vendor needs roleArn (or federationToken: true)")
        self._settings = settings
        self._partition = partition_of(settings.role_arn)
        self._client: Any = None
        self._lock = threading.Lock()
        external = settings.external_id.get_secret_value() if settings.external_id else ""
        # The external id is a (weak) secret: only its hash enters the cache key.
        self._identity = "|".join(
            [
                "aws",
                settings.role_arn or "federation-token",
                settings.sts_endpoint or "",
                settings.endpoint or "",
                hashlib.sha256(external.encode()).hexdigest()[:16] if external else "",
            ]
        )

    @property
    def identity(self) -> str:
        return self._identity

    def _sts(self) -> Any:
        with self._lock:
            if self._client is None:
                from botocore.config import Config

                session = make_session(self._settings)
                self._client = session.client(
                    "sts",
                    endpoint_url=self._settings.sts_endpoint,
                    region_name=self._settings.region or session.region_name or "us-east-1",
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}),
                )
            return self._client

    covers_many = True

    def vend(self, location: Location) -> TemporaryCredential:
        return self.vend_all([location])

    def vend_all(self, locations: Sequence[Location]) -> TemporaryCredential:
        """One session policy naming every directory: one STS call, one key triple for all of them."""
        location = locations[0]
        document = to_json(read_policy(locations, self._settings.kms_key_arns, self._partition))
        if len(document) > MAX_PLAINTEXT:
            # No retry with a narrower policy (the reference server drops ListBucket): that breaks readers.
            raise VendingError(
                "the table's locations are too long for an S3 session policy (2,048 characters)"
            )
        settings = self._settings
        try:
            if settings.role_arn:
                kwargs: dict[str, Any] = {
                    "RoleArn": settings.role_arn,
                    "RoleSessionName": settings.session_name,
                    "Policy": document,
                    "DurationSeconds": settings.duration_seconds,
                }
                if settings.external_id:
                    kwargs["ExternalId"] = settings.external_id.get_secret_value()
                answer = self._sts().assume_role(**kwargs)
            else:
                answer = self._sts().get_federation_token(
                    Name=settings.session_name[:32],
                    Policy=document,
                    DurationSeconds=settings.duration_seconds,
                )
        except Exception as exc:  # noqa: BLE001  - botocore ClientError / BotoCoreError / endpoint errors
            log.error(
                "STS refused temporary credentials for %s: %s",
                ", ".join(loc.uri for loc in locations),
                _describe(exc),
            )
            raise VendingError(
                "the cloud's token service refused to issue temporary credentials for this "
                "table; the server log has the details"
            ) from None
        creds = answer["Credentials"]
        return TemporaryCredential(
            location=location.display,
            kind=KIND,
            secret={
                "accessKeyId": creds["AccessKeyId"],
                "secretAccessKey": creds["SecretAccessKey"],
                "sessionToken": creds["SessionToken"],
            },
            expiration_ms=int(creds["Expiration"].timestamp() * 1000),
        )


def _describe(exc: Exception) -> str:
    """Error code and message of a botocore error (they carry no credentials), else the exception type."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{error.get('Code', '?')} (HTTP {status}): {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"
