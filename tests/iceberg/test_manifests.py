"""Manifests and manifest lists as PyIceberg's own reader reads them (fields matched by id, as every Iceberg
reader does)."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.manifest import ManifestContent, read_manifest_list

from lakegate.iceberg.files import data_entry
from lakegate.iceberg.manifests import (
    ADDED,
    Manifest,
    PartitionField,
    Spec,
    _entry_schema,
    avro_name,
    write_manifest_list,
)
from lakegate.iceberg.schema import Leaf
from lakegate.iceberg.values import to_bytes

SCHEMA = {
    "type": "struct",
    "schema-id": 0,
    "fields": [
        {"id": 1, "name": "id", "required": False, "type": "long"},
        {"id": 2, "name": "day", "required": False, "type": "date"},
        {"id": 3, "name": "price", "required": False, "type": "decimal(10, 2)"},
        {"id": 4, "name": "the region", "required": False, "type": "string"},
    ],
}
SPEC = Spec(
    0,
    (
        PartitionField("day", 2, 1000, "date"),
        PartitionField("price", 3, 1001, "decimal(10, 2)"),
        PartitionField("the region", 4, 1002, "string"),  # not an Avro name: escaped in the file
    ),
)


def test_pyiceberg_reads_entries_and_list(tmp_path: Path) -> None:
    stats = '{"numRecords": 7, "minValues": {"id": -3}, "maxValues": {"id": 90}, "nullCount": {"id": 2}}'
    add = {"path": "f.parquet", "size": 1234, "stats": stats}
    partition = {"day": 20_000, "price": Decimal("9.99"), "the_x20region": None}
    entry = data_entry(add, "file:///t/f.parquet", partition, {("id",): Leaf(1, "long")}, ADDED, 5, 5)
    manifest = Manifest((tmp_path / "m.avro").as_uri(), 0, SPEC, 5, 5, [entry])
    (tmp_path / "m.avro").write_bytes(manifest.write(SCHEMA))
    manifest.record = manifest.list_record()
    (tmp_path / "list.avro").write_bytes(write_manifest_list([manifest], 5, 4, 5))

    files = PyArrowFileIO()
    [listed] = list(read_manifest_list(files.new_input((tmp_path / "list.avro").as_uri())))
    assert listed.content == ManifestContent.DATA and listed.added_files_count == 1
    assert listed.added_rows_count == 7 and listed.sequence_number == 5
    assert listed.partitions is not None
    day, price, region = listed.partitions
    assert day.lower_bound == day.upper_bound == to_bytes("date", 20_000)
    assert price.lower_bound == to_bytes("decimal(10, 2)", Decimal("9.99"))
    assert region.contains_null and region.lower_bound is None

    [read] = listed.fetch_manifest_entry(files)
    data_file = read.data_file
    assert read.snapshot_id == 5 and read.sequence_number == 5
    assert data_file.file_path == "file:///t/f.parquet" and data_file.record_count == 7
    assert data_file.file_size_in_bytes == 1234
    assert data_file.partition[0] == 20_000 and data_file.partition[1] == Decimal("9.99")
    assert data_file.partition[2] is None
    assert data_file.lower_bounds == {1: to_bytes("long", -3)}
    assert data_file.upper_bounds == {1: to_bytes("long", 90)}
    assert data_file.null_value_counts == {1: 2} and data_file.value_counts == {1: 7}


def test_avro_files_carry_field_ids(tmp_path: Path) -> None:
    manifest = Manifest("file:///m.avro", 0, SPEC, 1, 1, [])
    reader = fastavro.reader(io.BytesIO(manifest.write(SCHEMA)))
    schema = reader.writer_schema
    assert isinstance(schema, dict)
    assert {f["name"]: f["field-id"] for f in schema["fields"]} == {
        "status": 0,
        "snapshot_id": 1,
        "sequence_number": 3,
        "file_sequence_number": 4,
        "data_file": 2,
    }
    assert reader.metadata["format-version"] == "2" and reader.metadata["content"] == "data"


def test_hand_encoded_entries_equal_fastavros() -> None:
    """The entry encoder against fastavro's own writer, for every partition type and every optional field
    filled and empty."""
    kinds = [
        "boolean",
        "int",
        "long",
        "float",
        "double",
        "date",
        "timestamp",
        "timestamptz",
        "string",
        "binary",
    ]
    kinds += ["decimal(9, 2)", "decimal(38, 10)"]
    spec = Spec(0, tuple(PartitionField(f"p {i}", 100 + i, 1000 + i, kind) for i, kind in enumerate(kinds)))
    values = [True, -5, -(2**62), 1.5, -2.25, -3, 2**50, -(2**40), "ünï", b"\x00\xff", Decimal("-1.25")]
    values.append(Decimal("12345678901234567890.0123456789"))
    full: dict[str, Any] = {
        "status": 0,
        "snapshot_id": 2**40,
        "sequence_number": 63,
        "file_sequence_number": 64,
        "data_file": {
            "content": 1,
            "file_path": "s3://b/ä/f.parquet",
            "file_format": "PARQUET",
            "partition": {avro_name(f.name): v for f, v in zip(spec.fields, values, strict=True)},
            "record_count": -1,
            "file_size_in_bytes": 10**12,
            "column_sizes": [{"key": 1, "value": 2**33}],
            "value_counts": [{"key": 1, "value": 0}, {"key": 2147483546, "value": -64}],
            "null_value_counts": [],
            "nan_value_counts": [{"key": 3, "value": 1}],
            "lower_bounds": [{"key": 1, "value": b""}, {"key": 2, "value": b"x" * 300}],
            "upper_bounds": [{"key": 1, "value": b"\x80"}],
            "key_metadata": b"key",
            "split_offsets": [4, 2**40],
            "equality_ids": [],
            "sort_order_id": 0,
        },
    }
    empty: dict[str, Any] = {**full, "snapshot_id": None, "data_file": {**full["data_file"], "partition": {}}}
    for name in (
        "column_sizes",
        "value_counts",
        "lower_bounds",
        "key_metadata",
        "split_offsets",
        "sort_order_id",
    ):
        empty["data_file"][name] = None
    schema = _entry_schema(spec)
    ours = Manifest("file:///m.avro", 0, spec, 1, 1, [full, empty]).write(SCHEMA)
    theirs = io.BytesIO()
    fastavro.writer(theirs, fastavro.parse_schema(schema), [full, empty])
    assert list(fastavro.reader(io.BytesIO(ours))) == list(fastavro.reader(io.BytesIO(theirs.getvalue())))
