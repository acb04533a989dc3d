"""Reading a Delta table's transaction log (`_delta_log/`) from any store.

We replay the log ourselves (checkpoint parquet with pyarrow, commit JSON with orjson) instead of asking
`deltalake` for the file list because the protocol needs what delta-rs does not expose: the raw `stats`
strings, deletion-vector descriptors, tags, the original add actions for delta-format responses, and each
version's own actions for streaming and change data feed.
"""

from __future__ import annotations

import builtins  # DeltaLog.list shadows the builtin inside the class body
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import compress, pairwise
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from lakegate.cloud.base import ObjectInfo, ObjectStore
from lakegate.cloud.locations import Location
from lakegate.exceptions import MalformedRequestError, TableStateError

_READ_BUFFER = 1 << 20  # bytes a checkpoint is read at a time, where the store reads parts of files
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CLASSIC_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_MULTIPART_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_V2_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$")


def version_name(version: int) -> str:
    return f"{version:020d}"


def contiguous(start: int, versions: list[int]) -> bool:
    """Whether sorted `versions` are exactly start+1, start+2, … (no commit missing after `start`)."""
    return versions == list(range(start + 1, start + 1 + len(versions)))


@dataclass
class Listing:
    """What a directory listing of `_delta_log/` tells: commit files and complete checkpoints per version."""

    commits: dict[int, ObjectInfo] = field(default_factory=dict)
    checkpoints: dict[int, list[str]] = field(default_factory=dict)
    # Each checkpoint file's listing entry (size, modification time: what the shared cache keys it by).
    checkpoint_files: dict[str, ObjectInfo] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: list[ObjectInfo]) -> Listing:
        listing = cls()
        parts: dict[tuple[int, int], list[str]] = {}
        for info in entries:
            name = info.name
            if m := _COMMIT.match(name):
                listing.commits[int(m[1])] = info
            elif m := _CLASSIC_CHECKPOINT.match(name) or _V2_CHECKPOINT.match(name):
                listing.checkpoints.setdefault(int(m[1]), [name])
                listing.checkpoint_files[name] = info
            elif m := _MULTIPART_CHECKPOINT.match(name):
                parts.setdefault((int(m[1]), int(m[3])), []).append(name)
                listing.checkpoint_files[name] = info
        for (version, total), names in parts.items():
            if len(names) == total and version not in listing.checkpoints:
                listing.checkpoints[version] = sorted(names)
        return listing

    @property
    def latest_version(self) -> int | None:
        versions = list(self.commits) + list(self.checkpoints)
        return max(versions) if versions else None


class DeltaLog:
    """The log of the table rooted at `root`."""

    def __init__(self, store: ObjectStore, root: Location) -> None:
        self.store = store
        self.root = root
        self.log_dir = root.child("_delta_log")

    def list(self, start_after: str | None = None) -> Listing:
        return Listing.from_entries(self.store.list_dir(self.log_dir, start_after))

    def has_commit(self, version: int) -> bool:
        """Whether commit `version` exists: the cheap test for newer commits (one read of a small file, usually
        a miss). Listing from a version costs O(log) where the store cannot start a listing after a name (a
        local directory, Azure), and a Delta writer always creates commit v+1 before any later file."""
        try:
            self.store.read(self.log_dir.child(version_name(version) + ".json"))
        except FileNotFoundError:
            return False
        return True

    def last_checkpoint_version(self) -> int | None:
        try:
            data = orjson.loads(self.store.read(self.log_dir.child("_last_checkpoint")))
            return int(data["version"])
        except (FileNotFoundError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None

    def read_commit(self, version: int) -> builtins.list[dict[str, Any]]:
        """The actions of one commit, in file order; a 400 when the log no longer has it (cleaned up)."""
        try:
            return self.commit_actions(version)
        except FileNotFoundError:
            raise MalformedRequestError(
                f"Cannot load table version {version}: its commit file is missing"
            ) from None

    def commit_actions(self, version: int) -> builtins.list[dict[str, Any]]:
        """The actions of one commit; FileNotFoundError when the file is gone (a writer cleaned the log up
        since it was listed), TableStateError when it is not a commit (truncated, corrupt)."""
        location = self.log_dir.child(version_name(version) + ".json")
        raw = self.store.read(location)
        try:
            actions = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise self._corrupt(f"commit {version}", location, str(exc)) from exc
        if not all(isinstance(action, dict) for action in actions):
            raise self._corrupt(f"commit {version}", location, "a line is not a JSON object")
        return actions

    def read_checkpoint(self, names: builtins.list[str]) -> CheckpointActions:
        """The actions of a checkpoint (all parts, sidecars included). FileNotFoundError when a file is gone,
        TableStateError when one cannot be read (truncated, corrupt): callers fall back to an older one."""
        result = CheckpointActions()
        for name in names:
            location = self.log_dir.child(name)
            if name.endswith(".json"):
                try:
                    actions = [orjson.loads(line) for line in self.store.read(location).splitlines() if line]
                    for action in actions:
                        result.absorb(action)
                except (orjson.JSONDecodeError, TypeError) as exc:
                    raise self._corrupt("a checkpoint", location, str(exc)) from exc
            else:
                result.absorb_table(self._read_parquet(location))
        for sidecar in result.sidecars:
            location = self.log_dir.child("_sidecars").child(sidecar)
            try:
                result.absorb_table(self._read_parquet(location))
            except FileNotFoundError:  # the checkpoint is still there: it names a file that is not
                raise self._corrupt("a checkpoint", location, "the sidecar file is missing") from None
        result.sidecars.clear()
        return result

    def _read_parquet(self, location: Location) -> pa.Table:
        # A store that can read parts of a file is read a buffer at a time (a 100k-file checkpoint: 25 MB
        # less, and ~6k fewer fresh pages for a new process to fault in); others read the whole object.
        source = self.store.reader(location)
        buffered = source is not None
        if source is None:
            source = pa.BufferReader(self.store.read(location))
        try:
            with source:
                parquet = pq.ParquetFile(source, buffer_size=_READ_BUFFER if buffered else 0)
                wanted = [
                    c for c in ("add", "metaData", "protocol", "sidecar") if c in parquet.schema_arrow.names
                ]
                # Decoded on this thread: with pyarrow's thread pool, a pool thread frees the reader (and the
                # PyBuffer over the bytes read, which takes the GIL) after read() returns; at interpreter exit
                # that thread is killed inside a destructor and the process aborts ("terminate called without
                # an active exception", apache/arrow#33975). The `add` column is nearly all the work, and Arrow
                # spreads a read over top-level columns only: no slower.
                return parquet.read(columns=wanted, use_threads=False)
        except (pa.ArrowException, OSError) as exc:  # ArrowInvalid and the like: not a (whole) parquet file
            raise self._corrupt("a checkpoint", location, str(exc)) from exc

    def _corrupt(self, what: str, location: Location, reason: str) -> TableStateError:
        return TableStateError(
            f"The table cannot be read: {what} of its log is corrupt or truncated; the provider must repair it",
            f"{location.display} is corrupt or truncated: {reason.strip()}",
        )


@dataclass
class CheckpointActions:
    protocol: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    adds: list[dict[str, Any]] = field(default_factory=list)  # from JSON checkpoints
    add_tables: list[pa.Table] = field(default_factory=list)  # from parquet ones: one row per add action
    sidecars: list[str] = field(default_factory=list)

    def absorb(self, action: dict[str, Any]) -> None:
        if "add" in action:
            self.adds.append(action["add"])
        elif "metaData" in action:
            self.metadata = action["metaData"]
        elif "protocol" in action:
            self.protocol = action["protocol"]
        elif "sidecar" in action:
            self.sidecars.append(action["sidecar"]["path"])

    def absorb_table(self, table: pa.Table) -> None:
        names = table.column_names
        if "add" in names:
            self.add_tables.append(add_table(table.column("add")))
        for column, attr in (("metaData", "metadata"), ("protocol", "protocol")):
            if column in names:
                values = table.column(column)
                for value in values.filter(values.is_valid()).to_pylist():
                    setattr(self, attr, _clean_struct(value))
        if "sidecar" in names:
            values = table.column("sidecar")
            self.sidecars += [v["path"] for v in values.filter(values.is_valid()).to_pylist()]

    def add_table(self) -> pa.Table:
        """The add actions of every parquet part, as one table (columns as in the checkpoint's add struct)."""
        tables = [t for t in self.add_tables if len(t)] or self.add_tables[:1]
        if not tables:
            return pa.table({"path": pa.array([], pa.string())})
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")

    def all_adds(self) -> list[dict[str, Any]]:
        """Every add action as a dict (tests and small tables; a snapshot keeps the table)."""
        table = self.add_table()
        return [*(struct_rows(table.to_struct_array()) if len(table) else []), *self.adds]


_PARSED = ("stats_parsed", "partitionValues_parsed")


def add_table(column: pa.ChunkedArray) -> pa.Table:
    """The non-null rows of a checkpoint's `add` column as a table of its fields (`*_parsed` dropped; a `stats`
    string made from `stats_parsed` where the checkpoint kept only that: file lines carry the string). Fields
    null in every row are dropped: a missing field reads as null everywhere, and writers fill a checkpoint's
    schema with fields no file has (tags, deletion vectors, row ids: ~50 bytes per file kept for nothing)."""
    chunks = []
    for chunk in column.chunks:
        kept = [(f.name, chunk.field(i)) for i, f in enumerate(chunk.type) if f.name not in _PARSED]
        table = pa.Table.from_arrays([a for _, a in kept], names=[n for n, _ in kept])
        chunks.append(table if chunk.null_count == 0 else _valid_rows(table, chunk.is_valid()))
    table = pa.concat_tables(chunks) if len(chunks) != 1 else chunks[0]
    if not chunks:
        table = pa.table({"path": pa.array([], pa.string())})
    unused = [n for n in table.column_names if n != "path" and table.column(n).null_count == len(table)]
    if len(table) and unused:
        table = table.drop_columns(unused)
    return _stats_from_struct(column, table)


def _valid_rows(table: pa.Table, valid: pa.BooleanArray) -> pa.Table:
    """The rows where `valid` is set. A checkpoint's add rows usually form one run (the protocol and metadata rows
    come first or last): then a zero-copy slice, not a copy of every column (~0.3 GB for 1M files)."""
    rows = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return table.slice(int(rows[0]), len(rows))
    return table.filter(valid)


def struct_rows(column: pa.Array | pa.ChunkedArray, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The non-null rows of a struct column as JSON-like dicts (nulls dropped, maps as dicts).

    Converted field by field: pyarrow's to_pylist on a whole struct column costs ~50 µs per row (a 100k-file
    checkpoint took 5 s); per-field lists plus manual map assembly take a fraction of that."""
    if isinstance(column, pa.ChunkedArray):  # per chunk: combine_chunks() would copy every buffer
        return [row for chunk in column.chunks for row in struct_rows(chunk, skip)]
    # Null rows (a checkpoint row holds one action kind) are dropped from each field's list with compress(),
    # which is far cheaper than filtering the struct column itself.
    mask = column.is_valid().to_pylist() if column.null_count else None
    count = len(column) - column.null_count
    fields: list[tuple[str, list[Any]]] = []
    for i, child_type in enumerate(column.type):
        if child_type.name in skip:
            continue
        child = column.field(i)
        if child.null_count == len(child):
            continue
        if pa.types.is_map(child_type.type):
            values: list[Any] = _map_rows(child)
        elif pa.types.is_struct(child_type.type):
            values = [None] * len(child)
            child_rows = iter(struct_rows(child))
            for j, ok in enumerate(child.is_valid().to_pylist()):
                if ok:
                    values[j] = next(child_rows)
        else:
            values = _pylist(child)
        fields.append((child_type.name, list(compress(values, mask)) if mask is not None else values))
    # Columns without nulls make rows with one C-level dict(zip()); the rest are added where present.
    dense = [(name, values) for name, values in fields if None not in values]
    sparse = [(name, values) for name, values in fields if None in values]
    dense_names = [name for name, _ in dense]
    rows = (
        [dict(zip(dense_names, row, strict=True)) for row in zip(*(v for _, v in dense), strict=True)]
        if dense
        else [{} for _ in range(count)]
    )
    for name, values in sparse:
        for row, value in zip(rows, values, strict=True):
            if value is not None:
                row[name] = value
    return rows


def _stats_from_struct(column: pa.ChunkedArray, table: pa.Table) -> pa.Table:
    """Give each add without a `stats` string one made from its `stats_parsed` struct: a checkpoint written with
    `delta.checkpoint.writeStatsAsJson=false` keeps the stats only there, and file lines carry the string."""
    if "stats_parsed" not in {f.name for f in column.type}:
        return table
    has_text = "stats" in table.column_names
    if has_text and table.column("stats").null_count == 0:
        return table
    parsed = [
        value
        for chunk in column.chunks
        for value in chunk.field("stats_parsed").filter(chunk.is_valid()).to_pylist()
    ]
    texts = table.column("stats").to_pylist() if has_text else [None] * len(table)
    filled = [
        text if text is not None or stats is None else orjson.dumps(_stats_json(stats)).decode()
        for text, stats in zip(texts, parsed, strict=True)
    ]
    column_ = pa.array(filled, pa.string())
    if has_text:
        return table.set_column(table.column_names.index("stats"), "stats", column_)
    return table.append_column("stats", column_)


def _stats_json(value: Any) -> Any:
    """A `stats_parsed` value as Delta writes it in JSON stats: nulls left out, dates `YYYY-MM-DD`, timestamps
    ISO-8601 in milliseconds (`Z` when they have a zone), decimals as numbers."""
    if isinstance(value, dict):
        return {k: _stats_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat(timespec="milliseconds") if value.tzinfo else None
        return text.replace("+00:00", "Z") if text else value.isoformat(timespec="milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _pylist(array: pa.Array) -> list[Any]:
    """`array.to_pylist()`, several times faster for the common column types of a checkpoint: pyarrow builds a
    scalar per value (~1.5 µs); plain strings are sliced out of one decoded buffer, integers go through numpy."""
    kind = array.type
    if array.null_count == 0 and pa.types.is_integer(kind):
        # Straight from the value buffer: array.to_numpy() would import pandas (~0.3 s) on first use.
        width = np.dtype(f"{'u' if pa.types.is_unsigned_integer(kind) else 'i'}{kind.bit_width // 8}")
        integers: list[Any] = np.frombuffer(array.buffers()[1], dtype=width)[
            array.offset : array.offset + len(array)
        ].tolist()
        return integers
    if (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and len(array):
        _, offsets_buffer, data_buffer = array.buffers()
        offset_type = np.int32 if pa.types.is_string(kind) else np.int64
        offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[
            array.offset : array.offset + len(array) + 1
        ].tolist()
        data = data_buffer.to_pybytes() if data_buffer is not None else b""
        if data.isascii():  # byte offsets are character offsets
            text = data.decode("ascii")
            values = [text[start:end] for start, end in pairwise(offsets)]
            if array.null_count:
                values = [
                    v if ok else None for v, ok in zip(values, array.is_valid().to_pylist(), strict=True)
                ]
            return values
    plain: list[Any] = array.to_pylist()
    return plain


def _map_rows(column: pa.MapArray) -> list[dict[str, Any] | None]:
    offsets = _pylist(column.offsets)
    keys = _pylist(column.keys)
    items = _pylist(column.items)
    valid = column.is_valid().to_pylist()
    return [
        dict(zip(keys[start:end], items[start:end], strict=True)) if ok else None
        for start, end, ok in zip(offsets, offsets[1:], valid, strict=False)  # offsets has one more entry
    ]


_MAP_FIELDS = {"configuration", "options", "partitionValues", "tags"}


def _clean_struct(value: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint struct as JSON: map columns (lists of pairs) back to dicts, nulls dropped."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _MAP_FIELDS:
            out[key] = dict(item or ())
        elif isinstance(item, dict):
            out[key] = _clean_struct(item)
        elif item is not None:
            out[key] = item
    return out
