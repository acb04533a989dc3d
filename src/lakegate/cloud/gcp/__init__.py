"""Google Cloud Storage: reading logs, V4 signed URLs (URL access) and downscoped tokens (directory access).
Needs `pip install 'lakegate[gcp]'`; the SDK is imported only when a gs:// location is used."""

from __future__ import annotations

from collections.abc import Callable

from lakegate.cloud.base import Backend, CredentialVendor, ObjectStore
from lakegate.cloud.gcp.uris import SYNTAX
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig, StorageConfig
from lakegate.keys import KeyRing


def _store(settings: StorageConfig | None, keys: KeyRing) -> ObjectStore:
    from lakegate.cloud.gcp.storage import GcsStore

    return GcsStore(settings.gcp if settings else None)


def _vendor(
    settings: StorageConfig, store: Callable[[], ObjectStore], config: ServerConfig
) -> CredentialVendor:
    from lakegate.cloud.gcp.storage import GcsStore
    from lakegate.cloud.gcp.vending import GcsVendor

    gcs_store = store()
    assert isinstance(gcs_store, GcsStore)
    assert settings.gcp is not None
    return GcsVendor(gcs_store, settings.gcp)


def _dir_access_problem(location: Location, settings: StorageConfig | None) -> str | None:
    gcp = settings.gcp if settings else None
    if gcp is None or not gcp.directory_access:
        return "directoryAccess is not enabled for its GCS storage"
    return None


BACKEND = Backend(
    "gs",
    "pip install 'lakegate[gcp]'",
    _store,
    _vendor,
    _dir_access_problem,
    sdk_modules=("google.auth", "google.cloud.storage"),
)

__all__ = ["BACKEND", "SYNTAX"]
