"""Where a table's generated Iceberg files live, and reading and writing them through the server's stores.

Each table gets a directory of its own below the metadata location of its `storage` entry
(`iceberg.metadataLocation`, defaults in `metadata_root`), named after the shared table and the Delta table's
id (a table recreated at the same place is another table). Below it:

    metadata/v<version>-o<oldest>.metadata.json   table metadata: snapshots of versions oldest..version
    chains/b<base>-v<version>.json                what continuing a chain of snapshots from base needs
    manifest-lists/b<base>-v<version>.avro        the manifest list of version's snapshot
    manifests/b<base>-v<version>-<kind><n>.avro   manifests made at version (a added, d deletes, r rewritten)
    deletes/<hash>.parquet                        position deletes of one deletion vector on one data file

Files are written once (their names say what they hold) and only read afterwards.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import ServerConfig
from lakegate.exceptions import InvalidLocationError

# The default metadata directory of a cloud table, inside the table's location.
IN_TABLE = "_lakegate_iceberg"


def metadata_root(config: ServerConfig, stores: StoreRegistry, table_root: Location) -> Location:
    """The configured metadata location of the table's storage entry; else, for a local table, a directory
    beside the configuration file, and for a cloud table `_lakegate_iceberg/` inside the table's own location
    (as UniForm writes its metadata beside the data: the table's vended credentials cover it, and Delta's
    VACUUM leaves directories starting with `_` alone)."""
    settings = stores.settings_for(table_root)
    configured = settings.iceberg.metadata_location if settings and settings.iceberg else None
    if configured:
        if "://" not in configured and not configured.startswith("/"):  # relative to the configuration
            configured = str((config.base_dir or Path.cwd()) / configured)
        try:
            return Location.parse(configured)
        except InvalidLocationError as exc:
            raise InvalidLocationError(f"storage[].iceberg.metadataLocation: {exc.message}") from None
    if table_root.cloud != "file":
        return table_root.child(IN_TABLE)
    base = config.base_dir or Path(tempfile.gettempdir())
    return Location.parse(str(base / f"{config.file_stem}-iceberg"))


def table_directory(metadata_location: Location, table_id: str, delta_table_id: str) -> Location:
    digest = hashlib.sha256(f"{table_id}\n{delta_table_id}".encode()).hexdigest()[:24]
    return metadata_location.child(digest)


class TableFiles:
    """One table's generated files, by their path relative to its directory."""

    def __init__(self, stores: StoreRegistry, directory: Location) -> None:
        self.directory = directory
        self._store = stores.store_for(directory)

    def location(self, relative: str) -> Location:
        return self.directory.child(relative)

    def uri(self, relative: str) -> str:
        return self.location(relative).uri

    def relative(self, uri: str) -> str:
        return self.directory.relative(Location.parse(uri))

    def write(self, relative: str, data: bytes) -> str:
        location = self.location(relative)
        self._store.write(location, data)
        return location.uri

    def read(self, relative: str) -> bytes:
        """The file's bytes; FileNotFoundError when it was never written."""
        return self._store.read(self.location(relative))

    def names(self, subdirectory: str) -> list[str]:
        return [info.name for info in self._store.list_dir(self.location(subdirectory))]
