"""Snapshot queries (protocol.md §2.6–2.8) in process: what lakegate serves is what deltalake reads."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from tests.fixtures.dv_table import DvTable
from tests.inprocess import (
    AppClient,
    deltalake_adds,
    error_of,
    file_lines,
    ndjson,
    read_served,
    served_path,
    walk_pages,
)
from tests.tables import read_expected

TABLES = "/shares/share1/schemas/default/tables"
DELTA = {"delta-sharing-capabilities": "responseformat=delta"}


def query(app: AppClient, table: str, body: dict[str, Any] | None = None, **headers: str) -> list[dict]:
    return ndjson(app.post(f"{TABLES}/{table}/query", json=body or {}, headers=headers))


@pytest.mark.parametrize(("table", "key"), [("sales", "sales"), ("paged", "paged"), ("odd", "odd name")])
def test_latest_snapshot_is_deltalakes_file_list(
    app: AppClient, app_tables: dict[str, str], table: str, key: str
) -> None:
    lines = query(app, table)
    assert lines[0] == {"protocol": {"minReaderVersion": 1}}
    expected = deltalake_adds(app_tables[key])
    files = file_lines(lines)
    served = {served_path(f["url"]): f for f in files}
    assert len(served) == len(files) and set(served) == set(expected)
    for path, f in served.items():
        assert f["size"] == expected[path]["size"]
        assert f["partitionValues"] == expected[path]["partitionValues"]
        assert orjson.loads(f["stats"])["numRecords"] == expected[path]["numRecords"]
    assert len({f["id"] for f in files}) == len(files)  # ids are per file
    meta = lines[1]["metaData"]
    assert meta["numFiles"] == len(expected) and meta["size"] == sum(e["size"] for e in expected.values())


def test_served_files_hold_deltalakes_rows(app: AppClient, app_tables: dict[str, str]) -> None:
    got = []
    for f in file_lines(query(app, "sales")):
        data = read_served(app, f["url"])
        for column, value in f["partitionValues"].items():  # partition columns live in the path only
            data = data.append_column(column, pa.array([value] * data.num_rows, pa.string()))
        got += data.to_pylist()
    assert sorted(got, key=lambda r: r["id"]) == read_expected(app_tables["sales"])


def test_metadata_matches_the_table(app: AppClient, app_tables: dict[str, str]) -> None:
    table = DeltaTable(app_tables["sales"])
    response = app.get(f"{TABLES}/sales/metadata")
    assert response.headers["delta-table-version"] == str(table.version())
    protocol, metadata = ndjson(response)
    assert protocol == {"protocol": {"minReaderVersion": 1}}
    meta = metadata["metaData"]
    assert meta["id"] == table.metadata().id
    assert meta["format"] == {"provider": "parquet"}
    assert meta["partitionColumns"] == table.metadata().partition_columns
    assert [f["name"] for f in orjson.loads(meta["schemaString"])["fields"]] == [
        f.name for f in table.schema().fields
    ]
    # History is shared and CDF is on: parquet-format clients are told so (protocol.md §4.1).
    assert meta["configuration"] == {"enableChangeDataFeed": "true"}


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_time_travel_by_version(app: AppClient, app_tables: dict[str, str], version: int) -> None:
    response = app.post(f"{TABLES}/sales/query", json={"version": version})
    assert response.headers["delta-table-version"] == str(version)
    lines = ndjson(response)
    assert lines[1]["metaData"]["version"] == version
    served = {served_path(f["url"]) for f in file_lines(lines)}
    assert served == set(deltalake_adds(app_tables["sales"], version))


def test_delta_format_carries_the_log_actions(app: AppClient, app_tables: dict[str, str]) -> None:
    table = DeltaTable(app_tables["sales"])
    lines = query(app, "sales", None, **DELTA)
    protocol = lines[0]["protocol"]["deltaProtocol"]
    assert (protocol["minReaderVersion"], protocol["minWriterVersion"]) == (
        table.protocol().min_reader_version,
        table.protocol().min_writer_version,
    )
    delta_meta = lines[1]["metaData"]["deltaMetadata"]
    assert delta_meta["id"] == table.metadata().id
    assert delta_meta["configuration"] == table.metadata().configuration
    assert delta_meta["format"]["provider"] == "parquet"
    expected = deltalake_adds(app_tables["sales"])
    files = file_lines(lines)
    assert len(files) == len(expected)
    for f in files:
        add = f["deltaSingleAction"]["add"]
        path = served_path(add["path"])  # the log path, replaced by a signed URL
        assert add["size"] == expected[path]["size"]
        assert add["partitionValues"] == expected[path]["partitionValues"]
        assert add["modificationTime"] == expected[path]["modificationTime"]
        assert add["dataChange"] is True
    # File ids are stable per file and per format, and differ between the formats' id schemes.
    again = {
        served_path(f["deltaSingleAction"]["add"]["path"]): f["id"]
        for f in file_lines(query(app, "sales", None, **DELTA))
    }
    assert again == {served_path(f["deltaSingleAction"]["add"]["path"]): f["id"] for f in files}
    parquet_ids = {served_path(f["url"]): f["id"] for f in file_lines(query(app, "sales"))}
    assert set(parquet_ids) == set(again) and all(parquet_ids[p] != again[p] for p in again)


def test_deletion_vectors_need_the_delta_format(app: AppClient, app_dv_table: DvTable) -> None:
    error_of(app.post(f"{TABLES}/dv/query", json={}), 400, "UNSUPPORTED_OPERATION")
    lines = query(
        app,
        "dv",
        None,
        **{"delta-sharing-capabilities": "responseformat=delta;readerfeatures=deletionvectors"},
    )
    adds = [f["deltaSingleAction"]["add"] for f in file_lines(lines)]
    assert adds and all("deletionVector" in add for add in adds)


def test_paging_covers_the_snapshot_once(app: AppClient, app_tables: dict[str, str]) -> None:
    expected = set(deltalake_adds(app_tables["paged"]))
    assert len(expected) == 5
    seen = walk_pages(lambda body: query(app, "paged", body), 2)
    assert sorted(seen) == sorted(expected)


def test_partition_predicates_prune_to_the_partition(app: AppClient, app_tables: dict[str, str]) -> None:
    hint = orjson.dumps(
        {
            "op": "equal",
            "children": [
                {"op": "column", "name": "region", "valueType": "string"},
                {"op": "literal", "value": "emea", "valueType": "string"},
            ],
        }
    ).decode()
    lines = query(app, "sales", {"jsonPredicateHints": hint})
    emea = {
        p for p, a in deltalake_adds(app_tables["sales"]).items() if a["partitionValues"]["region"] == "emea"
    }
    assert emea and {served_path(f["url"]) for f in file_lines(lines)} == emea


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "MALFORMED_REQUEST"),
        (b"[1]", "MALFORMED_REQUEST"),
        (b'{"predicateHints": "region = 1"}', "MALFORMED_REQUEST"),
        (b'{"maxFiles": 0}', "INVALID_PARAMETER_VALUE"),
        (b'{"maxFiles": "x3"}', "INVALID_PARAMETER_VALUE"),
        (b'{"version": -1}', "INVALID_PARAMETER_VALUE"),
        (b'{"version": 1, "timestamp": "2026-01-01T00:00:00Z"}', "INVALID_PARAMETER_VALUE"),
        (b'{"pageToken": "forged.token"}', "INVALID_PARAMETER_VALUE"),
        (b'{"version": 99}', "MALFORMED_REQUEST"),  # protocol.md §2.7: missing version
    ],
)
def test_bad_queries_are_400(app: AppClient, body: bytes, code: str) -> None:
    error_of(app.post(f"{TABLES}/sales/query", content=body), 400, code)


def test_time_travel_needs_shared_history(app: AppClient) -> None:
    message = error_of(app.post(f"{TABLES}/plain/query", json={"version": 0}), 400, "INVALID_PARAMETER_VALUE")
    assert "history sharing is not enabled" in message


def test_table_version(app: AppClient, app_tables: dict[str, str]) -> None:
    latest = str(DeltaTable(app_tables["sales"]).version())
    assert app.get(f"{TABLES}/sales/version").headers["delta-table-version"] == latest
    head = app.request("HEAD", f"{TABLES}/sales")
    assert head.status_code == 200 and head.headers["delta-table-version"] == latest and head.content == b""
    message = error_of(
        app.get(f"{TABLES}/plain/version", params={"startingTimestamp": "2026-01-01T00:00:00Z"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "history sharing is not enabled" in message
