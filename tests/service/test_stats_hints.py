"""jsonPredicateHints on statistics columns of real deltalake tables: every file holding a matching row is served
(checked against the rows of each data file), files that cannot match are dropped, and what the stats cannot
tell (no stats, all-null columns, truncated string maxima, timestamps in milliseconds, column mapping) keeps
files rather than guessing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from tests.inprocess import AppClient, file_lines, ndjson, served_path, start_app

QUERY = "/shares/s/schemas/d/tables/t/query"
LONG = "x" * 40  # longer than the 32 characters deltalake keeps of a string max


def leaf(op: str, name: str, vt: str, value: str) -> dict[str, Any]:
    return {
        "op": op,
        "children": [
            {"op": "column", "name": name, "valueType": vt},
            {"op": "literal", "value": value, "valueType": vt},
        ],
    }


def batch(first: int, count: int, *, name: str | None = "n", all_null_name: bool = False) -> pa.Table:
    ids = list(range(first, first + count))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "day": pa.array([date(2026, 1, 1 + i % 28) for i in ids], pa.date32()),
            "name": pa.array([None if all_null_name else f"{name}{i:04d}" for i in ids], pa.string()),
            "at": pa.array(
                [datetime(2026, 1, 1, 0, 0, i % 60, 999_999, tzinfo=UTC) for i in ids],
                pa.timestamp("us", "UTC"),
            ),
            "region": ["emea" if (first // count) % 2 else "amer"] * count,
        }
    )


def serve(tmp_path: Path, root: str) -> AppClient:
    tables = [{"name": "t", "location": root}]
    return start_app(
        tmp_path / "app", {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": tables}]}]}
    )


def served(app: AppClient, hint: dict[str, Any], headers: dict[str, str] | None = None) -> set[str]:
    lines = ndjson(app.post(QUERY, json={"jsonPredicateHints": json.dumps(hint)}, headers=headers or {}))
    if headers:  # delta format: the add action's path, the file's signed URL
        return {
            served_path(line["file"]["deltaSingleAction"]["add"]["path"]) for line in lines if "file" in line
        }
    return {served_path(f["url"]) for f in file_lines(lines)}


def matching(root: str, test: Callable[[dict[str, Any]], bool]) -> tuple[set[str], set[str]]:
    """(every file of the table, those holding a row for which `test` is true), from the data files' rows."""
    table = DeltaTable(root)
    everything, hits = set(), set()
    for path in table.file_uris():
        relative = (
            str(Path(path).relative_to(root))
            if path.startswith("/")
            else path.split(root.rstrip("/") + "/")[1]
        )
        everything.add(relative)
        data = pq.read_table(path).to_pylist()
        partition = {part.split("=")[0]: part.split("=")[1] for part in relative.split("/")[:-1]}
        if any(test({**row, **partition}) for row in data):
            hits.add(relative)
    return everything, hits


@pytest.fixture(scope="module")
def stats_table(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("stats") / "t"
    for n in range(8):  # ids 0-9, 10-19, ...: one file per batch
        write_deltalake(str(root), batch(n * 10, 10), partition_by=["region"], mode="append")
    write_deltalake(str(root), batch(80, 10, all_null_name=True), partition_by=["region"], mode="append")
    write_deltalake(str(root), batch(90, 10, name=LONG), partition_by=["region"], mode="append")
    return str(root), root.parent


HINTS: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ("id-range", leaf("lessThan", "id", "long", "25"), lambda r: r["id"] < 25),
    ("id-equal", leaf("equal", "id", "long", "47"), lambda r: r["id"] == 47),
    ("id-int-vs-double", leaf("greaterThanOrEqual", "id", "double", "74.5"), lambda r: r["id"] >= 74.5),
    ("day", leaf("equal", "day", "date", "2026-01-03"), lambda r: r["day"] == date(2026, 1, 3)),
    (
        "name",
        leaf("greaterThan", "name", "string", "n0065"),
        lambda r: r["name"] is not None and r["name"] > "n0065",
    ),
    (
        "name-null",
        {"op": "isNull", "children": [{"op": "column", "name": "name", "valueType": "string"}]},
        lambda r: r["name"] is None,
    ),
    # The max deltalake writes for the long names is cut to 32 characters: a longer value must still match.
    ("name-truncated", leaf("equal", "name", "string", LONG + "0095"), lambda r: r["name"] == LONG + "0095"),
    # Stats keep milliseconds: 00:00:05.999999 is above a max written as 00:00:05.999.
    (
        "timestamp",
        leaf("equal", "at", "timestamp", "2026-01-01T00:00:05.999999Z"),
        lambda r: r["at"] == datetime(2026, 1, 1, 0, 0, 5, 999_999, tzinfo=UTC),
    ),
    (
        "region-and-id",
        {
            "op": "and",
            "children": [leaf("equal", "region", "string", "emea"), leaf("lessThan", "id", "long", "35")],
        },
        lambda r: r["region"] == "emea" and r["id"] < 35,
    ),
    (
        "not-id",
        {"op": "not", "children": [leaf("greaterThanOrEqual", "id", "long", "5")]},
        lambda r: not r["id"] >= 5,
    ),
]


@pytest.mark.parametrize(("hint", "test"), [(h, t) for _, h, t in HINTS], ids=[n for n, _, _ in HINTS])
def test_stats_hints_serve_every_matching_file_and_prune(
    stats_table: tuple[str, Path],
    hint: dict[str, Any],
    test: Callable[[dict[str, Any]], bool],
    tmp_path: Path,
) -> None:
    root, _ = stats_table
    app = serve(tmp_path, root)
    try:
        kept = served(app, hint)
    finally:
        app.close()
    everything, hits = matching(root, test)
    assert hits, "the hint matches some row"
    assert hits <= kept  # never drop a file holding a matching row
    assert kept < everything  # and the stats did prune


def test_files_without_stats_are_kept(tmp_path: Path) -> None:
    """Stats only for the first column (delta.dataSkippingNumIndexedCols = 1): hints on the others prune nothing."""
    root = str(tmp_path / "t")
    config = {"delta.dataSkippingNumIndexedCols": "1"}
    write_deltalake(root, batch(0, 10), configuration=config)
    for n in range(1, 4):
        write_deltalake(root, batch(n * 10, 10), mode="append")
    app = serve(tmp_path, root)
    try:
        assert len(served(app, leaf("equal", "name", "string", "zzz"))) == 4
        assert len(served(app, leaf("lessThan", "id", "long", "5"))) == 1  # id has stats
    finally:
        app.close()


def test_a_type_mismatch_prunes_nothing(stats_table: tuple[str, Path], tmp_path: Path) -> None:
    root, _ = stats_table
    app = serve(tmp_path, root)
    try:
        assert len(served(app, leaf("equal", "id", "string", "zzz"))) == 10
        assert len(served(app, leaf("equal", "name", "date", "2026-01-01"))) == 10
    finally:
        app.close()


def test_column_mapped_partition_and_stats_columns_prune_by_logical_name(tmp_path: Path) -> None:
    root = str(tmp_path / "t")
    mapping = {
        "delta.columnMapping.mode": "name",
        "delta.minReaderVersion": "2",
        "delta.minWriterVersion": "5",
    }
    write_deltalake(root, batch(0, 10), partition_by=["region"], configuration=mapping)
    for n in range(1, 4):
        write_deltalake(root, batch(n * 10, 10), partition_by=["region"], mode="append")
    metadata = DeltaTable(root).metadata()
    assert metadata.configuration["delta.columnMapping.mode"] == "name"
    app = serve(tmp_path, root)
    delta = {"delta-sharing-capabilities": "responseformat=delta;readerfeatures=columnmapping"}
    try:
        everything = served(app, leaf("greaterThan", "id", "long", "-1"), delta)
        emea = served(app, leaf("equal", "region", "string", "emea"), delta)
        low = served(app, leaf("lessThan", "id", "long", "15"), delta)
    finally:
        app.close()
    assert len(everything) == 4
    assert len(emea) == 2  # batches 1 and 3
    assert len(low) == 2  # ids 0-9 and 10-19
    assert emea < everything and low < everything


@pytest.mark.parametrize(("limit", "files"), [(1, 1), (10, 1), (11, 2), (25, 3), (10_000, 10)])
def test_limit_hint_serves_the_first_files_holding_enough_rows(
    stats_table: tuple[str, Path], tmp_path: Path, limit: int, files: int
) -> None:
    root, _ = stats_table
    app = serve(tmp_path, root)
    try:
        every = [served_path(f["url"]) for f in file_lines(ndjson(app.post(QUERY, json={})))]
        limited = [
            served_path(f["url"]) for f in file_lines(ndjson(app.post(QUERY, json={"limitHint": limit})))
        ]
    finally:
        app.close()
    assert limited == every[:files]  # every file holds 10 rows
