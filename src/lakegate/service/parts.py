"""A snapshot's per-file answer parts, built column-wise from its Arrow add table.

One `FileParts` per (snapshot, table locations, response format, id scheme): an Arrow table with one row per
live file, sorted by file key (so it is also the list pages index into), holding what does not change between
requests — where the file is signed from, the file id and the pre-encoded JSON after the URL (the log path itself
is not repeated: `paths()` takes it from the add table). Built with pyarrow.compute (vectorised string building)
rather than per-file Python objects: ~0.3 KB per file instead of ~2 KB, and a fraction of the time. Rows the
vectorised path cannot encode exactly as orjson would (control characters, unusual field types, paths needing
decoding or checks, deletion vectors in the delta format) are made by the per-file reference
(`lakegate.protocol.lines`), so the output is the same byte for byte.

Columns: `dvid` (deletion vector id, "" if none), `row` (the add action: a row of the snapshot's base table, or
len(base) + its position among the overlay adds), `rel` (path below the table root that the signer signs, when it
is not the log's path itself), `uri` (absolute URI of a file in an auxiliary location, null otherwise), `id`,
`tail` and `dv` (has a deletion vector).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NamedTuple, cast
from weakref import WeakKeyDictionary

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakegate._arrow import (  # noqa: F401  - strings: callers know it
    fixed_width,
    string_buffers,
    string_codes,
    strings,
)
from lakegate.cloud.locations import Location
from lakegate.delta.actions import data_location
from lakegate.delta.addfiles import AddFiles, dv_ids, rows_as_dicts
from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA

SCHEMA = pa.schema(
    [
        ("dvid", pa.string()),
        ("row", pa.int64()),
        ("rel", pa.string()),
        ("uri", pa.string()),
        ("id", pa.string()),
        ("tail", pa.string()),
        ("dv", pa.bool_()),
    ]
)


class SmallRow(NamedTuple):
    """One file of `FileParts.small_rows`."""

    id: str
    tail: str | None
    below: str  # the path below the root to sign (`rel`, else `path`)
    uri: str | None  # a file in an auxiliary location: its absolute URI
    dv: bool


@dataclass(frozen=True)
class FileParts:
    """`table` (see the module doc) and the add actions its `row` column points into."""

    table: pa.Table
    files: AddFiles
    # What is computed once per object and asked for per request (the cached parts of a snapshot answer every
    # query without predicates): the total size, the rows of a small answer as Python values.
    _memo: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def __getitem__(self, index: slice) -> FileParts:
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("FileParts slices are contiguous")
        return FileParts(self.table.slice(start, max(0, stop - start)), self.files)

    def take(self, indices: Iterable[int]) -> FileParts:
        return FileParts(self.table.take(pa.array(list(indices), pa.int64())), self.files)

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes)

    def total_size(self) -> int:
        """The sum of the files' sizes (what the answer hands out, for the audit), column-wise."""
        found = self._memo.get("size")
        if found is None:
            found = self._memo["size"] = self._total_size()
        return int(found)

    def size_between(self, start: int, stop: int) -> int:
        """`self[start:stop].total_size()` in O(1): the rows' cumulative sizes are summed once per object (the
        cached parts, or a filtered selection, that every page of a walk slices; a page's own sum cost ~50-200
        µs, a tenth of a page's render)."""
        found = self._memo.get("cumulative")
        if found is None:
            sizes = pc.fill_null(self.column("size", pa.int64()), 0).to_numpy(zero_copy_only=False)
            found = self._memo["cumulative"] = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        stop = min(max(stop, start), len(self))
        return int(found[stop] - found[min(start, stop)])

    def small_rows(self) -> list[SmallRow]:
        """Every row as Python values, for answers of a few files (each Arrow call costs ~10 µs: more than a
        small answer's whole line work in Python)."""
        found = self._memo.get("rows")
        if found is None:
            table = self.table
            below = pc.coalesce(table.column("rel"), paths_of(table.column("row"), self.files)).to_pylist()
            found = self._memo["rows"] = [
                SmallRow(*values)
                for values in zip(
                    table.column("id").to_pylist(),
                    table.column("tail").to_pylist(),
                    below,
                    table.column("uri").to_pylist(),
                    table.column("dv").to_pylist(),
                    strict=True,
                )
            ]
        return list(found)

    def _total_size(self) -> int:
        rows = self.table.column("row").to_numpy()  # numpy: a page (1,000 rows) costs µs, not pyarrow calls
        base = self.files.base
        in_base = rows < len(base)
        overlay = rows[~in_base]
        total = 0
        if "size" in base.column_names and len(base):
            taken = rows[in_base] if len(overlay) else rows
            total = int(pc.sum(base.column("size").take(pa.array(taken))).as_py() or 0)
        return total + sum(int(self.files.add_of_row(r).get("size") or 0) for r in overlay.tolist())

    def paths(self) -> pa.Array:
        """The files' paths as in the log, in the table's order (kept once, in the snapshot's add table)."""
        return paths_of(self.table.column("row"), self.files)

    def add(self, i: int) -> dict[str, Any]:
        """The add action of row `i`, as a dict (slow: for the rare files that need it)."""
        return self.files.add_of_row(int(self.table.column("row")[i].as_py()))

    def column(self, name: str, kind: pa.DataType, rows: np.ndarray | None = None) -> pa.Array:
        """One field of the add actions of `rows` (default: every row), in order, as an Arrow array (typed as
        the checkpoint's column, or `kind` when it has none): column-wise for the checkpoint's rows."""
        at = self.table.column("row").to_numpy()
        at = at if rows is None else at[rows]
        base = self.files.base
        column = base.column(name) if name in base.column_names and len(base) else None
        kind = column.type if column is not None else kind
        in_base = at < len(base)
        taken = (
            column.take(pa.array(at[in_base])).combine_chunks()
            if column is not None
            else pa.nulls(int(in_base.sum()), kind)
        )
        if in_base.all():
            return taken
        overlay = pa.array([self.files.add_of_row(int(r)).get(name) for r in at[~in_base]], kind)
        order = np.argsort(np.concatenate([np.flatnonzero(in_base), np.flatnonzero(~in_base)]), kind="stable")
        return pa.concat_arrays([taken, overlay]).take(pa.array(order))

    def field(self, name: str) -> list[Any]:
        """One field of every row's add action (maps as dicts), column-wise for the checkpoint's rows."""
        rows = self.table.column("row").to_numpy()
        base = self.files.base
        out: list[Any] = [None] * len(rows)
        in_base = np.flatnonzero(rows < len(base))
        if name in base.column_names and len(in_base):
            column = base.column(name)
            values = column.take(pa.array(rows[in_base])).to_pylist()
            if pa.types.is_map(column.type):
                values = [dict(v) if v is not None else None for v in values]
            for position, value in zip(in_base.tolist(), values, strict=True):
                out[position] = value
        for position in np.flatnonzero(rows >= len(base)).tolist():
            out[position] = self.files.add_of_row(int(rows[position])).get(name)
        return out


class Growing:
    """The blocks of a build in progress, in file-key order, for answers that follow them as they are made
    (`StreamedParts`); the build publishes each block, then the finished parts, or its error."""

    def __init__(self, rows: int) -> None:
        self.rows = rows  # the rows the finished parts hold
        self._changed = threading.Condition()
        self._blocks: list[pa.RecordBatch] = []
        self._done: pa.Table | None = None
        self._error: BaseException | None = None
        self._following = 0  # answers following the blocks now

    def add(self, block: pa.RecordBatch) -> None:
        with self._changed:
            self._blocks.append(block)
            self._changed.notify_all()

    def finish(self, table: pa.Table) -> None:
        with self._changed:
            self._done, self._blocks = table, []
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._changed:
            self._error, self._blocks = error, []
            self._changed.notify_all()

    def follow(self) -> Iterator[pa.Table]:
        """The rows in order, a block at a time as the build makes them (the rest at once, if the parts were
        finished another way: mapped from the shared directory); the build's error if it fails first."""
        seen = taken = 0  # rows yielded; blocks taken from the list
        with self._changed:
            self._following += 1
        try:
            while seen < self.rows:
                with self._changed:
                    while taken == len(self._blocks) and self._done is None and self._error is None:
                        self._changed.wait()
                    if self._error is not None:
                        raise self._error
                    if self._done is not None:
                        rest = self._done.slice(seen)
                    else:
                        rest = pa.Table.from_batches([self._blocks[taken]])
                        taken += 1
                # Finished short of the rows promised: never cut an answer short silently.
                if not rest.num_rows:
                    raise RuntimeError(f"the file parts hold {seen} rows, not {self.rows}")
                seen += rest.num_rows
                yield rest
        finally:  # the last block rendered, or the answer ended early
            with self._changed:
                self._following -= 1
                self._changed.notify_all()

    def wait_unfollowed(self, timeout: float) -> bool:
        """Wait until no answer follows the blocks (at most `timeout` seconds); whether none does."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._following, timeout)


@dataclass(frozen=True)
class StreamedParts:
    """The parts of a snapshot whose checkpoint rows are all live, while their build is under way: an answer
    renders each block as it is built instead of waiting for the whole table (`LineCache.streamed`)."""

    growing: Growing
    files: AddFiles

    def __len__(self) -> int:
        return len(self.files)

    def total_size(self) -> int:
        base = self.files.base
        return int(pc.sum(base.column("size")).as_py() or 0) if "size" in base.column_names else 0

    def blocks(self) -> Iterator[pa.Table]:
        return self.growing.follow()


def paths_of(rows: pa.Array | pa.ChunkedArray, files: AddFiles) -> pa.Array:
    """The log paths of add actions given by their `row` numbers (see the module doc)."""
    rows = rows.combine_chunks() if isinstance(rows, pa.ChunkedArray) else rows
    base = files.base.column("path")
    overlay = pc.greater_equal(rows, len(base))
    if not overlay.true_count:
        return base.take(rows).combine_chunks()
    paths = files.overlay_paths().take(pc.subtract(rows.filter(overlay), len(base)))
    if not len(base):
        return paths
    found = base.take(pc.if_else(overlay, 0, rows)).combine_chunks()
    return pc.replace_with_mask(found, overlay, paths)


def streamable(files: AddFiles) -> bool:
    """Whether an answer may follow the build of these files' parts block by block: enough checkpoint rows, and
    none whose path the build could refuse (`_relative_paths`), so a build error cannot come after the answer's
    first bytes (the commits after the checkpoint are made into parts before the first block: `TailMerge`)."""
    return len(files.base) >= STREAM_MIN_ROWS and _plain_base(files)


class TailMerge:
    """The blocks of a snapshot's parts, made from the blocks of its checkpoint rows' parts as they are built: the
    rows the commits after the checkpoint removed are dropped, and the parts of the files they added (`overlay`,
    made first) merged in by key; `finish` gives the whole table, the same rows in the same order as `combine`'s.
    Live tables have commits after their last checkpoint: their cold answers follow the build too."""

    def __init__(
        self, files: AddFiles, overlay: pa.Table, on_block: Callable[[pa.RecordBatch], None]
    ) -> None:
        self.files = files
        self.on_block = on_block
        self.live = None if files.all_base_live else _live_mask(files)
        self.overlay = _sorted(overlay, files) if len(overlay) else overlay
        paths = paths_of(self.overlay.column("row"), files).to_pylist()
        self.keys = list(zip(paths, self.overlay.column("dvid").to_pylist(), strict=True))
        self.merged = 0  # overlay rows merged so far
        self.blocks: list[pa.RecordBatch] = []
        self.seen = False  # a checkpoint block arrived (the checkpoint's parts were built here, not found)

    def add(self, block: pa.RecordBatch) -> None:
        """A block of the checkpoint rows' parts (sorted by key, following the previous one)."""
        self.seen = True
        rows = block.column(1)  # `row`
        last = (paths_of(rows.slice(len(rows) - 1), self.files)[0].as_py(), block.column(0)[-1].as_py())
        stop = bisect_right(self.keys, last, lo=self.merged)
        table = pa.Table.from_batches([block])
        if self.live is not None:
            table = table.filter(pa.array(self.live[rows.to_numpy()]))
        if stop > self.merged:
            overlay = self.overlay.slice(self.merged, stop - self.merged)
            table = _sorted(pa.concat_tables([table, overlay]), self.files)
            self.merged = stop
        self._hand(table)

    def finish(self) -> pa.Table | None:
        """The snapshot's parts (the overlay's last rows handed on first); None when no block arrived."""
        if not self.seen:
            return None
        self._hand(self.overlay.slice(self.merged))
        self.merged = len(self.overlay)
        return pa.Table.from_batches(self.blocks, schema=SCHEMA)

    def _hand(self, table: pa.Table) -> None:
        for batch in table.combine_chunks().to_batches():
            if batch.num_rows:  # an answer following the blocks takes an empty one for a build cut short
                self.blocks.append(batch)
                self.on_block(batch)


# Checkpoint table (`AddFiles.base_id`) -> whether all its paths are plain (`_plain_base`).
_PLAIN: WeakKeyDictionary[object, bool] = WeakKeyDictionary()


def _plain_base(files: AddFiles) -> bool:
    """Whether no path of the checkpoint's rows may need decoding or checks (`_maybe_special`): looked for once
    per checkpoint table (the streamed answer asks before its build, the build for every block)."""
    found = _PLAIN.get(files.base_id)
    if found is None:
        found = _PLAIN[files.base_id] = not any(
            _maybe_special(chunk) for chunk in files.base.column("path").chunks
        )
    return found


def empty(files: AddFiles) -> FileParts:
    return FileParts(SCHEMA.empty_table(), files)


BLOCK = 16384  # rows built at a time (a multiple of the render's 2048 lines): bounded temporaries
FIRST_BLOCK = 2048  # an answer following the build has its first lines after this many rows, not BLOCK
STREAM_MIN_ROWS = 2 * BLOCK  # smaller builds are over before following their blocks would pay


def build_base(
    files: AddFiles,
    root: Location,
    allowed: tuple[Location, ...],
    fmt: str,
    id_scheme: str,
    block: int = BLOCK,
    on_block: Callable[[pa.RecordBatch], None] | None = None,
) -> pa.Table:
    """The parts of every row of the snapshot's base (checkpoint) table, dead rows included, sorted by key.

    The order is found first (from the paths and deletion vector ids alone); then the rows are taken in that
    order and built a block at a time, each block one chunk of the result: no sort of the finished parts (a
    copy of them all) and no table-sized temporaries (a 1M-file build stays ~0.1 GB above what it keeps).
    `on_block` is handed each block as it is made (an answer streams them while the next ones are built)."""
    table = files.base
    if not len(table):
        return SCHEMA.empty_table()
    needed = table.column_names if fmt == DELTA else [c for c in _PARQUET_COLUMNS if c in table.column_names]
    table = table.select(needed)
    plain = _plain_base(files)
    dvid = dv_ids(table)
    order = _order(table.column("path"), dvid)
    blocks = []
    start, size = 0, min(block, FIRST_BLOCK) if on_block is not None else block
    while start < len(order):
        rows = order.slice(start, size)
        blocks.append(_block(table.take(rows), dvid.take(rows), rows, root, allowed, fmt, id_scheme, plain))
        if on_block is not None:
            on_block(blocks[-1])
        start, size = start + size, block
    return pa.Table.from_batches(blocks, schema=SCHEMA)


_PARQUET_COLUMNS = ("path", "partitionValues", "size", "stats", "deletionVector")


def _order(path: pa.ChunkedArray, dvid: pa.Array) -> pa.Array:
    """Row indices sorted by file key (path, deletion vector id)."""
    if pc.all(pc.equal(dvid, "")).as_py():  # no deletion vectors: the path alone is the key
        return pc.sort_indices(path)
    return pc.sort_indices(
        pa.table({"path": path, "dvid": dvid}), sort_keys=[("path", "ascending"), ("dvid", "ascending")]
    )


def _block(
    table: pa.Table,
    dvid: pa.Array,
    rows: pa.Array,
    root: Location,
    allowed: tuple[Location, ...],
    fmt: str,
    id_scheme: str,
    plain: bool,
) -> pa.RecordBatch:
    path = table.column("path").combine_chunks()
    rel, uri = _plain_paths(len(path)) if plain else _relative_paths(path, root, allowed)
    dv = (
        table.column("deletionVector").combine_chunks().is_valid()
        if "deletionVector" in table.column_names
        else pa.array(np.zeros(len(table), dtype=bool))
    )
    columns = [dvid, rows.cast(pa.int64()), rel, uri, _ids(path, id_scheme), _tails(table, fmt), dv]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def from_dicts(
    adds: list[tuple[int, dict[str, Any]]],
    root: Location,
    allowed: tuple[Location, ...],
    fmt: str,
    id_scheme: str,
) -> pa.Table:
    """The parts of a few add actions given as dicts (commits after the checkpoint), per file: (row, add)."""
    tail = lines.delta_action_tail if fmt == DELTA else lines.parquet_tail
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for row, add in adds:
        path = add["path"]
        rel, uri = _relative_path(path, root, allowed)
        rel = None if rel == path else rel
        dv = add.get("deletionVector")
        values = (
            _dv_id(dv),
            row,
            rel,
            uri,
            lines.file_id(path, id_scheme),
            tail(add).decode(),
            bool(dv),
        )
        for name, value in zip(SCHEMA.names, values, strict=True):
            columns[name].append(value)
    return pa.table(columns, schema=SCHEMA)


def _dv_id(descriptor: dict[str, Any] | None) -> str:
    from lakegate.delta.addfiles import dv_id

    return dv_id(descriptor)


def _live_mask(files: AddFiles) -> np.ndarray:
    """Whether each base (checkpoint) row is still live."""
    live = np.zeros(len(files.base), dtype=bool)
    live[files.live_rows()] = True
    return live


def _sorted(parts: pa.Table, files: AddFiles) -> pa.Table:
    keys = pa.table({"path": paths_of(parts.column("row"), files), "dvid": parts.column("dvid")})
    return parts.take(pc.sort_indices(keys, sort_keys=[("path", "ascending"), ("dvid", "ascending")]))


def combine(base: pa.Table, files: AddFiles, overlay: pa.Table) -> pa.Table:
    """The snapshot's parts: the live rows of the (sorted) base parts, plus the overlay's, sorted by key."""
    if not files.all_base_live:
        base = base.filter(pa.array(_live_mask(files)[base.column("row").to_numpy()]))
    if not len(overlay):
        return base
    return _sorted(pa.concat_tables([base, overlay]), files)


# -- columns ------------------------------------------------------------------------------------------------------


def _short_md5() -> Callable[[bytes], Any]:
    """CPython's own MD5 (HACL*) where the build has it: for inputs of a path's size it is ~1.5x OpenSSL's
    through hashlib, whose per-call set-up dominates (the same digests: a 1M-file build hashes 1M paths)."""
    try:
        return cast(Callable[[bytes], Any], importlib.import_module("_md5").md5)
    except ImportError:
        return hashlib.md5


_MD5 = _short_md5()


def _ids(path: pa.Array, scheme: str) -> pa.Array:
    """`lines.file_id` of every path, hashing slices of the column's data: the raw digests joined and turned into
    hex in one call, cut into a column (no str per path: ~15 % less than a hexdigest each)."""
    if not len(path):
        return pa.array([], pa.string())
    digest = hashlib.sha256 if scheme == DELTA else _MD5
    _, offsets, data = string_buffers(path)
    digests = b"".join([digest(data[a:b]).digest() for a, b in pairwise(offsets.tolist())])
    return fixed_width(digests.hex().encode(), len(path), 2 * digest(b"").digest_size)


def _relative_path(path: str, root: Location, allowed: tuple[Location, ...]) -> tuple[str | None, str | None]:
    """(path below the root to sign, None) or (None, absolute URI of a file in an auxiliary location)."""
    location = data_location(root, path, allowed)
    relative = "://" not in path and not path.startswith("/")
    if relative or root.contains(location):
        return root.relative(location), None
    return None, location.uri


def _relative_paths(
    path: pa.Array, root: Location, allowed: tuple[Location, ...]
) -> tuple[pa.Array, pa.Array]:
    """`rel` and `uri` columns. A plain relative path (printable ASCII, nothing to decode or check) is signed as
    it is (`rel` null: no copy); the others go through `data_location`, which decodes, checks and refuses
    files outside the table."""
    if not _maybe_special(path):
        return _plain_paths(len(path))
    special = pc.or_(
        pc.match_substring_regex(path, r"[^\x20-\x7e]|%|://|/\.|^[./]|^$"),
        pc.is_null(path),
    )
    slow = np.flatnonzero(special.to_numpy(zero_copy_only=False))
    if not len(slow):
        return _plain_paths(len(path))
    rels, uris = zip(
        *(_relative_path(p, root, allowed) for p in path.take(pa.array(slow)).to_pylist()), strict=True
    )
    mask = pa.array(special.to_numpy(zero_copy_only=False))
    rel = pc.replace_with_mask(pa.nulls(len(path), pa.string()), mask, pa.array(rels, pa.string()))
    uri = pc.replace_with_mask(pa.nulls(len(path), pa.string()), mask, pa.array(uris, pa.string()))
    return rel, uri


def _plain_paths(n: int) -> tuple[pa.Array, pa.Array]:
    """`rel` and `uri` of `n` paths signed as they are."""
    return pa.nulls(n, pa.string()), pa.nulls(n, pa.string())


_SCAN = 1 << 16  # bytes of path data tested at a time: temporaries below malloc's mmap threshold, reused


def _maybe_special(path: pa.Array) -> bool:
    """Whether any path may match `_relative_paths`' pattern: byte tests with numpy first (the regex over a
    1M-file column costs ~0.2 s; false positives only send the column on to the exact test). The data is tested
    a slice at a time: masks as large as the data are fresh, page-faulted memory in a fresh process (~3k pages
    per 100k paths, which cost more than the tests)."""
    if path.null_count:
        return True
    _, offsets, codes = string_codes(path)
    if not np.diff(offsets).all():
        return True
    starts = codes[offsets[:-1]]
    if ((starts == 0x2E) | (starts == 0x2F)).any():
        return True
    for at in range(0, len(codes), _SCAN):
        piece = codes[at : at + _SCAN + 1]  # one byte more: a "/." across two slices is seen
        if piece.max() >= 0x7F or piece.min() < 0x20 or ((piece == 0x25) | (piece == 0x3A)).any():
            return True  # not printable ASCII, a "%" (to decode) or a ":" (a URI)
        if ((piece[:-1] == 0x2F) & (piece[1:] == 0x2E)).any():
            return True
    return False


def _escaped(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The column with backslashes and quotes escaped for JSON, and the rows holding control characters (left
    to the reference encoder). The escaping is Arrow's (`replace_substring`: no copy of the data into Python
    and no GIL held, so an answer can render meanwhile); numpy only looks for what there is to escape."""
    values, offsets, codes = string_codes(values)
    bad = np.zeros(len(values), dtype=bool)
    if not len(codes):
        return values, bad
    if codes.min() < 0x20:  # rare: find the rows
        bad[np.searchsorted(offsets, np.flatnonzero(codes < 0x20), side="right") - 1] = True
    if (codes == 0x5C).any():  # backslashes are rare, and doubled before quotes gain theirs
        values = pc.replace_substring(values, "\\", "\\\\")
    if (codes == 0x22).any():
        values = pc.replace_substring(values, '"', '\\"')
    return values, bad


def _quoted(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """JSON string literals (nulls stay null), and the rows the reference encoder must make (see `_escaped`)."""
    escaped, bad = _escaped(values)
    return pc.binary_join_element_wise('"', escaped, '"', ""), bad


def _map_json(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """A map<string,string> column as JSON objects ("{}" for null maps), and the rows it cannot encode exactly."""
    maps = column if isinstance(column, pa.MapArray) else pa.concat_arrays([column])
    same = _same_keys_json(maps)
    if same is not None:
        return same
    (keys, bad_keys), (items, bad_items) = _quoted(maps.keys), _quoted(maps.items)
    entries = pc.binary_join_element_wise(keys, ":", pc.fill_null(items, "null"), "")
    objects = pc.binary_join_element_wise(
        "{", pc.binary_join(pa.ListArray.from_arrays(maps.offsets, entries), ","), "}", ""
    )
    bad_entry = bad_keys | bad_items
    bad = np.zeros(len(maps), dtype=bool)
    if bad_entry.any():
        offsets = maps.offsets.to_numpy()
        owners = np.searchsorted(offsets, np.flatnonzero(bad_entry), side="right") - 1
        bad[owners] = True
    return objects, bad


def _same_keys_json(maps: pa.MapArray) -> tuple[pa.Array, np.ndarray] | None:
    """`_map_json` of maps that all hold the same keys in the same order (a table's partition values): each
    key's values quoted and joined between constant pieces in one call, instead of joining entries, then lists
    of entries, then braces (~3x less). None when the maps differ (or a key needs the reference encoder)."""
    n = len(maps)
    if not n or maps.null_count:
        return None
    offsets = maps.offsets.to_numpy()
    first, width = int(offsets[0]), int(offsets[1] - offsets[0])
    if not width or not (np.diff(offsets) == width).all():
        return None
    names, bad_names = _quoted(maps.keys.slice(first, width))
    if bad_names.any():
        return None
    pieces: list[pa.Array | str] = []
    bad = np.zeros(n, dtype=bool)
    for j, name in enumerate(names.to_pylist()):
        at = None if width == 1 else pa.array(np.arange(first + j, first + n * width, width))
        keys = maps.keys.slice(first, n) if at is None else maps.keys.take(at)
        if not pc.all(pc.equal(keys, maps.keys[first + j])).as_py():
            return None
        items = maps.items.slice(first, n) if at is None else maps.items.take(at)
        escaped, bad_items = _escaped(items)
        bad |= bad_items
        head = ("{" if j == 0 else ",") + name + ":"
        if items.null_count:  # null values are written as null, unquoted
            pieces += [head, pc.fill_null(pc.binary_join_element_wise('"', escaped, '"', ""), "null")]
        else:
            pieces += [head + '"', escaped, '"']
    return pc.binary_join_element_wise(*pieces, "}", ""), bad


def _tails(table: pa.Table, fmt: str) -> pa.Array:
    pieces, slow = (_delta_pieces if fmt == DELTA else _parquet_pieces)(table)
    tail = _joined(pieces, len(table))
    rows = np.flatnonzero(slow)
    if len(rows):
        encode = lines.delta_action_tail if fmt == DELTA else lines.parquet_tail
        exact = [encode(add).decode() for add in rows_as_dicts(table.take(pa.array(rows)))]
        tail = pc.replace_with_mask(tail, pa.array(slow), pa.array(exact, pa.string()))
    return tail


def _joined(pieces: list[pa.Array | str], n: int) -> pa.Array:
    """The pieces (columns and constants) concatenated row by row, a null column piece counting as ""."""
    if not any(isinstance(p, pa.Array) for p in pieces):
        return pa.array(["".join(p for p in pieces if isinstance(p, str))] * n, pa.string())
    return pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")


def _parquet_pieces(table: pa.Table) -> tuple[list[pa.Array | str], np.ndarray]:
    """`,"partitionValues":{…},"size":N[,"stats":"…"]`, as `lines.parquet_tail` writes it."""
    n = len(table)
    names = table.column_names
    slow = np.zeros(n, dtype=bool)
    values: pa.Array | str = "{}"
    if "partitionValues" in names:
        values, bad = _map_json(table.column("partitionValues").combine_chunks())
        slow |= bad
    size: pa.Array | str = (
        pc.cast(pc.fill_null(table.column("size").combine_chunks(), 0), pa.string())
        if "size" in names
        else "0"
    )
    pieces: list[pa.Array | str] = [',"partitionValues":', values, ',"size":', size]
    if "stats" in names:
        stats = table.column("stats").combine_chunks()
        escaped, bad = _escaped(stats)
        slow |= bad
        lengths = np.diff(string_codes(escaped)[1])
        if stats.null_count == 0 and lengths.all():  # every file has stats: no per-row choice to make
            pieces += [',"stats":"', escaped, '"']
        else:  # null or empty stats are left out
            present = (
                pa.array(lengths > 0)
                if stats.null_count == 0
                else pc.and_(stats.is_valid(), pa.array(lengths > 0))
            )
            pieces.append(
                pc.if_else(present, pc.binary_join_element_wise(',"stats":"', escaped, '"', ""), None)
            )
    return pieces, slow


_FIELD = Callable[[pa.Array], "pa.Array | None"]


def _delta_pieces(table: pa.Table) -> tuple[list[pa.Array | str], np.ndarray]:
    """The add action's fields other than `path`, as `,"name":value` (null fields left out), the way
    `lines.delta_action_tail` writes a decoded checkpoint row."""
    n = len(table)
    slow = np.zeros(n, dtype=bool)
    pieces: list[pa.Array | str] = []
    for name in table.column_names:
        if name == "path":
            continue
        column = table.column(name).combine_chunks()
        if column.null_count == n:
            continue
        kind = column.type
        prefix = f',"{name}":'
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            value, bad = _quoted(column)
            slow |= bad
        elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            value = pc.cast(column, pa.string())
        elif (
            pa.types.is_map(kind) and pa.types.is_string(kind.key_type) and pa.types.is_string(kind.item_type)
        ):
            value, bad = _map_json(column)
            slow |= bad
            value = pc.if_else(column.is_valid(), value, None)
        else:  # deletion vectors (re-signed per request anyway), floats, nested structs: per file
            slow |= column.is_valid().to_numpy(zero_copy_only=False)
            continue
        pieces.append(pc.binary_join_element_wise(prefix, value, ""))
    return pieces, slow
