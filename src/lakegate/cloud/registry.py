"""Which store serves a location: chosen by the location's cloud and its `storage:` entry, created once."""

from __future__ import annotations

import threading

from lakegate.cloud.base import ObjectStore
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig, StorageConfig
from lakegate.exceptions import UnsupportedOperationError
from lakegate.keys import KeyRing

_INSTALL_HINT = {"azure": "pip install 'lakegate[azure]'", "gs": "pip install 'lakegate[gcp]'"}


class StoreRegistry:
    def __init__(self, config: ServerConfig, keys: KeyRing) -> None:
        self._config = config
        self._keys = keys
        self._stores: dict[tuple[str, int], ObjectStore] = {}
        self._lock = threading.Lock()

    def settings_for(self, location: Location) -> StorageConfig | None:
        return self._config.storage_for(location.display) or self._config.storage_for(location.uri)

    def store_for(self, location: Location) -> ObjectStore:
        settings = self.settings_for(location)
        key = (location.cloud, id(settings))
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                store = self._stores[key] = self._create(location, settings)
            return store

    def _create(self, location: Location, settings: StorageConfig | None) -> ObjectStore:
        try:
            if location.cloud == "file":
                from lakegate.cloud.local import LocalStore

                return LocalStore(self._keys)
            if location.cloud == "s3":
                from lakegate.cloud.aws.storage import S3Store

                return S3Store(settings.aws if settings else None)
            if location.cloud == "azure":
                from lakegate.cloud.azure.storage import AzureStore

                return AzureStore(settings.azure if settings else None)
            if location.cloud == "gs":
                from lakegate.cloud.gcp.storage import GcsStore

                return GcsStore(settings.gcp if settings else None)
        except ImportError as exc:
            hint = _INSTALL_HINT.get(location.cloud, "")
            raise UnsupportedOperationError(
                f"support for {location.cloud} is not installed ({hint})"
            ) from exc
        raise UnsupportedOperationError(f"tables on '{location.cloud}' storage are not supported yet")
