"""Tests for lakegate.delta.predicates: JSON and SQL predicate hints used for file pruning."""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any

import pytest

from lakegate.delta.predicates import (
    FileFilter,
    PredicateLimits,
    combine,
    json_predicate_filter,
    sql_predicate_filter,
)
from lakegate.delta.predicates.sql_hints import _sql_tokens
from lakegate.delta.predicates.values import is_float
from lakegate.exceptions import InvalidParameterError

BIG_TEXT = PredicateLimits(max_chars=1 << 30)  # only the count limit applies


def col(name: str, vt: str) -> dict[str, Any]:
    return {"op": "column", "name": name, "valueType": vt}


def lit(value: str, vt: str) -> dict[str, Any]:
    return {"op": "literal", "value": value, "valueType": vt}


def op(name: str, *children: dict[str, Any]) -> dict[str, Any]:
    return {"op": name, "children": list(children)}


def jf(tree: Any, parts: list[str], types: dict[str, str]) -> FileFilter | None:
    return json_predicate_filter(
        json.dumps(tree) if not isinstance(tree, str) else tree, partition_columns=parts, column_types=types
    )


def stats(col_name: str, lo: Any, hi: Any, nulls: int | None = 0, rows: int = 10) -> dict[str, Any]:
    s: dict[str, Any] = {"numRecords": rows, "minValues": {}, "maxValues": {}, "nullCount": {}}
    if lo is not None:
        s["minValues"][col_name] = lo
    if hi is not None:
        s["maxValues"][col_name] = hi
    if nulls is not None:
        s["nullCount"][col_name] = nulls
    return s


# ---------------------------------------------------------------- reference oracle: PartitionFilterUtilsSuite

C2_FILES = [({"c2": "0"}, None), ({"c2": "1"}, None)]


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("c2 = 0", [0]),
        ("c2 > 0", [1]),
        ("c2 <> 0", [1]),
        ("c2 is null", []),
        ("c2 is not null", [0, 1]),
        ("c2 = 0 + 1", [0, 1]),  # unsupported: skipped
    ],
)
def test_sql_reference_oracle(hint: str, expected: list[int]) -> None:
    f = sql_predicate_filter([hint], partition_columns=["c2"], column_types={"c1": "string", "c2": "integer"})
    kept = [i for i, (pv, st) in enumerate(C2_FILES) if f is None or f(pv, st)]
    assert kept == expected


# ---------------------------------------------------------------- reference oracle: jsonPredicateTest

BIRTHDAY_FILES = [
    ({"birthday": "2020-01-01"}, stats("age", 1, 1)),
    ({"birthday": "2020-02-02"}, stats("age", 2, 2)),
]
BDAY_TYPES = {"name": "string", "age": "integer", "birthday": "date"}
NOT_NULL_BDAY = op("not", op("isNull", col("birthday", "date")))
BDAY_RANGE = [
    op("lessThan", col("birthday", "date"), lit("2020-02-03", "date")),
    op("greaterThanOrEqual", col("birthday", "date"), lit("2020-01-01", "date")),
]


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        (op("and", NOT_NULL_BDAY, op("equal", col("birthday", "date"), lit("2020-01-01", "date"))), [0]),
        (
            op("and", NOT_NULL_BDAY, op("greaterThan", col("birthday", "date"), lit("2020-01-01", "date"))),
            [1],
        ),
        (op("and", *BDAY_RANGE), [0, 1]),
        (op("and", NOT_NULL_BDAY, op("equal", col("age", "int"), lit("2", "int"))), [1]),
        (op("and", NOT_NULL_BDAY, op("lessThan", col("age", "int"), lit("3", "int"))), [0, 1]),
        (op("and", *BDAY_RANGE, op("lessThan", col("age", "int"), lit("2", "int"))), [0]),
        ("", [0, 1]),
    ],
)
def test_json_reference_oracle(tree: Any, expected: list[int]) -> None:
    f = jf(tree, ["birthday"], BDAY_TYPES)
    assert [i for i, (pv, st) in enumerate(BIRTHDAY_FILES) if f is None or f(pv, st)] == expected


# ---------------------------------------------------------------- JSON: comparisons on every type

CMP_CASES = [
    # (column type, valueType, stats min, stats max, literal, op, keep?)
    ("integer", "int", 10, 20, "5", "lessThan", False),
    ("integer", "int", 10, 20, "10", "lessThan", False),
    ("integer", "int", 10, 20, "11", "lessThan", True),
    ("integer", "int", 10, 20, "10", "lessThanOrEqual", True),
    ("integer", "int", 10, 20, "9", "lessThanOrEqual", False),
    ("integer", "int", 10, 20, "20", "greaterThan", False),
    ("integer", "int", 10, 20, "19", "greaterThan", True),
    ("integer", "int", 10, 20, "20", "greaterThanOrEqual", True),
    ("integer", "int", 10, 20, "21", "greaterThanOrEqual", False),
    ("integer", "int", 10, 20, "21", "equal", False),
    ("integer", "int", 10, 20, "15", "equal", True),
    ("long", "long", -(2**62), 2**62, "9223372036854775807", "greaterThan", False),
    ("short", "int", 1, 2, "3", "equal", False),
    ("byte", "int", 1, 2, "2", "equal", True),
    ("double", "double", 1.5, 2.5, "2.5", "greaterThan", False),  # doubles are exact in stats
    ("double", "double", 1.5, 2.5, "2.4", "greaterThan", True),
    ("double", "double", 1.5, 2.5, "1.0", "lessThan", False),
    ("float", "float", 0.1, 0.2, "0.3", "greaterThan", False),
    ("float", "float", 0.1, 0.2, "0.2", "greaterThan", True),  # float32 rounding: keep at the boundary
    ("float", "float", 0.1, 0.2, "0.1", "lessThan", True),
    ("decimal(10,2)", "double", 1.25, 9.75, "10", "greaterThanOrEqual", False),
    ("decimal(10,2)", "double", 1.25, 9.75, "9.75", "greaterThan", True),
    ("string", "string", "apple", "banana", "cherry", "equal", False),
    ("string", "string", "apple", "banana", "banana split", "equal", True),  # max may be a truncated prefix
    ("string", "string", "apple", "banana", "banana", "greaterThan", True),
    ("string", "string", "apple", "banana", "bananas", "greaterThanOrEqual", True),
    ("string", "string", "apple", "banana", "aardvark", "lessThan", False),
    ("string", "string", "apple", "banana", "apple", "lessThan", False),
    ("string", "string", "apple", "banana", "apples", "lessThan", True),
    ("boolean", "bool", False, False, "true", "equal", False),
    ("boolean", "bool", False, True, "true", "equal", True),
    ("boolean", "bool", True, True, "false", "lessThanOrEqual", False),
    ("date", "date", "2021-01-01", "2021-01-31", "2021-02-01", "greaterThanOrEqual", False),
    ("date", "date", "2021-01-01", "2021-01-31", "2021-1-31", "greaterThanOrEqual", True),
    ("date", "date", "2021-01-01", "2021-01-31", "2020-12-31", "lessThanOrEqual", False),
    (
        "timestamp",
        "timestamp",
        "2021-04-28T23:33:48.000Z",
        "2021-04-28T23:33:48.719Z",
        "2021-04-29T00:00:00Z",
        "greaterThanOrEqual",
        False,
    ),
    # the max is truncated to ms: a row at .719500 may exist, so "> .719" must keep the file
    (
        "timestamp",
        "timestamp",
        "2021-04-28T23:33:48.000Z",
        "2021-04-28T23:33:48.719Z",
        "2021-04-28T23:33:48.719Z",
        "greaterThan",
        True,
    ),
    (
        "timestamp",
        "timestamp",
        "2021-04-28T23:33:48.000Z",
        "2021-04-28T23:33:48.719Z",
        "2021-04-28T23:33:48.721Z",
        "greaterThan",
        False,
    ),
    # offsets: 16:33:48-07:00 is 23:33:48Z
    (
        "timestamp",
        "timestamp",
        "2021-04-28T16:00:00.000-07:00",
        "2021-04-28T16:33:48.719-07:00",
        "2021-04-29T01:40:00+02:00",
        "greaterThanOrEqual",
        False,
    ),
    (
        "timestamp",
        "timestamp",
        "2021-04-28T16:00:00.000-07:00",
        "2021-04-28T16:33:48.719-07:00",
        "2021-04-29T01:30:00+02:00",
        "greaterThanOrEqual",
        True,
    ),
    (
        "timestamp_ntz",
        "timestamp",
        "2021-01-01T00:00:00.000",
        "2021-01-01T10:00:00.000",
        "2021-01-01T11:00:00Z",
        "greaterThan",
        False,
    ),
]


@pytest.mark.parametrize(("coltype", "vt", "lo", "hi", "value", "cmp", "keep"), CMP_CASES)
def test_json_stats_comparisons(
    coltype: str, vt: str, lo: Any, hi: Any, value: str, cmp: str, keep: bool
) -> None:
    f = jf(op(cmp, col("x", vt), lit(value, vt)), [], {"x": coltype})
    assert f is not None
    assert f({}, stats("x", lo, hi)) is keep


@pytest.mark.parametrize(
    ("cmp", "flipped"),
    [
        ("lessThan", "greaterThan"),
        ("lessThanOrEqual", "greaterThanOrEqual"),
        ("equal", "equal"),
        ("greaterThan", "lessThan"),
        ("greaterThanOrEqual", "lessThanOrEqual"),
    ],
)
@pytest.mark.parametrize("value", ["0", "10", "15", "20", "30"])
def test_json_literal_on_left_flips(cmp: str, flipped: str, value: str) -> None:
    left = jf(op(cmp, lit(value, "int"), col("x", "int")), [], {"x": "integer"})
    right = jf(op(flipped, col("x", "int"), lit(value, "int")), [], {"x": "integer"})
    assert left and right
    for lo, hi in [(10, 20), (15, 15), (0, 9), (21, 40)]:
        assert left({}, stats("x", lo, hi)) == right({}, stats("x", lo, hi))


def test_json_literal_on_left_example() -> None:
    f = jf(op("lessThan", lit("25", "int"), col("x", "int")), [], {"x": "integer"})  # 25 < x
    assert f and not f({}, stats("x", 1, 25)) and f({}, stats("x", 1, 26))


def test_truncated_string_max_with_tie_breaker() -> None:
    # Delta truncates long strings to a prefix and may append U+FFFF; real values can still start with the prefix
    f = jf(op("greaterThanOrEqual", col("s", "string"), lit("abc\U0001f600", "string")), [], {"s": "string"})
    assert f and f({}, stats("s", "a", "abc\uffff"))
    g = jf(op("greaterThan", col("s", "string"), lit("abd", "string")), [], {"s": "string"})
    assert g and not g({}, stats("s", "a", "abc\uffff"))


# ---------------------------------------------------------------- partitions, missing stats, nulls


@pytest.mark.parametrize(
    ("coltype", "vt", "pv", "value", "cmp", "keep"),
    [
        ("integer", "int", "5", "5", "equal", True),
        ("integer", "int", "5", "6", "equal", False),
        ("long", "long", "-3", "-2", "lessThan", True),
        ("string", "string", "b", "a", "greaterThan", True),
        ("string", "string", "b", "b", "greaterThan", False),  # partition strings are exact
        ("boolean", "bool", "true", "true", "equal", True),
        ("boolean", "bool", "false", "true", "equal", False),
        ("date", "date", "2021-04-28", "2021-04-28", "greaterThanOrEqual", True),
        ("date", "date", "2021-04-28", "2021-04-29", "greaterThanOrEqual", False),
        ("timestamp", "timestamp", "2021-04-28 10:00:00", "2021-04-28T10:00:00Z", "equal", True),
        ("timestamp", "timestamp", "2021-04-28 10:00:00", "2021-04-28T12:00:00+02:00", "equal", True),
        # Wall-clock partition values (no zone: the writer's session time zone) are never pruned on ...
        ("timestamp", "timestamp", "2021-04-28 10:00:00.5", "2021-04-28T10:00:00.5Z", "lessThan", True),
        (
            "timestamp",
            "timestamp",
            "2021-04-28 10:00:00",
            "2021-04-28T10:00:00.000001Z",
            "greaterThanOrEqual",
            True,
        ),
        # ... values written in UTC ISO-8601 form are.
        ("timestamp", "timestamp", "2021-04-28T10:00:00.5Z", "2021-04-28T10:00:00.5Z", "lessThan", False),
        (
            "timestamp",
            "timestamp",
            "2021-04-28T10:00:00Z",
            "2021-04-28T10:00:00.000001Z",
            "greaterThanOrEqual",
            False,
        ),
        ("timestamp", "timestamp", "2021-04-28T12:00:00+02:00", "2021-04-28T10:00:00Z", "equal", True),
        ("timestamp", "timestamp", "2021-04-28T12:00:00+02:00", "2021-04-28T11:00:00Z", "equal", False),
        ("double", "double", "1.5", "1.5", "greaterThan", False),
        ("float", "float", "0.1", "0.1", "greaterThan", True),  # float32 value may exceed the double 0.1
    ],
)
def test_json_partition_values(coltype: str, vt: str, pv: str, value: str, cmp: str, keep: bool) -> None:
    f = jf(op(cmp, col("p", vt), lit(value, vt)), ["p"], {"p": coltype, "x": "long"})
    assert f and f({"p": pv}, None) is keep


@pytest.mark.parametrize("pv", [None, ""])
@pytest.mark.parametrize("cmp", ["equal", "lessThan", "greaterThan", "lessThanOrEqual", "greaterThanOrEqual"])
def test_json_null_partition_value(pv: str | None, cmp: str) -> None:
    # null <op> x is null, never true; not(null <op> x) is still null
    types = {"p": "integer"}
    f = jf(op(cmp, col("p", "int"), lit("1", "int")), ["p"], types)
    g = jf(op("not", op(cmp, col("p", "int"), lit("1", "int"))), ["p"], types)
    h = jf(op("isNull", col("p", "int")), ["p"], types)
    k = jf(op("not", op("isNull", col("p", "int"))), ["p"], types)
    assert f and g and h and k
    assert not f({"p": pv}, None) and not g({"p": pv}, None)
    assert h({"p": pv}, None) and not k({"p": pv}, None)
    assert not h({"p": "1"}, None) and k({"p": "1"}, None)


def test_json_or_with_null_partition() -> None:
    # null OR true is true: keep; p is null OR p = 1 keeps the null file
    f = jf(
        op("or", op("isNull", col("p", "int")), op("equal", col("p", "int"), lit("1", "int"))),
        ["p"],
        {"p": "integer"},
    )
    assert f and f({"p": None}, None) and f({"p": "1"}, None) and not f({"p": "2"}, None)


@pytest.mark.parametrize(
    "st",
    [
        None,
        {},
        {"numRecords": 3},
        {"numRecords": 3, "minValues": {"x": 1}, "maxValues": {}},
        {"numRecords": 3, "minValues": {"x": "one"}, "maxValues": {"x": "two"}},  # wrong JSON type
        {"numRecords": 3, "minValues": {"y": 100}, "maxValues": {"y": 200}},
    ],
)
def test_json_missing_or_bad_stats_keep(st: Any) -> None:
    f = jf(op("equal", col("x", "int"), lit("50", "int")), [], {"x": "integer", "y": "integer"})
    g = jf(op("not", op("equal", col("x", "int"), lit("50", "int"))), [], {"x": "integer", "y": "integer"})
    assert f and g and f({}, st) and g({}, st)


def test_json_missing_partition_key_is_unknown() -> None:
    f = jf(op("equal", col("p", "int"), lit("1", "int")), ["p"], {"p": "integer"})
    assert f and f({}, None) and f({"p": "garbage"}, None)


@pytest.mark.parametrize(
    ("nulls", "rows", "is_null_keep", "not_null_keep"),
    [
        (0, 10, False, True),  # no nulls: isNull false, not isNull true
        (10, 10, True, False),  # all null
        (3, 10, True, True),  # some null
        (None, 10, True, True),  # unknown
    ],
)
def test_json_is_null_uses_null_count(
    nulls: int | None, rows: int, is_null_keep: bool, not_null_keep: bool
) -> None:
    lo, hi = (None, None) if nulls == rows else (1, 5)
    st = stats("x", lo, hi, nulls=nulls, rows=rows)
    f = jf(op("isNull", col("x", "int")), [], {"x": "integer"})
    g = jf(op("not", op("isNull", col("x", "int"))), [], {"x": "integer"})
    assert f and g and f({}, st) is is_null_keep and g({}, st) is not_null_keep
    assert f({}, None) and g({}, None)


def test_json_all_null_column_comparisons_prune() -> None:
    st = stats("x", None, None, nulls=4, rows=4)
    for tree in (
        op("equal", col("x", "int"), lit("1", "int")),
        op("not", op("equal", col("x", "int"), lit("1", "int"))),
    ):
        f = jf(tree, [], {"x": "integer"})
        assert f and not f({}, st)


def test_json_not_of_range_is_sound() -> None:
    # the reference evaluator would skip this file (not(equal) on a range containing 2); rows 1 and 3 match
    f = jf(op("not", op("equal", col("x", "int"), lit("2", "int"))), [], {"x": "integer"})
    assert f and f({}, stats("x", 1, 3)) and not f({}, stats("x", 2, 2))
    # with nulls in a single-valued file, not(x = 2) is still never true
    assert not f({}, stats("x", 2, 2, nulls=5))


def test_json_and_or_three_valued() -> None:
    types = {"x": "integer", "y": "integer"}
    x_eq_1 = op("equal", col("x", "int"), lit("1", "int"))
    y_eq_1 = op("equal", col("y", "int"), lit("1", "int"))
    st = stats("x", 5, 6)  # no stats for y: unknown
    f_and, f_or = jf(op("and", x_eq_1, y_eq_1), [], types), jf(op("or", x_eq_1, y_eq_1), [], types)
    assert f_and and f_or and not f_and({}, st) and f_or({}, st)
    st2 = stats("x", 1, 1)
    st2["minValues"]["y"], st2["maxValues"]["y"], st2["nullCount"]["y"] = 7, 9, 0
    assert not f_and({}, st2) and f_or({}, st2)
    st2["minValues"]["y"] = 1
    assert f_and({}, st2)


def test_json_bare_bool_column_and_literal() -> None:
    types = {"b": "boolean", "x": "integer"}
    f = jf(col("b", "bool"), [], types)
    assert f and f({}, stats("b", False, True)) and not f({}, stats("b", False, False)) and f({}, None)
    g = jf(op("not", col("b", "bool")), [], types)
    assert g and not g({}, stats("b", True, True)) and g({}, stats("b", False, True))
    lit_false, lit_and_col, bare_int = (
        jf(lit("false", "bool"), [], types),
        jf(op("and", lit("true", "bool"), col("b", "bool")), [], types),
        jf(col("x", "int"), [], types),
    )
    assert lit_false and lit_and_col and bare_int
    assert not lit_false({}, None) and not lit_and_col({}, stats("b", False, False))
    assert bare_int({}, stats("x", 1, 1))  # a bare non-bool column is unknown


@pytest.mark.parametrize(
    "tree",
    [
        op("equal", col("x", "int"), lit("1", "long")),  # mismatched valueTypes
        op("equal", col("x", "int"), col("x", "int")),  # two columns
        op("equal", lit("1", "int"), lit("2", "int")),  # two literals
        op("equal", col("x", "string"), lit("1", "string")),  # valueType does not fit the column's type
        op("equal", col("nope", "int"), lit("1", "int")),  # unknown column
        op("equal", col("x", "double"), lit("NaN", "double")),
    ],
)
def test_json_unknown_comparisons_keep(tree: Any) -> None:
    f = jf(op("and", tree, op("not", tree)), [], {"x": "integer"})
    assert f and f({}, stats("x", 5, 6))


def test_json_unknown_part_does_not_block_pruning() -> None:
    unknown = op("equal", col("x", "int"), lit("1", "long"))
    f = jf(op("and", unknown, op("equal", col("x", "int"), lit("1", "int"))), [], {"x": "integer"})
    assert f and not f({}, stats("x", 5, 6))


def test_json_case_insensitive_names() -> None:
    f = jf(op("equal", col("BirthDay", "date"), lit("2020-01-01", "date")), ["birthday"], BDAY_TYPES)
    g = jf(op("equal", col("AGE", "int"), lit("2", "int")), ["birthday"], BDAY_TYPES)
    assert f and g
    assert [f(pv, st) for pv, st in BIRTHDAY_FILES] == [True, False]
    assert [g(pv, st) for pv, st in BIRTHDAY_FILES] == [False, True]
    # exact match wins over a case-insensitive one
    h = jf(op("equal", col("a", "int"), lit("1", "int")), [], {"a": "integer", "A": "integer"})
    st = {"numRecords": 1, "minValues": {"a": 1, "A": 9}, "maxValues": {"a": 1, "A": 9}}
    assert h and h({}, st)


def test_json_nested_column() -> None:
    st = {
        "numRecords": 1,
        "minValues": {"a": {"b": 10}},
        "maxValues": {"a": {"b": 20}},
        "nullCount": {"a": {"b": 0}},
    }
    f = jf(op("greaterThan", col("a.b", "int"), lit("20", "int")), [], {"a": "struct"})
    g = jf(op("greaterThan", col("a.b", "int"), lit("19", "int")), [], {"a": "struct"})
    assert f and g and not f({}, st) and g({}, st)
    h = jf(op("not", op("isNull", col("a.b", "int"))), [], {"a": "struct"})
    assert h and h({}, st)


def test_json_partition_and_stats_mixed() -> None:
    f = jf(
        op(
            "or",
            op("equal", col("p", "string"), lit("x", "string")),
            op("greaterThan", col("v", "long"), lit("100", "long")),
        ),
        ["p"],
        {"p": "string", "v": "long"},
    )
    assert f
    assert f({"p": "x"}, stats("v", 1, 2))
    assert not f({"p": "y"}, stats("v", 1, 2))
    assert f({"p": "y"}, stats("v", 1, 200))


# ---------------------------------------------------------------- invalid JSON hints => None

GOOD_LEAF = op("equal", col("x", "int"), lit("1", "int"))


@pytest.mark.parametrize(
    "hint",
    [
        None,
        "",
        "   ",
        "{not json",
        "[]",
        json.dumps({"op": "bogus", "children": []}),
        json.dumps({"children": [col("x", "int"), lit("1", "int")]}),  # missing op
        json.dumps(op("equal", col("x", "int"))),  # wrong arity
        json.dumps(op("equal", col("x", "int"), lit("1", "int"), lit("2", "int"))),
        json.dumps(op("and", GOOD_LEAF)),  # n-ary needs >= 2
        json.dumps(op("not", GOOD_LEAF, GOOD_LEAF)),
        json.dumps(op("isNull")),
        json.dumps({"op": "and"}),  # no children
        json.dumps({"op": "and", "children": "x"}),
        json.dumps(op("equal", {"op": "column", "valueType": "int"}, lit("1", "int"))),  # missing name
        json.dumps(op("equal", col("x", "int"), {"op": "literal", "valueType": "int"})),  # missing value
        json.dumps(
            op("equal", col("x", "int"), {"op": "literal", "value": 1, "valueType": "int"})
        ),  # not a string
        json.dumps(op("equal", col("x", "decimal"), lit("1", "decimal"))),  # unsupported valueType
        json.dumps(op("equal", col("x", "int"), lit("1.5", "int"))),  # unparsable literals
        json.dumps(op("equal", col("x", "int"), lit("2147483648", "int"))),
        json.dumps(op("equal", col("x", "long"), lit("1_000", "long"))),
        json.dumps(op("equal", col("x", "double"), lit("abc", "double"))),
        json.dumps(op("equal", col("x", "bool"), lit("yes", "bool"))),
        json.dumps(op("equal", col("x", "date"), lit("2021-13-01", "date"))),
        json.dumps(op("equal", col("x", "timestamp"), lit("yesterday", "timestamp"))),
        json.dumps(op("equal", col("x", "timestamp"), lit("2021-01-01T00:00:00.123456789Z", "timestamp"))),
        json.dumps(op("equal", GOOD_LEAF, lit("1", "int"))),  # comparison of a non-leaf
        json.dumps(op("isNull", GOOD_LEAF)),
        json.dumps({"op": "and", "children": [GOOD_LEAF, 5]}),
        json.dumps({"op": ["and"], "children": [GOOD_LEAF, GOOD_LEAF]}),
        json.dumps(op("equal", {"op": "column", "name": "x", "valueType": ["int"]}, lit("1", "int"))),
    ],
)
def test_json_invalid_hints(hint: str | None) -> None:
    assert json_predicate_filter(hint, partition_columns=[], column_types={"x": "integer"}) is None


def nested_not(depth: int) -> dict[str, Any]:
    tree: dict[str, Any] = GOOD_LEAF  # 2 levels
    for _ in range(depth - 2):
        tree = op("not", tree)
    return tree


def test_json_depth_limit() -> None:
    assert jf(nested_not(100), [], {"x": "integer"}) is not None
    with pytest.raises(InvalidParameterError, match="nested more than 100 levels"):
        jf(nested_not(101), [], {"x": "integer"})
    deep = "[" * 100_000 + "]" * 100_000  # beyond the JSON parser's own depth limit: the same 400
    with pytest.raises(InvalidParameterError, match="nested more than 100 levels"):
        json_predicate_filter(deep, partition_columns=[], column_types={})
    shallow = PredicateLimits(max_depth=3)
    with pytest.raises(InvalidParameterError, match="nested more than 3 levels"):
        json_predicate_filter(
            json.dumps(nested_not(4)), partition_columns=[], column_types={"x": "integer"}, limits=shallow
        )


def test_json_size_limit() -> None:
    tree = op("or", *[GOOD_LEAF] * 2)
    base = json.dumps(tree)
    pad_ok = base[:-1] + ', "pad": "' + "x" * (2**20 - len(base) - 11) + '"}'
    assert len(pad_ok) == 2**20 and jf(pad_ok, [], {"x": "integer"}) is not None
    with pytest.raises(InvalidParameterError, match="1048577 characters"):
        jf(pad_ok[:-2] + 'x"}', [], {"x": "integer"})


def test_json_node_count_limit() -> None:
    wide = json.dumps(op("or", *[GOOD_LEAF] * 333))  # 1 + 333 * 3 = 1000 nodes
    assert json_predicate_filter(wide, partition_columns=[], column_types={"x": "integer"})
    wider = json.dumps(op("or", *[GOOD_LEAF] * 334))
    with pytest.raises(InvalidParameterError, match="more than 1000 nodes"):
        json_predicate_filter(wider, partition_columns=[], column_types={"x": "integer"})
    # 200,000 hints (the attack that cost seconds) are refused before any of them is compiled
    huge = json.dumps(op("or", *[GOOD_LEAF] * 200_000))
    with pytest.raises(InvalidParameterError):
        json_predicate_filter(huge, partition_columns=[], column_types={"x": "integer"}, limits=BIG_TEXT)


def test_json_filter_never_raises_on_odd_inputs() -> None:
    f = jf(op("and", GOOD_LEAF, op("isNull", col("p", "int"))), ["p"], {"x": "integer", "p": "integer"})
    assert f
    odd: list[tuple[Any, Any]] = [
        ({"p": 5}, {"numRecords": "x"}),
        ({"p": None}, {"minValues": 3}),
        ({}, {"nullCount": []}),
        (None, "stats"),
    ]
    for pv, st in odd:
        assert f(pv, st) in (True, False)


# ---------------------------------------------------------------- SQL predicateHints

SQL_TYPES = {
    "d": "date",
    "s": "string",
    "i": "integer",
    "f": "double",
    "b": "boolean",
    "t": "timestamp",
    "v": "long",
}
SQL_PARTS = ["d", "s", "i", "f", "b", "t"]
SQL_FILE = {"d": "2021-04-28", "s": "it's", "i": "5", "f": "1.5", "b": "true", "t": "2021-04-28 10:00:00"}


@pytest.mark.parametrize(
    ("hint", "keep"),
    [
        ("d = CAST('2021-04-28' AS DATE)", True),
        ("d = cast('2021-04-29' as date)", False),
        ("d >= '2021-01-01'", True),
        ("d < '2021-01-01'", False),
        ("d = DATE '2021-04-28'", True),
        ("'2021-05-01' < d", False),  # literal on the left
        ("'2021-04-01' < d", True),
        ("s = 'it''s'", True),
        ("s <> 'it''s'", False),
        ("s != 'x'", True),
        ("i > 4", True),
        ("i > 5", False),
        ("i >= 5", True),
        ("i <= 4", False),
        ("i = '5'", True),
        ("i = -5", False),
        ("5 = i", True),
        ("f > 1.4", True),
        ("f > 1.5", False),
        ("f < 1e1", True),
        ("b = true", True),
        ("b = FALSE", False),
        ("t = TIMESTAMP '2021-04-28 10:00:00'", True),
        ("t > '2021-04-28T10:00:00Z'", True),  # wall-clock partition value: never pruned
        ("t > CAST('2021-04-28 09:00:00' AS TIMESTAMP)", True),
        ("D = '2021-04-29'", False),  # case-insensitive column
        ("`d` = '2021-04-29'", False),
        ("d IS NULL", False),
        ("d is not null", True),
    ],
)
def test_sql_hints(hint: str, keep: bool) -> None:
    f = sql_predicate_filter([hint], partition_columns=SQL_PARTS, column_types=SQL_TYPES)
    assert f is not None
    assert f(SQL_FILE, None) is keep


@pytest.mark.parametrize(
    "hint",
    [
        "v = 1",  # not a partition column
        "i = 0 + 1",
        "s = 1",  # Spark would compare numerically
        "i = '1.5'",  # Spark might cast to 1
        "s = 'a\\'b'",  # backslash escapes
        "i = 1L",
        "d = 2021",
        "d = TIMESTAMP '2021-04-28 00:00:00'",
        "d = CAST('2021-04-28' AS BINARY)",
        "i = NULL",
        "i = 1 AND i = 2",
        "i",
        "",
        "i = 'unterminated",
        "NOT i = 5",
        "i = j",
        "1 = 1",
        "x IS NULL",
        "i = \u0663",  # ARABIC-INDIC DIGIT THREE
    ],
)
def test_sql_unusable_hints_are_skipped(hint: str) -> None:
    assert sql_predicate_filter([hint], partition_columns=SQL_PARTS, column_types=SQL_TYPES) is None
    f = sql_predicate_filter([hint, "i = 4"], partition_columns=SQL_PARTS, column_types=SQL_TYPES)
    assert f and not f(SQL_FILE, None)  # the other hint still applies


def test_sql_hints_are_anded_and_nulls() -> None:
    f = sql_predicate_filter(
        ["d >= '2021-01-01'", "d <= '2021-01-31'"], partition_columns=["d"], column_types={"d": "date"}
    )
    assert f
    assert [f({"d": v}, None) for v in ("2021-01-15", "2021-02-01", None, "")] == [True, False, False, False]
    g = sql_predicate_filter(["d IS NULL"], partition_columns=["d"], column_types={"d": "date"})
    assert g and g({"d": None}, None) and g({"d": ""}, None) and not g({"d": "2021-01-01"}, None)
    h = sql_predicate_filter(["d <> '2021-01-01'"], partition_columns=["d"], column_types={"d": "date"})
    assert h and not h({"d": None}, None) and h({"d": "2021-01-02"}, None)  # null <> x is not true
    assert sql_predicate_filter([], partition_columns=["d"], column_types={"d": "date"}) is None
    assert sql_predicate_filter(None, partition_columns=["d"], column_types={"d": "date"}) is None


# ---------------------------------------------------------------- combine


def test_combine() -> None:
    assert combine() is None and combine(None, None) is None
    a = sql_predicate_filter(["i > 1"], partition_columns=["i"], column_types={"i": "integer"})
    b = jf(op("lessThan", col("i", "int"), lit("5", "int")), ["i"], {"i": "integer"})
    assert combine(a, None) is a
    both = combine(a, None, b)
    assert both and [both({"i": str(n)}, None) for n in range(7)] == [
        False,
        False,
        True,
        True,
        True,
        False,
        False,
    ]


# ---------------------------------------------------------------- bounds and linear-time parsing

# The SQL token grammar as the regular expression the hand-written scanner replaced (it backtracked
# quadratically on runs of digits): the oracle for short inputs.
_OLD_SQL_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|'')*')|(?P<op><=|>=|<>|!=|==|=|<|>|[(),])"
    r"|(?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])|(?P<id>`(?:[^`]|``)+`|[^\W\d]\w*))"
)
_OLD_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:NaN|Infinity)", re.ASCII)


def _old_tokens(s: str) -> list[tuple[str, str]] | None:
    out, pos = [], 0
    while pos < len(s.rstrip()):
        m = _OLD_SQL_TOKEN.match(s, pos)
        if not m:
            return None
        kind = m.lastgroup or ""
        text = m.group(kind)
        out.append((kind, text[1:-1].replace("''", "'") if kind == "str" else text))
        pos = m.end()
    return out


def test_sql_scanner_matches_the_token_grammar() -> None:
    rng = random.Random(7)
    # Non-ASCII digits: the old rule took `٣` as a number that the literal parser then refused; the scanner
    # refuses it at once. Either way the hint is skipped (test_sql_unusable_hints_are_skipped).
    alphabet = [
        "1",
        "0",
        ".",
        "e",
        "E",
        "+",
        "-",
        "'",
        "''",
        "`",
        "a",
        "_",
        " ",
        "=",
        "<",
        ">",
        "!",
        "(",
        ",",
        "\\",
        "é",
    ]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert _sql_tokens(text) == _old_tokens(text), text
        assert is_float(text) == bool(_OLD_FLOAT.fullmatch(text)), text


@pytest.mark.parametrize(
    "hint",
    [
        "i = " + "1" * 20_000 + "x",  # the number rule backtracked over every split of the digits
        "1" * 20_000 + "." + "1" * 20_000 + ".",
        "s = '" + "''" * 10_000,  # an unterminated string of doubled quotes
        "`" + "``" * 10_000,
        "i = " + "1" * 20_000 + "e",
    ],
)
def test_sql_scanner_is_linear_on_pathological_hints(hint: str) -> None:
    start = time.perf_counter()
    assert sql_predicate_filter([hint], partition_columns=SQL_PARTS, column_types=SQL_TYPES) is None
    assert time.perf_counter() - start < 5  # a guard against a freeze, not a speed target


def test_sql_hint_bounds() -> None:
    ok = ["i = 5"] * 1000
    assert sql_predicate_filter(ok, partition_columns=SQL_PARTS, column_types=SQL_TYPES)
    with pytest.raises(InvalidParameterError, match="1001 entries; this server accepts at most 1000"):
        sql_predicate_filter([*ok, "i = 5"], partition_columns=SQL_PARTS, column_types=SQL_TYPES)
    with pytest.raises(InvalidParameterError, match="200000 entries"):
        sql_predicate_filter(["i = 5"] * 200_000, partition_columns=SQL_PARTS, column_types=SQL_TYPES)
    small = PredicateLimits(max_chars=10)
    assert sql_predicate_filter(
        ["i = 5", "i > 4"], partition_columns=SQL_PARTS, column_types=SQL_TYPES, limits=small
    )
    with pytest.raises(InvalidParameterError, match="more than 10 characters"):
        sql_predicate_filter(
            ["i = 5", "i >= 4"], partition_columns=SQL_PARTS, column_types=SQL_TYPES, limits=small
        )
