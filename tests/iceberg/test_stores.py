"""Generated metadata written to object stores through the server's own store clients (Ceph RGW, Azurite), read
back by PyIceberg (S3), and reused by a new server instead of being written again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyiceberg.table import StaticTable

from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import parse_config
from lakegate.delta.cache import SnapshotCache
from lakegate.iceberg import IcebergTables
from lakegate.keys import KeyRing
from tests.iceberg.test_tables import _source, delta_rows
from tests.services.azurite import AzuriteService
from tests.services.rgw import RgwService
from tests.tables import build_partitioned, build_plain


def _tables(storage: list[dict[str, Any]]) -> IcebergTables:
    config = parse_config({"version": 1, "storage": storage})
    stores = StoreRegistry(config, KeyRing.random())
    return IcebergTables(config, stores, SnapshotCache(stores))


@pytest.mark.rgw
def test_metadata_on_s3(tmp_path: Path, rgw: RgwService) -> None:
    rgw.create_bucket("iceberg-generated")
    root = build_partitioned(tmp_path / "sales")
    storage = [
        {"location": str(tmp_path), "iceberg": {"metadataLocation": "s3://iceberg-generated/lakegate"}},
        {"location": "s3://iceberg-generated/", "aws": {**rgw.aws_settings(), "pathStyle": True}},
    ]
    loaded = _tables(storage).load(_source(root))
    assert loaded.metadata_location.startswith("s3://iceberg-generated/lakegate/")
    s3 = rgw.boto3_client("s3")

    def objects() -> dict[str, str]:
        listed = s3.list_objects_v2(Bucket="iceberg-generated", Prefix="lakegate/")
        return {o["Key"]: o["ETag"] + str(o["LastModified"]) for o in listed.get("Contents", [])}

    written = objects()
    assert any("/manifests/" in key for key in written)
    properties = {
        "s3.endpoint": rgw.endpoint,
        "s3.region": rgw.region,
        "s3.access-key-id": rgw.owner.access_key_id,
        "s3.secret-access-key": rgw.owner.secret_access_key,
        "s3.path-style-access": "true",
    }
    table = StaticTable.from_metadata(loaded.metadata_location, properties=properties)
    rows = [r for batch in table.scan().to_arrow_batch_reader() for r in batch.to_pylist()]
    assert sorted(rows, key=lambda r: r["id"]) == sorted(delta_rows(root), key=lambda r: r["id"])
    again = _tables(storage).load(_source(root))  # a new server
    assert again.metadata == loaded.metadata and objects() == written


@pytest.mark.rgw
def test_cloud_tables_keep_their_metadata_inside_by_default(
    rgw: RgwService, monkeypatch: pytest.MonkeyPatch
) -> None:
    rgw.create_bucket("iceberg-inside")
    for name, value in rgw.env().items():  # deltalake (object_store) reads the standard AWS variables
        monkeypatch.setenv(name, value)
    root = build_plain("s3://iceberg-inside/tables/plain", batches=2)
    storage = [{"location": "s3://iceberg-inside/", "aws": {**rgw.aws_settings(), "pathStyle": True}}]
    loaded = _tables(storage).load(_source(root, None))
    assert loaded.metadata_prefix.uri.startswith("s3://iceberg-inside/tables/plain/_lakegate_iceberg/")
    properties = {
        "s3.endpoint": rgw.endpoint,
        "s3.region": rgw.region,
        "s3.access-key-id": rgw.owner.access_key_id,
        "s3.secret-access-key": rgw.owner.secret_access_key,
        "s3.path-style-access": "true",
    }
    table = StaticTable.from_metadata(loaded.metadata_location, properties=properties)
    rows = [r for batch in table.scan().to_arrow_batch_reader() for r in batch.to_pylist()]
    assert sorted(rows, key=lambda r: r["id"]) == sorted(delta_rows(root), key=lambda r: r["id"])


@pytest.mark.azurite
def test_metadata_on_azure(tmp_path: Path, azurite: AzuriteService) -> None:
    azurite.create_container("generated")
    root = build_partitioned(tmp_path / "sales")
    location = "abfss://generated@devstoreaccount1.dfs.core.windows.net/lakegate"
    azure = {
        "endpoint": azurite.blob_endpoint,
        "accountKey": azurite.account_key,
        "caBundle": str(azurite.cert_path),
    }
    storage = [
        {"location": str(tmp_path), "iceberg": {"metadataLocation": location}},
        {"location": "abfss://generated@devstoreaccount1.dfs.core.windows.net/", "azure": azure},
    ]
    tables = _tables(storage)
    loaded = tables.load(_source(root))
    assert loaded.metadata_location.startswith(location)
    config = parse_config({"version": 1, "storage": storage})
    store = StoreRegistry(config, KeyRing.random()).store_for(loaded.metadata_prefix)
    names = [info.name for info in store.list_dir(loaded.metadata_prefix.child("manifest-lists"))]
    assert names == [f"b0-v{v}.avro" for v in range(4)]
    again = _tables(storage).load(_source(root))
    assert again.metadata == loaded.metadata
    # The manifests the metadata names are where it says: PyIceberg's reading of them is the local tests' part.
    manifest_list = Location.parse(loaded.metadata["snapshots"][-1]["manifest-list"])
    assert store.read(manifest_list)[:4] == b"Obj\x01"
