"""A Delta schema as an Iceberg schema: types converted one by one, and field ids.

Field ids come from Delta column mapping (`delta.columnMapping.id`, and `delta.columnMapping.nested.ids` for
array elements and map keys/values) when the table has it. Otherwise they are assigned here, by column path,
and kept across versions (`FieldIds`): a column keeps its id when later versions change the schema. Data files
carry no Iceberg field ids, so the table publishes a name mapping (`schema.name-mapping.default`) from the names
in the Parquet files (the physical names under column mapping) to the ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakegate.exceptions import UnsupportedOperationError
from lakegate.iceberg.values import decimal_parts

_PRIMITIVES = {
    "string": "string",
    "long": "long",
    "integer": "int",
    "short": "int",
    "byte": "int",
    "float": "float",
    "double": "double",
    "boolean": "boolean",
    "binary": "binary",
    "date": "date",
    "timestamp": "timestamptz",  # Delta's timestamp is an instant (UTC-adjusted)
    "timestamp_ntz": "timestamp",
}
_ID = "delta.columnMapping.id"
_PHYSICAL = "delta.columnMapping.physicalName"
_NESTED_IDS = "delta.columnMapping.nested.ids"
# Ids this module assigns to array elements and map keys/values of a column-mapped table without nested ids:
# far above any id Delta hands out, so a column added later never takes one of them.
_NESTED_BASE = 1 << 30


def primitive(delta_type: str) -> str:
    if delta_type in _PRIMITIVES:
        return _PRIMITIVES[delta_type]
    parts = decimal_parts(delta_type)
    if parts is not None:
        return f"decimal({parts[0]}, {parts[1]})"
    raise UnsupportedOperationError(
        f"columns of Delta type '{delta_type}' cannot be served to Iceberg clients"
    )


@dataclass
class FieldIds:
    """Ids assigned by column path (names joined by '.', `element`/`key`/`value` for nested types)."""

    assigned: dict[str, int] = field(default_factory=dict)
    next_id: int = 1

    def id_for(self, path: str) -> int:
        found = self.assigned.get(path)
        if found is None:
            found = self.assigned[path] = self.next_id
            self.next_id += 1
        return found

    @classmethod
    def from_name_mapping(cls, mapping: list[dict[str, Any]], column_mapped: bool) -> FieldIds:
        """The ids a published name mapping holds (its first name is the path element)."""
        ids = cls(next_id=_NESTED_BASE if column_mapped else 1)

        def walk(fields: list[dict[str, Any]], prefix: str) -> None:
            for item in fields:
                path = f"{prefix}{item['names'][0]}"
                ids.assigned[path] = item["field-id"]
                ids.next_id = max(ids.next_id, item["field-id"] + 1)
                walk(item.get("fields") or [], path + ".")

        walk(mapping, "")
        return ids


@dataclass(frozen=True)
class Leaf:
    """A primitive column, as Delta's stats and partition values name it."""

    field_id: int
    kind: str  # Iceberg primitive type


@dataclass
class Converted:
    schema: dict[str, Any]  # the Iceberg schema JSON, without schema-id
    # Delta's key path in stats (physical names under column mapping) -> the leaf.
    leaves: dict[tuple[str, ...], Leaf]
    # Top-level column: logical name -> (field id, physical name as partitionValues keys it).
    columns: dict[str, tuple[int, str]]
    name_mapping: list[dict[str, Any]]
    highest_id: int


def column_mapped(configuration: dict[str, str]) -> bool:
    return configuration.get("delta.columnMapping.mode", "none").lower() in ("id", "name")


def convert(delta_schema: dict[str, Any], mapped: bool, ids: FieldIds) -> Converted:
    converter = _Converter(mapped, ids)
    fields, mapping = converter.struct(delta_schema.get("fields") or [], (), "", {})
    columns = {
        f["name"]: (item["field-id"], item["names"][0])
        for f, item in zip(delta_schema.get("fields") or [], mapping, strict=True)
    }
    return Converted(
        {"type": "struct", "fields": fields},
        converter.leaves,
        columns,
        mapping,
        converter.highest,
    )


class _Converter:
    def __init__(self, mapped: bool, ids: FieldIds) -> None:
        self.mapped = mapped
        self.ids = ids
        self.leaves: dict[tuple[str, ...], Leaf] = {}
        self.highest = 0
        self.repeated = 0

    def _seen(self, field_id: int) -> int:
        self.highest = max(self.highest, field_id)
        return field_id

    def struct(
        self, fields: list[dict[str, Any]], stats_path: tuple[str, ...], id_path: str, nested: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        converted: list[dict[str, Any]] = []
        mapping: list[dict[str, Any]] = []
        for item in fields:
            metadata = item.get("metadata") or {}
            name = item["name"]
            physical = metadata.get(_PHYSICAL, name) if self.mapped else name
            path = f"{id_path}{physical}"
            if self.mapped:
                if _ID not in metadata:
                    raise UnsupportedOperationError(
                        f"column '{name}' has no column mapping id: the table cannot be served to Iceberg clients"
                    )
                field_id = int(metadata[_ID])
            else:
                field_id = self.ids.id_for(path)
            # Nested ids are kept on the nearest struct field above the array or map.
            inner = metadata.get(_NESTED_IDS) or nested
            kind, children = self.type(item["type"], (*stats_path, physical), path, inner, field_id)
            entry: dict[str, Any] = {
                "id": self._seen(field_id),
                "name": name,
                "required": not item.get("nullable", True),
                "type": kind,
            }
            if isinstance(metadata.get("comment"), str):
                entry["doc"] = metadata["comment"]
            converted.append(entry)
            mapping.append(
                {
                    "field-id": field_id,
                    "names": [physical, name],
                    **({"fields": children} if children else {}),
                }
            )
        # The logical name is an alias for files written before column mapping, unless another field of the
        # struct uses it as its physical name.
        physical_names = {item["names"][0] for item in mapping}
        for item in mapping:
            physical, logical = item["names"]
            item["names"] = (
                [physical] if logical == physical or logical in physical_names else [physical, logical]
            )
        return converted, mapping

    def _nested_id(self, path: str, nested: dict[str, Any]) -> int:
        if self.mapped and path in nested:
            return self._seen(int(nested[path]))
        return self._seen(self.ids.id_for(path))

    def type(
        self, delta_type: Any, stats_path: tuple[str, ...], path: str, nested: dict[str, Any], field_id: int
    ) -> tuple[Any, list[dict[str, Any]]]:
        if isinstance(delta_type, str):
            kind = primitive(delta_type)
            if not self.repeated:  # Delta keeps no stats inside arrays and maps
                self.leaves[stats_path] = Leaf(field_id, kind)
            return kind, []
        shape = delta_type.get("type")
        if shape == "struct":
            fields, mapping = self.struct(delta_type.get("fields") or [], stats_path, path + ".", nested)
            return {"type": "struct", "fields": fields}, mapping
        self.repeated += 1
        try:
            if shape == "array":
                element_id = self._nested_id(f"{path}.element", nested)
                element, children = self.type(
                    delta_type["elementType"], (), f"{path}.element", nested, element_id
                )
                return {
                    "type": "list",
                    "element-id": element_id,
                    "element": element,
                    "element-required": not delta_type.get("containsNull", True),
                }, [_mapped(element_id, "element", children)]
            if shape == "map":
                key_id = self._nested_id(f"{path}.key", nested)
                value_id = self._nested_id(f"{path}.value", nested)
                key, key_children = self.type(delta_type["keyType"], (), f"{path}.key", nested, key_id)
                value, value_children = self.type(
                    delta_type["valueType"], (), f"{path}.value", nested, value_id
                )
                return {
                    "type": "map",
                    "key-id": key_id,
                    "key": key,
                    "value-id": value_id,
                    "value": value,
                    "value-required": not delta_type.get("valueContainsNull", True),
                }, [_mapped(key_id, "key", key_children), _mapped(value_id, "value", value_children)]
        finally:
            self.repeated -= 1
        raise UnsupportedOperationError(
            f"columns of Delta type '{shape}' cannot be served to Iceberg clients"
        )


def _mapped(field_id: int, name: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {"field-id": field_id, "names": [name], **({"fields": children} if children else {})}


def merge_mappings(older: list[dict[str, Any]], newer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One name mapping for files written under either schema: fields matched by id, names united."""
    by_id = {item["field-id"]: item for item in older}
    merged = []
    for item in newer:
        old = by_id.pop(item["field-id"], None)
        if old is None:
            merged.append(item)
            continue
        names = [*item["names"], *(n for n in old["names"] if n not in item["names"])]
        children = merge_mappings(old.get("fields") or [], item.get("fields") or [])
        merged.append(
            {"field-id": item["field-id"], "names": names, **({"fields": children} if children else {})}
        )
    return merged + list(by_id.values())
