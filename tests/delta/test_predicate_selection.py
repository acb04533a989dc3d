"""FileFilter.select: one evaluation per distinct partition for partition-only hints, stats parsed only when a
predicate reaches a stats column; the files kept are exactly those a per-file evaluation keeps."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from lakegate.delta.predicates import FileFilter, json_predicate_filter, sql_predicate_filter, truth

PARTS = ["region", "day", "n", "at"]
TYPES = {"region": "string", "day": "date", "n": "integer", "at": "timestamp", "id": "long", "name": "string"}
REGIONS = ["eu", "us", "ap", "", None]  # "" and None: a null partition value, as writers spell it
DAYS = ["2024-01-01", "2024-01-02", "2024-02-29", None]
NUMBERS = ["-1", "0", "7", "10", None]
TIMES = ["2024-01-01T00:00:00.000000Z", "2024-01-01T10:00:00.000000Z", None]


def make_files(rng: random.Random, count: int) -> list[dict[str, Any]]:
    files = []
    for i in range(count):
        values = {"region": rng.choice(REGIONS), "day": rng.choice(DAYS), "n": rng.choice(NUMBERS)}
        values["at"] = rng.choice(TIMES)
        lo = rng.randint(-50, 50)
        nulls = rng.choice([0, 0, 3, 10])
        stats: dict[str, Any] = {
            "numRecords": 10,
            "minValues": {"id": lo, "name": rng.choice(["a", "m"])},
            "maxValues": {"id": lo + rng.randint(0, 20), "name": rng.choice(["m", "z"])},
            "nullCount": {"id": nulls, "name": 0},
        }
        if nulls == 10:
            del stats["minValues"]["id"], stats["maxValues"]["id"]  # all null: writers leave min/max out
        raw = json.dumps(stats) if i % 17 else rng.choice([None, "not json", "[1]"])
        files.append({"partitionValues": values, "stats": raw})
    return files


def column(name: str, vt: str) -> dict[str, Any]:
    return {"op": "column", "name": name, "valueType": vt}


def literal(value: str, vt: str) -> dict[str, Any]:
    return {"op": "literal", "value": value, "valueType": vt}


LEAVES = [
    ("region", "string", ["eu", "us", "zz", ""]),
    ("day", "date", ["2024-01-01", "2024-01-02", "2024-03-01"]),
    ("n", "int", ["-1", "0", "7", "11"]),
    ("at", "timestamp", ["2024-01-01T00:00:00Z", "2024-01-01T05:00:00Z", "2024-01-01T10:00:00+00:00"]),
    ("id", "long", ["-30", "0", "25", "90"]),
    ("name", "string", ["a", "n", "zz"]),
]


def random_tree(rng: random.Random, depth: int, partition_only: bool) -> dict[str, Any]:
    leaves = [leaf for leaf in LEAVES if leaf[0] in PARTS] if partition_only else LEAVES
    if depth == 0 or rng.random() < 0.3:
        name, vt, values = rng.choice(leaves)
        if rng.random() < 0.15:
            return {"op": "isNull", "children": [column(name, vt)]}
        op = rng.choice(["equal", "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"])
        return {"op": op, "children": [column(name, vt), literal(rng.choice(values), vt)]}
    op = rng.choice(["and", "or", "not"])
    count = 1 if op == "not" else rng.randint(2, 3)
    return {"op": op, "children": [random_tree(rng, depth - 1, partition_only) for _ in range(count)]}


def per_file(keep: FileFilter, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reference: every file evaluated on its own, with its stats parsed up front."""
    kept = []
    for f in files:
        try:
            stats = orjson.loads(f["stats"]) if f["stats"] else None
        except orjson.JSONDecodeError:
            stats = None
        if keep(f["partitionValues"], stats if isinstance(stats, dict) else None):
            kept.append(f)
    return kept


def select(keep: FileFilter, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return keep.select(files, lambda f: f["partitionValues"], lambda f: f["stats"])


@pytest.mark.parametrize("partition_only", [True, False], ids=["partitions", "partitions-and-stats"])
def test_select_keeps_what_per_file_evaluation_keeps(partition_only: bool) -> None:
    rng = random.Random(12)
    files = make_files(rng, 200)
    pruned = 0
    for _ in range(100):
        hint = json.dumps(random_tree(rng, 3, partition_only))
        keep = json_predicate_filter(hint, partition_columns=PARTS, column_types=TYPES)
        assert keep is not None, hint
        if partition_only:
            assert not keep.uses_stats
        kept = select(keep, files)
        assert kept == per_file(keep, files), hint
        # not(not(x)) is x, evaluated without stopping early anywhere below: the short cuts change nothing.
        exact = json.dumps({"op": "not", "children": [{"op": "not", "children": [json.loads(hint)]}]})
        exact_keep = json_predicate_filter(exact, partition_columns=PARTS, column_types=TYPES)
        assert exact_keep is not None and kept == per_file(exact_keep, files), hint
        pruned += len(files) - len(kept)
    assert pruned > 0  # the hints did drop files, so the comparison means something


def test_sql_hints_select_like_per_file_evaluation() -> None:
    rng = random.Random(5)
    files = make_files(rng, 200)
    hints_tried = [
        ["region = 'eu'"],
        ["region <> 'eu'", "n >= 0"],
        ["region IS NULL"],
        ["day > DATE '2024-01-01'", "n < '10'"],
        ["at = TIMESTAMP '2024-01-01T10:00:00Z'"],
        ["n IS NOT NULL", "day = CAST('2024-02-29' AS DATE)"],
    ]
    for hints in hints_tried:
        keep = sql_predicate_filter(hints, partition_columns=PARTS, column_types=TYPES)
        assert keep is not None and not keep.uses_stats, hints
        kept = select(keep, files)
        assert kept == per_file(keep, files), hints
        assert len(kept) < len(files), hints


class CountingJson:
    """orjson as the predicates module sees it, counting stats parses."""

    JSONDecodeError = orjson.JSONDecodeError

    def __init__(self) -> None:
        self.parsed = 0

    def loads(self, raw: str) -> Any:
        self.parsed += 1
        return orjson.loads(raw)


def test_stats_are_parsed_only_when_a_predicate_reaches_them(monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_files(random.Random(3), 300)
    counting = CountingJson()
    monkeypatch.setattr(truth, "orjson", counting)
    region = {"op": "equal", "children": [column("region", "string"), literal("eu", "string")]}
    small_id = {"op": "lessThan", "children": [column("id", "long"), literal("0", "long")]}

    keep = json_predicate_filter(json.dumps(region), partition_columns=PARTS, column_types=TYPES)
    assert keep is not None
    select(keep, files)
    assert counting.parsed == 0  # partition-only: no stats read at all

    both = json.dumps({"op": "and", "children": [region, small_id]})
    keep = json_predicate_filter(both, partition_columns=PARTS, column_types=TYPES)
    assert keep is not None and keep.uses_stats
    asked: list[dict[str, Any]] = []

    def stats_of(f: dict[str, Any]) -> str | None:
        asked.append(f)
        return f["stats"]

    kept = keep.select(files, lambda f: f["partitionValues"], stats_of)
    in_region = [f for f in files if f["partitionValues"]["region"] == "eu"]
    # Only the files of the region are looked at, and their stats parsed: the other partitions are dropped whole.
    assert asked == in_region
    assert 0 < counting.parsed == len([f for f in in_region if f["stats"]]) < len(files)
    assert kept == per_file(keep, files)


def test_partition_only_filter_evaluates_once_per_distinct_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_files(random.Random(9), 500)
    keep = sql_predicate_filter(["region = 'us'"], partition_columns=PARTS, column_types=TYPES)
    assert keep is not None
    calls = 0
    evaluate = keep.evaluate

    def counted(pv: Any, st: Any) -> int:
        nonlocal calls
        calls += 1
        return evaluate(pv, st)

    keep.evaluate = counted
    kept = select(keep, files)
    distinct = {tuple(f["partitionValues"].items()) for f in files}
    assert calls == len(distinct) < len(files)
    assert kept == [f for f in files if f["partitionValues"]["region"] == "us"]
