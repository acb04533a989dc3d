"""S3 and S3-compatible stores: read the Delta log with boto3, sign data-file URLs with our SigV4 signer.

The endpoint is honoured by both paths (the reference server's bug #753 signed URLs for AWS while reading from
a custom endpoint): `storage[].aws.endpoint`, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS.
Credentials come from the `storage` entry or the standard AWS chain (env, profile, instance role).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from lakegate.cloud.aws.signing import AwsCredentials, S3UrlSigner
from lakegate.cloud.base import ObjectInfo, ObjectStore, SignRequest, UrlSigner
from lakegate.cloud.locations import Location
from lakegate.config import AwsStorageConfig
from lakegate.exceptions import StorageError, StorageUnavailableError


def make_session(settings: AwsStorageConfig | None) -> Any:
    import boto3

    settings = settings or AwsStorageConfig()
    kwargs: dict[str, Any] = {}
    if settings.profile:
        kwargs["profile_name"] = settings.profile
    if settings.access_key_id and settings.secret_access_key:
        kwargs["aws_access_key_id"] = settings.access_key_id
        kwargs["aws_secret_access_key"] = settings.secret_access_key.get_secret_value()
        if settings.session_token:
            kwargs["aws_session_token"] = settings.session_token.get_secret_value()
    if settings.region:
        kwargs["region_name"] = settings.region
    return boto3.Session(**kwargs)


class S3Store(ObjectStore):
    def __init__(self, settings: AwsStorageConfig | None) -> None:
        from botocore.config import Config

        settings = settings or AwsStorageConfig()
        self._session = make_session(settings)
        region = settings.region or self._session.region_name or "us-east-1"
        addressing: Literal["auto", "virtual", "path"] = (
            "auto" if settings.path_style is None else "path" if settings.path_style else "virtual"
        )
        self._client = self._session.client(
            "s3",
            endpoint_url=settings.endpoint,
            region_name=region,
            # Short connect timeout and few retries: an unreachable store should answer a clear 503 in
            # seconds, not hold the request (and a worker thread) for minutes.
            config=Config(
                s3={"addressing_style": addressing},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        # The client resolved the endpoint from settings or AWS_ENDPOINT_URL(_S3); sign for the same one.
        endpoint = settings.endpoint or _custom_endpoint(self._client.meta.endpoint_url)
        self._signer = S3UrlSigner(endpoint, region, path_style=settings.path_style)

    def list_dir(self, directory: Location, start_after: str | None = None) -> list[ObjectInfo]:
        prefix = directory.path + "/" if directory.path else ""
        kwargs: dict[str, Any] = {"Bucket": directory.bucket, "Prefix": prefix, "Delimiter": "/"}
        if start_after:
            kwargs["StartAfter"] = prefix + start_after
        infos: list[ObjectInfo] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(**kwargs):
                infos.extend(
                    ObjectInfo(
                        obj["Key"][len(prefix) :], obj["Size"], int(obj["LastModified"].timestamp() * 1000)
                    )
                    for obj in page.get("Contents", ())
                )
        except Exception as exc:  # botocore errors carry no secrets, but keep them out of client answers
            raise store_error(f"listing s3://{directory.bucket}/{prefix}", exc) from exc
        return infos

    def read(self, location: Location) -> bytes:
        try:
            body: bytes = self._client.get_object(Bucket=location.bucket, Key=location.path)["Body"].read()
        except self._client.exceptions.NoSuchKey:
            raise FileNotFoundError(location.uri) from None
        except Exception as exc:
            raise store_error(f"reading {location.uri}", exc) from exc
        return body

    def write(self, location: Location, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=location.bucket, Key=location.path, Body=data)
        except Exception as exc:
            raise store_error(f"writing {location.uri}", exc) from exc

    def signing_deadline(self, location: Location, wanted_s: int) -> int | None:
        """Temporary credentials (instance role, IRSA, SSO, credential_process, AssumeRole profiles): a URL
        signed with them stops working when they expire, even if it names a later expiry (S3's rule)."""
        try:
            creds = self._session.get_credentials()
            if creds is None:
                return None
            creds.get_frozen_credentials()  # refreshed first if due: the deadline of the credentials that sign
        except Exception as exc:  # a credential_process, SSO or the instance role failing
            raise store_error("getting AWS credentials to sign URLs", exc) from exc
        expiry = getattr(
            creds, "_expiry_time", None
        )  # botocore's RefreshableCredentials (no public accessor)
        return int(expiry.timestamp()) if isinstance(expiry, datetime) else None

    def url_signer(self, request: SignRequest) -> UrlSigner:
        sign = self._batch(request)
        return lambda location: sign(location.bucket, location.path)

    def relative_signer(self, request: SignRequest, root: Location) -> Callable[[str], str]:
        sign, bucket = self._batch(request), root.bucket
        prefix = root.path + "/" if root.path else ""
        return lambda relative: sign(bucket, prefix + relative)

    def _batch(self, request: SignRequest) -> Callable[[str, str], str]:
        creds = self._session.get_credentials()
        if creds is None:
            raise StorageError("no AWS credentials found for signing S3 URLs")
        frozen = creds.get_frozen_credentials()
        return self._signer.batch(
            AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token),
            max(1, request.expires_at_s - request.now_s),
            datetime.fromtimestamp(request.now_s, UTC),
        )


def store_error(what: str, exc: Exception) -> StorageError:
    """A botocore error as a StorageError: StorageUnavailableError when the store could not be reached or
    answered 5xx (worth a retry), a plain StorageError otherwise (access denied, no such bucket)."""
    from botocore import exceptions as boto

    status = (
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if isinstance(exc, boto.ClientError)
        else 0
    )
    unreachable = isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)) or status >= 500
    return (StorageUnavailableError if unreachable else StorageError)(f"{what} failed: {exc}")


def _custom_endpoint(url: str | None) -> str | None:
    """None for AWS's own endpoints (the signer then builds the regional virtual-hosted URL)."""
    if not url or url.endswith(".amazonaws.com") or ".amazonaws.com/" in url:
        return None
    return url
