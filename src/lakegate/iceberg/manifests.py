"""Manifests and manifest lists in Avro, as the Iceberg spec (format version 2) writes them.

The spec's schemas (field ids included: Iceberg readers match fields by id); manifest lists are written with
fastavro, manifest entries with `lakegate.iceberg.avro` (fastavro's record writer is too slow for 100k files). We
do not use pyiceberg's writer: it would make the whole of pyiceberg (and its storage layer) a server dependency
for two record layouts, and its writer API has changed between releases.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import fastavro
import orjson

from lakegate.iceberg.avro import container, entry_encoder
from lakegate.iceberg.values import decimal_bytes, decimal_parts, to_bytes

# Manifest entry status and content kinds (spec: "Manifests").
EXISTING, ADDED, DELETED = 0, 1, 2
DATA, POSITION_DELETES = 0, 1
# The reserved field ids of a position-delete file's columns.
DELETE_FILE_PATH_ID, DELETE_POS_ID = 2147483546, 2147483545


_AVRO_NAME = re.compile(r"[^A-Za-z0-9_]")


def avro_name(name: str) -> str:
    """A column name as an Avro field name (Iceberg's own escaping: `_x` and the hex code of each other char)."""
    escaped = _AVRO_NAME.sub(lambda m: f"_x{ord(m[0]):X}", name)
    return escaped if escaped[:1].isalpha() or escaped[:1] == "_" else f"_{escaped}"


def _optional(avro_type: Any) -> list[Any]:
    return ["null", avro_type]


def _field(name: str, field_id: int, avro_type: Any, optional: bool = False) -> dict[str, Any]:
    if optional:
        return {"name": name, "type": _optional(avro_type), "default": None, "field-id": field_id}
    return {"name": name, "type": avro_type, "field-id": field_id}


def _int_map(name: str, field_id: int, key_id: int, value_id: int, value_type: str) -> dict[str, Any]:
    """An Iceberg map with int keys: Avro has only string-keyed maps, so an array of key/value records."""
    record = {
        "type": "record",
        "name": f"k{key_id}_v{value_id}",
        "fields": [_field("key", key_id, "int"), _field("value", value_id, value_type)],
    }
    return _field(name, field_id, {"type": "array", "items": record, "logicalType": "map"}, optional=True)


def avro_type(kind: str) -> Any:
    """The Avro type Iceberg gives a primitive type."""
    simple = {"boolean", "int", "long", "float", "double", "string"}
    if kind in simple:
        return kind
    if kind == "binary":
        return "bytes"
    if kind == "date":
        return {"type": "int", "logicalType": "date"}
    if kind in ("timestamp", "timestamptz"):
        return {"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": kind == "timestamptz"}
    parts = decimal_parts(kind)
    if parts is not None:
        precision, scale = parts
        return {
            "type": "fixed",
            "name": f"decimal_{precision}_{scale}",
            "size": decimal_bytes(precision),
            "logicalType": "decimal",
            "precision": precision,
            "scale": scale,
        }
    raise ValueError(f"no Avro type for {kind}")


@dataclass(frozen=True)
class PartitionField:
    name: str
    source_id: int
    field_id: int
    kind: str  # the source column's Iceberg type (identity transform: the partition value's type too)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "transform": "identity",
            "source-id": self.source_id,
            "field-id": self.field_id,
        }


@dataclass(frozen=True)
class Spec:
    spec_id: int
    fields: tuple[PartitionField, ...]

    def to_json(self) -> dict[str, Any]:
        return {"spec-id": self.spec_id, "fields": [f.to_json() for f in self.fields]}


def _entry_schema(spec: Spec) -> dict[str, Any]:
    partition = {
        "type": "record",
        "name": "r102",
        "fields": [
            _field(avro_name(f.name), f.field_id, avro_type(f.kind), optional=True) for f in spec.fields
        ],
    }
    data_file = {
        "type": "record",
        "name": "r2",
        "fields": [
            _field("content", 134, "int"),
            _field("file_path", 100, "string"),
            _field("file_format", 101, "string"),
            _field("partition", 102, partition),
            _field("record_count", 103, "long"),
            _field("file_size_in_bytes", 104, "long"),
            _int_map("column_sizes", 108, 117, 118, "long"),
            _int_map("value_counts", 109, 119, 120, "long"),
            _int_map("null_value_counts", 110, 121, 122, "long"),
            _int_map("nan_value_counts", 137, 138, 139, "long"),
            _int_map("lower_bounds", 125, 126, 127, "bytes"),
            _int_map("upper_bounds", 128, 129, 130, "bytes"),
            _field("key_metadata", 131, "bytes", optional=True),
            _field(
                "split_offsets", 132, {"type": "array", "items": "long", "element-id": 133}, optional=True
            ),
            _field("equality_ids", 135, {"type": "array", "items": "int", "element-id": 136}, optional=True),
            _field("sort_order_id", 140, "int", optional=True),
        ],
    }
    return {
        "type": "record",
        "name": "manifest_entry",
        "fields": [
            _field("status", 0, "int"),
            _field("snapshot_id", 1, "long", optional=True),
            _field("sequence_number", 3, "long", optional=True),
            _field("file_sequence_number", 4, "long", optional=True),
            _field("data_file", 2, data_file),
        ],
    }


_FIELD_SUMMARY = {
    "type": "record",
    "name": "r508",
    "fields": [
        _field("contains_null", 509, "boolean"),
        _field("contains_nan", 518, "boolean", optional=True),
        _field("lower_bound", 510, "bytes", optional=True),
        _field("upper_bound", 511, "bytes", optional=True),
    ],
}
_MANIFEST_FILE = {
    "type": "record",
    "name": "manifest_file",
    "fields": [
        _field("manifest_path", 500, "string"),
        _field("manifest_length", 501, "long"),
        _field("partition_spec_id", 502, "int"),
        _field("content", 517, "int"),
        _field("sequence_number", 515, "long"),
        _field("min_sequence_number", 516, "long"),
        _field("added_snapshot_id", 503, "long"),
        _field("added_files_count", 504, "int"),
        _field("existing_files_count", 505, "int"),
        _field("deleted_files_count", 506, "int"),
        _field("added_rows_count", 512, "long"),
        _field("existing_rows_count", 513, "long"),
        _field("deleted_rows_count", 514, "long"),
        _field(
            "partitions", 507, {"type": "array", "items": _FIELD_SUMMARY, "element-id": 508}, optional=True
        ),
        _field("key_metadata", 519, "bytes", optional=True),
    ],
}
_PARSED_MANIFEST_FILE = fastavro.parse_schema(_MANIFEST_FILE)


def _avro(schema: Any, records: Iterable[dict[str, Any]], metadata: dict[str, str]) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, schema, records, codec="deflate", metadata=metadata)
    return out.getvalue()


@dataclass
class Manifest:
    """One manifest: where it is written, what it holds (its Avro records, kept to rewrite it when files are
    removed) and its line in manifest lists."""

    path: str  # absolute URI
    content: int  # DATA or POSITION_DELETES
    spec: Spec
    added_snapshot_id: int
    sequence_number: int
    entries: list[dict[str, Any]] = field(default_factory=list)
    length: int = 0
    record: dict[str, Any] = field(default_factory=dict)  # its manifest-list record, once written

    def write(self, table_schema: dict[str, Any]) -> bytes:
        """The manifest file; also records its length for the manifest list."""
        metadata = {
            "schema": orjson.dumps(table_schema).decode(),
            "schema-id": str(table_schema.get("schema-id", 0)),
            "partition-spec": orjson.dumps([f.to_json() for f in self.spec.fields]).decode(),
            "partition-spec-id": str(self.spec.spec_id),
            "format-version": "2",
            "content": "deletes" if self.content == POSITION_DELETES else "data",
        }
        encode = entry_encoder([(avro_name(f.name), f.kind) for f in self.spec.fields])
        data = container(_entry_schema(self.spec), metadata, [encode(e) for e in self.entries], self.path)
        self.length = len(data)
        return data

    def list_record(self) -> dict[str, Any]:
        counts = {ADDED: [0, 0], EXISTING: [0, 0], DELETED: [0, 0]}
        for entry in self.entries:
            counts[entry["status"]][0] += 1
            counts[entry["status"]][1] += entry["data_file"]["record_count"]
        sequence_numbers = [e["sequence_number"] for e in self.entries] or [self.sequence_number]
        return {
            "manifest_path": self.path,
            "manifest_length": self.length,
            "partition_spec_id": self.spec.spec_id,
            "content": self.content,
            "sequence_number": self.sequence_number,
            "min_sequence_number": min(sequence_numbers),
            "added_snapshot_id": self.added_snapshot_id,
            "added_files_count": counts[ADDED][0],
            "existing_files_count": counts[EXISTING][0],
            "deleted_files_count": counts[DELETED][0],
            "added_rows_count": counts[ADDED][1],
            "existing_rows_count": counts[EXISTING][1],
            "deleted_rows_count": counts[DELETED][1],
            "partitions": self._partition_summaries(),
            "key_metadata": None,
        }

    def _partition_summaries(self) -> list[dict[str, Any]]:
        """Per partition field: whether a null occurs and the lowest and highest value (manifest pruning)."""
        summaries = []
        for spec_field in self.spec.fields:
            values = [e["data_file"]["partition"].get(avro_name(spec_field.name)) for e in self.entries]
            present = [v for v in values if v is not None]
            nan = any(isinstance(v, float) and v != v for v in present)  # noqa: PLR0124 - NaN test
            ordered = [v for v in present if not (isinstance(v, float) and v != v)]  # noqa: PLR0124
            summaries.append(
                {
                    "contains_null": len(present) < len(values),
                    "contains_nan": nan,
                    "lower_bound": to_bytes(spec_field.kind, min(ordered)) if ordered else None,
                    "upper_bound": to_bytes(spec_field.kind, max(ordered)) if ordered else None,
                }
            )
        return summaries


def write_manifest_list(
    manifests: list[Manifest], snapshot_id: int, parent_id: int | None, sequence_number: int
) -> bytes:
    metadata = {
        "snapshot-id": str(snapshot_id),
        "parent-snapshot-id": str(parent_id) if parent_id is not None else "null",
        "sequence-number": str(sequence_number),
        "format-version": "2",
    }
    return _avro(_PARSED_MANIFEST_FILE, [m.record for m in manifests], metadata)


def read_avro(data: bytes) -> list[dict[str, Any]]:
    return list(fastavro.reader(io.BytesIO(data)))  # type: ignore[arg-type]
