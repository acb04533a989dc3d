"""Single values: Delta partition strings and stats as Iceberg values, and Iceberg's binary serialization of
them, checked against PyIceberg's own implementation of the spec."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pyiceberg import conversions
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
)

from lakegate.exceptions import UnsupportedOperationError
from lakegate.iceberg.values import decimal_bytes, from_partition_string, from_stats, to_bytes

TYPES = {
    "boolean": BooleanType(),
    "int": IntegerType(),
    "long": LongType(),
    "float": FloatType(),
    "double": DoubleType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "timestamptz": TimestamptzType(),
    "string": StringType(),
    "binary": BinaryType(),
    "decimal(10, 2)": DecimalType(10, 2),
    "decimal(38, 0)": DecimalType(38, 0),
    "decimal(38, 10)": DecimalType(38, 10),
}


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("boolean", True),
        ("boolean", False),
        ("int", -7),
        ("long", 2**40 + 3),
        ("float", 1.5),
        ("double", -0.25),
        ("date", 20_000),
        ("timestamp", 1_700_000_000_123_456),
        ("timestamptz", -5),
        ("string", "zürich"),
        ("binary", b"\x00\xff"),
        ("decimal(10, 2)", Decimal("-123.45")),
        ("decimal(10, 2)", Decimal("0.00")),
        ("decimal(38, 0)", Decimal(10**37)),
        ("decimal(38, 10)", Decimal("-1234567890123456789012345678.0123456789")),
    ],
)
def test_single_value_serialization_is_pyicebergs(kind: str, value: Any) -> None:
    assert to_bytes(kind, value) == conversions.to_bytes(TYPES[kind], value)


def test_decimal_sizes_are_the_specs() -> None:
    # The spec's table: precision 9 fits 4 bytes, 18 fits 8, 38 fits 16.
    assert [decimal_bytes(p) for p in (1, 2, 3, 9, 10, 18, 19, 38)] == [1, 1, 2, 4, 5, 8, 9, 16]


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("int", "42", 42),
        ("long", "-9000000000", -9_000_000_000),
        ("double", "2.5", 2.5),
        ("boolean", "true", True),
        ("boolean", "false", False),
        ("date", "2026-01-02", (date(2026, 1, 2) - date(1970, 1, 1)).days),
        (
            "timestamptz",
            "2026-01-02 03:04:05.000006",
            int(datetime(2026, 1, 2, 3, 4, 5, 6, UTC).timestamp() * 1e6),
        ),
        (
            "timestamptz",
            "2026-01-02T03:04:05Z",
            int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()) * 10**6,
        ),
        (
            "timestamp",
            "2026-01-02 03:04:05",
            int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()) * 10**6,
        ),
        ("string", "a b/c", "a b/c"),
        ("decimal(10, 2)", "1.5", Decimal("1.50")),
        (
            "decimal(38, 10)",
            "1234567890123456789012345678.5",
            Decimal("1234567890123456789012345678.5000000000"),
        ),
        ("string", None, None),
        ("int", "", None),
    ],
)
def test_partition_strings(kind: str, text: str | None, expected: object) -> None:
    assert from_partition_string(kind, text) == expected


def test_a_partition_value_that_is_not_its_type_is_refused() -> None:
    with pytest.raises(UnsupportedOperationError, match="not a valid int"):
        from_partition_string("int", "seven")


def test_stats_bounds_are_safe() -> None:
    # Delta writes timestamps in milliseconds: a maximum covers the whole millisecond.
    assert from_stats("timestamptz", "2026-01-01T00:00:00.123Z", upper=False) % 10**6 == 123_000
    assert from_stats("timestamptz", "2026-01-01T00:00:00.123Z", upper=True) % 10**6 == 123_999
    assert from_stats("timestamp", "2026-01-01T00:00:00.123", upper=True) % 10**6 == 123_999
    # A 32-character maximum may be a truncated prefix: no upper bound; the minimum (a prefix) still is one.
    long_text = "x" * 32
    assert from_stats("string", long_text, upper=True) is None
    assert from_stats("string", long_text, upper=False) == long_text
    assert from_stats("string", "short", upper=True) == "short"
    # Decimals arrive as JSON floats: rounded outwards at the scale.
    assert from_stats("decimal(10, 2)", 1.005, upper=False) <= Decimal("1.005")
    assert from_stats("decimal(10, 2)", 1.005, upper=True) >= Decimal("1.005")
    # Past 15 digits the float is not the number Delta wrote: no bound rather than a wrong one.
    assert from_stats("decimal(38, 2)", 12345678901234567.89, upper=False) is None
    assert from_stats("decimal(38, 2)", 123456789012.25, upper=False) == Decimal("123456789012.25")
    assert from_stats("double", float("nan"), upper=True) is None
    assert from_stats("long", "not a number", upper=True) is None
    # A statistic outside its type's range (a wrong writer) is no bound, never an error.
    assert from_stats("int", 2**31, upper=True) is None
    assert from_stats("float", 1e39, upper=True) is None
    assert from_stats("float", float("inf"), upper=True) is None
    assert from_stats("binary", "abc", upper=True) is None
