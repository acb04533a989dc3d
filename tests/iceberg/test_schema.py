"""Delta schemas as Iceberg schemas: types, field ids (column mapping or assigned and kept), name mapping."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pyiceberg.schema import Schema
from pyiceberg.table.name_mapping import parse_mapping_from_json
from pyiceberg.types import (
    DecimalType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
)

from lakegate.exceptions import UnsupportedOperationError
from lakegate.iceberg.schema import FieldIds, convert, merge_mappings


def _field(name: str, kind: Any, nullable: bool = True, metadata: dict | None = None) -> dict:
    return {"name": name, "type": kind, "nullable": nullable, "metadata": metadata or {}}


NESTED = {
    "type": "struct",
    "fields": [
        _field("id", "long", nullable=False),
        _field("small", "short"),
        _field("price", "decimal(12,3)"),
        _field("at", "timestamp"),
        _field("local", "timestamp_ntz"),
        _field("address", {"type": "struct", "fields": [_field("city", "string"), _field("zip", "integer")]}),
        _field("tags", {"type": "array", "elementType": "string", "containsNull": False}),
        _field("attrs", {"type": "map", "keyType": "string", "valueType": "long", "valueContainsNull": True}),
    ],
}


def _pyiceberg(schema: dict) -> Schema:
    return Schema.model_validate({**schema, "schema-id": 0})


def test_types_and_ids() -> None:
    converted = convert(NESTED, mapped=False, ids=FieldIds())
    schema = _pyiceberg(converted.schema)
    fields = {f.name: f for f in schema.fields}
    assert fields["id"].field_type == LongType() and fields["id"].required
    assert fields["small"].field_type == IntegerType()
    assert fields["price"].field_type == DecimalType(12, 3)
    assert fields["at"].field_type == TimestamptzType()
    assert fields["local"].field_type == TimestampType()
    address = fields["address"].field_type
    assert isinstance(address, StructType) and [f.name for f in address.fields] == ["city", "zip"]
    tags = fields["tags"].field_type
    assert isinstance(tags, ListType) and tags.element_type == StringType() and tags.element_required
    attrs = fields["attrs"].field_type
    assert isinstance(attrs, MapType) and attrs.value_type == LongType() and not attrs.value_required
    ids = list(schema._lazy_id_to_field)  # every field, element, key and value: all ids distinct
    assert len(ids) == len(set(ids)) == 13
    assert converted.highest_id == max(ids)
    # Stats leaves: every primitive outside arrays and maps, by its Delta path.
    assert set(converted.leaves) == {
        ("id",),
        ("small",),
        ("price",),
        ("at",),
        ("local",),
        ("address", "city"),
        ("address", "zip"),
    }
    assert converted.leaves[("address", "zip")].field_id == schema.find_field("address.zip").field_id


def test_name_mapping_resolves_every_field() -> None:
    converted = convert(NESTED, mapped=False, ids=FieldIds())
    mapping = parse_mapping_from_json(orjson.dumps(converted.name_mapping).decode())
    schema = _pyiceberg(converted.schema)
    by_name = {tuple(f.names): f.field_id for f in mapping}
    assert by_name[("id",)] == schema.find_field("id").field_id
    # pyiceberg finds nested ids through "element", "key", "value".
    tags = next(f for f in mapping if f.names == ["tags"])
    assert tags.fields[0].names == ["element"]
    tags_type = schema.find_field("tags").field_type
    assert isinstance(tags_type, ListType) and tags.fields[0].field_id == tags_type.element_id


def test_assigned_ids_survive_schema_changes() -> None:
    ids = FieldIds()
    first = convert(NESTED, mapped=False, ids=ids)
    grown = {**NESTED, "fields": [_field("added", "string"), *NESTED["fields"]]}
    second = convert(grown, mapped=False, ids=ids)
    old = {f["name"]: f["id"] for f in first.schema["fields"]}
    new = {f["name"]: f["id"] for f in second.schema["fields"]}
    assert all(new[name] == old[name] for name in old)
    assert new["added"] > first.highest_id
    # The ids read back from the published name mapping are the same assignment.
    restored = FieldIds.from_name_mapping(second.name_mapping, column_mapped=False)
    assert convert(grown, mapped=False, ids=restored).schema == second.schema


def test_column_mapping_ids_and_physical_names() -> None:
    def mapped(name: str, kind: Any, field_id: int, **extra: Any) -> dict:
        return _field(
            name,
            kind,
            metadata={
                "delta.columnMapping.id": field_id,
                "delta.columnMapping.physicalName": f"col-{field_id}",
                **extra,
            },
        )

    delta = {
        "type": "struct",
        "fields": [
            mapped("id", "long", 5),
            mapped("Renamed", {"type": "struct", "fields": [mapped("inner", "integer", 9)]}, 7),
            mapped(
                "xs",
                {"type": "array", "elementType": "long", "containsNull": True},
                11,
                **{"delta.columnMapping.nested.ids": {"col-11.element": 12}},
            ),
        ],
    }
    converted = convert(delta, mapped=True, ids=FieldIds(next_id=1 << 30))
    schema = _pyiceberg(converted.schema)
    assert [f.field_id for f in schema.fields] == [5, 7, 11]
    assert schema.find_field("Renamed.inner").field_id == 9
    xs = schema.find_field("xs").field_type
    assert isinstance(xs, ListType) and xs.element_id == 12
    assert converted.leaves[("col-7", "col-9")].field_id == 9  # stats are keyed by physical names
    assert converted.columns["Renamed"] == (7, "col-7")
    names = {
        f.field_id: f.names for f in parse_mapping_from_json(orjson.dumps(converted.name_mapping).decode())
    }
    assert names[7] == ["col-7", "Renamed"]  # physical first; the logical name for files from before mapping


def test_column_mapped_field_without_id_is_refused() -> None:
    delta = {"type": "struct", "fields": [_field("id", "long")]}
    with pytest.raises(UnsupportedOperationError, match="no column mapping id"):
        convert(delta, mapped=True, ids=FieldIds())


@pytest.mark.parametrize("kind", ["variant", "interval", "void"])
def test_unknown_types_are_refused(kind: str) -> None:
    with pytest.raises(UnsupportedOperationError, match=kind):
        convert({"type": "struct", "fields": [_field("v", kind)]}, mapped=False, ids=FieldIds())


def test_merged_mapping_keeps_old_names() -> None:
    old = [{"field-id": 1, "names": ["a"]}, {"field-id": 2, "names": ["gone"]}]
    new = [{"field-id": 1, "names": ["a_renamed"]}]
    assert merge_mappings(old, new) == [
        {"field-id": 1, "names": ["a_renamed", "a"]},
        {"field-id": 2, "names": ["gone"]},
    ]
