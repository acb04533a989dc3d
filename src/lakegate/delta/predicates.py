"""File pruning by Delta Sharing predicate hints (``jsonPredicateHints`` and SQL ``predicateHints``).

Pure logic, no I/O. The server builds one filter per query and calls it per candidate file as
``keep(partition_values, stats)``. Hints are best effort: anything we cannot parse makes the builder
return ``None`` (no filtering), and a filter returns ``False`` only when the file certainly holds no
matching row. Any doubt keeps the file.

Evaluation model: a predicate over the rows of one file evaluates to the *set* of SQL truth values
some row may produce (bits ``T``, ``F``, ``N`` for true/false/null). A file may be skipped iff ``T``
is impossible. Unlike the reference server's plain True/False/Unknown (whose ``not`` can wrongly
skip a file, e.g. ``not(x = 2)`` on a range [1, 3]), sets make ``not``/``and``/``or`` sound, and
they make SQL null semantics exact: ``null = x`` is null, so ``not(null = x)`` is still not true.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from lakegate.exceptions import InvalidParameterError

FileFilter = Callable[[Mapping[str, str | None], Mapping[str, Any] | None], bool]


@dataclass(frozen=True)
class PredicateLimits:
    """How much predicate work one request may ask for; past a bound the request is refused (400)."""

    max_chars: int = 1 << 20  # jsonPredicateHints, and all predicateHints together (1 MiB, as the reference)
    max_depth: int = 100  # op tree levels (a lone leaf is 1 level), as the reference server
    max_count: int = 1000  # predicateHints entries, and nodes of the jsonPredicateHints tree


T, F, N = 1, 2, 4
ANY = T | F | N  # nothing known

_Eval = Callable[[Mapping[str, str | None], Mapping[str, Any] | None], int]
_VALUE_TYPES = {"bool", "int", "long", "string", "date", "float", "double", "timestamp"}
_INTEGRAL = {"byte", "short", "integer", "long"}
_HIGH_CHARS = "\uffff\U0010ffff"  # tie-breakers writers append to a truncated string max
_MS = timedelta(milliseconds=1)

# Regular expressions here run on request input, so each is linear: no nested or adjacent unbounded
# quantifiers that can match the same text (numbers and SQL tokens are scanned by hand below).
_INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
_DATE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
# ISO-8601 / Delta partition form; more than 6 fraction digits is rejected rather than rounded,
# because rounding a literal could move it across a microsecond partition value.
_TS_RE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE | re.ASCII,
)


_HAS_ZONE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


def _digits_end(s: str, i: int) -> int:
    """The index after the run of ASCII digits starting at `i`."""
    while i < len(s) and "0" <= s[i] <= "9":
        i += 1
    return i


def _number_end(s: str, i: int) -> int:
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


def _is_float(s: str) -> bool:
    unsigned = s[1:] if s[:1] in ("+", "-") else s
    return unsigned in ("NaN", "Infinity") or (bool(s) and _number_end(s, 0) == len(s))


class _Invalid(Exception):  # noqa: N818  - internal, never escapes the module
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


def _parse(vt: str, s: str) -> Any:
    """Parse a literal (or a partition value string) of JSON valueType ``vt``; ValueError if it isn't one."""
    if vt == "string":
        return s
    s = s.strip()
    if vt == "bool" and s.lower() in ("true", "false"):
        return s.lower() == "true"
    if vt in ("int", "long") and _INT_RE.fullmatch(s):
        v, bits = int(s), (31 if vt == "int" else 63)
        if -(1 << bits) <= v < (1 << bits):
            return v
    elif vt in ("float", "double") and _is_float(s):
        return float(s)
    elif vt == "date" and (m := _DATE_RE.fullmatch(s)):
        return date(*map(int, m.groups()))
    elif vt == "timestamp":
        return _parse_ts(s)
    raise ValueError(f"not a {vt}: {s!r}")


def _parse_number(s: str) -> int | float:
    s = s.strip()
    if _INT_RE.fullmatch(s):
        return int(s)
    if _is_float(s):
        return float(s)
    raise ValueError(s)


def _from_stats(vt: str, v: Any) -> Any:
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
        return _parse(vt, v)
    raise ValueError(f"stats value {v!r} is not a {vt}")


def _compatible(vt: str, coltype: str | None) -> bool:
    """Whether comparing column values as ``vt`` orders them like the engine would."""
    if coltype is None:  # nested leaf / unknown type: the stats value's JSON type is checked instead
        return True
    if vt in ("int", "long", "float", "double"):
        return coltype in _INTEGRAL or coltype in ("float", "double") or coltype.startswith("decimal")
    return (
        coltype
        in {
            "bool": ("boolean",),
            "string": ("string",),
            "date": ("date",),
            "timestamp": ("timestamp", "timestamp_ntz"),
        }[vt]
    )


def _find(name: str, names: Any) -> str | None:
    """Exact match first, then a unique case-insensitive one."""
    if name in names:
        return name
    hits = [n for n in names if isinstance(n, str) and n.lower() == name.lower()]
    return hits[0] if len(hits) == 1 else None


def _lookup(m: Any, key: str) -> Any:
    if not isinstance(m, Mapping):
        return None
    k = _find(key, m)
    return None if k is None else m[k]


def _stat(stats: Mapping[str, Any], section: str, path: tuple[str, ...]) -> Any:
    v: Any = stats.get(section)
    for seg in path:
        v = _lookup(v, seg)
    return v


class _Range:
    """Non-null values of a column in a file lie within [lo, hi]; ``prefix``: hi may be a truncated string."""

    def __init__(
        self,
        lo: Any = None,
        hi: Any = None,
        *,
        prefix: bool = False,
        may_null: bool = True,
        has_values: bool = True,
    ) -> None:
        self.lo, self.hi, self.prefix, self.may_null, self.has_values = lo, hi, prefix, may_null, has_values


_Missing = object()


class _Lit(NamedTuple):
    value: Any
    vt: str


class _Col:
    """A column reference, resolved against the schema once per query."""

    def __init__(self, name: str, vt: str, partition_columns: Sequence[str], column_types: Mapping[str, str]):
        self.vt = vt
        self.part = _find(name, partition_columns)
        self.path: tuple[str, ...] | None = None
        top = self.part or _find(name, column_types)
        self.coltype: str | None = None if top is None else _lookup(column_types, top)
        if top is not None:
            self.path = (top,)
        elif "." in name and (top := _find(name.split(".", maxsplit=1)[0], column_types)) is not None:
            self.path = (top, *name.split(".")[1:])  # nested field: leaf type unknown to us
        self.ok = self.path is not None and _compatible(vt, self.coltype)

    def _raw_partition(self, pv: Mapping[str, str | None]) -> Any:
        k = _find(self.part, pv) if isinstance(pv, Mapping) and self.part else None
        return _Missing if k is None else pv[k]

    def range(  # noqa: PLR0911  - one return per kind of statistic
        self, pv: Mapping[str, str | None], stats: Mapping[str, Any] | None
    ) -> _Range | None:
        """The file's value range, or None when unknown."""
        if not self.ok:
            return None
        if self.part:
            raw = self._raw_partition(pv)
            if raw is _Missing:
                return None  # absent key: don't guess it is null
            if raw is None or raw == "":
                return _Range(may_null=True, has_values=False)
            if self.vt == "timestamp" and not _HAS_ZONE.search(raw.strip()):
                # `2024-01-01 10:00:00` is wall-clock time in the writer's session time zone (Spark), which
                # the log does not record: comparing it as UTC could drop matching files, so don't prune.
                return None
            v = _parse_number(raw) if self.vt in ("int", "long", "float", "double") else _parse(self.vt, raw)
            return _Range(v, v, may_null=False)
        if not isinstance(stats, Mapping):
            return None
        assert self.path is not None
        nulls, rows = _stat(stats, "nullCount", self.path), stats.get("numRecords")
        nulls = nulls if isinstance(nulls, int) and not isinstance(nulls, bool) else None
        may_null = nulls is None or nulls > 0
        if nulls is not None and isinstance(rows, int) and nulls >= rows:
            return _Range(may_null=may_null, has_values=False)  # all null (min/max are absent then)
        lo, hi = _stat(stats, "minValues", self.path), _stat(stats, "maxValues", self.path)
        if lo is None or hi is None:
            return None
        lo, hi = _from_stats(self.vt, lo), _from_stats(self.vt, hi)
        if self.vt == "timestamp":  # stats are truncated to milliseconds
            lo, hi = lo - _MS, hi + _MS
        return _Range(lo, hi, prefix=self.vt == "string", may_null=may_null)

    def is_null(self, pv: Mapping[str, str | None], stats: Mapping[str, Any] | None) -> int:
        if self.part:
            raw = self._raw_partition(pv)
            return T | F if raw is _Missing else T if raw is None or raw == "" else F
        if self.path is None or not isinstance(stats, Mapping):
            return T | F
        nulls, rows = _stat(stats, "nullCount", self.path), stats.get("numRecords")
        if not isinstance(nulls, int) or isinstance(nulls, bool):
            return T | F
        some_values = not isinstance(rows, int) or nulls < rows
        return (T if nulls > 0 else 0) | (F if some_values else 0)


def _compare(op: str, col: _Col, lit: Any, r: _Range) -> int:
    """Truth values ``col <op> lit`` may take over the rows of a file whose values lie in ``r``."""
    null_bit = N if r.may_null else 0
    if not r.has_values:
        return null_bit  # every row is null: the comparison is never true
    lo, hi = r.lo, r.hi
    if any(isinstance(x, float) and math.isnan(x) for x in (lo, hi, lit)):
        return ANY
    if isinstance(lo, (int, float)) and not isinstance(lo, bool):
        # Exact when the engine compares in double, or in integers (JSON ints for a nested leaf of unknown type).
        ints = isinstance(lit, int) and (
            col.coltype in _INTEGRAL or (col.coltype is None and all(isinstance(x, int) for x in (lo, hi)))
        )
        exact = col.coltype == "double" or ints
        if not exact:  # float32 / decimal-as-double stats, or float literals: rounding may differ by an ulp
            lo = lo - abs(lo) * 1e-6 if math.isfinite(lo) else lo
            hi = hi + abs(hi) * 1e-6 if math.isfinite(hi) else hi
    if r.prefix:
        # A string max may be a truncated prefix (plus a tie-breaker char): any value starting with that
        # prefix may exist, so only a literal beyond all such strings is above the max.
        stem = hi.rstrip(_HIGH_CHARS)
        can_gt = stem > lit or lit.startswith(stem)
        can_eq = lo <= lit and (stem >= lit or lit.startswith(stem))
    else:
        can_gt, can_eq = hi > lit, lo <= lit <= hi
    can_lt = lo < lit
    t, f = {
        "equal": (can_eq, can_lt or can_gt),
        "lessThan": (can_lt, can_eq or can_gt),
        "lessThanOrEqual": (can_lt or can_eq, can_gt),
        "greaterThan": (can_gt, can_lt or can_eq),
        "greaterThanOrEqual": (can_gt or can_eq, can_lt),
    }[op]
    return (T if t else 0) | (F if f else 0) | null_bit


def _not(s: int) -> int:
    return ((s & T) << 1) | ((s & F) >> 1) | (s & N)


def _and(sets: list[int]) -> int:
    # Over-approximation: a row is true only if every child may be true for some row, etc.
    out = T if all(s & T for s in sets) else 0
    out |= F if any(s & F for s in sets) else 0
    return out | (N if any(s & N for s in sets) and all(s & (T | N) for s in sets) else 0)


def _or(sets: list[int]) -> int:
    return _not(_and([_not(s) for s in sets]))


def _comparison(op: str, col: _Col, lit: Any) -> _Eval:
    if not col.ok or (isinstance(lit, float) and math.isnan(lit)):
        return lambda pv, st: ANY

    def ev(pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        r = col.range(pv, st)
        return ANY if r is None else _compare(op, col, lit, r)

    return ev


def _safe(ev: _Eval) -> _Eval:
    def run(pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        try:
            return ev(pv, st)
        except Exception:  # noqa: BLE001  - odd stats or partition value: unknown for this node only
            return ANY

    return run


def _bool_column(col: _Col) -> _Eval:
    """A bare boolean column used as a predicate."""

    def ev(pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        r = col.range(pv, st)
        if r is None:
            return ANY
        if not r.has_values:
            return N if r.may_null else 0
        return (T if r.hi is True else 0) | (F if r.lo is False else 0) | (N if r.may_null else 0)

    return ev if col.ok and col.vt == "bool" else (lambda pv, st: ANY)


_FLIP = {
    "equal": "equal",
    "lessThan": "greaterThan",
    "lessThanOrEqual": "greaterThanOrEqual",
    "greaterThan": "lessThan",
    "greaterThanOrEqual": "lessThanOrEqual",
}


_Node = _Col | _Lit | _Eval
_ARITY = {"isNull": 1, "not": 1, **dict.fromkeys(_FLIP, 2)}  # "and" / "or" take two or more


class _Schema(NamedTuple):
    parts: Sequence[str]
    types: Mapping[str, str]


def _compile_json(node: Any, schema: _Schema) -> _Node:
    """Validate and compile one op node; leaves come back as _Col / _Lit. (Depth was checked before.)"""
    if not isinstance(node, dict):
        raise _Invalid("not an object")
    op = node.get("op")
    if op in ("column", "literal"):
        return _json_leaf(node, op, schema)
    kids = [_compile_json(c, schema) for c in _json_children(node, op)]
    if op == "isNull":
        return _json_is_null(kids)
    if op in _FLIP:
        return _json_comparison(op, kids)
    evs = [_as_eval(k) for k in kids]
    if op == "not":
        return lambda pv, st: _not(evs[0](pv, st))
    combine_sets = _and if op == "and" else _or
    return lambda pv, st: combine_sets([e(pv, st) for e in evs])


def _json_leaf(node: dict[str, Any], op: str, schema: _Schema) -> _Col | _Lit:
    vt = node.get("valueType")
    if vt not in _VALUE_TYPES:
        raise _Invalid(f"bad valueType {vt!r}")
    if op == "column":
        if not isinstance(node.get("name"), str):
            raise _Invalid("column without name")
        return _Col(node["name"], vt, schema.parts, schema.types)
    if not isinstance(node.get("value"), str):
        raise _Invalid("literal without string value")
    try:
        return _Lit(_parse(vt, node["value"]), vt)
    except (ValueError, OverflowError) as e:
        raise _Invalid(str(e)) from e


def _json_children(node: dict[str, Any], op: Any) -> list[Any]:
    children = node.get("children")
    if not isinstance(op, str) or (op not in _ARITY and op not in ("and", "or")):
        raise _Invalid(f"unknown op {op!r}")
    if not isinstance(children, list):
        raise _Invalid(f"{op}: no children")
    if (len(children) < 2) if op in ("and", "or") else (len(children) != _ARITY[op]):
        raise _Invalid(f"{op}: wrong number of children")
    return children


def _json_is_null(kids: list[_Node]) -> _Eval:
    (k,) = kids
    if isinstance(k, _Col):
        return _safe(k.is_null)
    if isinstance(k, _Lit):
        return lambda pv, st: F  # literals aren't null
    raise _Invalid("isNull takes a leaf")


def _json_comparison(op: str, kids: list[_Node]) -> _Eval:
    a, b = kids
    if not all(isinstance(k, (_Col, _Lit)) for k in kids):
        raise _Invalid(f"{op} takes leaf children")
    if isinstance(a, _Lit) and isinstance(b, _Col):  # literal on the left: flip the comparison
        a, b, op = b, a, _FLIP[op]
    if not (isinstance(a, _Col) and isinstance(b, _Lit)) or a.vt != b.vt:
        return lambda pv, st: ANY  # two columns, two literals, or mismatched types
    return _safe(_comparison(op, a, b.value))


def _as_eval(k: _Col | _Lit | _Eval) -> _Eval:
    if isinstance(k, _Col):
        return _safe(_bool_column(k))
    if isinstance(k, _Lit):
        value = (T if k.value else F) if k.vt == "bool" else ANY
        return lambda pv, st: value
    return k


def _to_filter(ev: _Eval) -> FileFilter:
    def keep(partition_values: Mapping[str, str | None], stats: Mapping[str, Any] | None) -> bool:
        try:
            return bool(ev(partition_values, stats) & T)
        except Exception:  # noqa: BLE001  - never let a hint break a query
            return True

    return keep


def json_predicate_filter(
    hint: str | None,
    *,
    partition_columns: Sequence[str],
    column_types: Mapping[str, str],
    limits: PredicateLimits = PredicateLimits(),
) -> FileFilter | None:
    """Filter for a ``jsonPredicateHints`` string, or None (no filtering) if empty or invalid.
    InvalidParameterError when the hint is longer, deeper or larger than `limits` allow."""
    if not isinstance(hint, str) or not hint.strip():
        return None
    if len(hint) > limits.max_chars:
        raise InvalidParameterError(
            f"jsonPredicateHints is {len(hint)} characters; this server accepts at most {limits.max_chars}"
        )
    try:
        tree = orjson.loads(hint)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):  # nested beyond what the parser takes: far past any op depth
            raise InvalidParameterError(_too_deep(limits)) from None
        return None
    _check_tree_size(tree, limits)
    try:
        return _to_filter(_as_eval(_compile_json(tree, _Schema(list(partition_columns), dict(column_types)))))
    except Exception:  # noqa: BLE001  - _Invalid, unhashable "op" values, ...
        return None


def _too_deep(limits: PredicateLimits) -> str:
    return f"jsonPredicateHints is nested more than {limits.max_depth} levels deep"


def _check_tree_size(tree: Any, limits: PredicateLimits) -> None:
    """Count op levels and nodes without recursion; InvalidParameterError past the limits."""
    level, nodes = [tree], 0
    for depth in range(1, limits.max_depth + 2):
        nodes += len(level)
        if nodes > limits.max_count:
            raise InvalidParameterError(
                f"jsonPredicateHints has more than {limits.max_count} nodes, the most this server accepts"
            )
        level = [
            child
            for node in level
            if isinstance(node, dict) and isinstance(node.get("children"), list)
            for child in node["children"]
        ]
        if not level:
            return
        if depth == limits.max_depth:
            raise InvalidParameterError(_too_deep(limits))


# ---- SQL predicateHints: `col op literal`, `literal op col`, `col IS [NOT] NULL`, partition columns only.

_SQL_OPS = {
    "=": "equal",
    "==": "equal",
    "<": "lessThan",
    "<=": "lessThanOrEqual",
    ">": "greaterThan",
    ">=": "greaterThanOrEqual",
    "<>": "!=",
    "!=": "!=",
}
_SQL_CASTS = {
    "date": "date",
    "timestamp": "timestamp",
    "string": "str",
    "boolean": "bool",
    **dict.fromkeys(("tinyint", "smallint", "int", "integer", "bigint", "long", "float", "double"), "num"),
}


def _family(coltype: str | None) -> str | None:
    if coltype in _INTEGRAL or coltype in ("float", "double") or (coltype or "").startswith("decimal"):
        return "num"
    return {
        "string": "str",
        "boolean": "bool",
        "date": "date",
        "timestamp": "timestamp",
        "timestamp_ntz": "timestamp",
    }.get(coltype or "")


_SQL_OPERATORS = ("<=", ">=", "<>", "!=", "==", "=", "<", ">", "(", ")", ",")


def _sql_tokens(s: str) -> list[tuple[str, str]] | None:
    """(kind, text) tokens of a hint: 'str' (unquoted), 'op', 'num', 'id' (backquoted as written); None if
    something is not a token. Hand-written: one pass over the text, whatever it holds."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i].isspace():
            i += 1
        if i == n:
            return out
        token = _sql_token(s, i)
        if token is None:
            return None
        kind, text, i = token
        out.append((kind, text))


def _sql_token(s: str, i: int) -> tuple[str, str, int] | None:
    """The token at `i` and the index after it, or None."""
    if s[i] in "'`":
        return _quoted_token(s, i)
    for op in _SQL_OPERATORS:
        if s.startswith(op, i):
            return "op", op, i + len(op)
    return _number_or_name(s, i)


def _quoted_token(s: str, i: int) -> tuple[str, str, int] | None:
    quote = s[i]
    found = _quoted(s, i, quote)
    if found is None:
        return None
    text, end = found
    if quote == "'":
        # Strings may not contain backslashes: Spark unescapes them and we'd compare against the wrong value.
        return None if "\\" in text else ("str", text, end)
    return ("id", s[i:end], end) if text else None  # a `quoted name`, kept as written


def _number_or_name(s: str, i: int) -> tuple[str, str, int] | None:
    end = _number_end(s, i)
    if end > i:
        if end < len(s) and (s[end] == "." or _is_word_char(s[end])):
            return None  # `1x`, `1.2.3`: not a number, and not a name either
        return "num", s[i:end], end
    if not _is_word_char(s[i]) or s[i].isdecimal():
        return None
    end = i + 1
    while end < len(s) and _is_word_char(s[end]):
        end += 1
    return "id", s[i:end], end


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _quoted(s: str, i: int, quote: str) -> tuple[str, int] | None:
    """The content of the quoted text starting at `i` (a doubled quote stands for one) and the index after
    the closing quote; None if it is not closed."""
    parts, j = [], i + 1
    while True:
        k = s.find(quote, j)
        if k < 0:
            return None
        parts.append(s[j:k])
        if s.startswith(quote, k + 1):  # doubled: one quote character, the text goes on
            parts.append(quote)
            j = k + 2
            continue
        return "".join(parts), k + 1


def _sql_operand(t: list[tuple[str, str]]) -> tuple[str, Any] | None:
    """('col', name) or (literal family, text) for a whole token run; None if unsupported."""
    kinds, up = [k for k, _ in t], [v.upper() for _, v in t]
    if kinds == ["id"]:
        if up[0] in ("TRUE", "FALSE"):
            return ("bool", up[0].lower())
        name = t[0][1]
        return None if up[0] == "NULL" else ("col", name[1:-1].replace("``", "`") if name[0] == "`" else name)
    if kinds in (["str"], ["num"]):
        return (kinds[0], t[0][1])
    if kinds == ["id", "str"] and up[0] in ("DATE", "TIMESTAMP"):
        return (up[0].lower(), t[1][1])
    if (
        len(t) == 6
        and up[0] == "CAST"
        and t[1] == ("op", "(")
        and kinds[2] in ("str", "num")
        and up[3] == "AS"
        and kinds[4] == "id"
        and t[5] == ("op", ")")
    ):
        fam = _SQL_CASTS.get(t[4][1].lower())  # CAST('2021-04-28' AS DATE)
        return None if fam is None else (fam, t[2][1])
    return None


def _sql_conjunct(hint: str, schema: _Schema) -> _Eval | None:
    toks = _sql_tokens(hint)
    if not toks:
        return None
    words = [v.upper() if k == "id" else None for k, v in toks]
    if words[-2:] == ["IS", "NULL"] or words[-3:] == ["IS", "NOT", "NULL"]:
        return _sql_is_null(toks, words[-2] == "NOT", schema)
    return _sql_comparison(toks, schema)


def _sql_is_null(toks: list[tuple[str, str]], negate: bool, schema: _Schema) -> _Eval | None:
    operand = _sql_operand(toks[: -3 if negate else -2])
    if not operand or operand[0] != "col" or _find(operand[1], schema.parts) is None:
        return None
    col = _Col(operand[1], "string", schema.parts, schema.types)
    return (lambda pv, st: _not(col.is_null(pv, st))) if negate else col.is_null


def _sql_comparison(toks: list[tuple[str, str]], schema: _Schema) -> _Eval | None:
    ops = [i for i, (k, v) in enumerate(toks) if k == "op" and v in _SQL_OPS]
    if len(ops) != 1:
        return None
    i = ops[0]
    left, right, op = _sql_operand(toks[:i]), _sql_operand(toks[i + 1 :]), _SQL_OPS[toks[i][1]]
    if not left or not right:
        return None
    if left[0] != "col":  # literal on the left: flip
        left, right, op = right, left, _FLIP.get(op, op)
    if left[0] != "col" or right[0] == "col":
        return None
    part = _find(left[1], schema.parts)
    fam = _family(None if part is None else _lookup(schema.types, part))
    if part is None or fam is None or right[0] not in (fam, "str"):
        return None  # non-partition column, untyped column, or a literal Spark would coerce differently
    literal = _sql_literal(fam, right[0], right[1])
    if literal is None:
        return None
    lit, vt = literal
    col = _Col(part, vt, schema.parts, schema.types)
    cmp = _comparison("equal" if op == "!=" else op, col, lit)
    return _safe((lambda pv, st: _not(cmp(pv, st))) if op == "!=" else cmp)


def _sql_literal(fam: str, kind: str, text: str) -> tuple[Any, str] | None:
    """(value, JSON valueType) of a literal compared with a column of family `fam`, or None."""
    try:
        if fam != "num":
            vt = {"str": "string", "bool": "bool", "date": "date", "timestamp": "timestamp"}[fam]
            return _parse(vt, text), vt
        if kind == "str" and not _INT_RE.fullmatch(text.strip()):
            return None  # Spark may cast '1.5' to an int column as 1; don't guess
        number = _parse_number(text)
        return number, ("long" if isinstance(number, int) else "double")
    except (ValueError, OverflowError):
        return None


def sql_predicate_filter(
    hints: Sequence[str] | None,
    *,
    partition_columns: Sequence[str],
    column_types: Mapping[str, str],
    limits: PredicateLimits = PredicateLimits(),
) -> FileFilter | None:
    """Filter for SQL ``predicateHints`` (AND-ed); hints we can't use are skipped. None if none is usable.
    InvalidParameterError when there are more hints, or more text, than `limits` allow."""
    if isinstance(hints, str):
        hints = [hints]
    hints = [h for h in hints or () if isinstance(h, str)]
    if len(hints) > limits.max_count:
        raise InvalidParameterError(
            f"predicateHints has {len(hints)} entries; this server accepts at most {limits.max_count}"
        )
    if sum(map(len, hints)) > limits.max_chars:
        raise InvalidParameterError(
            f"predicateHints hold more than {limits.max_chars} characters, the most this server accepts"
        )
    schema = _Schema(list(partition_columns or ()), dict(column_types or {}))
    evs = []
    for h in hints:
        try:
            ev = _sql_conjunct(h, schema)
        except Exception:  # noqa: BLE001  - an unparsable hint filters nothing
            ev = None
        if ev is not None:
            evs.append(ev)
    if not evs:
        return None
    return _to_filter(lambda pv, st: _and([e(pv, st) for e in evs]))


def combine(*filters: FileFilter | None) -> FileFilter | None:
    """AND of the given filters, ignoring None; None if all are None."""
    fs = [f for f in filters if f is not None]
    if len(fs) <= 1:
        return fs[0] if fs else None
    return lambda pv, st: all(f(pv, st) for f in fs)
