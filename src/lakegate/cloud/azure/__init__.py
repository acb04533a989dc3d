"""Azure Blob Storage and ADLS Gen2: reading logs, per-blob SAS URLs (URL access) and SAS vending (directory
access). Needs `pip install 'lakegate[azure]'`; the SDK is imported only when an Azure location is used."""

from __future__ import annotations

from collections.abc import Callable

from lakegate.cloud.azure.uris import SYNTAX
from lakegate.cloud.base import Backend, CredentialVendor, ObjectStore
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig, StorageConfig
from lakegate.keys import KeyRing


def _store(settings: StorageConfig | None, keys: KeyRing) -> ObjectStore:
    from lakegate.cloud.azure.storage import AzureStore

    return AzureStore(settings.azure if settings else None)


def _vendor(
    settings: StorageConfig, store: Callable[[], ObjectStore], config: ServerConfig
) -> CredentialVendor:
    from lakegate.cloud.azure.storage import AzureStore
    from lakegate.cloud.azure.vending import AzureVendor

    azure_store = store()
    assert isinstance(azure_store, AzureStore)
    assert settings.azure is not None
    return AzureVendor(azure_store, settings.azure, config.temporary_credential_validity_seconds)


def _dir_access_problem(location: Location, settings: StorageConfig | None) -> str | None:
    from lakegate.cloud.azure.storage import hierarchical  # no SDK import: that waits for a client

    azure = settings.azure if settings else None
    if azure is None or not azure.directory_access:
        return "directoryAccess is not enabled for its Azure storage"
    if (
        location.path
        and not hierarchical(location, azure.hierarchical_namespace)
        and not azure.allow_container_sas
    ):
        return (
            "its Azure account has a flat namespace, where a SAS cannot be limited to a directory "
            "(allowContainerSas is not set)"
        )
    return None


def _credential_lifetime(settings: StorageConfig, config: ServerConfig) -> tuple[str, int] | None:
    if settings.azure is None or not settings.azure.directory_access:
        return None
    return "temporaryCredentialValiditySeconds", config.temporary_credential_validity_seconds


BACKEND = Backend(
    "azure",
    "pip install 'lakegate[azure]'",
    _store,
    _vendor,
    _dir_access_problem,
    _credential_lifetime,
    sdk_modules=("azure.storage.blob", "azure.storage.filedatalake", "azure.identity"),
)

__all__ = ["BACKEND", "SYNTAX"]
