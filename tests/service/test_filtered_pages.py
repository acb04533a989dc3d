"""Paging through a query with predicate hints: the pages slice one selection made for the pinned snapshot, so
together they are exactly the unpaged answer (deltalake's files of the matching partitions), each file once,
however the table moves between pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from tests.inprocess import AppClient, file_lines, ndjson, served_path, start_app
from tests.tables import rows

QUERY = "/shares/s/schemas/d/tables/t/query"
HINTS: list[dict[str, Any]] = [
    {"predicateHints": ["region = 'emea'", "day >= '2026-01-02'"]},
    {
        "jsonPredicateHints": '{"op":"and","children":['
        '{"op":"equal","children":[{"op":"column","name":"region","valueType":"string"},'
        '{"op":"literal","value":"emea","valueType":"string"}]},'
        '{"op":"greaterThan","children":[{"op":"column","name":"id","valueType":"long"},'
        '{"op":"literal","value":"20","valueType":"long"}]}]}'
    },
]


@pytest.fixture
def table(tmp_path: Path) -> Iterator[tuple[str, AppClient]]:
    root = str(tmp_path / "t")
    for batch in range(6):  # a file per (region, day) partition and batch
        write_deltalake(
            root, rows([batch * 10 + i for i in range(4)]), partition_by=["region", "day"], mode="append"
        )
    tables = [{"name": "t", "location": root}]
    app = start_app(tmp_path, {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": tables}]}]})
    yield root, app
    app.close()


def expected_paths(root: str, version: int, keep: Any) -> list[str]:
    adds = pa.table(DeltaTable(root, version=version).get_add_actions(flatten=True)).to_pylist()
    return sorted(a["path"] for a in adds if keep(a))


@pytest.mark.parametrize("hints", HINTS, ids=["sql", "json"])
def test_filtered_pages_are_the_filtered_answer_while_the_table_moves(
    table: tuple[str, AppClient], hints: dict[str, Any]
) -> None:
    root, app = table
    version = DeltaTable(root).version()
    whole = sorted(served_path(f["url"]) for f in file_lines(ndjson(app.post(QUERY, json=hints))))
    if "predicateHints" in hints:  # partition pruning is exact here: every file holds one region and day
        assert whole == expected_paths(
            root,
            version,
            lambda a: a["partition.region"] == "emea" and str(a["partition.day"]) >= "2026-01-02",
        )
    else:  # the emea files whose id range reaches past 20
        assert whole == expected_paths(
            root, version, lambda a: a["partition.region"] == "emea" and a["max.id"] > 20
        )
    assert 2 < len(whole) < len(DeltaTable(root, version=version).file_uris())

    seen: list[str] = []
    body: dict[str, Any] = {**hints, "maxFiles": 2}
    while True:
        response = app.post(QUERY, json=body)
        assert response.headers["delta-table-version"] == str(version)
        lines = ndjson(response)
        page = [served_path(f["url"]) for f in file_lines(lines)]
        assert 0 < len(page) <= 2
        seen += page
        # A writer between pages: new matching files, and a delete rewriting some.
        write_deltalake(
            root, rows([100 + len(seen)], region="emea"), partition_by=["region", "day"], mode="append"
        )
        DeltaTable(root).delete(f"id = {len(seen)}")
        token = lines[-1]["endStreamAction"].get("nextPageToken")
        if token is None:
            break
        body = {**hints, "maxFiles": 2, "pageToken": token}
    assert sorted(seen) == whole and len(set(seen)) == len(seen)
