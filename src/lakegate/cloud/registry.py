"""Which store serves a location: chosen by the location's cloud (`lakegate.cloud.backends`) and its
`storage:` entry, created once."""

from __future__ import annotations

import threading

from lakegate.cloud import backends
from lakegate.cloud.base import Backend, ObjectStore, backend_for
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig, StorageConfig
from lakegate.exceptions import InvalidLocationError, StorageError
from lakegate.inline import must_not_block
from lakegate.keys import KeyRing


class StoreRegistry:
    def __init__(self, config: ServerConfig, keys: KeyRing) -> None:
        self._config = config
        self._keys = keys
        self._stores: dict[tuple[str, int], ObjectStore] = {}
        self._lock = threading.Lock()
        self._by_store: list[tuple[str, Location | None, StorageConfig]] | None = None

    def settings_for(self, location: Location) -> StorageConfig | None:
        return (
            self._config.storage_for(location.display)
            or self._config.storage_for(location.uri)
            or self._same_store_entry(location)
        )

    def _same_store_entry(self, location: Location) -> StorageConfig | None:
        """The entry naming the location's store in another spelling (`s3a://b/` for `s3://b/t`, `wasbs://` for
        `abfss://…dfs…`): locations derived from a table's (its log's directories, deletion vectors, the
        generated Iceberg metadata) carry only the canonical URI, which such an entry's prefix does not match.
        The most specific entry wins: one containing the location, else one naming its scheme only."""
        if self._by_store is None:
            self._by_store = _entries_by_store(self._config)
        best: tuple[int, StorageConfig] | None = None
        for cloud, named, entry in self._by_store:
            if cloud != location.cloud or (named is not None and not named.contains(location)):
                continue
            specific = 0 if named is None else 1 + len(named.path)
            if best is None or specific > best[0]:
                best = (specific, entry)
        return best[1] if best else None

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


def _entries_by_store(config: ServerConfig) -> list[tuple[str, Location | None, StorageConfig]]:
    """(cloud, directory or None for a scheme-only entry, entry) of each cloud `storage:` entry."""
    out: list[tuple[str, Location | None, StorageConfig]] = []
    for entry in config.storage:
        scheme, sep, rest = entry.location.partition("://")
        owner = backends.syntax_for_scheme(scheme.lower()) if sep else None
        if owner is None or owner[0] == "file":
            continue
        if not rest.strip("/"):
            out.append((owner[0], None, entry))
            continue
        try:
            out.append((owner[0], Location.parse(entry.location), entry))
        except InvalidLocationError:  # an account without a container: not a directory
            continue
    return out


def not_installed(backend: Backend) -> StorageError:
    """The provider's problem (start refuses tables whose SDK is missing): a 500, details in the log."""
    return StorageError(f"support for {backend.cloud} is not installed ({backend.install_hint})")
