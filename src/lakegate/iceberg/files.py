"""Delta add actions as Iceberg manifest entries: the data file's URI, partition tuple, record count and the
bounds and null counts converted from the Delta stats (so that engines prune), and the position-delete file
of its deletion vector."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

from lakegate.cloud.locations import Location
from lakegate.delta.actions import data_location, file_stats
from lakegate.iceberg.manifests import (
    DATA,
    DELETE_FILE_PATH_ID,
    DELETE_POS_ID,
    POSITION_DELETES,
    PartitionField,
    Spec,
    avro_name,
)
from lakegate.iceberg.schema import Converted, Leaf
from lakegate.iceberg.values import from_partition_string, from_stats, to_bytes


def data_file_uri(root: Location, path: str, allowed: tuple[Location, ...]) -> str:
    """The absolute URI of a file an add action names (relative paths are URL-encoded in the log); an absolute
    one must lie in the table's locations, as for every other client."""
    if "://" in path or path.startswith("/"):
        data_location(root, path, allowed)  # raises for files outside the shared locations
        return path
    relative = unquote(path)
    if root.cloud == "file" or not root.original:
        return root.child(relative).uri
    return f"{root.display.rstrip('/')}/{relative}"


def partition_tuple(spec: Spec, physical: dict[str, str], values: dict[str, str | None]) -> dict[str, Any]:
    """The Avro partition record of an add action's partition values (keyed by physical column name)."""
    return {
        avro_name(f.name): from_partition_string(f.kind, values.get(physical[f.name], values.get(f.name)))
        for f in spec.fields
    }


def _flatten(values: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if not isinstance(values, dict):
        return {}
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, (*prefix, key)))
        else:
            flat[(*prefix, key)] = value
    return flat


def _pairs(values: dict[int, Any]) -> list[dict[str, Any]] | None:
    return [{"key": k, "value": v} for k, v in sorted(values.items())] or None


def data_entry(
    add: dict[str, Any],
    uri: str,
    partition: dict[str, Any],
    leaves: dict[tuple[str, ...], Leaf],
    status: int,
    snapshot_id: int,
    sequence_number: int,
) -> dict[str, Any]:
    stats = file_stats(add) or {}
    records = stats.get("numRecords")
    record_count = records if isinstance(records, int) else -1  # -1: unknown, as Iceberg's own imports write
    lower: dict[int, bytes] = {}
    upper: dict[int, bytes] = {}
    nulls: dict[int, int] = {}
    for bounds, values, is_upper in (
        (lower, stats.get("minValues"), False),
        (upper, stats.get("maxValues"), True),
    ):
        for path, value in _flatten(values).items():
            leaf = leaves.get(path)
            bound = from_stats(leaf.kind, value, is_upper) if leaf else None
            if leaf is not None and bound is not None:
                bounds[leaf.field_id] = to_bytes(leaf.kind, bound)
    for path, value in _flatten(stats.get("nullCount")).items():
        leaf = leaves.get(path)
        if leaf is not None and isinstance(value, int):
            nulls[leaf.field_id] = value
    # Every top-level or struct column holds one value per row (nulls included).
    counts = {leaf.field_id: record_count for leaf in leaves.values()} if record_count >= 0 else {}
    return _entry(
        status,
        snapshot_id,
        sequence_number,
        {
            "content": DATA,
            "file_path": uri,
            "file_format": "PARQUET",
            "partition": partition,
            "record_count": record_count,
            "file_size_in_bytes": int(add.get("size", 0)),
            "value_counts": _pairs(counts),
            "null_value_counts": _pairs(nulls),
            "lower_bounds": _pairs(lower),
            "upper_bounds": _pairs(upper),
        },
    )


def delete_entry(
    uri: str,
    data_uri: str,
    partition: dict[str, Any],
    deleted: list[int],
    size: int,
    snapshot_id: int,
    sequence_number: int,
) -> dict[str, Any]:
    """A position-delete file applying to one data file: its file_path bounds name that file, so readers
    apply it to that file only."""
    path_bytes = data_uri.encode()
    return _entry(
        1,
        snapshot_id,
        sequence_number,
        {
            "content": POSITION_DELETES,
            "file_path": uri,
            "file_format": "PARQUET",
            "partition": partition,
            "record_count": len(deleted),
            "file_size_in_bytes": size,
            "value_counts": _pairs({DELETE_FILE_PATH_ID: len(deleted), DELETE_POS_ID: len(deleted)}),
            "null_value_counts": _pairs({DELETE_FILE_PATH_ID: 0, DELETE_POS_ID: 0}),
            "lower_bounds": _pairs(
                {DELETE_FILE_PATH_ID: path_bytes, DELETE_POS_ID: to_bytes("long", min(deleted, default=0))}
            ),
            "upper_bounds": _pairs(
                {DELETE_FILE_PATH_ID: path_bytes, DELETE_POS_ID: to_bytes("long", max(deleted, default=0))}
            ),
        },
    )


def _entry(status: int, snapshot_id: int, sequence_number: int, data_file: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": status,
        "snapshot_id": snapshot_id,
        "sequence_number": sequence_number,
        "file_sequence_number": sequence_number,
        "data_file": {
            "column_sizes": None,
            "nan_value_counts": None,
            "key_metadata": None,
            "split_offsets": None,
            "equality_ids": None,
            "sort_order_id": None,
            **data_file,
        },
    }


def delete_file_name(data_uri: str, dv_id: str) -> str:
    return "deletes/" + hashlib.sha256(f"{data_uri}\n{dv_id}".encode()).hexdigest()[:32] + ".parquet"


def spec_for(
    converted: Converted, partition_columns: list[str], spec_id: int, assigned: dict[int, int]
) -> Spec:
    """The identity spec over the partition columns. A partition field keeps its id in every spec of the table
    (`assigned`: source column id -> partition field id); a new one takes the next id from 1000 on."""
    kinds = {leaf.field_id: leaf.kind for leaf in converted.leaves.values()}
    next_id = max(assigned.values(), default=999) + 1
    fields = []
    for column in partition_columns:
        source_id, _ = converted.columns[column]
        if source_id not in assigned:
            assigned[source_id], next_id = next_id, next_id + 1
        fields.append(PartitionField(column, source_id, assigned[source_id], kinds[source_id]))
    return Spec(spec_id, tuple(fields))
