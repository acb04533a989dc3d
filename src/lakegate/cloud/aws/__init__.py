"""Amazon S3 (and S3-compatible stores): reading logs, SigV4 pre-signed URLs (URL access) and STS credentials
(directory access). boto3 is imported only when an s3:// location is used."""

from __future__ import annotations

from collections.abc import Callable

from lakegate.cloud.aws.uris import SYNTAX
from lakegate.cloud.base import Backend, CredentialVendor, ObjectStore
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig, StorageConfig
from lakegate.keys import KeyRing


def _store(settings: StorageConfig | None, keys: KeyRing) -> ObjectStore:
    from lakegate.cloud.aws.storage import S3Store

    return S3Store(settings.aws if settings else None)


def _vendor(
    settings: StorageConfig, store: Callable[[], ObjectStore], config: ServerConfig
) -> CredentialVendor:
    from lakegate.cloud.aws.vending import AwsVendor

    assert settings.aws is not None  # checked by _dir_access_problem
    return AwsVendor(settings.aws)


def _vends(settings: StorageConfig | None) -> bool:
    aws = settings.aws if settings else None
    return aws is not None and bool(aws.role_arn or aws.federation_token)


def _dir_access_problem(location: Location, settings: StorageConfig | None) -> str | None:
    return None if _vends(settings) else "no roleArn is configured for its S3 storage"


def _credential_lifetime(settings: StorageConfig, config: ServerConfig) -> tuple[str, int] | None:
    if not _vends(settings):
        return None
    assert settings.aws is not None
    return "aws.durationSeconds", settings.aws.duration_seconds


BACKEND = Backend("s3", "pip install boto3", _store, _vendor, _dir_access_problem, _credential_lifetime)

__all__ = ["BACKEND", "SYNTAX"]
