"""Round trips: PyIceberg reads the metadata generated for real Delta tables (StaticTable on local files) and
gets exactly the rows a Delta read gives, version by version."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from pyiceberg.table import StaticTable

from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import ServerConfig, load_config, parse_config
from lakegate.delta.cache import SnapshotCache
from lakegate.exceptions import TableStateError, UnsupportedOperationError
from lakegate.iceberg import IcebergSource, IcebergTables, chain
from lakegate.iceberg.chain import check_protocol
from lakegate.iceberg.store import metadata_root
from lakegate.keys import KeyRing
from tests.fixtures.dv_table import DELETED_POSITIONS, build_dv_table, serialize_bitmap, z85_encode
from tests.tables import build_partitioned, build_plain, rows


def _tables(tmp_path: Path) -> IcebergTables:
    config = parse_config(
        {
            "version": 1,
            "storage": [{"location": str(tmp_path), "iceberg": {"metadataLocation": str(tmp_path / "meta")}}],
        }
    )
    stores = StoreRegistry(config, KeyRing.random())
    return IcebergTables(config, stores, SnapshotCache(stores))


def _source(root: str, oldest: int | None = 0, table_id: str = "share.schema.table") -> IcebergSource:
    return IcebergSource(Location.parse(root), (), table_id, oldest)


def _sorted(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(table, key=lambda r: tuple(str(v) for v in r.values()))


def iceberg_rows(
    metadata_location: str,
    snapshot_id: int | None = None,
    row_filter: str | None = None,
    columns: tuple[str, ...] = ("*",),
) -> list[dict[str, Any]]:
    """Every row PyIceberg reads. Batch by batch: its to_arrow() cannot concatenate the string and string_view
    columns of files deltalake wrote in different operations (nor can pyarrow filter string_view columns: a
    filtered scan selects other columns)."""
    table = StaticTable.from_metadata(metadata_location)
    options: dict[str, Any] = {"row_filter": row_filter} if row_filter is not None else {}
    scan = table.scan(snapshot_id=snapshot_id, selected_fields=columns, **options)
    return _sorted([row for batch in scan.to_arrow_batch_reader() for row in batch.to_pylist()])


def delta_rows(root: str, version: int | None = None) -> list[dict[str, Any]]:
    """deltalake's read through its query engine (its to_pyarrow_table reads column-mapped tables as nulls)."""
    table = DeltaTable(root, version=version) if version is not None else DeltaTable(root)
    result = QueryBuilder().register("t", table).execute("select * from t").read_all()
    return _sorted(pa.table(result).to_pylist())


def _files(directory: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_partitioned_table_every_version(tmp_path: Path) -> None:
    root = build_partitioned(tmp_path / "sales")  # v0 create, v1 append, v2 delete, v3 update; CDF on
    loaded = _tables(tmp_path).load(_source(root))
    assert loaded.version == 3
    metadata = loaded.metadata
    assert metadata["format-version"] == 2 and metadata["current-snapshot-id"] == 4
    assert [s["snapshot-id"] for s in metadata["snapshots"]] == [1, 2, 3, 4]
    assert [f["name"] for f in metadata["partition-specs"][0]["fields"]] == ["region"]
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)
    for version in range(4):
        assert iceberg_rows(loaded.metadata_location, snapshot_id=version + 1) == delta_rows(root, version)
    assert loaded.metadata_prefix.contains(Location.parse(loaded.metadata_location))


def test_engines_prune_by_partition_and_stats(tmp_path: Path) -> None:
    root = build_partitioned(tmp_path / "sales")
    table = StaticTable.from_metadata(_tables(tmp_path).load(_source(root, None)).metadata_location)
    everything = len(list(table.scan().plan_files()))
    emea = table.scan(row_filter="region = 'emea'")
    assert 0 < len(list(emea.plan_files())) < everything
    high = table.scan(row_filter="id > 6")
    assert 0 < len(list(high.plan_files())) < everything
    # Pruning only drops files: the filtered rows are still exactly Delta's.
    expected = _sorted([{"id": r["id"], "amount": r["amount"]} for r in delta_rows(root) if r["id"] > 6])
    loaded = _tables(tmp_path).load(_source(root, None))
    assert iceberg_rows(loaded.metadata_location, None, "id > 6", columns=("id", "amount")) == expected


def test_multi_file_table_latest_only(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "plain", batches=5)
    loaded = _tables(tmp_path).load(_source(root, oldest=None))
    assert [s["snapshot-id"] for s in loaded.metadata["snapshots"]] == [5]  # history not shared
    table = StaticTable.from_metadata(loaded.metadata_location)
    assert len(list(table.scan().plan_files())) == 5
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)


def test_column_mapped_table(tmp_path: Path) -> None:
    root = str(tmp_path / "mapped")
    data = pa.table(
        {"id": pa.array([1, 2, 3], pa.int64()), "Full Name": ["a", "b", None], "part": ["u", "v", "u"]}
    )
    write_deltalake(root, data, partition_by=["part"], configuration={"delta.columnMapping.mode": "name"})
    write_deltalake(root, data.set_column(0, "id", pa.array([4, 5, 6], pa.int64())), mode="append")
    loaded = _tables(tmp_path).load(_source(root))
    fields = loaded.metadata["schemas"][-1]["fields"]
    delta_fields = json.loads(DeltaTable(root).schema().to_json())["fields"]
    assert {f["name"]: f["id"] for f in fields} == {
        f["name"]: f["metadata"]["delta.columnMapping.id"] for f in delta_fields
    }
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)
    assert iceberg_rows(loaded.metadata_location, snapshot_id=1) == delta_rows(root, 0)
    assert iceberg_rows(loaded.metadata_location, row_filter="part = 'v'") == [
        r for r in delta_rows(root) if r["part"] == "v"
    ]


@pytest.mark.parametrize(("storage", "partitioned"), [("u", False), ("i", False), ("u_prefix", True)])
def test_deletion_vectors_become_position_deletes(tmp_path: Path, storage: str, partitioned: bool) -> None:
    table = build_dv_table(tmp_path / "dv", storage=storage, partitioned=partitioned)  # type: ignore[arg-type]
    loaded = _tables(tmp_path).load(_source(str(table.root)))
    ids = sorted(r["id"] for r in iceberg_rows(loaded.metadata_location))
    assert ids == table.expected_ids
    # Version 0 had no deletion vectors: every row.
    assert len(iceberg_rows(loaded.metadata_location, snapshot_id=1)) == 20
    iceberg = StaticTable.from_metadata(loaded.metadata_location)
    snapshot = iceberg.current_snapshot()
    assert snapshot is not None
    assert any(m.content == 1 for m in snapshot.manifests(iceberg.io))  # position deletes


def test_cold_load_reuses_what_storage_holds(tmp_path: Path) -> None:
    root = build_partitioned(tmp_path / "sales")
    first = _tables(tmp_path).load(_source(root))
    written = _files(tmp_path / "meta")
    again = _tables(tmp_path).load(_source(root))  # a new server: nothing in memory
    assert again.metadata_location == first.metadata_location and again.metadata == first.metadata
    assert _files(tmp_path / "meta") == written  # nothing rebuilt, nothing rewritten


def test_a_new_version_adds_a_manifest(tmp_path: Path) -> None:
    root = build_partitioned(tmp_path / "sales")
    first = _tables(tmp_path).load(_source(root))
    before = _files(tmp_path / "meta")
    write_deltalake(root, rows([8, 9]), mode="append")  # v4
    second = _tables(tmp_path).load(_source(root))  # a cold server continues the saved chain
    assert second.version == 4 and len(second.metadata["snapshots"]) == 5
    after = _files(tmp_path / "meta")
    assert all(after[path] == mtime for path, mtime in before.items())  # nothing rewritten
    new = sorted(Path(p).name for p in set(after) - set(before))
    assert new == sorted(
        [
            Path(second.metadata_location).name,
            "b0-v4.avro",  # the manifest list
            "b0-v4-a0.avro",  # one manifest for the appended files
            "b00000000000000000000-v00000000000000000004.json",  # the chain state
        ]
    )
    table = StaticTable.from_metadata(second.metadata_location)
    old, current = table.snapshot_by_id(4), table.current_snapshot()
    assert old is not None and current is not None
    assert {m.manifest_path for m in old.manifests(table.io)} < {
        m.manifest_path for m in current.manifests(table.io)
    }
    assert iceberg_rows(second.metadata_location) == delta_rows(root)
    assert iceberg_rows(second.metadata_location, snapshot_id=3) == delta_rows(root, 2)
    assert first.metadata_location != second.metadata_location


def test_an_older_version_is_a_view_of_the_chain(tmp_path: Path) -> None:
    root = build_partitioned(tmp_path / "sales")
    tables = _tables(tmp_path)
    tables.load(_source(root))
    before = _files(tmp_path / "meta")
    older = tables.load(_source(root), version=1)
    assert older.metadata["current-snapshot-id"] == 2 and len(older.metadata["snapshots"]) == 2
    assert iceberg_rows(older.metadata_location) == delta_rows(root, 1)
    assert set(_files(tmp_path / "meta")) - set(before) == {older.metadata_location.removeprefix("file://")}


def test_metadata_locations(tmp_path: Path) -> None:
    config = parse_config({"version": 1})
    stores = StoreRegistry(config, KeyRing.random())
    # A cloud table without a configured location: inside the table, where its credentials reach.
    assert (
        metadata_root(config, stores, Location.parse("s3://bucket/table")).uri
        == "s3://bucket/table/_lakegate_iceberg"
    )
    configured = parse_config(
        {
            "version": 1,
            "storage": [{"location": "s3://bucket", "iceberg": {"metadataLocation": "s3://meta/prefix"}}],
        }
    )
    found = metadata_root(
        configured, StoreRegistry(configured, KeyRing.random()), Location.parse("s3://bucket/table")
    )
    assert found.uri == "s3://meta/prefix"


def test_local_tables_default_beside_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("version: 1\n")
    config: ServerConfig = load_config(path)
    found = metadata_root(
        config, StoreRegistry(config, KeyRing.random()), Location.parse(str(tmp_path / "t"))
    )
    assert found.local_path == os.path.join(tmp_path, "server-iceberg")


@pytest.mark.parametrize("feature", ["typeWidening", "collations", "someFutureFeature"])
def test_unrepresentable_features_are_refused(feature: str) -> None:
    with pytest.raises(UnsupportedOperationError, match=feature):
        check_protocol({"minReaderVersion": 3, "readerFeatures": ["deletionVectors", feature]})


def test_variant_feature_without_a_variant_column(tmp_path: Path) -> None:
    """deltalake declares variantType on a table made with deletion vectors on, variant column or not: such a
    table is served; a variant column itself is refused, naming the type."""
    root = tmp_path / "dv_on"
    write_deltalake(root, pa.table({"k": [1, 2, 3]}), configuration={"delta.enableDeletionVectors": "true"})
    DeltaTable(root).delete("k = 2")
    assert "variantType" in (DeltaTable(root).protocol().reader_features or [])
    loaded = _tables(tmp_path).load(_source(str(root)))
    assert iceberg_rows(loaded.metadata_location) == delta_rows(str(root)) == [{"k": 1}, {"k": 3}]
    metadata = json.loads((root / "_delta_log" / f"{0:020}.json").read_text().splitlines()[2])["metaData"]
    schema = json.loads(metadata["schemaString"])
    schema["fields"].append({"name": "v", "type": "variant", "nullable": True, "metadata": {}})
    added = {"metaData": {**metadata, "schemaString": json.dumps(schema)}}
    (root / "_delta_log" / f"{2:020}.json").write_text(json.dumps(added) + "\n")
    with pytest.raises(UnsupportedOperationError, match="variant"):
        _tables(tmp_path).load(_source(str(root)))


def test_a_missing_deletion_vector_is_the_providers_problem(tmp_path: Path) -> None:
    table = build_dv_table(tmp_path / "dv", storage="u")
    for path in table.dv_paths:
        path.unlink()
    with pytest.raises(TableStateError, match="deletion vector file") as caught:
        _tables(tmp_path).load(_source(str(table.root)))
    assert str(tmp_path) not in caught.value.message  # the path goes to the log only


def test_a_deletion_vector_that_disagrees_with_its_log_entry_is_refused(tmp_path: Path) -> None:
    table = build_dv_table(tmp_path / "dv", storage="i")
    commit = table.root / "_delta_log" / f"{1:020d}.json"
    commit.write_text(commit.read_text().replace('"cardinality": 3', '"cardinality": 4'))
    with pytest.raises(TableStateError, match="does not hold the rows"):
        _tables(tmp_path).load(_source(str(table.root)))


def test_cleaned_up_versions_start_at_the_first_checkpoint(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "plain", batches=3)  # v0..v2
    DeltaTable(root).create_checkpoint()  # at v2
    write_deltalake(root, rows([100]), mode="append")  # v3
    for version in (0, 1):  # what log cleanup removes
        (Path(root) / "_delta_log" / f"{version:020d}.json").unlink()
    loaded = _tables(tmp_path).load(_source(root, oldest=0))
    assert [s["snapshot-id"] for s in loaded.metadata["snapshots"]] == [3, 4]
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)
    assert iceberg_rows(loaded.metadata_location, snapshot_id=3) == delta_rows(root, 2)


def test_files_outside_the_table_are_refused(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "plain")
    outside = tmp_path / "elsewhere.parquet"
    outside.write_bytes(b"not shared")
    add = {
        "path": outside.as_uri(),
        "partitionValues": {},
        "size": 10,
        "modificationTime": 0,
        "dataChange": True,
    }
    (Path(root) / "_delta_log" / f"{1:020d}.json").write_text(json.dumps({"add": add}) + "\n")
    with pytest.raises(UnsupportedOperationError, match="outside its shared locations"):
        _tables(tmp_path).load(_source(root, oldest=None))


def test_every_type(tmp_path: Path) -> None:
    root = str(tmp_path / "types")
    data = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "small": pa.array([1, -2, None], pa.int16()),
            "flag": [True, False, None],
            "price": pa.array([Decimal("1.25"), None, Decimal("-3.50")], pa.decimal128(10, 2)),
            "at": pa.array(
                [datetime(2026, 1, 1, 12, tzinfo=UTC), None, datetime(2026, 2, 1, tzinfo=UTC)],
                pa.timestamp("us", "UTC"),
            ),
            "local": pa.array([datetime(2026, 1, 1, 12), datetime(2026, 1, 2), None], pa.timestamp("us")),
            "day": [date(2026, 1, 1), None, date(2026, 3, 1)],
            "blob": [b"\x00\x01", None, b"z"],
            "point": [{"x": 1.0, "y": "a"}, None, {"x": None, "y": "c"}],
            "tags": [["a", "b"], [], None],
            "attrs": pa.array([[("k", 1)], None, [("a", 2), ("b", None)]], pa.map_(pa.string(), pa.int64())),
            "part": pa.array([date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 1)]),
        }
    )
    write_deltalake(root, data, partition_by=["part"])
    loaded = _tables(tmp_path).load(_source(root, None))
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)
    table = StaticTable.from_metadata(loaded.metadata_location)
    day = table.scan(row_filter="part = '2026-01-02'")
    assert len(list(day.plan_files())) == 1
    assert len(list(table.scan(row_filter="price > 100").plan_files())) == 0  # bounds from the stats


def _last_adds(root: Path, version: int) -> list[dict[str, Any]]:
    lines = (root / "_delta_log" / f"{version:020d}.json").read_text().splitlines()
    return [json.loads(line)["add"] for line in lines if '"add"' in line]


def test_a_deletion_vector_replaced_or_removed(tmp_path: Path) -> None:
    table = build_dv_table(tmp_path / "dv", storage="i")
    first, second = _last_adds(table.root, 1)
    # v2: a second delete grows the first file's vector (inline, positions 0-5); v3: the second file goes.
    grown = frozenset(range(6))
    bitmap = serialize_bitmap(grown)
    vector = {
        "storageType": "i",
        "pathOrInlineDv": z85_encode(bitmap + b"\0" * (-len(bitmap) % 4)),
        "sizeInBytes": len(bitmap),
        "cardinality": len(grown),
    }
    commits = [
        [{"remove": {**first, "dataChange": True}}, {"add": {**first, "deletionVector": vector}}],
        [{"remove": {**second, "dataChange": True}}],
    ]
    for version, actions in enumerate(commits, start=2):
        lines = "".join(json.dumps(a) + "\n" for a in actions)
        (table.root / "_delta_log" / f"{version:020d}.json").write_text(lines)
    loaded = _tables(tmp_path).load(_source(str(table.root)))

    def ids(snapshot_id: int) -> list[int]:
        return sorted(r["id"] for r in iceberg_rows(loaded.metadata_location, snapshot_id=snapshot_id))

    assert ids(2) == table.expected_ids
    # First file (ids 0-9): positions 0-5 deleted now; second file (ids 10-19): still its own vector.
    assert ids(3) == [*range(6, 10), *(10 + p for p in range(10) if p not in DELETED_POSITIONS[1])]
    assert ids(4) == list(range(6, 10))
    iceberg = StaticTable.from_metadata(loaded.metadata_location)
    tasks = list(iceberg.scan().plan_files())
    assert len(tasks) == 1 and len(tasks[0].delete_files) == 1  # the replaced vector's file is gone


def test_schema_changes_keep_field_ids(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "plain")
    wider = rows([50]).append_column("extra", pa.array(["x"]))
    write_deltalake(root, wider, mode="append", schema_mode="merge")
    loaded = _tables(tmp_path).load(_source(root))
    schemas = {s["schema-id"]: {f["name"]: f["id"] for f in s["fields"]} for s in loaded.metadata["schemas"]}
    first, second = (schemas[s["schema-id"]] for s in loaded.metadata["snapshots"])
    assert all(second[name] == field_id for name, field_id in first.items()) and "extra" in second
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)
    assert iceberg_rows(loaded.metadata_location, snapshot_id=1) == delta_rows(root, 0)


def test_partition_values_needing_escapes_and_nulls(tmp_path: Path) -> None:
    root = str(tmp_path / "escaped")
    data = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "region": ["a b", "x/y%z=1", None, "ünï"],
            "at": pa.array(
                [
                    datetime(2026, 1, 1, 12, 30, tzinfo=UTC),
                    None,
                    datetime(2026, 1, 1, tzinfo=UTC),
                    datetime(2025, 5, 5, tzinfo=UTC),
                ],
                pa.timestamp("us", "UTC"),
            ),
            "n": pa.array([1, 2, None, 4], pa.int32()),
        }
    )
    write_deltalake(root, data, partition_by=["region", "at", "n"])  # directories like region=x%2Fy%25z%3D1
    loaded = _tables(tmp_path).load(_source(root, None))
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)
    table = StaticTable.from_metadata(loaded.metadata_location)
    assert len(list(table.scan(row_filter="region = 'x/y%z=1'").plan_files())) == 1
    assert len(list(table.scan(row_filter="region is null").plan_files())) == 1


def test_small_manifests_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain, "MERGE_AT", 3)  # as with 50 commits, in fewer
    root = build_plain(tmp_path / "plain", batches=6)  # v0..v5: one file each
    DeltaTable(root).delete("id = 21")  # v6
    loaded = _tables(tmp_path).load(_source(root))
    table = StaticTable.from_metadata(loaded.metadata_location)
    current = table.current_snapshot()
    assert current is not None
    assert len(current.manifests(table.io)) < 3
    for version in range(7):
        assert iceberg_rows(loaded.metadata_location, snapshot_id=version + 1) == delta_rows(root, version)


def test_partitioning_changed_by_an_overwrite(tmp_path: Path) -> None:
    root = build_partitioned(tmp_path / "sales")  # by region, v0..v3
    write_deltalake(
        root, rows([30, 31, 32]), mode="overwrite", partition_by=["day"], schema_mode="overwrite"
    )  # v4
    loaded = _tables(tmp_path).load(_source(root))
    specs = loaded.metadata["partition-specs"]
    assert [[f["name"] for f in s["fields"]] for s in specs] == [["region"], ["day"]]
    field_ids = [f["field-id"] for s in specs for f in s["fields"]]
    assert len(set(field_ids)) == len(field_ids)  # a partition field id is never reused for another column
    assert loaded.metadata["default-spec-id"] == 1
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)
    assert iceberg_rows(loaded.metadata_location, snapshot_id=4) == delta_rows(root, 3)
    table = StaticTable.from_metadata(loaded.metadata_location)
    assert len(list(table.scan(row_filter="day = '2026-01-03'").plan_files())) == 1


def test_manifests_of_a_large_version_follow_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain, "MANIFEST_ENTRIES", 2)  # as with 5,000 files per manifest, in fewer
    root = str(tmp_path / "regions")
    for batch in range(4):  # each append writes one file per region: the log lists them a, b, a, b, ...
        write_deltalake(root, rows([batch * 10, batch * 10 + 1]), partition_by=["region"], mode="append")
    loaded = _tables(tmp_path).load(_source(root, None))  # the latest version only: all 8 files at once
    table = StaticTable.from_metadata(loaded.metadata_location)
    current = table.current_snapshot()
    assert current is not None
    manifests = current.manifests(table.io)
    assert len(manifests) == 4
    for manifest in manifests:  # one region each, so a filter on the region skips the others
        assert manifest.partitions is not None
        [region] = manifest.partitions
        assert region.lower_bound == region.upper_bound
    assert iceberg_rows(loaded.metadata_location) == delta_rows(root)


def test_a_failed_version_leaves_no_half_made_state(tmp_path: Path) -> None:
    table = build_dv_table(tmp_path / "dv", storage="i")  # v0: files A, B; v1: a vector on each
    tables = _tables(tmp_path)
    tables.load(_source(str(table.root)))  # the chain at v1, kept in memory
    first, second = _last_adds(table.root, 1)
    missing = {"storageType": "u", "pathOrInlineDv": z85_encode(bytes(16)), "offset": 1, "sizeInBytes": 30}
    broken = [
        {"remove": {**second, "dataChange": True}},
        {"remove": {**first, "dataChange": True}},
        {"add": {**first, "deletionVector": {**missing, "cardinality": 1}}},
    ]
    commit = table.root / "_delta_log" / f"{2:020d}.json"
    commit.write_text("".join(json.dumps(a) + "\n" for a in broken))
    with pytest.raises(TableStateError):
        tables.load(_source(str(table.root)))
    commit.write_text(json.dumps(broken[0]) + "\n")  # the provider repairs v2: it only removes B
    loaded = tables.load(_source(str(table.root)))
    ids = sorted(r["id"] for r in iceberg_rows(loaded.metadata_location))
    assert ids == [i for i in table.expected_ids if i < 10] == [r["id"] for r in delta_rows(str(table.root))]
