"""Single values in Iceberg's forms: Delta partition strings and Delta stats read as Iceberg values, and those
values written in Iceberg's single-value binary serialization (the spec's appendix D: the form of manifest
bounds and of partition summaries).

Types are Iceberg's primitive type strings (`int`, `long`, `decimal(10,2)`, `timestamptz`, ...). Values are
what the Avro writer (fastavro) takes for the manifest's partition tuple: int for int/long/date (days)/
timestamps (microseconds), Decimal, str, bytes, bool, float.
"""

from __future__ import annotations

import math
import re
import struct
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, InvalidOperation
from typing import Any

from lakegate.exceptions import UnsupportedOperationError

_DECIMAL = re.compile(r"^decimal\((\d+),\s*(-?\d+)\)$")
_EPOCH_DATE = date(1970, 1, 1)
# Decimal arithmetic without rounding for every Iceberg decimal (38 digits; the default context keeps 28).
EXACT = Context(prec=80)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Delta truncates string stats to this many characters (delta.dataSkippingStringPrefixLength's default): a
# maximum this long may be a prefix, smaller than the values it stands for, so it is no upper bound.
STRING_PREFIX_LENGTH = 32
# Decimal digits every float reproduces exactly (a float's repr is the shortest string that reads back).
_FLOAT_DIGITS = 15
_FLOAT32_MAX = 3.4028234663852886e38


def decimal_parts(kind: str) -> tuple[int, int] | None:
    """(precision, scale) of a `decimal(p,s)` type, None for any other type."""
    match = _DECIMAL.match(kind)
    return (int(match[1]), int(match[2])) if match else None


def unscaled_decimal(value: Decimal, scale: int) -> int:
    """The integer a decimal of this scale stores (`1.25` at scale 2: 125)."""
    return int(value.scaleb(scale, context=EXACT))


def decimal_bytes(precision: int) -> int:
    """The fixed size Iceberg gives a decimal of this precision in Avro (the smallest that holds 10^p - 1)."""
    size = 1
    while 2 ** (8 * size - 1) - 1 < 10**precision - 1:
        size += 1
    return size


def days(day: date) -> int:
    return (day - _EPOCH_DATE).days


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (a naive datetime is wall-clock time, as for Iceberg's `timestamp`)."""
    delta = moment - (_EPOCH if moment.tzinfo else _EPOCH.replace(tzinfo=None))
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _timestamp(text: str, kind: str) -> int:
    """Microseconds since the epoch of a Delta timestamp string (`2026-01-01 10:00:00[.123456]`, or ISO 8601
    with a zone). Zoneless `timestamp` (with time zone) values are UTC, as Delta writes them."""
    moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))  # 3.11 reads a Z
    if kind == "timestamptz":
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    elif moment.tzinfo is not None:  # timestamp_ntz: the wall-clock time as written
        moment = moment.replace(tzinfo=None)
    return micros(moment)


def from_partition_string(kind: str, text: str | None) -> Any:
    """A Delta partition value (always a string in the log; null or "" means null) as an Iceberg value."""
    if text is None or text == "":
        return None
    try:
        return _parse(kind, text)
    except (ValueError, InvalidOperation) as exc:
        raise UnsupportedOperationError(
            f"the table's partition value '{text}' is not a valid {kind}: it cannot be served to Iceberg clients"
        ) from exc


def _parse(kind: str, text: str) -> Any:  # noqa: PLR0911 - one return per type
    if kind in ("int", "long"):
        return int(text)
    if kind in ("float", "double"):
        return float(text)
    if kind == "boolean":
        return text.strip().lower() == "true"
    if kind == "date":
        return days(date.fromisoformat(text.strip()[:10]))
    if kind in ("timestamp", "timestamptz"):
        return _timestamp(text, kind)
    if kind == "string":
        return text
    if kind == "binary":  # Delta writes each byte as one character
        return text.encode("latin-1")
    parts = decimal_parts(kind)
    if parts is not None:
        return Decimal(text).quantize(Decimal(1).scaleb(-parts[1]), context=EXACT)
    raise UnsupportedOperationError(f"partition columns of type {kind} cannot be served to Iceberg clients")


def from_stats(kind: str, value: Any, upper: bool) -> Any:
    """A Delta min (`upper` False) or max statistic as an Iceberg bound, or None where the statistic is no
    safe bound: a maximum string that may be truncated, a NaN. Delta writes timestamps in milliseconds, so a
    maximum is rounded up to the millisecond's last microsecond; decimals arrive as JSON numbers (floats) and
    are rounded outwards at the type's scale."""
    if value is None or isinstance(value, (dict, list)):
        return None
    try:
        return _stat(kind, value, upper)
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        return None  # a statistic we cannot read is simply no bound


def _stat(kind: str, value: Any, upper: bool) -> Any:  # noqa: PLR0911 - one return per type
    if kind in ("int", "long"):
        bits = 32 if kind == "int" else 64
        valid = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
        )
        return value if valid else None
    if kind in ("float", "double"):
        number = float(value)
        too_big = kind == "float" and abs(number) > _FLOAT32_MAX  # a 4-byte bound cannot hold it
        return None if math.isnan(number) or too_big else number
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        return days(date.fromisoformat(str(value)[:10]))
    if kind in ("timestamp", "timestamptz"):
        micros = _timestamp(str(value), kind)
        return micros + 999 if upper and micros % 1000 == 0 else micros
    if kind == "string":
        if not isinstance(value, str) or (upper and len(value) >= STRING_PREFIX_LENGTH):
            return None
        return value
    parts = decimal_parts(kind)
    if parts is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if isinstance(value, float) and len(exact.as_tuple().digits) > _FLOAT_DIGITS:
            return None  # the JSON number had more digits than a float keeps: the bound may be off either way
        step = Decimal(1).scaleb(-parts[1])
        return exact.quantize(step, rounding=ROUND_CEILING if upper else ROUND_FLOOR, context=EXACT)
    return None  # binary and anything else: Delta keeps no usable statistic


def to_bytes(kind: str, value: Any) -> bytes:  # noqa: PLR0911 - one return per type
    """Iceberg's single-value serialization (spec, appendix D)."""
    if kind == "boolean":
        return b"\x01" if value else b"\x00"
    if kind in ("int", "date"):
        return struct.pack("<i", value)
    if kind in ("long", "timestamp", "timestamptz", "time"):
        return struct.pack("<q", value)
    if kind == "float":
        return struct.pack("<f", value)
    if kind == "double":
        return struct.pack("<d", value)
    if kind == "string":
        return str(value).encode("utf-8")
    if kind == "binary":
        return bytes(value)
    if decimal_parts(kind) is not None:
        unscaled = unscaled_decimal(value, -int(value.as_tuple().exponent))
        length = max(1, (unscaled.bit_length() + 8) // 8)  # the fewest bytes, sign bit included
        return unscaled.to_bytes(length, "big", signed=True)
    raise ValueError(f"no single-value serialization for {kind}")
