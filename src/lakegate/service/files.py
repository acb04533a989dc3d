"""Turning a snapshot's add actions into signed file lines, fast.

Per snapshot and response format, each file's id, location and the unchanging part of its line are computed
once and kept in the `LineCache` (keyed by the snapshot, which stays immutable); per request only the URL is
signed and spliced in.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from weakref import WeakKeyDictionary, ref

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lakegate._arrow import byte_set, has_any, string_buffers, strings
from lakegate._gc import paused_gc
from lakegate._memory import release_unused
from lakegate._singleflight import SingleFlight
from lakegate.cloud.base import ObjectStore, SignRequest, UrlSigner
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.delta.actions import data_location, deletion_vector_location
from lakegate.delta.addfiles import AddFiles
from lakegate.delta.snapshot import Snapshot
from lakegate.exceptions import StorageError
from lakegate.inline import must_not_block
from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA
from lakegate.service import parts
from lakegate.service.parts import FileParts, Growing, SmallRow, StreamedParts, TailMerge
from lakegate.service.responses import Lines
from lakegate.sharedcache import WRITE_LATER_SECONDS, SharedCache, name_of, when_mapped, write_now

log = logging.getLogger("lakegate")


@dataclass(slots=True)
class FileEntry:
    add: dict[str, Any]
    location: Location
    file_id: str
    tail: bytes  # pre-encoded fields after the URL (parquet) or after the path (delta)
    in_root: bool = True  # below the table root (signed by the root's store), else an auxiliary location


def make_entry(
    add: dict[str, Any],
    root: Location,
    allowed: tuple[Location, ...],
    id_scheme: str,
    tail: Callable[[dict[str, Any]], bytes],
) -> FileEntry:
    path = add["path"]
    location = data_location(root, path, allowed)
    relative = "://" not in path and not path.startswith("/")
    return FileEntry(
        add, location, lines.file_id(path, id_scheme), tail(add), relative or root.contains(location)
    )


_Key = tuple[Location, tuple[Location, ...], str, str]  # (root, auxiliary locations, format, id scheme)


class LineCache:
    """The `FileParts` of each snapshot, per table locations, response format and id scheme.

    Built once per snapshot (single-flight: concurrent requests for the same parts wait for one build) and kept
    as long as the snapshot is (weakly keyed by it). The parts of a checkpoint's rows are kept per checkpoint
    table: snapshots moved forward by commits share that table, so a commit to a 100k-file table costs only its
    own files (plus one filter and sort of the columns).

    With a shared cache directory (`serve --workers N`) both are kept there as Arrow files mapped by every
    worker: the parts of a checkpoint's rows keyed by the checkpoint's cache file (`sharedcache.name_of`), a
    snapshot's parts by that, its version and commit, and its overlay's size (what the `row` column points
    into); a snapshot whose checkpoint table is not in the directory keeps its parts in memory only."""

    def __init__(self, max_tables: int = 64, shared: SharedCache | None = None) -> None:
        self.shared = shared
        self._lock = threading.Lock()
        self._by_snapshot: WeakKeyDictionary[Snapshot, dict[_Key, FileParts]] = WeakKeyDictionary()
        self._by_base: WeakKeyDictionary[object, dict[_Key, pa.Table]] = WeakKeyDictionary()
        self._flights = SingleFlight[tuple[int, _Key], FileParts]()
        self._growing: dict[tuple[int, _Key], Growing] = {}  # builds that answers follow (`streamed`)
        self.builds = 0
        self.on_built: Callable[[Snapshot], None] = lambda snapshot: (
            None
        )  # the snapshot cache re-checks its bound

    def nbytes(self, snapshot: Snapshot) -> int:
        """The bytes of the parts built for the snapshot (all formats)."""
        with self._lock:
            return sum(p.nbytes for p in self._by_snapshot.get(snapshot, {}).values())

    def parts(
        self, snapshot: Snapshot, root: Location, allowed: tuple[Location, ...], fmt: str, id_scheme: str
    ) -> FileParts:
        """The snapshot's file parts for one format, sorted by file key (the order pages index into)."""
        key = (root, allowed, fmt, id_scheme)
        with self._lock:
            found = self._by_snapshot.get(snapshot, {}).get(key)
        if found is not None:
            return found
        must_not_block()  # a build: in a worker thread, and before the flight (its waiters never see WouldBlock)
        return self._flights.run((id(snapshot), key), lambda: self._build(snapshot, key))

    sorted_entries = parts  # the name paging knows: the sorted page list

    def streamed(
        self, snapshot: Snapshot, root: Location, allowed: tuple[Location, ...], fmt: str, id_scheme: str
    ) -> FileParts | StreamedParts:
        """What `parts` returns, except that a cold snapshot whose checkpoint rows are all live
        (`parts.streamable`) gives parts to follow while they are built: the answer renders and sends the first
        block while the next ones are built, instead of waiting for the whole table. The build runs in a thread
        of its own, in the same single flight as `parts` (one build however many ask; answers arriving during it
        follow the same blocks); it is cached whole when it ends, and not at all if it fails."""
        key = (root, allowed, fmt, id_scheme)
        flight = (id(snapshot), key)
        with self._lock:
            found = self._by_snapshot.get(snapshot, {}).get(key)
            growing = self._growing.get(flight)
        if found is not None:
            return found
        if growing is None:
            if not parts.streamable(snapshot.files):
                return self.parts(snapshot, root, allowed, fmt, id_scheme)
            must_not_block()
            with self._lock:
                found = self._by_snapshot.get(snapshot, {}).get(key)
                if found is not None:
                    return found
                growing = self._growing.get(flight)
                if growing is None:
                    growing = self._growing[flight] = Growing(len(snapshot.files))
                    threading.Thread(
                        target=self._build_followed,
                        args=(snapshot, key, growing),
                        name="lakegate-parts",
                        daemon=True,
                    ).start()
        return StreamedParts(growing, snapshot.files)

    def _build_followed(self, snapshot: Snapshot, key: _Key, growing: Growing) -> None:
        flight = (id(snapshot), key)
        try:
            built = self._flights.run(flight, lambda: self._build(snapshot, key, growing.add))
            growing.finish(built.table)
        except BaseException as exc:  # noqa: BLE001  - handed to the answers following the build
            log.warning("building the file parts of %s failed: %s", key[0].uri, exc)
            growing.fail(exc)
            return
        finally:
            with self._lock:
                del self._growing[flight]
        # The shared directory's files of this build (the parts', the checkpoint's: ~50 MB for 100k files) are
        # written once the answers following it have rendered their last block (at the latest
        # WRITE_LATER_SECONDS after): written while they rendered it, they slowed the end of a cold answer by
        # 20-60 ms on 2 cores. The mapped files then replace the copies in memory (`_swap_when_mapped`).
        growing.wait_unfollowed(WRITE_LATER_SECONDS)
        with self._lock:
            base = self._by_base.get(snapshot.files.base_id, {}).get(key)
        # The snapshot's parts, the checkpoint's parts (the same table when no commit follows it), the checkpoint.
        for table in (built.table, base, snapshot.files.base):
            if table is not None:
                write_now(table)
        with self._lock:
            kept = self._by_snapshot.get(snapshot, {}).get(key)
        if kept is not None:
            # An answer that followed the build may outlive its response a while (a worker thread keeps its
            # last job until its next one): from now on it holds the mapped parts, not the copy, and the copy's
            # memory goes back to the system (~250 MB for 1M files, resident until the worker's next answer).
            growing.finish(kept.table)
            del built, base, kept
            release_unused()

    def _build(
        self, snapshot: Snapshot, key: _Key, on_block: Callable[[pa.RecordBatch], None] | None = None
    ) -> FileParts:
        with self._lock:
            found = self._by_snapshot.get(snapshot, {}).get(key)
        if found is not None:  # built by the flight that just ended
            return found
        root, allowed, fmt, id_scheme = key
        files = snapshot.files
        followed = on_block is not None  # answers follow the build: its files are written after them
        whole = files.all_base_live and not files.added  # the checkpoint rows' parts are the snapshot's
        merge = None
        if on_block is not None and not whole:
            # The commits' files are made into parts before the first block: a bad path fails the answer here.
            merge = TailMerge(files, self._overlay(files, root, allowed, fmt, id_scheme), on_block)
            on_block = merge.add
        with self._lock:
            base = self._by_base.get(files.base_id, {}).get(key)
        # What the rows are numbered against: the checkpoint table's shared file; "empty" for a snapshot replayed
        # without a checkpoint; None for a checkpoint table not in the shared directory (parts kept here only).
        origin = name_of(files.base) if len(files.base) else "empty"
        where = (root.uri, tuple(a.uri for a in allowed), fmt, id_scheme)
        with paused_gc():
            if base is None:
                base = self._kept(
                    ("parts", origin, *where),
                    lambda: parts.build_base(files, root, allowed, fmt, id_scheme, on_block=on_block),
                    shared=origin not in (None, "empty"),
                    later=followed,
                )
                with self._lock:
                    self._by_base.setdefault(files.base_id, {})[key] = base
                if followed:
                    self._swap_when_mapped(snapshot, key, base)
            if whole:
                table = base
            else:
                table = self._kept(
                    (
                        "snapshot parts",
                        origin,
                        snapshot.version,
                        snapshot.commit_mtime_ms,
                        len(files.added),
                        len(files),
                        *where,
                    ),
                    lambda: self._combined(base, files, key, merge),
                    shared=origin is not None,
                    later=followed,
                )
                if followed:
                    self._swap_when_mapped(snapshot, key, table)
            built = FileParts(table, files)
        with self._lock:
            self.builds += 1
            found = self._by_snapshot.setdefault(snapshot, {}).setdefault(key, built)
        if not followed:
            # The checkpoint's shared cache file, written after the build (an answer following it has its
            # first lines by now) rather than before it; the snapshot then maps it and frees its copy.
            write_now(files.base)
        # The allocators keep the build's temporaries mapped; handing them back keeps the resident size near
        # what the cache holds (~0.8 KB per file instead of ~1.1 KB).
        release_unused()
        self.on_built(snapshot)
        return found

    def _combined(self, base: pa.Table, files: AddFiles, key: _Key, merge: TailMerge | None) -> pa.Table:
        """The snapshot's parts: those the merge made block by block, else its base's live rows and its overlay's
        (`parts.combine`)."""
        made = merge.finish() if merge is not None else None
        if made is not None:
            return made
        overlay = merge.overlay if merge is not None else self._overlay(files, *key)
        return parts.combine(base, files, overlay)

    def _kept(
        self, key: tuple[object, ...], build: Callable[[], pa.Table], *, shared: bool, later: bool = False
    ) -> pa.Table:
        """Built here, or (`shared`: its key names everything it depends on) mapped from the shared directory;
        `later`: a table built here is written to the directory by `write_now` (`SharedCache.table`)."""
        if self.shared is None or not shared:
            return build()
        return self.shared.table(key, build, later=later)

    def _swap_when_mapped(self, snapshot: Snapshot, key: _Key, base: pa.Table) -> None:
        """Once the file of `base` (built, its file written later) is written, the kept parts become the mapped
        file's: the copy in memory goes with the last answer still using it."""
        held, snapshot_ref, owner_ref = id(base), ref(snapshot), ref(snapshot.files.base_id)

        def swap(mapped: pa.Table) -> None:
            with self._lock:
                owner, kept = owner_ref(), snapshot_ref()
                by_base = self._by_base.get(owner, {}) if owner is not None else {}
                if id(by_base.get(key)) == held:
                    by_base[key] = mapped
                by_snapshot = self._by_snapshot.get(kept, {}) if kept is not None else {}
                found = by_snapshot.get(key)
                if found is not None and id(found.table) == held:
                    by_snapshot[key] = FileParts(mapped, found.files, dict(found._memo))

        when_mapped(base, swap)

    @staticmethod
    def _overlay(
        files: AddFiles, root: Location, allowed: tuple[Location, ...], fmt: str, id_scheme: str
    ) -> pa.Table:
        start = len(files.base)
        adds = [(start + i, add) for i, add in enumerate(files.added.values())]
        return parts.from_dicts(adds, root, allowed, fmt, id_scheme)


class Signers:
    """One URL signer per store for one response (all URLs share one expiry)."""

    def __init__(self, stores: StoreRegistry, request: SignRequest) -> None:
        self._stores = stores
        # URLs signed with temporary credentials stop working when those expire: sign and promise no more, for
        # files in the root and in the auxiliary locations alike (one expiry for the whole answer). Local files
        # are lakegate's own URLs, signed with no credentials.
        wanted = request.expires_at_s
        deadlines = [_deadline(stores, request.root, wanted)] if request.root is not None else []
        for auxiliary in request.auxiliary:
            # A store this answer may not use (an account down) is skipped: its signer fails if it is used.
            try:
                deadlines.append(_deadline(stores, auxiliary, wanted))
            except StorageError:
                continue
        deadline = min((d for d in deadlines if d is not None), default=None)
        if deadline is not None and deadline < wanted:
            request = replace(request, expires_at_s=max(request.now_s + 1, deadline))
        self._request = request
        self._by_store: dict[int, UrlSigner] = {}
        self._relative: dict[Location, Callable[[pa.Array], pa.Array]] = {}
        self._one: dict[Location, Callable[[str], str]] = {}
        self.expires_ms = request.expires_at_s * 1000

    def for_location(self, location: Location) -> UrlSigner:
        store: ObjectStore = self._stores.store_for(location)
        signer = self._by_store.get(id(store))
        if signer is None:
            signer = self._by_store[id(store)] = store.url_signer(self._request)
        return signer

    def sign(self, location: Location) -> str:
        return self.for_location(location)(location)

    def one_below(self, root: Location) -> Callable[[str], str]:
        """A signer of one path relative to `root` at a time (for answers of a few files)."""
        found = self._one.get(root)
        if found is None:
            found = self._one[root] = self._stores.store_for(root).relative_signer(self._request, root)
        return found

    def json_safe_below(self, root: Location) -> bool:
        """Whether the URLs of `below(root)` are sure to need no JSON escaping."""
        return self._stores.store_for(root).batch_urls_json_safe(self._request)

    def below(self, root: Location) -> Callable[[pa.Array], pa.Array]:
        """A signer of string columns of paths relative to `root` (one per root and response)."""
        found = self._relative.get(root)
        if found is None:
            store = self._stores.store_for(root)
            found = self._relative[root] = store.relative_batch_signer(self._request, root)
        return found


def _deadline(stores: StoreRegistry, location: Location, wanted_s: int) -> int | None:
    return (
        None if location.cloud == "file" else stores.store_for(location).signing_deadline(location, wanted_s)
    )


def file_lines(
    selected: Iterable[FileEntry],
    fmt: str,
    signers: Signers,
    root: Location,
    allowed: tuple[Location, ...],
    kind: str = "file",
    extra: Callable[[FileEntry], bytes] | None = None,
) -> Iterator[bytes]:
    """Signed lines for the files; `kind` is the parquet wrapper (`file`, `add`, `remove`, `cdf`) or the delta
    action (`add`, `remove`, `cdc`) name; `extra` gives per-file `version`/`timestamp` fields."""
    expiry = lines.extra_fields(expirationTimestamp=signers.expires_ms)
    sign_root = signers.for_location(root)
    for entry in selected:
        loc = entry.location
        url = sign_root(loc) if entry.in_root else signers.sign(loc)
        more = expiry + (extra(entry) if extra else b"")
        if fmt == DELTA:
            tail = entry.tail
            descriptor = entry.add.get("deletionVector")
            if descriptor:
                tail = lines.delta_action_tail(_presigned_dv(entry.add, descriptor, signers, root, allowed))
            yield lines.delta_file_line("add" if kind == "file" else kind, url, entry.file_id, tail, more)
        else:
            yield lines.parquet_file_line(kind, url, entry.file_id, entry.tail, more)


_BATCH = 2048  # lines per yielded chunk (~1.1 MB)
_RELEASE_AFTER = 8 * _BATCH  # answers of more files hand their temporaries back at the end (a few ms)
_JSON_ESCAPED = byte_set([*range(0x20), ord('"'), ord("\\")])
_JSON_SPECIAL = re.compile(r'["\\\x00-\x1f]')  # the same characters, in one URL
# Answers of at most this many files are joined in Python (`_small_lines`): below it, Arrow's per-call cost is
# more than the work.
SMALL_ANSWER_FILES = 64
# The fixed text of a line as Arrow scalars, made once: a `str` argument of a compute call is made into a scalar on
# every call (~5 µs each), most of a page's (one batch's) join time.
_PARQUET_START, _DELTA_START, _AFTER_URL, _QUOTE, _DELTA_END, _NO_SEPARATOR = (
    pa.scalar(text, pa.string())
    for text in ('{"file":{"url":"', '{"file":{"id":"', '","id":"', '"', "}}}}\n", "")
)


def parts_lines(
    selected: FileParts | StreamedParts,
    fmt: str,
    signers: Signers,
    root: Location,
    allowed: tuple[Location, ...],
    extra: bytes = b"",
) -> Iterator[Lines]:
    """The signed lines of a snapshot's files, a batch of lines per piece (each saying how many): per file
    only the URL's MAC is Python work; the URLs and lines are assembled column-wise from the pre-encoded parts.
    Parts still being built are rendered a block at a time as the build makes them."""
    more = (lines.extra_fields(expirationTimestamp=signers.expires_ms) + extra).decode()
    if isinstance(selected, FileParts) and selected.table.num_rows <= SMALL_ANSWER_FILES:
        small = _small_lines(selected, fmt, signers, root, more)
        if small is not None:
            signed, failure = small
            if signed.files:
                yield signed
            if failure is not None:
                raise failure
            return
    json_safe = signers.json_safe_below(root)
    # What follows the id (delta) or the tail (parquet): the same for every line of the answer.
    middle = pa.scalar(
        '"' + more + ',"deltaSingleAction":{"add":{"path":"' if fmt == DELTA else more + "}}\n", pa.string()
    )
    for rows in _batches(selected):
        # The batch's columns and joined lines die in `_batch_lines`, not with this generator's locals: an answer
        # waiting for its client holds only the bytes it yielded (8 answers at once: ~10 MB less at the peak).
        data, count, failure = _batch_lines(
            rows, selected.files, fmt, signers, root, allowed, middle, json_safe
        )
        if count:
            yield Lines(data, count)
        if failure is not None:
            raise failure
    if len(selected) > _RELEASE_AFTER:
        release_unused()  # the render's batches: a worker that only answers keeps ~0.1 KB per file less


def _batch_lines(
    rows: pa.Table,
    files: AddFiles,
    fmt: str,
    signers: Signers,
    root: Location,
    allowed: tuple[Location, ...],
    middle: pa.Scalar,
    json_safe: bool,
) -> tuple[bytes, int, Exception | None]:
    """The lines of one batch of parts, how many, and the error that stopped signing (the lines before it are
    returned)."""
    urls, failure = _sign(rows, files, signers, signers.below(root))
    batch = rows if failure is None else rows.slice(0, len(urls))
    escaped = urls if json_safe else _json_escaped(urls)
    ids, tail = batch.column("id"), batch.column("tail")
    if fmt == DELTA:
        dv = batch.column("dv").combine_chunks()
        if pc.any(dv).as_py():
            tail = _presigned_dv_tails(batch, files, dv, tail, signers, root, allowed)
        joined = pc.binary_join_element_wise(
            _DELTA_START, ids, middle, escaped, _QUOTE, tail, _DELTA_END, _NO_SEPARATOR
        )
    else:
        joined = pc.binary_join_element_wise(
            _PARQUET_START, escaped, _AFTER_URL, ids, _QUOTE, tail, middle, _NO_SEPARATOR
        )
    return _data(joined), len(batch), failure


def _batches(selected: FileParts | StreamedParts) -> Iterator[pa.Table]:
    """The rows to render, `_BATCH` at a time (parts being built: as their blocks are made)."""
    blocks = selected.blocks() if isinstance(selected, StreamedParts) else [selected.table]
    for block in blocks:
        for start in range(0, block.num_rows, _BATCH):
            yield block.slice(start, _BATCH)


def _small_lines(
    selected: FileParts, fmt: str, signers: Signers, root: Location, more: str
) -> tuple[Lines, Exception | None] | None:
    """The lines of a few files, joined in Python from the parts' values (remembered by the FileParts object:
    the cached parts of a snapshot serve every query without predicates), with the same bytes the column-wise
    path makes, and the error that stopped signing (the lines before it are returned, as the column-wise path
    streams them); None for a delta-format answer with deletion vectors (their files are signed column-wise)."""
    rows = selected.small_rows()
    if fmt == DELTA and any(row.dv for row in rows):
        return None
    out: list[str] = []
    try:
        sign_below = signers.one_below(root) if rows else None
        for row in rows:
            out.append(_small_line(row, fmt, signers, sign_below, more))  # noqa: PERF401  - kept on failure
    except Exception as exc:  # noqa: BLE001  - the caller sends the lines signed before it, then raises
        return Lines("".join(out).encode(), len(out)), exc
    return Lines("".join(out).encode(), len(out)), None


def _small_line(
    row: SmallRow, fmt: str, signers: Signers, sign_below: Callable[[str], str] | None, more: str
) -> str:
    if row.uri is None and sign_below is not None:
        url = sign_below(row.below)
    else:
        url = signers.sign(Location.parse(row.uri or ""))
    if _JSON_SPECIAL.search(url):  # no signer makes such URLs; checked, not assumed
        url = orjson.dumps(url).decode()[1:-1]
    if fmt == DELTA:
        return f'{{"file":{{"id":"{row.id}"{more},"deltaSingleAction":{{"add":{{"path":"{url}"{row.tail}}}}}}}}}\n'
    return f'{{"file":{{"url":"{url}","id":"{row.id}"{row.tail}{more}}}}}\n'


def _json_escaped(urls: pa.Array) -> pa.Array:
    """The URLs as the inside of JSON strings: as they are when nothing needs escaping (no signer makes such
    URLs; checked on the column's bytes, not assumed), else escaped one by one."""
    if has_any(string_buffers(urls)[2], _JSON_ESCAPED):
        return pa.array([orjson.dumps(u).decode()[1:-1] for u in urls.to_pylist()], pa.string())
    return urls


def _sign(
    batch: pa.Table, files: AddFiles, signers: Signers, sign_below: Callable[[pa.Array], pa.Array]
) -> tuple[pa.Array, Exception | None]:
    """The URLs of a batch of files, and the error that stopped signing (the URLs before it are returned)."""
    uris = batch.column("uri")
    below = pc.coalesce(batch.column("rel"), parts.paths_of(batch.column("row"), files)).combine_chunks()
    if uris.null_count == len(uris):  # every file below the root: one batch
        try:
            return sign_below(below), None
        except Exception:  # noqa: BLE001, S110  - signed file by file below, to find where it fails
            pass
        pairs: list[tuple[str | None, str | None]] = [(r, None) for r in strings(below)]
    else:
        rels = pc.if_else(pc.is_null(uris), below, None)
        pairs = list(zip(rels.to_pylist(), uris.to_pylist(), strict=True))
    urls: list[str] = []
    try:
        for rel, uri in pairs:
            urls.append(
                str(sign_below(pa.array([rel], pa.string()))[0])
                if rel is not None
                else signers.sign(Location.parse(uri or ""))
            )
    except Exception as exc:  # noqa: BLE001  - the caller streams the lines signed before it, then raises
        return pa.array(urls, pa.string()), exc
    return pa.array(urls, pa.string()), None


def _data(column: pa.Array | pa.ChunkedArray) -> bytes:
    """The concatenated values of a string column (no separators), straight from its buffers."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    first, last = int(offsets[array.offset]), int(offsets[array.offset + len(array)])
    data = array.buffers()[2]
    return data.slice(first, last - first).to_pybytes() if data is not None else b""


def _presigned_dv_tails(
    batch: pa.Table,
    files: AddFiles,
    dv: pa.Array,
    tail: pa.ChunkedArray,
    signers: Signers,
    root: Location,
    allowed: tuple[Location, ...],
) -> pa.Array:
    """Delta-format tails of the files with a deletion vector: the DV file is signed per request."""
    mask = dv.to_numpy(zero_copy_only=False)
    rows = batch.column("row").to_numpy()
    exact = []
    for i in np.flatnonzero(mask).tolist():
        add = files.add_of_row(int(rows[i]))
        exact.append(
            lines.delta_action_tail(
                _presigned_dv(add, add["deletionVector"], signers, root, allowed)
            ).decode()
        )
    return pc.replace_with_mask(tail.combine_chunks(), pa.array(mask), pa.array(exact, pa.string()))


def _presigned_dv(
    add: dict[str, Any],
    descriptor: dict[str, Any],
    signers: Signers,
    root: Location,
    allowed: tuple[Location, ...],
) -> dict[str, Any]:
    """The recipient rebuilds a log elsewhere, so a DV stored beside the table must be handed out as an
    absolute (`p`) signed URL; inline DVs stay as they are."""
    dv_file = deletion_vector_location(root, descriptor, allowed)
    if dv_file is None:
        return {k: v for k, v in add.items() if k != "path"}
    rewritten = {**descriptor, "storageType": "p", "pathOrInlineDv": signers.sign(dv_file)}
    return {**{k: v for k, v in add.items() if k != "path"}, "deletionVector": rewritten}
