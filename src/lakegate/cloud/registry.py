"""Which store serves a location: chosen by the location's cloud (`lakegate.cloud.backends`) and its
`storage:` entry, created once."""

from __future__ import annotations

import threading

from lakegate.cloud.base import Backend, ObjectStore, backend_for
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig, StorageConfig
from lakegate.exceptions import StorageError
from lakegate.inline import must_not_block
from lakegate.keys import KeyRing


class StoreRegistry:
    def __init__(self, config: ServerConfig, keys: KeyRing) -> None:
        self._config = config
        self._keys = keys
        self._stores: dict[tuple[str, int], ObjectStore] = {}
        self._lock = threading.Lock()

    def settings_for(self, location: Location) -> StorageConfig | None:
        return self._config.storage_for(location.display) or self._config.storage_for(location.uri)

    def store_for(self, location: Location) -> ObjectStore:
        if location.cloud != "file":
            must_not_block()  # object storage is reached over the network: not from the event loop
        settings = self.settings_for(location)
        key = (location.cloud, id(settings))
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                store = self._stores[key] = self._create(location, settings)
            return store

    def _create(self, location: Location, settings: StorageConfig | None) -> ObjectStore:
        backend = backend_for(location.cloud)
        if backend is None:  # start refuses such tables (lakegate.preflight): a 500, details in the log
            raise StorageError(f"tables on '{location.cloud}' storage are not supported")
        try:
            return backend.make_store(settings, self._keys)
        except ImportError as exc:
            raise not_installed(backend) from exc


def not_installed(backend: Backend) -> StorageError:
    """The provider's problem (start refuses tables whose SDK is missing): a 500, details in the log."""
    return StorageError(f"support for {backend.cloud} is not installed ({backend.install_hint})")
