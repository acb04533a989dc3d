"""Turning a snapshot's add actions into signed file lines, fast.

Per snapshot and response format, each file's id, location and the unchanging part of its line are computed
once and kept in the `LineCache` (keyed by the snapshot, which stays immutable); per request only the URL is
signed and spliced in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from lakegate._gc import paused_gc
from lakegate._lru import Lru
from lakegate.cloud.base import ObjectStore, SignRequest, UrlSigner
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.delta.actions import data_location, deletion_vector_location
from lakegate.delta.snapshot import Snapshot
from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA


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


Entries = dict[tuple[str, str], FileEntry]  # by file key (path, deletion vector id)


_Key = tuple[Location, tuple[Location, ...], str, str]  # (root, auxiliary locations, format, id scheme)


@dataclass
class _SnapshotLines:
    entries: dict[_Key, Entries] = field(default_factory=dict)
    ordered: dict[_Key, list[FileEntry]] = field(default_factory=dict)


class LineCache:
    """The file entries of each snapshot, per table locations, response format and id scheme.

    Built once per snapshot and kept as long as the snapshot is (weakly keyed by it). Entries are reused across
    versions: a snapshot's entries start from the newest ones built for the same table, and an entry whose add
    action is the very same object (snapshots derived by a commit share them) is taken as is, so a commit to a
    100k-file table costs only its own files. Built outside the lock (two requests may build the same entries
    at once; the first stored wins), published under it."""

    def __init__(self, max_tables: int = 64) -> None:
        self._lock = threading.Lock()
        self._by_snapshot: WeakKeyDictionary[Snapshot, _SnapshotLines] = WeakKeyDictionary()
        # Per (locations, format, id scheme): the version and entries of the newest snapshot built.
        self._newest: Lru[_Key, tuple[int, Entries]] = Lru(4 * max_tables)

    def entries(
        self, snapshot: Snapshot, root: Location, allowed: tuple[Location, ...], fmt: str, id_scheme: str
    ) -> Entries:
        """The snapshot's file entries for one format."""
        key = (root, allowed, fmt, id_scheme)
        with self._lock:
            found = self._lines(snapshot).entries.get(key)
            newest = self._newest.get(key) if found is None else None
        if found is not None:
            return found
        built = _build(snapshot, root, allowed, fmt, id_scheme, newest[1] if newest else {})
        with self._lock:
            found = self._lines(snapshot).entries.setdefault(key, built)
            newest = self._newest.get(key)
            if newest is None or newest[0] <= snapshot.version:  # time travel does not displace the latest
                self._newest.put(key, (snapshot.version, found))
        return found

    def sorted_entries(
        self, snapshot: Snapshot, root: Location, allowed: tuple[Location, ...], fmt: str, id_scheme: str
    ) -> list[FileEntry]:
        """The entries sorted by file key: the order pages index into, whatever order the replay left."""
        key = (root, allowed, fmt, id_scheme)
        with self._lock:
            found = self._lines(snapshot).ordered.get(key)
        if found is None:
            by_key = self.entries(snapshot, root, allowed, fmt, id_scheme)
            ordered = [by_key[k] for k in sorted(by_key)]
            with self._lock:
                found = self._lines(snapshot).ordered.setdefault(key, ordered)
        return found

    def _lines(self, snapshot: Snapshot) -> _SnapshotLines:
        """The snapshot's record (made on first use); call with the lock held."""
        lines_ = self._by_snapshot.get(snapshot)
        if lines_ is None:
            lines_ = self._by_snapshot[snapshot] = _SnapshotLines()
        return lines_


def _build(
    snapshot: Snapshot,
    root: Location,
    allowed: tuple[Location, ...],
    fmt: str,
    id_scheme: str,
    reusable: Entries,
) -> Entries:
    tail = lines.delta_action_tail if fmt == DELTA else lines.parquet_tail
    built: Entries = {}
    with paused_gc():
        for k, add in snapshot.files.items():
            entry = reusable.get(k)
            built[k] = (
                entry
                if entry is not None and entry.add is add
                else make_entry(add, root, allowed, id_scheme, tail)
            )
    return built


class Signers:
    """One URL signer per store for one response (all URLs share one expiry)."""

    def __init__(self, stores: StoreRegistry, request: SignRequest) -> None:
        self._stores = stores
        self._request = request
        self._by_store: dict[int, UrlSigner] = {}
        self.expires_ms = request.expires_at_s * 1000

    def for_location(self, location: Location) -> UrlSigner:
        store: ObjectStore = self._stores.store_for(location)
        signer = self._by_store.get(id(store))
        if signer is None:
            signer = self._by_store[id(store)] = store.url_signer(self._request)
        return signer

    def sign(self, location: Location) -> str:
        return self.for_location(location)(location)


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
