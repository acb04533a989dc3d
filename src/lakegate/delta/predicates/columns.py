"""Evaluating a predicate over many files at once (`select_columns`): truth sets as numpy arrays.

The predicate is first evaluated once per distinct partition value tuple with the statistics unknown (as
`FileFilter.select`), which drops whole partitions unread. For the files left, when the predicate reads
statistics, only the referenced columns' ``minValues``/``maxValues``/``nullCount`` and ``numRecords`` are read from
the stats JSON column, with pyarrow's JSON reader (C++, typed by the column's Delta type), and each comparison is
one vectorised test over all files. The result is the same as evaluating file by file (`truth.Col.range` and
`truth.compare` are the reference, kept in step here), with one more conservative case: stats pyarrow cannot read
as the column's type (a string where a number belongs, a float in an integer column) make their rows unknown (kept)
instead of being read field by field. A node this module cannot evaluate (nested fields, boolean statistics) makes
the caller evaluate file by file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from lakegate._arrow import string_buffers
from lakegate.delta.predicates.truth import ANY, HIGH_CHARS, Col, Eval, F, N, Sets, T, columns_of
from lakegate.delta.predicates.values import INTEGRAL, parse_value

if TYPE_CHECKING:
    from lakegate.delta.predicates.truth import FileFilter

log = logging.getLogger("lakegate.predicates")
PartitionValues = dict[str, str | None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MS_US = 1000  # stats timestamps are truncated to milliseconds: widen ranges by one
_MAX_PREFIX_LITERAL = 4096  # a string literal's prefixes are a lookup set: past this, evaluate file by file
_READ_ROWS = 1 << 16  # stats read at a time
_BLOCK_ROWS = 4096  # stats rows read at a time when a whole block does not read (one bad row)
_DATE = r"^\s*(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\s*$"


class Unsupported(Exception):  # noqa: N818  - internal, never escapes the module
    """A node that has no column-wise form here: the filter evaluates file by file."""


def select_columns(
    keep: FileFilter, partition_values: pa.Array | pa.ChunkedArray, stats_json: Callable[[np.ndarray], Any]
) -> np.ndarray:
    """The indices of the files `keep` keeps, given a map<string, string> Arrow column of their partition
    values and a function giving their raw stats (a string column) for some of them: once per distinct partition
    as `FileFilter.select`, then the files left column-wise, their stats read with pyarrow for the referenced
    columns only. Gives what `select` gives (or keeps a file `select` drops when its stats are not what pyarrow
    can read as the column's type)."""
    try:
        return _select_columns(keep, partition_values, stats_json)
    except Exception:  # a column Arrow cannot take as expected: never fail a query for a hint
        log.warning(
            "predicate hints evaluated file by file: the column-wise evaluation failed", exc_info=True
        )
    values = [dict(v) if v is not None else None for v in partition_values.to_pylist()]
    stats = stats_json(np.arange(len(values))).to_pylist()
    return np.array(keep.select(range(len(values)), values.__getitem__, stats.__getitem__), dtype=np.intp)


def _select_columns(
    keep: FileFilter, partition_values: pa.Array | pa.ChunkedArray, stats_json: Callable[[np.ndarray], Any]
) -> np.ndarray:
    maps = _map_array(partition_values)
    group, groups = _partitions(maps, sorted({c.part for c in keep.columns if c.part}))
    verdicts = np.array([keep(values, None) for values in groups], dtype=bool)
    rows = np.flatnonzero(verdicts[group])
    if not keep.uses_stats or not len(rows):
        return rows
    stats = stats_json(rows)
    columns = columns_of(keep.evaluate)
    if columns is not None:
        try:
            sets = columns(Files(group[rows], groups, stats, keep.columns))
            return np.asarray(rows[(sets & T) != 0])
        except Unsupported:
            pass
    # File by file (the predicate references what has no column-wise form).
    raw = stats.to_pylist()
    kept = [keep.keeps(groups[g], s) for g, s in zip(group[rows].tolist(), raw, strict=True)]
    return np.asarray(rows[np.array(kept, dtype=bool)])


def _map_array(values: pa.Array | pa.ChunkedArray) -> pa.MapArray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    if not isinstance(values, pa.MapArray):
        raise TypeError(f"partition values must be a map column, not {values.type}")
    return values


def _partitions(maps: pa.MapArray, names: Sequence[str]) -> tuple[np.ndarray, list[PartitionValues]]:
    """Each file's partition group (an index into the list), and each group's values of the `names` (the
    partition columns the predicate references; a name absent from a file's map is absent from its dict, so it
    reads as unknown rather than null)."""
    if not names or not len(maps):
        return np.zeros(len(maps), dtype=np.intp), [{}]
    starts, ends = _bounds(maps)
    codes, dictionaries = [], []
    for name in names:
        hit = pc.fill_null(pc.equal(maps.keys, name), False).to_numpy(zero_copy_only=False)
        seen = np.concatenate([[0], np.cumsum(hit)])
        present = seen[ends] > seen[starts]
        encoded = pc.dictionary_encode(pc.map_lookup(maps, pa.scalar(name), "first"), null_encoding="encode")
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        codes.append(np.where(present, indices.astype(np.int64) + 1, 0))
        dictionaries.append(encoded.dictionary.to_pylist())
    matrix = np.stack(codes, axis=1)
    group = _group_ids(matrix, [len(words) + 1 for words in dictionaries])
    first = np.empty(int(group.max()) + 1, dtype=np.int64)
    first[group[::-1]] = np.arange(len(group))[::-1]  # each group's first file (the last write wins)
    groups = [
        {
            name: words[code - 1]
            for name, words, code in zip(names, dictionaries, row.tolist(), strict=True)
            if code
        }
        for row in matrix[first]
    ]
    return group, groups


def _group_ids(codes: np.ndarray, radices: list[int]) -> np.ndarray:
    """A group id per row of `codes` (one column of small codes per partition column), numbered by first
    appearance: hashed by Arrow (a sort of the rows, as np.unique(axis=0) does, costs ~10x more)."""
    if float(np.prod(np.array(radices, dtype=np.float64))) >= 2.0**62:  # too many combinations to number
        return np.asarray(np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1), dtype=np.intp)
    key = np.zeros(len(codes), dtype=np.int64)
    for column, radix in zip(codes.T, radices, strict=True):
        key = key * radix + column
    encoded = pc.dictionary_encode(pa.array(key))
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)


def _bounds(maps: pa.MapArray) -> tuple[np.ndarray, np.ndarray]:
    """Each map's first and end entry index in `maps.keys` (a null map is empty)."""
    offsets = maps.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    if maps.offset:  # `keys` holds the entries of the unsliced array; offsets of a slice index into it
        offsets = np.frombuffer(maps.buffers()[1], dtype=np.int32)[maps.offset : maps.offset + len(maps) + 1]
    starts, ends = offsets[:-1], offsets[1:]
    if maps.null_count:
        ends = np.where(maps.is_valid().to_numpy(zero_copy_only=False), ends, starts)
    return starts, ends


class _Stats:
    """One column's statistics over the files: bounds (numpy or Arrow, nulls where unknown), null counts and
    record counts (numpy, with validity masks)."""

    def __init__(
        self, lo: pa.Array, hi: pa.Array, known: np.ndarray, nulls: pa.Array, records: pa.Array
    ) -> None:
        self.lo, self.hi, self.known = lo, hi, known
        self.has_nulls = nulls.is_valid().to_numpy(zero_copy_only=False)
        self.nulls = pc.fill_null(nulls, 0).to_numpy(zero_copy_only=False)
        self.has_records = records.is_valid().to_numpy(zero_copy_only=False)
        self.records = pc.fill_null(records, 0).to_numpy(zero_copy_only=False)

    @property
    def may_null(self) -> np.ndarray:
        return np.asarray(~self.has_nulls | (self.nulls > 0))

    @property
    def all_null(self) -> np.ndarray:
        return np.asarray(self.has_nulls & self.has_records & (self.nulls >= self.records))


class Files:
    """The files a predicate is evaluated over column-wise: their partition groups (`_partitions`) and raw
    stats (a string column, read once for every referenced statistics column when first needed)."""

    def __init__(
        self, group: np.ndarray, groups: list[PartitionValues], stats: pa.Array, columns: Sequence[Col]
    ) -> None:
        self.count = len(group)
        self.group, self.groups = group, groups
        self._raw = stats.combine_chunks() if isinstance(stats, pa.ChunkedArray) else stats
        self._columns = [c for c in columns if c.uses_stats]
        self._table: pa.Table | None = None
        self._stats: dict[tuple[str, str], _Stats] = {}

    # -- nodes ----------------------------------------------------------------------------------------------------

    def per_partition(self, ev: Eval, col: Col) -> Sets:
        """A node that reads only partition values: evaluated once per group (an error is unknown, as `safe`)."""
        if col.uses_stats:
            raise Unsupported(col.path)
        sets = np.array([_guarded(ev, values) for values in self.groups], dtype=np.uint8)
        return np.asarray(sets[self.group])

    def is_null(self, col: Col) -> Sets:
        if not col.uses_stats:
            return self.per_partition(col.is_null, col)
        s = self._column(col)
        some_values = ~s.has_records | (s.nulls < s.records)
        known = (np.where(s.nulls > 0, T, 0) | np.where(some_values, F, 0)).astype(np.uint8)
        return np.where(s.has_nulls, known, T | F).astype(np.uint8)

    def compare(self, op: str, col: Col, lit: Any, ev: Eval) -> Sets:
        """`truth.compare` of every file (`col.range` read column-wise)."""
        if not col.uses_stats:
            return self.per_partition(ev, col)
        s = self._column(col)
        can_lt, can_eq, can_gt, unknown = _possible(col, lit, s)
        t, f = {
            "equal": (can_eq, can_lt | can_gt),
            "lessThan": (can_lt, can_eq | can_gt),
            "lessThanOrEqual": (can_lt | can_eq, can_gt),
            "greaterThan": (can_gt, can_lt | can_eq),
            "greaterThanOrEqual": (can_gt | can_eq, can_lt),
        }[op]
        null_bit = np.where(s.may_null, N, 0)
        sets = np.where(t, T, 0) | np.where(f, F, 0) | null_bit
        sets = np.where(s.known & ~unknown, sets, ANY)
        return np.where(s.all_null, null_bit, sets).astype(np.uint8)

    # -- statistics -----------------------------------------------------------------------------------------------

    def _column(self, col: Col) -> _Stats:
        assert col.path is not None
        key = (col.path[0], col.vt)
        if key not in self._stats:
            table = self._read()
            name = col.path[0]
            lo, hi = (_field(table, section, name) for section in ("minValues", "maxValues"))
            nulls, records = _field(table, "nullCount", name), table.column("numRecords").combine_chunks()
            lo, hi = _typed(col, lo), _typed(col, hi)
            known = _bools(pc.and_(lo.is_valid(), hi.is_valid()))
            self._stats[key] = _Stats(lo, hi, known, nulls, records)
        return self._stats[key]

    def _read(self) -> pa.Table:
        """The referenced statistics of every file, typed: one pyarrow JSON read over the stats column."""
        if self._table is None:
            self._table = read_stats(self._raw, _stats_schema(self._columns))
        return self._table


def read_stats(raw: pa.Array, schema: pa.Schema) -> pa.Table:
    """The fields of `schema` from a column of stats JSON strings, one row per string (null where absent or
    unreadable). Read `_READ_ROWS` strings at a time, so the JSON text made for the reader stays small (a
    1M-file table's stats are ~150 MB); a block where some row is not what the schema says is read again in
    smaller blocks, and one that still does not read is all null (unknown)."""
    blocks = [_read_block(raw.slice(start, _READ_ROWS), schema) for start in range(0, len(raw), _READ_ROWS)]
    return pa.concat_tables(blocks) if blocks else schema.empty_table()


def _read_block(raw: pa.Array, schema: pa.Schema) -> pa.Table:
    try:
        return _read_json(raw, schema)
    except pa.ArrowInvalid:
        blocks = []
        for start in range(0, len(raw), _BLOCK_ROWS):
            part = raw.slice(start, _BLOCK_ROWS)
            try:
                blocks.append(_read_json(part, schema))
            except pa.ArrowInvalid:
                blocks.append(_nulls(schema, len(part)))
        return pa.concat_tables(blocks)


_RECORDS = pa.schema([("numRecords", pa.int64())])


def record_counts(raw: pa.Array) -> np.ndarray:
    """`numRecords` of each stats JSON string (0 where unknown), column-wise."""
    counts = read_stats(raw, _RECORDS).column("numRecords")
    return np.asarray(pc.fill_null(counts, 0).to_numpy(), dtype=np.int64)


def _guarded(ev: Eval, values: PartitionValues) -> int:
    try:
        return ev(values, None)
    except Exception:  # noqa: BLE001  - an odd partition value: unknown for this node only
        return ANY


def _stats_schema(columns: Sequence[Col]) -> pa.Schema:
    kinds: dict[str, pa.DataType] = {}
    for col in columns:
        assert col.path is not None
        if len(col.path) != 1:
            raise Unsupported(col.path)  # a nested field: its type is not in the table's top-level types
        kind = _arrow_type(col)
        if kinds.setdefault(col.path[0], kind) != kind:
            raise Unsupported(col.path)  # the same column compared as two kinds of value
    bounds = pa.struct(list(kinds.items()))
    counts = pa.struct([(name, pa.int64()) for name in kinds])
    return pa.schema(
        [("numRecords", pa.int64()), ("minValues", bounds), ("maxValues", bounds), ("nullCount", counts)]
    )


def _arrow_type(col: Col) -> pa.DataType:
    """How the column's stats values are written in JSON (by its Delta type), as pyarrow should read them."""
    if col.vt in ("int", "long", "float", "double"):
        return pa.int64() if col.coltype in INTEGRAL else pa.float64()
    if col.vt in ("string", "date", "timestamp"):
        return pa.string()
    raise Unsupported(col.vt)  # boolean statistics: rare, file by file


def _read_json(raw: pa.Array, schema: pa.Schema) -> pa.Table:
    """Stats strings as NDJSON. A row that is not one JSON object on one line (null, empty, not an object, a
    line break inside) is read as `{}` (nothing known: as a row whose stats do not parse)."""
    if not len(raw):
        return schema.empty_table()
    usable = pc.and_(pc.starts_with(raw, "{"), pc.invert(pc.match_substring_regex(raw, "[\r\n]")))
    objects = pc.if_else(pc.fill_null(usable, False), raw, "{}")
    _, offsets, data = string_buffers(pc.binary_join_element_wise(objects, "", "\n"))
    block = max(1 << 20, int(np.diff(offsets).max()) + 1)
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    table = pj.read_json(pa.BufferReader(data), pj.ReadOptions(block_size=block), options)
    if table.num_rows != len(raw):
        raise pa.ArrowInvalid("stats rows and JSON lines differ")
    return table


def _nulls(schema: pa.Schema, count: int) -> pa.Table:
    return pa.table([pa.nulls(count, field.type) for field in schema], schema=schema)


def _field(table: pa.Table, section: str, name: str) -> pa.Array:
    """`section.name` of every row; null where the section or the field is absent."""
    return pc.struct_field(table.column(section).combine_chunks(), name)


def _typed(col: Col, values: pa.Array) -> pa.Array:
    """Stats values as `values.from_stats` reads them: numbers and strings as read; dates as date32 and
    timestamps as µs since the epoch, null where they do not parse (as `parse_value` would refuse them)."""
    if col.vt not in ("date", "timestamp"):
        return values
    return _dates(values) if col.vt == "date" else _timestamps(values)


def _dates(values: pa.Array) -> pa.Array:
    """Dates as `values.parse_value` reads them (`y-m-d`, one or two digit month and day); a day that does not
    exist is null (strptime would roll 2024-02-30 over to March)."""
    found = pc.extract_regex(values, _DATE)
    y, m, d = (pc.struct_field(found, name) for name in ("y", "m", "d"))
    canonical = pc.binary_join_element_wise(y, pc.utf8_lpad(m, 2, "0"), pc.utf8_lpad(d, 2, "0"), "-")
    parsed = pc.strptime(canonical, "%Y-%m-%d", "s", error_is_null=True)
    exists = pc.fill_null(pc.equal(pc.strftime(parsed, "%Y-%m-%d"), canonical), False)
    return pc.if_else(exists, pc.cast(parsed, pa.date32()), None)


def _timestamps(values: pa.Array) -> pa.Array:
    """µs since the epoch, UTC (naive values are UTC, as `values._parse_ts`); null where they do not parse."""
    for kind in (
        pa.timestamp("us", "UTC"),
        pa.timestamp("us"),
    ):  # all with a zone (timestamp), all naive (ntz)
        try:
            return pc.cast(pc.cast(values, kind), pa.int64())
        except pa.ArrowInvalid:
            pass
    out = []  # a mix, or forms Arrow does not read: one by one, as the per-file reference
    for text in values.to_pylist():
        try:
            out.append((parse_value("timestamp", text) - _EPOCH) // _US if text is not None else None)
        except ValueError:
            out.append(None)
    return pa.array(out, pa.int64())


def _possible(col: Col, lit: Any, s: _Stats) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(may a value be < lit, == lit, > lit; unknown) per file, as `truth.compare` decides them."""
    lo, hi = s.lo, s.hi
    count = len(s.known)
    unknown = np.zeros(count, dtype=bool)
    if col.vt == "string":
        stem = pc.utf8_rtrim(hi, characters=HIGH_CHARS)
        if len(lit) > _MAX_PREFIX_LITERAL:
            raise Unsupported("long string literal")
        prefixes = pa.array([lit[:k] for k in range(len(lit) + 1)], pa.string())
        prefix = _bools(pc.is_in(stem, value_set=prefixes))
        can_gt = _bools(pc.greater(stem, lit)) | prefix
        can_eq = _bools(pc.less_equal(lo, lit)) & (_bools(pc.greater_equal(stem, lit)) | prefix)
        return _bools(pc.less(lo, lit)), can_eq, can_gt, unknown
    if col.vt in ("date", "timestamp"):
        if col.vt == "date":
            lo_n = _numbers(pc.cast(lo, pa.int32()))
            hi_n = _numbers(pc.cast(hi, pa.int32()))
            value = (lit - _EPOCH.date()).days
        else:  # stats are truncated to milliseconds
            lo_n, hi_n = _numbers(lo) - _MS_US, _numbers(hi) + _MS_US
            value = (lit - _EPOCH) // _US
        return lo_n < value, (lo_n <= value) & (value <= hi_n), hi_n > value, unknown
    lo_n, hi_n = _numbers(lo), _numbers(hi)
    if lo_n.dtype.kind == "f":
        unknown = np.isnan(lo_n) | np.isnan(hi_n)
    ints = isinstance(lit, int) and col.coltype in INTEGRAL
    if not (col.coltype == "double" or ints):  # float32 / decimal stats, float literals: an ulp of doubt
        lo_n, hi_n = lo_n.astype(np.float64), hi_n.astype(np.float64)
        with np.errstate(invalid="ignore"):
            lo_n = np.where(np.isfinite(lo_n), lo_n - np.abs(lo_n) * 1e-6, lo_n)
            hi_n = np.where(np.isfinite(hi_n), hi_n + np.abs(hi_n) * 1e-6, hi_n)
    with np.errstate(invalid="ignore"):
        return lo_n < lit, (lo_n <= lit) & (lit <= hi_n), hi_n > lit, unknown


def _bools(values: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(values: pa.Array) -> np.ndarray:
    """Nulls as 0 (their rows are unknown anyway: `_Stats.known`)."""
    if pa.types.is_floating(values.type):
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False))
