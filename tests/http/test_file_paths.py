"""Signed file URLs of files whose paths need encoding: partition directories with spaces, `%`, `+`, `/`,
quotes and non-ASCII (Hive-style escaped on disk, URI-encoded again in the log)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from tests.inprocess import AppClient, file_lines, ndjson, read_served, start_app

NAMES = ["größe 1", "100%", "a b+c", "x=y", "日本", "slash/in/value", "quote'\"", "?#&"]


@pytest.fixture(scope="module")
def odd_paths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppClient, str]]:
    root = str(tmp_path_factory.mktemp("odd") / "tàble")
    data = pa.table({"id": pa.array(range(len(NAMES)), pa.int64()), "name": NAMES})
    write_deltalake(root, data, partition_by=["name"])
    config = {
        "shares": [{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": root}]}]}]
    }
    client = start_app(tmp_path_factory.mktemp("odd-app"), config)
    yield client, root
    client.close()


def test_every_file_is_served_by_its_url(odd_paths: tuple[AppClient, str]) -> None:
    app, root = odd_paths
    assert len(DeltaTable(root).file_uris()) == len(NAMES)
    files = file_lines(ndjson(app.post("/shares/s/schemas/d/tables/t/query", json={})))
    assert sorted(f["partitionValues"]["name"] for f in files) == sorted(NAMES)
    for f in files:
        data = read_served(app, f["url"])
        # Each partition holds one row: the file served is the one its partition value names.
        assert data.column("id").to_pylist() == [NAMES.index(f["partitionValues"]["name"])]
