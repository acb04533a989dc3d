"""A chain of Iceberg snapshots, one per Delta version from a base version on.

The base version's snapshot lists every live file in manifests of its own; each later version reads only its
commit and adds a manifest for the files it added (and one for the position deletes of new deletion vectors),
rewriting just the manifests that held files it removed. Every snapshot has its manifest list, so a client may
read any version of the chain. The chain's state (schemas, field ids, specs, snapshots) is saved beside the
manifests at each version a client asked for, so a later version continues from it instead of starting over.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson

from lakegate.cloud.locations import Location
from lakegate.delta.actions import deletion_vector_location
from lakegate.delta.snapshot import Snapshot, dv_id
from lakegate.exceptions import StorageError, TableStateError, UnsupportedOperationError
from lakegate.iceberg.deletes import position_delete_file, positions, vector_bytes
from lakegate.iceberg.files import (
    data_entry,
    data_file_uri,
    delete_entry,
    delete_file_name,
    partition_tuple,
    spec_for,
)
from lakegate.iceberg.manifests import (
    ADDED,
    DATA,
    DELETE_FILE_PATH_ID,
    EXISTING,
    POSITION_DELETES,
    Manifest,
    PartitionField,
    Spec,
    read_avro,
    write_manifest_list,
)
from lakegate.iceberg.schema import Converted, FieldIds, column_mapped, convert, merge_mappings
from lakegate.iceberg.store import TableFiles
from lakegate.iceberg.values import days, micros

log = logging.getLogger(__name__)

# Entries per manifest: a removal rewrites the manifest holding the file, so big versions are split.
MANIFEST_ENTRIES = 5_000
# Small manifests (each version adds one) tolerated before they are merged, as Iceberg's own writers merge
# them: without it a table of many small commits would list a manifest per commit in every manifest list.
MERGE_AT = 50
# Delta reader features whose tables Iceberg clients read correctly from the metadata made here.
SUPPORTED_READER_FEATURES = {
    "columnMapping",
    "deletionVectors",
    "timestampNtz",
    "v2Checkpoint",
    "vacuumProtocolCheck",
    # Declared by deltalake on every table it creates with reader version 3 (e.g. with deletion vectors on),
    # variant column or not: a variant column itself is refused by the schema conversion (schema.py).
    "variantType",
    "variantType-preview",
}


def check_protocol(protocol: dict[str, Any]) -> None:
    unsupported = sorted(set(protocol.get("readerFeatures") or []) - SUPPORTED_READER_FEATURES)
    if unsupported or int(protocol.get("minReaderVersion", 1)) > 3:
        features = ", ".join(unsupported) or f"reader version {protocol.get('minReaderVersion')}"
        raise UnsupportedOperationError(
            f"This table cannot be read by Iceberg clients: it uses the Delta feature(s) {features}"
        )


def snapshot_id(version: int) -> int:
    """Iceberg snapshot ids and sequence numbers are the Delta version + 1 (0 means "none" to some clients)."""
    return version + 1


@dataclass
class Chain:
    base: int
    version: int
    table_uuid: str
    location: str  # the table root's URI
    column_mapped: bool
    ids: FieldIds
    schemas: list[dict[str, Any]] = field(default_factory=list)
    specs: list[Spec] = field(default_factory=list)
    name_mapping: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    last_column_id: int = 0
    # What the current version holds: live manifests, and where each data file and delete file is listed
    # (`data`: data file URI -> its manifest; `deletes`: data file URI -> its delete file's URI and manifest).
    manifests: list[Manifest] = field(default_factory=list)
    data: dict[str, Manifest] = field(default_factory=dict)
    deletes: dict[str, tuple[str, Manifest]] = field(default_factory=dict)
    # The current Delta schema and partitioning, converted.
    schema_id: int = 0
    spec: Spec = field(default_factory=lambda: Spec(0, ()))
    converted: Converted | None = None
    physical: dict[str, str] = field(default_factory=dict)  # logical -> physical top-level column name
    delta_metadata: dict[str, Any] = field(default_factory=dict)
    delta_protocol: dict[str, Any] = field(default_factory=dict)

    # -- the state saved with each version a client asked for ------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "version": self.version,
            "table-uuid": self.table_uuid,
            "location": self.location,
            "column-mapped": self.column_mapped,
            "schemas": self.schemas,
            "specs": [_spec_json(s) for s in self.specs],
            "name-mapping": self.name_mapping,
            "snapshots": self.snapshots,
            "last-column-id": self.last_column_id,
            "delta-metadata": self.delta_metadata,
            "delta-protocol": self.delta_protocol,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], files: TableFiles | None) -> Chain:
        """The chain as saved at its version. With `files`, its manifests are read back to know where each file
        is listed (needed to continue the chain, not to describe it)."""
        chain = cls(
            base=state["base"],
            version=state["version"],
            table_uuid=state["table-uuid"],
            location=state["location"],
            column_mapped=state["column-mapped"],
            ids=FieldIds.from_name_mapping(state["name-mapping"], state["column-mapped"]),
            schemas=state["schemas"],
            specs=[_spec_from_json(s) for s in state["specs"]],
            name_mapping=state["name-mapping"],
            snapshots=state["snapshots"],
            last_column_id=state["last-column-id"],
        )
        current = chain.snapshots[-1]
        chain.set_table(state["delta-metadata"], state["delta-protocol"])
        if files is None:
            return chain
        specs = {s.spec_id: s for s in chain.specs}
        for record in read_avro(files.read(files.relative(current["manifest-list"]))):
            manifest = Manifest(
                record["manifest_path"],
                record["content"],
                specs[record["partition_spec_id"]],
                record["added_snapshot_id"],
                record["sequence_number"],
            )
            manifest.record = record
            chain.manifests.append(manifest)
            for entry in chain.load_entries(manifest, files):
                data_file = entry["data_file"]
                if manifest.content == DATA:
                    chain.data[data_file["file_path"]] = manifest
                else:
                    chain.deletes[deleted_data_file(entry)] = (data_file["file_path"], manifest)
        return chain

    @staticmethod
    def load_entries(manifest: Manifest, files: TableFiles) -> list[dict[str, Any]]:
        return [_plain(entry) for entry in read_avro(files.read(files.relative(manifest.path)))]

    # -- moving forward --------------------------------------------------------------------------------------

    def set_table(self, metadata: dict[str, Any], protocol: dict[str, Any]) -> None:
        """A (new) metaData action: the schema and partitioning from this version on."""
        check_protocol(protocol)
        self.delta_metadata, self.delta_protocol = metadata, protocol
        mapped = column_mapped(metadata.get("configuration") or {})
        if mapped != self.column_mapped and self.snapshots:
            raise UnsupportedOperationError(
                "This table cannot be read by Iceberg clients at this version: column mapping was turned on "
                "or off in the versions it shares"
            )
        try:
            delta_schema = orjson.loads(metadata.get("schemaString") or "{}")
        except orjson.JSONDecodeError as exc:
            raise StorageError("the table's schemaString is not valid JSON") from exc
        converted = convert(delta_schema, mapped, self.ids)
        self.converted = converted
        self.physical = {name: physical for name, (_, physical) in converted.columns.items()}
        self.last_column_id = max(self.last_column_id, converted.highest_id, self.ids.next_id - 1)
        self.name_mapping = merge_mappings(self.name_mapping, converted.name_mapping)
        same = next((s for s in self.schemas if s["fields"] == converted.schema["fields"]), None)
        if same is None:
            same = {"type": "struct", "schema-id": len(self.schemas), "fields": converted.schema["fields"]}
            self.schemas.append(same)
        self.schema_id = same["schema-id"]
        partition_columns = list(metadata.get("partitionColumns") or [])
        missing = [c for c in partition_columns if c not in converted.columns]
        if missing:
            raise StorageError(f"the table's partition columns {missing} are not in its schema")
        assigned = {f.source_id: f.field_id for s in self.specs for f in s.fields}
        spec = spec_for(converted, partition_columns, len(self.specs), assigned)
        known = next((s for s in self.specs if s.fields == spec.fields), None)
        if known is None:
            self.specs.append(spec)
            known = spec
        self.spec = known

    def start(self, snapshot: Snapshot, builder: Builder) -> None:
        """The base version: every live file, added by its snapshot."""
        self.set_table(snapshot.metadata, snapshot.protocol)
        adds = list(snapshot.files.values())
        timestamp = snapshot.in_commit_timestamp or snapshot.commit_mtime_ms
        builder.commit(self, self.version, adds, [], timestamp)

    def partition(self, add: dict[str, Any]) -> dict[str, Any]:
        return partition_tuple(self.spec, self.physical, add.get("partitionValues") or {})


def _spec_json(spec: Spec) -> dict[str, Any]:
    return {
        "spec-id": spec.spec_id,
        "fields": [[f.name, f.source_id, f.field_id, f.kind] for f in spec.fields],
    }


def _spec_from_json(data: dict[str, Any]) -> Spec:
    return Spec(data["spec-id"], tuple(PartitionField(*f) for f in data["fields"]))


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    """A manifest entry as read back, in the form it was written from: fastavro reads the partition tuple's
    dates and timestamps as date and datetime objects (the rest of the entry has no logical types)."""
    partition = entry["data_file"]["partition"]
    for name, value in partition.items():
        if isinstance(value, datetime):  # fastavro gives UTC datetimes, also for `timestamp` (no zone)
            partition[name] = micros(value if value.tzinfo else value.replace(tzinfo=UTC))
        elif isinstance(value, date):
            partition[name] = days(value)
    return entry


class Builder:
    """Writes what each version of a chain needs: manifests, position-delete files, the manifest list."""

    def __init__(
        self,
        files: TableFiles,
        root: Location,
        allowed: tuple[Location, ...],
        read: Callable[[Location], bytes],
    ) -> None:
        self.files = files
        self.root = root
        self.allowed = allowed
        self.read = read

    def commit(
        self,
        chain: Chain,
        version: int,
        adds: list[dict[str, Any]],
        removes: list[dict[str, Any]],
        timestamp_ms: int,
    ) -> None:
        """One Delta version on top of the chain's current state (`chain.version` is the previous one, or the
        base itself when `version == chain.base`)."""
        sid = seq = snapshot_id(version)
        assert chain.converted is not None
        added_uris = {data_file_uri(self.root, a["path"], self.allowed): a for a in adds}
        gone = {data_file_uri(self.root, r["path"], self.allowed) for r in removes} - set(added_uris)
        drop: dict[str, set[str]] = {}  # manifest path -> file paths leaving it
        for uri in gone:
            manifest = chain.data.pop(uri, None)
            if manifest is not None:
                drop.setdefault(manifest.path, set()).add(uri)
            self._drop_delete(chain, uri, drop)
        new_data: dict[int, list[dict[str, Any]]] = {}
        new_deletes: dict[int, list[dict[str, Any]]] = {}
        added_rows = 0
        for uri, add in added_uris.items():
            partition = chain.partition(add)
            if uri not in chain.data:
                entry = data_entry(add, uri, partition, chain.converted.leaves, ADDED, sid, seq)
                new_data.setdefault(chain.spec.spec_id, []).append(entry)
                added_rows += max(0, entry["data_file"]["record_count"])
            descriptor = add.get("deletionVector")
            wanted = delete_file_name(uri, dv_id(descriptor)) if descriptor else None
            current = chain.deletes.get(uri)
            if current is not None and wanted is not None and current[0] == self.files.uri(wanted):
                continue
            self._drop_delete(chain, uri, drop)
            if descriptor and wanted:
                spec_id = chain.data[uri].spec.spec_id if uri in chain.data else chain.spec.spec_id
                new_deletes.setdefault(spec_id, []).append(
                    self._delete_file(uri, descriptor, wanted, partition, sid, seq)
                )
        manifests = self._rewrite(chain, drop, version, sid)
        specs = {s.spec_id: s for s in chain.specs}
        for kind, content, groups in (("a", DATA, new_data), ("d", POSITION_DELETES, new_deletes)):
            n = 0
            for spec_id, unsorted in sorted(groups.items()):
                entries = by_partition(unsorted)
                for start in range(0, len(entries), MANIFEST_ENTRIES):
                    name = f"manifests/b{chain.base}-v{version}-{kind}{n}.avro"
                    n += 1
                    chunk = entries[start : start + MANIFEST_ENTRIES]
                    manifests.append(self._manifest(chain, name, content, specs[spec_id], sid, chunk))
        chain.manifests = self._merge(chain, manifests, version, sid)
        self._snapshot(chain, version, timestamp_ms, bool(new_data), bool(gone), added_rows)

    def _drop_delete(self, chain: Chain, data_uri: str, drop: dict[str, set[str]]) -> None:
        current = chain.deletes.pop(data_uri, None)
        if current is not None:
            drop.setdefault(current[1].path, set()).add(current[0])

    def _delete_file(
        self,
        data_uri: str,
        descriptor: dict[str, Any],
        name: str,
        partition: dict[str, Any],
        sid: int,
        seq: int,
    ) -> dict[str, Any]:
        stored = None
        if descriptor.get("storageType") != "i":
            location = deletion_vector_location(self.root, descriptor, self.allowed)
            assert location is not None
            try:
                stored = self.read(location)
            except FileNotFoundError:
                raise TableStateError(
                    "The table cannot be read: a deletion vector file of its current version is missing; the "
                    "provider must repair it",
                    f"{location.display} is missing (deletion vector of {data_uri})",
                ) from None
        deleted = positions(vector_bytes(descriptor, stored))
        if "cardinality" in descriptor and int(descriptor["cardinality"]) != len(deleted):
            raise TableStateError(
                "The table cannot be read: a deletion vector does not hold the rows its log entry says; the "
                "provider must repair it",
                f"deletion vector of {data_uri}: {len(deleted)} rows, the log says {descriptor['cardinality']}",
            )
        data = position_delete_file(data_uri, deleted)
        uri = self.files.write(name, data)
        return delete_entry(uri, data_uri, partition, deleted, len(data), sid, seq)

    def _rewrite(self, chain: Chain, drop: dict[str, set[str]], version: int, sid: int) -> list[Manifest]:
        """The chain's manifests without the files leaving: each manifest that loses some is written again with
        the rest (as existing entries), or left out when none remain."""
        kept: list[Manifest] = []
        n = 0
        for manifest in chain.manifests:
            leaving = drop.get(manifest.path)
            if not leaving:
                kept.append(manifest)
                continue
            remaining = [
                {**e, "status": EXISTING}
                for e in Chain.load_entries(manifest, self.files)
                if e["data_file"]["file_path"] not in leaving and e["status"] != 2
            ]
            if not remaining:
                continue
            name = f"manifests/b{chain.base}-v{version}-r{n}.avro"
            n += 1
            kept.append(self._manifest(chain, name, manifest.content, manifest.spec, sid, remaining))
        return kept

    def _merge(self, chain: Chain, manifests: list[Manifest], version: int, sid: int) -> list[Manifest]:
        """The manifests with the small ones merged into full ones once there are MERGE_AT of them (per kind
        and spec: a manifest holds one of each). Merged entries keep their snapshot and sequence numbers."""
        small = [m for m in manifests if _entry_count(m) < MANIFEST_ENTRIES // 2]
        if len(small) < MERGE_AT:
            return manifests
        merged = [m for m in manifests if _entry_count(m) >= MANIFEST_ENTRIES // 2]
        groups: dict[tuple[int, int], list[Manifest]] = {}
        for manifest in small:
            groups.setdefault((manifest.content, manifest.spec.spec_id), []).append(manifest)
        n = 0
        for (content, _), group in sorted(groups.items()):
            entries = [
                {**e, "status": EXISTING}
                for m in group
                for e in Chain.load_entries(m, self.files)
                if e["status"] != 2
            ]
            for start in range(0, len(entries), MANIFEST_ENTRIES):
                name = f"manifests/b{chain.base}-v{version}-m{n}.avro"
                n += 1
                chunk = entries[start : start + MANIFEST_ENTRIES]
                merged.append(self._manifest(chain, name, content, group[0].spec, sid, chunk))
        return merged

    def _manifest(
        self, chain: Chain, name: str, content: int, spec: Spec, sid: int, entries: list[dict[str, Any]]
    ) -> Manifest:
        """A manifest made at snapshot `sid`, written, and its files indexed as listed in it."""
        manifest = Manifest(self.files.uri(name), content, spec, sid, sid, entries)
        schema = next(s for s in chain.schemas if s["schema-id"] == chain.schema_id)
        self.files.write(name, manifest.write(schema))
        manifest.record = manifest.list_record()
        manifest.entries = []  # read back from storage if the manifest is ever rewritten
        for entry in entries:
            path = entry["data_file"]["file_path"]
            if content == DATA:
                chain.data[path] = manifest
            else:
                chain.deletes[deleted_data_file(entry)] = (path, manifest)
        return manifest

    def _snapshot(
        self, chain: Chain, version: int, timestamp_ms: int, added: bool, removed: bool, added_rows: int
    ) -> None:
        sid = snapshot_id(version)
        parent = chain.snapshots[-1]["snapshot-id"] if chain.snapshots else None
        manifest_list = write_manifest_list(chain.manifests, sid, parent, sid)
        list_uri = self.files.write(f"manifest-lists/b{chain.base}-v{version}.avro", manifest_list)
        if chain.snapshots:  # commit times only move forward in Iceberg's snapshot log
            timestamp_ms = max(timestamp_ms, chain.snapshots[-1]["timestamp-ms"] + 1)
        operation = "overwrite" if added and removed else "append" if added else "delete"
        total_rows = sum(
            m.record["added_rows_count"] + m.record["existing_rows_count"]
            for m in chain.manifests
            if m.content == DATA
        )
        snapshot: dict[str, Any] = {
            "snapshot-id": sid,
            "sequence-number": sid,
            "timestamp-ms": timestamp_ms,
            "manifest-list": list_uri,
            "summary": {
                "operation": operation,
                "lakegate.delta-version": str(version),
                "added-records": str(added_rows),
                "total-data-files": str(len(chain.data)),
                "total-delete-files": str(len(chain.deletes)),
                "total-records": str(total_rows),
            },
            "schema-id": chain.schema_id,
        }
        if parent is not None:
            snapshot["parent-snapshot-id"] = parent
        chain.snapshots.append(snapshot)
        chain.version = version


def by_partition(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries ordered by partition tuple (nulls last), so that each manifest of a large version covers few
    partitions and its partition summary lets clients skip it."""

    def key(entry: dict[str, Any]) -> tuple[tuple[bool, Any], ...]:
        return tuple((v is None, v if v is not None else 0) for v in entry["data_file"]["partition"].values())

    return sorted(entries, key=key)


def _entry_count(manifest: Manifest) -> int:
    record = manifest.record
    return int(record["added_files_count"] + record["existing_files_count"] + record["deleted_files_count"])


def deleted_data_file(entry: dict[str, Any]) -> str:
    """The data file a position-delete entry applies to (its file_path column's bound)."""
    bounds = {p["key"]: p["value"] for p in entry["data_file"]["lower_bounds"] or []}
    return bytes(bounds[DELETE_FILE_PATH_ID]).decode()


def table_uuid(table_id: str, delta_table_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lakegate:{table_id}:{delta_table_id}"))
