"""select_columns: the column-wise evaluation keeps exactly the files a file-by-file evaluation keeps
(random predicates over partition values and stats, odd stats included), without parsing any stats file by
file, and stays conservative where pyarrow cannot read a file's stats."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from lakegate.delta.predicates import FileFilter, columns, json_predicate_filter, truth
from tests.delta.test_predicate_selection import (
    PARTS,
    TYPES,
    CountingJson,
    column,
    literal,
    make_files,
    random_tree,
    select,
)

MAPS = pa.map_(pa.string(), pa.string())


def select_columns(keep: FileFilter, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    values = pa.array([f["partitionValues"] for f in files], MAPS)
    stats = pa.array([f["stats"] for f in files], pa.string())
    rows = columns.select_columns(keep, values, lambda rows: stats.take(pa.array(rows)))
    return [files[i] for i in rows.tolist()]


@pytest.mark.parametrize("seed", [1, 2])
def test_column_wise_selection_is_the_per_file_one(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    files = make_files(rng, 300)
    counting = CountingJson()
    monkeypatch.setattr(truth, "orjson", counting)
    pruned = 0
    for _ in range(150):
        hint = json.dumps(random_tree(rng, 3, partition_only=False))
        keep = json_predicate_filter(hint, partition_columns=PARTS, column_types=TYPES)
        assert keep is not None, hint
        parsed = counting.parsed
        kept = select_columns(keep, files)
        assert counting.parsed == parsed, hint  # column-wise throughout: nothing parsed file by file
        assert kept == select(keep, files), hint
        pruned += len(files) - len(kept)
    assert pruned > 0


def test_no_stats_are_parsed_file_by_file(monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_files(random.Random(4), 300)
    counting = CountingJson()
    monkeypatch.setattr(truth, "orjson", counting)
    hint = {
        "op": "and",
        "children": [
            {"op": "lessThan", "children": [column("id", "long"), literal("0", "long")]},
            {"op": "greaterThan", "children": [column("name", "string"), literal("b", "string")]},
            {"op": "not", "children": [{"op": "isNull", "children": [column("region", "string")]}]},
        ],
    }
    keep = json_predicate_filter(json.dumps(hint), partition_columns=PARTS, column_types=TYPES)
    assert keep is not None and keep.uses_stats
    kept = select_columns(keep, files)
    assert counting.parsed == 0
    assert 0 < len(kept) < len(files)
    assert kept == select(keep, files)


def test_stats_pyarrow_cannot_type_keep_their_files() -> None:
    """A float where an integer column's stats belong, a string where a number belongs: those files are kept
    (unknown), the others are still pruned."""
    good = {"numRecords": 5, "minValues": {"id": 100}, "maxValues": {"id": 200}, "nullCount": {"id": 0}}
    odd = [
        {"numRecords": 5, "minValues": {"id": 100.5}, "maxValues": {"id": 200}, "nullCount": {"id": 0}},
        {"numRecords": 5, "minValues": {"id": "100"}, "maxValues": {"id": "200"}, "nullCount": {"id": 0}},
        {"numRecords": 5, "minValues": {"id": 100}, "maxValues": {"id": 200}, "nullCount": {"id": 0.5}},
    ]
    stats = [json.dumps(good)] * 5000 + [json.dumps(s) for s in odd] + [json.dumps(good)] * 5000
    hint = {"op": "lessThan", "children": [column("id", "long"), literal("50", "long")]}
    keep = json_predicate_filter(json.dumps(hint), partition_columns=[], column_types={"id": "long"})
    assert keep is not None
    values = pa.array([{}] * len(stats), MAPS)
    rows = columns.select_columns(
        keep, values, lambda rows: pa.array(stats, pa.string()).take(pa.array(rows))
    )
    kept = set(rows.tolist())
    assert {5000, 5001, 5002} <= kept  # the odd ones
    assert len(kept) < len(stats) // 2  # most good files pruned: only the odd rows' block is unknown


def test_dates_that_do_not_exist_are_unknown() -> None:
    """strptime rolls 2024-02-30 over to March 1st: such a bound must read as unknown, not as a date."""
    stats = [
        {
            "numRecords": 1,
            "minValues": {"d": "2024-02-30"},
            "maxValues": {"d": "2024-02-30"},
            "nullCount": {"d": 0},
        },
        {
            "numRecords": 1,
            "minValues": {"d": "2024-03-01"},
            "maxValues": {"d": "2024-03-01"},
            "nullCount": {"d": 0},
        },
    ]
    hint = {"op": "equal", "children": [column("d", "date"), literal("2024-03-02", "date")]}
    keep = json_predicate_filter(json.dumps(hint), partition_columns=[], column_types={"d": "date"})
    assert keep is not None
    raw = pa.array([json.dumps(s) for s in stats], pa.string())
    rows = columns.select_columns(keep, pa.array([{}, {}], MAPS), lambda rows: raw.take(pa.array(rows)))
    assert rows.tolist() == [0]
    assert isinstance(rows, np.ndarray)


@pytest.mark.parametrize(
    "bounds",
    [
        ["2024-01-01T10:00:00.000Z", "2024-01-01T12:00:00.000+01:00", "2024-01-02T00:00:00.000Z"],  # zoned
        [
            "2024-01-01T10:00:00.000",
            "2024-01-01 11:00:00",
            "2024-01-02T00:00:00.000",
        ],  # naive (timestamp_ntz)
        ["2024-01-01T10:00:00.000Z", "2024-01-01 11:00:00", "not a time"],  # mixed: one by one
    ],
    ids=["zoned", "naive", "mixed"],
)
def test_timestamp_stats_select_like_the_per_file_evaluation(bounds: list[str]) -> None:
    files = [
        {
            "partitionValues": {},
            "stats": json.dumps({"numRecords": 3, "minValues": {"t": b}, "maxValues": {"t": b}}),
        }
        for b in bounds
    ]
    for op in ("equal", "lessThan", "greaterThan"):
        for value in ("2024-01-01T10:00:00.000500Z", "2024-01-01T11:00:00Z", "2024-01-01T23:00:00Z"):
            hint = {"op": op, "children": [column("t", "timestamp"), literal(value, "timestamp")]}
            keep = json_predicate_filter(
                json.dumps(hint), partition_columns=[], column_types={"t": "timestamp"}
            )
            assert keep is not None
            assert select_columns(keep, files) == select(keep, files), (op, value)


def test_columns_arrow_cannot_take_fall_back_to_the_per_file_evaluation() -> None:
    """Partition values that are not a map column (here a struct column): the same files, evaluated one by one."""
    files = [
        f | {"partitionValues": {k: v for k, v in f["partitionValues"].items() if k in ("region", "day")}}
        for f in make_files(random.Random(6), 100)
    ]
    hint = {
        "op": "and",
        "children": [
            {"op": "equal", "children": [column("region", "string"), literal("eu", "string")]},
            {"op": "lessThan", "children": [column("id", "long"), literal("0", "long")]},
        ],
    }
    keep = json_predicate_filter(json.dumps(hint), partition_columns=PARTS, column_types=TYPES)
    assert keep is not None
    values = pa.array(
        [f["partitionValues"] for f in files], pa.struct([("region", pa.string()), ("day", pa.string())])
    )
    stats = pa.array([f["stats"] for f in files], pa.string())
    rows = columns.select_columns(keep, values, lambda rows: stats.take(pa.array(rows)))
    assert [files[i] for i in rows.tolist()] == select(keep, files)
    assert 0 < len(rows) < len(files)
