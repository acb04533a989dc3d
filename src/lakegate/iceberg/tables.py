"""Iceberg table metadata for shared Delta tables: made from the Delta log on first use, written under the
table's metadata location, and reused from memory or storage afterwards.

`IcebergTables.load` gives the table metadata (format v2) of one Delta version with a snapshot for every
version from the oldest the share exposes, the metadata file's location and the directory holding everything
generated for the table (whose read access a client needs besides the table's own locations).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from lakegate._gc import paused_gc
from lakegate._lru import Lru
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import ServerConfig
from lakegate.delta.cache import SnapshotCache
from lakegate.delta.snapshot import Snapshot
from lakegate.exceptions import MalformedRequestError
from lakegate.iceberg.chain import Builder, Chain, check_protocol, snapshot_id, table_uuid
from lakegate.iceberg.manifests import Spec
from lakegate.iceberg.schema import FieldIds, column_mapped
from lakegate.iceberg.store import TableFiles, metadata_root, table_directory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IcebergSource:
    """What a share exposes of one table."""

    root: Location
    auxiliary: tuple[Location, ...]
    table_id: str  # the shared table's id (or lower-cased full name): names its directory of generated files
    oldest_version: int | None  # the oldest version clients may read (None: only the one served)


@dataclass(frozen=True)
class LoadedTable:
    metadata_location: str  # URI of the table metadata file
    metadata: dict[str, Any]  # the table metadata (format v2)
    metadata_prefix: Location  # the directory of every file generated for the table
    version: int  # the Delta version of the current snapshot


class IcebergTables:
    def __init__(
        self, config: ServerConfig, stores: StoreRegistry, snapshots: SnapshotCache, max_tables: int = 64
    ) -> None:
        self._config = config
        self._stores = stores
        self._snapshots = snapshots
        self._loaded: Lru[tuple[str, int, int], LoadedTable] = Lru(max_tables)
        # The newest chain state of each table directory (its manifests' index of files), to continue from.
        self._chains: Lru[str, Chain] = Lru(max(8, config.delta_table_cache_size))
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def load(self, source: IcebergSource, version: int | None = None) -> LoadedTable:
        """The table at `version` (None: the latest). Blocking: reads the log and may write files."""
        snapshot = (
            self._snapshots.latest(source.root)
            if version is None
            else self._snapshots.at_version(source.root, version)
        )
        check_protocol(snapshot.protocol)
        root = metadata_root(self._config, self._stores, source.root)
        directory = table_directory(root, source.table_id, str(snapshot.metadata.get("id", "")))
        oldest = (
            snapshot.version
            if source.oldest_version is None
            else min(source.oldest_version, snapshot.version)
        )
        key = (directory.uri, snapshot.version, oldest)
        with self._guard:
            found = self._loaded.get(key)
        if found is not None:
            return found
        with self._lock(directory.uri):
            with self._guard:
                found = self._loaded.get(key)
            if found is None:
                found = self._load(source, snapshot, oldest, TableFiles(self._stores, directory))
                with self._guard:
                    self._loaded.put(key, found)
        return found

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _load(self, source: IcebergSource, snapshot: Snapshot, oldest: int, files: TableFiles) -> LoadedTable:
        name = f"metadata/v{snapshot.version:020d}-o{oldest:020d}.metadata.json"
        try:
            metadata = orjson.loads(files.read(name))
            return LoadedTable(files.uri(name), metadata, files.directory, snapshot.version)
        except FileNotFoundError:
            pass
        except orjson.JSONDecodeError:  # a torn write of another process: made again below
            log.warning("iceberg metadata %s is not valid JSON; writing it again", files.uri(name))
        covering = self._covering_chain(files, oldest, snapshot.version)
        if covering is not None:  # an older version of a chain already made: its snapshots exist
            metadata = table_metadata(covering, oldest, snapshot.version)
        else:
            with paused_gc():  # ~10^6 acyclic dicts for a large table, as for a snapshot
                chain = self._chain(source, snapshot, oldest, files)
            state = orjson.dumps(chain.state_json())
            files.write(f"chains/b{chain.base:020d}-v{chain.version:020d}.json", state)
            metadata = table_metadata(chain, oldest, chain.version)
        uri = files.write(name, orjson.dumps(metadata))
        return LoadedTable(uri, metadata, files.directory, snapshot.version)

    def _chain(self, source: IcebergSource, snapshot: Snapshot, oldest: int, files: TableFiles) -> Chain:
        """A chain of snapshots reaching from `oldest` (or before) to the snapshot's version: continued from
        the newest one known (in memory or saved) that starts early enough, else started at `oldest`."""
        target = snapshot.version
        builder = Builder(
            files,
            source.root,
            source.auxiliary,
            lambda location: self._stores.store_for(location).read(location),
        )
        chain = self._known_chain(files, oldest, target)
        with self._guard:  # changed in place below: only a chain that reached its version is kept
            self._chains.pop(files.directory.uri)
        if chain is not None:
            try:
                self._advance(chain, builder, source, target)
                with self._guard:
                    self._chains.put(files.directory.uri, chain)
                return chain
            except FileNotFoundError:  # a commit of the range was cleaned up: start afresh below
                log.info("iceberg: commits after %s are gone; starting a new chain", chain.version)
        try:
            base_snapshot = snapshot if oldest == target else self._snapshots.at_version(source.root, oldest)
        except MalformedRequestError:  # log cleanup removed the commits of the oldest shared versions
            readable = self._oldest_readable(source, oldest, target)
            log.info("iceberg: versions before %s of %s are cleaned up", readable, source.root.display)
            return self._chain(source, snapshot, readable, files)
        mapped = column_mapped(base_snapshot.configuration)
        chain = Chain(
            base=oldest,
            version=oldest,
            table_uuid=table_uuid(source.table_id, str(snapshot.metadata.get("id", ""))),
            location=source.root.uri,
            column_mapped=mapped,
            ids=FieldIds(next_id=1 << 30 if mapped else 1),
        )
        chain.start(base_snapshot, builder)
        self._advance(chain, builder, source, target)
        with self._guard:
            self._chains.put(files.directory.uri, chain)
        return chain

    def _oldest_readable(self, source: IcebergSource, oldest: int, target: int) -> int:
        """The first version after `oldest` with a checkpoint and every later commit up to `target`."""
        listing = self._snapshots.log(source.root).list()
        for checkpoint in sorted(v for v in listing.checkpoints if oldest < v <= target):
            if all(v in listing.commits for v in range(checkpoint + 1, target + 1)):
                return checkpoint
        return target

    def _covering_chain(self, files: TableFiles, oldest: int, target: int) -> Chain | None:
        """A chain (in memory, else saved) holding snapshots of every version from `oldest` to `target`."""
        with self._guard:
            chain = self._chains.get(files.directory.uri)
        if chain is not None and chain.base <= oldest and chain.version >= target:
            return chain
        return self._saved_chain(
            files, lambda base, version: base <= oldest and version >= target, index=False
        )

    def _known_chain(self, files: TableFiles, oldest: int, target: int) -> Chain | None:
        """The newest chain (in memory, else saved) to continue up to `target` that starts by `oldest`."""
        with self._guard:
            chain = self._chains.get(files.directory.uri)
        if chain is not None and chain.base <= oldest and chain.version <= target:
            return chain
        return self._saved_chain(
            files, lambda base, version: base <= oldest and version <= target, index=True
        )

    def _saved_chain(self, files: TableFiles, fits: Callable[[int, int], bool], index: bool) -> Chain | None:
        saved = []
        for name in files.names("chains"):
            try:
                base, version = (int(part[1:]) for part in name.removesuffix(".json").split("-"))
            except ValueError:
                continue
            if fits(base, version):
                saved.append((version, base, name))
        for _, _, name in sorted(saved, reverse=True):
            try:
                return Chain.from_state(orjson.loads(files.read(f"chains/{name}")), files if index else None)
            except (FileNotFoundError, orjson.JSONDecodeError, KeyError, ValueError) as exc:
                log.warning("iceberg: chain state %s unusable (%s); trying an older one", name, exc)
        return None

    def _advance(self, chain: Chain, builder: Builder, source: IcebergSource, target: int) -> None:
        if chain.version >= target:
            return
        log_ = self._snapshots.log(source.root)
        listing = log_.list(start_after=f"{chain.version:020d}.json")
        for version in range(chain.version + 1, target + 1):
            info = listing.commits.get(version)
            if info is None:
                raise FileNotFoundError(f"commit {version}")
            actions = log_.commit_actions(version)
            # Every add and remove, data change or not (delta.changes.Commit keeps only data changes: a
            # compaction changes no rows, but it does change which files a snapshot lists).
            adds, removes, timestamp = [], [], info.mtime_ms
            metadata = protocol = None
            for action in actions:
                if "add" in action:
                    adds.append(action["add"])
                elif "remove" in action:
                    removes.append(action["remove"])
                elif "metaData" in action:
                    metadata = action["metaData"]
                elif "protocol" in action:
                    protocol = action["protocol"]
                elif "commitInfo" in action:
                    timestamp = action["commitInfo"].get("inCommitTimestamp") or timestamp
            if metadata is not None or protocol is not None:  # each action is whole, not a change
                chain.set_table(metadata or chain.delta_metadata, protocol or chain.delta_protocol)
            builder.commit(chain, version, adds, removes, timestamp)


def table_metadata(chain: Chain, oldest: int, version: int) -> dict[str, Any]:
    """The table metadata (format v2) of `version`, with the snapshots from `oldest` on."""
    snapshots = [
        s for s in chain.snapshots if snapshot_id(oldest) <= s["snapshot-id"] <= snapshot_id(version)
    ]
    current = snapshots[-1]
    spec_fields = [f for s in chain.specs for f in s.fields]
    return {
        "format-version": 2,
        "table-uuid": chain.table_uuid,
        "location": chain.location,
        "last-sequence-number": current["sequence-number"],
        "last-updated-ms": current["timestamp-ms"],
        "last-column-id": chain.last_column_id,
        "current-schema-id": current["schema-id"],
        "schemas": list(chain.schemas),  # a copy: the chain grows on, this answer stays as it is
        "default-spec-id": chain.spec.spec_id,
        "partition-specs": [_spec(s) for s in chain.specs] or [{"spec-id": 0, "fields": []}],
        "last-partition-id": max((f.field_id for f in spec_fields), default=999),
        "default-sort-order-id": 0,
        "sort-orders": [{"order-id": 0, "fields": []}],
        "properties": {
            "schema.name-mapping.default": orjson.dumps(chain.name_mapping).decode(),
            "lakegate.delta-version": str(version),
        },
        "current-snapshot-id": current["snapshot-id"],
        "refs": {"main": {"snapshot-id": current["snapshot-id"], "type": "branch"}},
        "snapshots": snapshots,
        "snapshot-log": [
            {"snapshot-id": s["snapshot-id"], "timestamp-ms": s["timestamp-ms"]} for s in snapshots
        ],
        "metadata-log": [],
        "statistics": [],
        "partition-statistics": [],
    }


def _spec(spec: Spec) -> dict[str, Any]:
    return spec.to_json()
