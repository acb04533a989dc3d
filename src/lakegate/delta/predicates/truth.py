"""Evaluating a compiled predicate over one file: the set of SQL truth values its rows may produce.

A predicate over the rows of one file evaluates to the *set* of truth values some row may produce (bits ``T``,
``F``, ``N`` for true/false/null). A file may be skipped iff ``T`` is impossible. Unlike the reference server's
plain True/False/Unknown (whose ``not`` can wrongly skip a file, e.g. ``not(x = 2)`` on a range [1, 3]), sets make
``not``/``and``/``or`` sound, and they make SQL null semantics exact: ``null = x`` is null, so ``not(null = x)`` is
still not true.

Cost: `FileFilter.select` evaluates the predicate once per distinct partition value tuple with the statistics
unknown, which decides every file of a partition when the predicate reads partition columns only, and drops a
partition whole when even unknown statistics cannot make it match. Only the files left are evaluated one by one,
their stats JSON parsed (whole: orjson is faster than picking columns out by hand) only when the predicate reads
statistics; `and` and `or` stop at the first child that decides them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import orjson

from lakegate.delta.predicates.values import (
    HAS_ZONE,
    INTEGRAL,
    compatible,
    find,
    from_stats,
    lookup,
    parse_number,
    parse_value,
    stat,
)


class Files(Protocol):
    """A batch of files evaluated column-wise (`columns.Files`): what the compiled nodes below call."""

    count: int

    def per_partition(self, ev: Eval, col: Col) -> Sets: ...
    def is_null(self, col: Col) -> Sets: ...
    def compare(self, op: str, col: Col, lit: Any, ev: Eval) -> Sets: ...


@dataclass(frozen=True)
class PredicateLimits:
    """How much predicate work one request may ask for; past a bound the request is refused (400)."""

    max_chars: int = 1 << 20  # jsonPredicateHints, and all predicateHints together (1 MiB, as the reference)
    max_depth: int = 100  # op tree levels (a lone leaf is 1 level), as the reference server
    max_count: int = 1000  # predicateHints entries, and nodes of the jsonPredicateHints tree


DEFAULT_LIMITS = PredicateLimits()

T, F, N = 1, 2, 4
ANY = T | F | N  # nothing known

Eval = Callable[[Mapping[str, str | None], Mapping[str, Any] | None], int]
Sets = np.ndarray  # truth sets of many files at once (uint8, one per file)
HIGH_CHARS = "\uffff\U0010ffff"  # tie-breakers writers append to a truncated string max
_MS = timedelta(milliseconds=1)


class Range:
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


class Lit(NamedTuple):
    value: Any
    vt: str


class Columnar:
    """A compiled node with a column-wise form: called with one file's partition values and stats it gives that
    file's truth set; `columns(files)` gives the truth sets of a batch of files at once (`columns.Files`). Nodes
    without one (plain functions) make a filter evaluate file by file."""

    __slots__ = ("columns", "row")

    def __init__(self, row: Eval, columns: Callable[[Files], Sets]) -> None:
        self.row, self.columns = row, columns

    def __call__(self, pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        return self.row(pv, st)


def columns_of(ev: Eval) -> Callable[[Files], Sets] | None:
    return ev.columns if isinstance(ev, Columnar) else None


def constant(value: int) -> Columnar:
    return Columnar(lambda pv, st: value, lambda files: np.full(files.count, value, np.uint8))


class Col:
    """A column reference, resolved against the schema once per query. With column mapping, partition values and
    statistics are keyed by the column's physical name (`physical`: top-level logical -> physical name)."""

    def __init__(
        self,
        name: str,
        vt: str,
        partition_columns: Sequence[str],
        column_types: Mapping[str, str],
        physical: Mapping[str, str] | None = None,
    ):
        self.vt = vt
        part = find(name, partition_columns)
        self.path: tuple[str, ...] | None = None
        top = part or find(name, column_types)
        self.coltype: str | None = None if top is None else lookup(column_types, top)
        if top is not None:
            self.path = (physical.get(top, top),) if physical else (top,)
        elif (
            "." in name
            and not physical  # nested fields have physical names of their own: unknown here, don't guess
            and (top := find(name.split(".", maxsplit=1)[0], column_types)) is not None
        ):
            self.path = (top, *name.split(".")[1:])  # nested field: leaf type unknown to us
        self.part = part and (physical.get(part, part) if physical else part)  # the key in partitionValues
        self.ok = self.path is not None and compatible(vt, self.coltype)

    @property
    def uses_stats(self) -> bool:
        """Whether evaluating it may read the file's statistics (a column that is not a partition column)."""
        return not self.part and self.path is not None

    def _raw_partition(self, pv: Mapping[str, str | None]) -> Any:
        k = find(self.part, pv) if isinstance(pv, Mapping) and self.part else None
        return _Missing if k is None else pv[k]

    def range(  # noqa: PLR0911  - one return per kind of statistic
        self, pv: Mapping[str, str | None], stats: Mapping[str, Any] | None
    ) -> Range | None:
        """The file's value range, or None when unknown."""
        if not self.ok:
            return None
        if self.part:
            raw = self._raw_partition(pv)
            if raw is _Missing:
                return None  # absent key: don't guess it is null
            if raw is None or raw == "":
                return Range(may_null=True, has_values=False)
            if self.vt == "timestamp" and not HAS_ZONE.search(raw.strip()):
                # `2024-01-01 10:00:00` is wall-clock time in the writer's session time zone (Spark), which
                # the log does not record: comparing it as UTC could drop matching files, so don't prune.
                return None
            v = (
                parse_number(raw)
                if self.vt in ("int", "long", "float", "double")
                else parse_value(self.vt, raw)
            )
            return Range(v, v, may_null=False)
        if type(stats) is not dict and not isinstance(
            stats, Mapping
        ):  # the exact type first: the ABC check is slow
            return None
        assert self.path is not None
        nulls, rows = stat(stats, "nullCount", self.path), stats.get("numRecords")
        nulls = nulls if isinstance(nulls, int) and not isinstance(nulls, bool) else None
        may_null = nulls is None or nulls > 0
        if nulls is not None and isinstance(rows, int) and nulls >= rows:
            return Range(may_null=may_null, has_values=False)  # all null (min/max are absent then)
        lo, hi = stat(stats, "minValues", self.path), stat(stats, "maxValues", self.path)
        if lo is None or hi is None:
            return None
        lo, hi = from_stats(self.vt, lo), from_stats(self.vt, hi)
        if self.vt == "timestamp":  # stats are truncated to milliseconds
            lo, hi = lo - _MS, hi + _MS
        return Range(lo, hi, prefix=self.vt == "string", may_null=may_null)

    def is_null(self, pv: Mapping[str, str | None], stats: Mapping[str, Any] | None) -> int:
        if self.part:
            raw = self._raw_partition(pv)
            return T | F if raw is _Missing else T if raw is None or raw == "" else F
        if self.path is None or not isinstance(stats, Mapping):
            return T | F
        nulls, rows = stat(stats, "nullCount", self.path), stats.get("numRecords")
        if not isinstance(nulls, int) or isinstance(nulls, bool):
            return T | F
        some_values = not isinstance(rows, int) or nulls < rows
        return (T if nulls > 0 else 0) | (F if some_values else 0)


def compare(op: str, col: Col, lit: Any, r: Range) -> int:
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
            col.coltype in INTEGRAL or (col.coltype is None and all(isinstance(x, int) for x in (lo, hi)))
        )
        exact = col.coltype == "double" or ints
        if not exact:  # float32 / decimal-as-double stats, or float literals: rounding may differ by an ulp
            lo = lo - abs(lo) * 1e-6 if math.isfinite(lo) else lo
            hi = hi + abs(hi) * 1e-6 if math.isfinite(hi) else hi
    if r.prefix:
        # A string max may be a truncated prefix (plus a tie-breaker char): any value starting with that
        # prefix may exist, so only a literal beyond all such strings is above the max.
        stem = hi.rstrip(HIGH_CHARS)
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


S = TypeVar("S", int, np.ndarray)


def not_set(s: S) -> S:
    """Works on one truth set or, element-wise, on an array of them."""
    return ((s & T) << 1) | ((s & F) >> 1) | (s & N)


def and_arrays(sets: list[Sets]) -> Sets:
    """`and_sets` element-wise over the files of a batch."""
    t, t_or_n = np.ones(len(sets[0]), bool), np.ones(len(sets[0]), bool)
    f, n = np.zeros(len(sets[0]), bool), np.zeros(len(sets[0]), bool)
    for s in sets:
        t &= (s & T) != 0
        f |= (s & F) != 0
        n |= (s & N) != 0
        t_or_n &= (s & (T | N)) != 0
    return np.asarray(t * T | f * F | (n & t_or_n) * N, dtype=np.uint8)


def negated(ev: Eval) -> Eval:
    """`not` of a node (column-wise when it has that form)."""
    columns = columns_of(ev)
    row: Eval = lambda pv, st: not_set(ev(pv, st))  # noqa: E731
    return row if columns is None else Columnar(row, lambda files: not_set(columns(files)))


def and_sets(sets: list[int]) -> int:
    # Over-approximation: a row is true only if every child may be true for some row, etc.
    out = T if all(s & T for s in sets) else 0
    out |= F if any(s & F for s in sets) else 0
    return out | (N if any(s & N for s in sets) and all(s & (T | N) for s in sets) else 0)


def or_sets(sets: list[int]) -> int:
    return not_set(and_sets([not_set(s) for s in sets]))


def all_of(evs: Sequence[Eval], exact: bool) -> Eval:
    """AND of the children, stopping early when the rest cannot change what the caller needs: F once a child
    is certainly false; when only the T bit matters (`exact` False: not below a `not`), once a child cannot be
    true. Later children, and the stats they would parse, are then not evaluated."""

    def ev(pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        sets = []
        for e in evs:
            s = e(pv, st)
            if s == F or not (exact or s & T):
                return F
            sets.append(s)
        return and_sets(sets)

    kids = [columns_of(e) for e in evs]
    if any(k is None for k in kids):
        return ev
    return Columnar(ev, lambda files: and_arrays([k(files) for k in kids if k is not None]))


def any_of(evs: Sequence[Eval], exact: bool) -> Eval:
    """OR of the children, stopping at T once a child is certainly true, or (`exact` False) may be true."""

    def ev(pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        sets = []
        for e in evs:
            s = e(pv, st)
            if s == T or (s & T and not exact):
                return T
            sets.append(s)
        return or_sets(sets)

    kids = [columns_of(e) for e in evs]
    if any(k is None for k in kids):
        return ev
    return Columnar(ev, lambda files: not_set(and_arrays([not_set(k(files)) for k in kids if k is not None])))


def comparison(op: str, col: Col, lit: Any) -> Eval:
    if not col.ok or (isinstance(lit, float) and math.isnan(lit)):
        return constant(ANY)

    def ev(pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        r = col.range(pv, st)
        return ANY if r is None else compare(op, col, lit, r)

    return Columnar(ev, lambda files: files.compare(op, col, lit, ev))


def is_null(col: Col) -> Columnar:
    return Columnar(col.is_null, lambda files: files.is_null(col))


def safe(ev: Eval) -> Eval:
    def run(pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        try:
            return ev(pv, st)
        except Exception:  # noqa: BLE001  - odd stats or partition value: unknown for this node only
            return ANY

    # Column-wise, an error ends the column-wise evaluation: the filter then evaluates file by file.
    columns = columns_of(ev)
    return run if columns is None else Columnar(run, columns)


def bool_column(col: Col) -> Eval:
    """A bare boolean column used as a predicate."""

    def ev(pv: Mapping[str, str | None], st: Mapping[str, Any] | None) -> int:
        r = col.range(pv, st)
        if r is None:
            return ANY
        if not r.has_values:
            return N if r.may_null else 0
        return (T if r.hi is True else 0) | (F if r.lo is False else 0) | (N if r.may_null else 0)

    if not (col.ok and col.vt == "bool"):
        return constant(ANY)
    return Columnar(ev, lambda files: files.per_partition(ev, col))


FLIP = {
    "equal": "equal",
    "lessThan": "greaterThan",
    "lessThanOrEqual": "greaterThanOrEqual",
    "greaterThan": "lessThan",
    "greaterThanOrEqual": "lessThanOrEqual",
}


Node = Col | Lit | Eval


@dataclass
class Schema:
    """What column references resolve against; `columns` collects every column a predicate references."""

    parts: Sequence[str]
    types: Mapping[str, str]
    physical: Mapping[str, str] | None = None  # column mapping: top-level logical name -> physical name
    columns: list[Col] = field(default_factory=list)

    def column(self, name: str, vt: str) -> Col:
        col = Col(name, vt, self.parts, self.types, self.physical)
        self.columns.append(col)
        return col

    @property
    def uses_stats(self) -> bool:
        return any(c.uses_stats for c in self.columns)


Item = TypeVar("Item")


class FileFilter:
    """A compiled predicate hint: `filter(partition_values, stats)` is False only when the file certainly holds
    no matching row. Never raises: an evaluation error keeps the file."""

    def __init__(self, evaluate: Eval, uses_stats: bool, columns: Sequence[Col] = ()) -> None:
        self.evaluate = evaluate  # the truth set, exact in its T bit (what decides whether to keep a file)
        self.uses_stats = uses_stats  # False: partition values decide alone
        self.columns = tuple(columns)  # the columns it references

    def __call__(self, partition_values: Mapping[str, str | None], stats: Mapping[str, Any] | None) -> bool:
        try:
            return bool(self.evaluate(partition_values, stats) & T)
        except Exception:  # noqa: BLE001  - never let a hint break a query
            return True

    def keeps(self, partition_values: Mapping[str, str | None] | None, stats_json: str | None) -> bool:
        """Whether to keep a file given its partition values and raw stats JSON (parsed only if the predicate
        reads statistics; stats that are not a JSON object tell nothing)."""
        stats = None
        if stats_json and self.uses_stats:
            with contextlib.suppress(orjson.JSONDecodeError):
                stats = orjson.loads(stats_json)
        return self(partition_values or {}, stats if type(stats) is dict else None)

    def select(
        self,
        items: Iterable[Item],
        partition_values: Callable[[Item], Mapping[str, str | None] | None],
        stats_json: Callable[[Item], str | None],
    ) -> list[Item]:
        """The items kept, in order. The predicate is evaluated once per distinct partition value tuple with the
        statistics unknown: when even then no row can match, every file of the partition is dropped unread (truth
        sets only grow with what is unknown). Without statistics in the predicate that decides; otherwise each
        remaining file is evaluated with its own statistics."""
        verdicts: dict[tuple[tuple[str, str | None], ...], bool] = {}
        kept = []
        for item in items:
            values = partition_values(item) or {}
            key = tuple(values.items())
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = verdicts[key] = self(values, None)
            if verdict and (not self.uses_stats or self.keeps(values, stats_json(item))):
                kept.append(item)
        return kept


def combine(*filters: FileFilter | None) -> FileFilter | None:
    """AND of the given filters, ignoring None; None if all are None."""
    fs = [f for f in filters if f is not None]
    if len(fs) <= 1:
        return fs[0] if fs else None
    # Each child safe on its own, as when they were called one by one: an error in one keeps what it decides.
    return FileFilter(
        all_of([safe(f.evaluate) for f in fs], exact=False),
        any(f.uses_stats for f in fs),
        [c for f in fs for c in f.columns],
    )
