"""Values in predicates: literals, partition value strings and stats values, parsed by JSON valueType.

Regular expressions here run on request input, so each is linear: no nested or adjacent unbounded quantifiers that
can match the same text (numbers are scanned by hand).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

VALUE_TYPES = {"bool", "int", "long", "string", "date", "float", "double", "timestamp"}
INTEGRAL = {"byte", "short", "integer", "long"}
# Regular expressions here run on request input, so each is linear: no nested or adjacent unbounded
# quantifiers that can match the same text (numbers and SQL tokens are scanned by hand below).
INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
_DATE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
# ISO-8601 / Delta partition form; more than 6 fraction digits is rejected rather than rounded,
# because rounding a literal could move it across a microsecond partition value.
_TS_RE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE | re.ASCII,
)


HAS_ZONE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


def _digits_end(s: str, i: int) -> int:
    """The index after the run of ASCII digits starting at `i`."""
    while i < len(s) and "0" <= s[i] <= "9":
        i += 1
    return i


def number_end(s: str, i: int) -> int:
    """The index after the SQL/JSON number literal starting at `i` (`[+-]? (d+ .? d* | . d+) ([eE] [+-]? d+)?`),
    or `i` when there is none. One pass, no backtracking."""
    start = i
    if i < len(s) and s[i] in "+-":
        i += 1
    whole = _digits_end(s, i)
    frac_start = whole + 1 if whole < len(s) and s[whole] == "." else whole
    end = _digits_end(s, frac_start)
    if whole == i and end == frac_start:  # no digit before or after the point
        return start
    if end < len(s) and s[end] in "eE":
        exp = end + 1 + (end + 1 < len(s) and s[end + 1] in "+-")
        exp_end = _digits_end(s, exp)
        if exp_end > exp:
            end = exp_end
    return end


def is_float(s: str) -> bool:
    unsigned = s[1:] if s[:1] in ("+", "-") else s
    return unsigned in ("NaN", "Infinity") or (bool(s) and number_end(s, 0) == len(s))


class Invalid(Exception):  # noqa: N818  - internal, never escapes the module
    """The hint is malformed; the caller falls back to no filtering."""


def _parse_ts(s: str) -> datetime:
    m = _TS_RE.fullmatch(s.strip())
    if not m:
        raise ValueError(s)
    y, mo, d, h, mi, sec, frac, off = m.groups()
    tz = UTC  # naive values (Delta partition values, timestamp_ntz stats) are read as UTC
    if off and off.upper() != "Z":
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0)))
    us = int((frac or "0").ljust(6, "0"))
    dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0), us, tz)
    return dt.astimezone(UTC)


def parse_value(vt: str, s: str) -> Any:
    """Parse a literal (or a partition value string) of JSON valueType ``vt``; ValueError if it isn't one."""
    if vt == "string":
        return s
    s = s.strip()
    if vt == "bool" and s.lower() in ("true", "false"):
        return s.lower() == "true"
    if vt in ("int", "long") and INT_RE.fullmatch(s):
        v, bits = int(s), (31 if vt == "int" else 63)
        if -(1 << bits) <= v < (1 << bits):
            return v
    elif vt in ("float", "double") and is_float(s):
        return float(s)
    elif vt == "date" and (m := _DATE_RE.fullmatch(s)):
        return date(*map(int, m.groups()))
    elif vt == "timestamp":
        return _parse_ts(s)
    raise ValueError(f"not a {vt}: {s!r}")


def parse_number(s: str) -> int | float:
    s = s.strip()
    if INT_RE.fullmatch(s):
        return int(s)
    if is_float(s):
        return float(s)
    raise ValueError(s)


def from_stats(vt: str, v: Any) -> Any:
    """Convert a JSON stats value; a JSON type that does not fit ``vt`` means "unknown" (ValueError)."""
    if vt == "bool" and isinstance(v, bool):
        return v
    if (
        vt in ("int", "long", "float", "double")
        and isinstance(v, (int, float, Decimal))
        and not isinstance(v, bool)
    ):
        return float(v) if isinstance(v, Decimal) else v
    if vt == "string" and isinstance(v, str):
        return v
    if vt in ("date", "timestamp") and isinstance(v, str):
        return parse_value(vt, v)
    raise ValueError(f"stats value {v!r} is not a {vt}")


def compatible(vt: str, coltype: str | None) -> bool:
    """Whether comparing column values as ``vt`` orders them like the engine would."""
    if coltype is None:  # nested leaf / unknown type: the stats value's JSON type is checked instead
        return True
    if vt in ("int", "long", "float", "double"):
        return coltype in INTEGRAL or coltype in ("float", "double") or coltype.startswith("decimal")
    return (
        coltype
        in {
            "bool": ("boolean",),
            "string": ("string",),
            "date": ("date",),
            "timestamp": ("timestamp", "timestamp_ntz"),
        }[vt]
    )


def find(name: str, names: Any) -> str | None:
    """Exact match first, then a unique case-insensitive one."""
    if name in names:
        return name
    hits = [n for n in names if isinstance(n, str) and n.lower() == name.lower()]
    return hits[0] if len(hits) == 1 else None


def lookup(m: Any, key: str) -> Any:
    if type(m) is not dict and not isinstance(m, Mapping):  # the exact type first: the ABC check is slow
        return None
    k = find(key, m)
    return None if k is None else m[k]


def stat(stats: Mapping[str, Any], section: str, path: tuple[str, ...]) -> Any:
    v: Any = stats.get(section)
    for seg in path:
        v = lookup(v, seg)
    return v


PHYSICAL_NAME = "delta.columnMapping.physicalName"


def physical_names(schema: Mapping[str, Any], configuration: Mapping[str, str]) -> dict[str, str] | None:
    """Top-level column name -> physical name when the table maps columns (`delta.columnMapping.mode` name or
    id): its partition values and statistics are keyed by physical names. None without column mapping."""
    if str(configuration.get("delta.columnMapping.mode", "none")).lower() == "none":
        return None
    names = {}
    for f in schema.get("fields") or ():
        physical = (f.get("metadata") or {}).get(PHYSICAL_NAME) if isinstance(f, dict) else None
        if isinstance(physical, str) and isinstance(f.get("name"), str):
            names[f["name"]] = physical
    return names
