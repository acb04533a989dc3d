"""Snapshots kept between requests.

The latest snapshot of each table is reused and moved forward incrementally when new commits appear (one
listing of `_delta_log/` after the cached version per request); snapshots of older versions, asked for by time
travel and paged queries, are kept in a small LRU. A request holds one Snapshot object from start to end, so it
always sees one consistent version.

Memory is bounded by bytes (`snapshotCacheBytes`): a snapshot's size is its Arrow add table plus what was built
from it (the file parts of each response format, `sizer`); past the bound, older versions go first, then the
least recently used tables' latest snapshots (never the one just used: a request holds it anyway).

With a shared cache directory (`lakegate.sharedcache`, `serve --workers N`), a checkpoint's add table is read
once by one worker, written as an Arrow IPC file and memory-mapped by every worker (`CachedLog`): a second
worker's first snapshot of a big table costs a listing and the commits after the checkpoint, not the
checkpoint's decoding, and the table's pages are in memory once.
"""

from __future__ import annotations

import builtins
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable

import orjson
import pyarrow as pa

from lakegate import inline
from lakegate._lru import Lru
from lakegate._singleflight import SingleFlight
from lakegate.cloud.base import ObjectInfo, ObjectStore
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.delta.log import CheckpointActions, DeltaLog, Listing
from lakegate.delta.snapshot import Snapshot, checkpoint_replaced, load_snapshot
from lakegate.inline import holding, must_not_block
from lakegate.sharedcache import SharedCache
from lakegate.validity import depends_on, not_reusable

_MAX_LOGS = 1024  # DeltaLog objects kept (one per table root)
log_ = logging.getLogger(__name__)
REPLACED_CHECK_SECONDS = 1.0
# A local table's next commit is looked for at most once per this time (a commit is seen up to 1 ms later;
# small requests come at thousands per second, and each look is a stat).
NEXT_COMMIT_PROBE_SECONDS = 0.001


class SnapshotCache:
    def __init__(
        self,
        stores: StoreRegistry,
        *,
        max_tables: int = 10,
        max_versions: int = 16,
        staleness_acceptable: bool = False,
        max_bytes: int = 0,
        shared: SharedCache | None = None,
    ) -> None:
        self._stores = stores
        self.shared = shared
        self._staleness_acceptable = staleness_acceptable
        self._latest: Lru[str, Snapshot] = Lru(max_tables)
        self._versions: Lru[tuple[str, int], Snapshot] = Lru(max_versions)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._loads = SingleFlight[tuple[str, int], Snapshot]()
        self._logs: dict[str, DeltaLog] = {}
        self._checked: dict[str, float] = {}  # table root -> when its log was last seen to be the cached one
        self._checking: set[str] = set()  # roots whose check runs in the background
        self._replaced_keys: set[str] = set()  # roots a background check found written again
        self._roots: dict[Location, tuple[str, str | None]] = {}  # see `_root`
        # log dir -> (version, millisecond) in which no next commit was found
        self._probed: dict[str, tuple[int, float]] = {}
        self.replaced_check_seconds = REPLACED_CHECK_SECONDS
        # Told the root's URI when a table was found deleted and written again (what else is cached of it goes).
        self.on_replaced: list[Callable[[str], None]] = []
        self.max_bytes = max_bytes  # 0: no bound
        # A snapshot's resident bytes; the service layer adds what it builds from a snapshot (file parts).
        self.sizer: Callable[[Snapshot], int] = lambda snapshot: snapshot.files.nbytes()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def log(self, root: Location) -> DeltaLog:
        if self.shared is not None:  # a CachedLog keeps its last listing: one per load
            return CachedLog(self._stores.store_for(root), root, self.shared)
        found = self._logs.get(root.uri)  # a DeltaLog holds no state: one per table, not one per request
        if found is None:
            if len(self._logs) >= _MAX_LOGS:
                self._logs.clear()
            found = self._logs[root.uri] = DeltaLog(self._stores.store_for(root), root)
        elif root.cloud != "file":
            must_not_block()  # as store_for: object storage is not reached from the event loop
        return found

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def latest(self, root: Location) -> Snapshot:
        snapshot = self._latest_of(root)
        # (An answer kept by the fast lane, lakegate.validity; a weak reference: it keeps no snapshot alive.)
        depends_on(self.still_latest, root, weakref.ref(snapshot))
        return snapshot

    def still_latest(self, root: Location, snapshot_ref: weakref.ref[Snapshot]) -> bool:
        """Whether `latest(root)` would answer the snapshot as it is (looked at as `latest` looks: one stat of a
        local table's next commit at most; a table on object storage is not looked at from the event loop)."""
        key, log_dir = self._root(root)
        snapshot = snapshot_ref()
        with self._guard:
            if snapshot is None or self._latest.get(key) is not snapshot:
                return False
        if self._staleness_acceptable:
            return True
        if log_dir is None:
            return False
        return not (self._next_commit(root, log_dir, snapshot) or self._replaced_soon(key, root, snapshot))

    def _latest_of(self, root: Location) -> Snapshot:
        key, log_dir = self._root(root)
        with self._guard:
            cached = self._latest.get(key)
        if cached is not None and (
            self._staleness_acceptable
            or not (self._next_commit(root, log_dir, cached) or self._replaced_soon(key, root, cached))
        ):
            self.hits += 1  # the usual answer: nothing locked, one stat for a local table
            return cached
        with holding(self._lock(key)):  # on the event loop, a load in progress elsewhere is not waited for
            with self._guard:
                cached = self._latest.get(key)
            if cached is None:
                must_not_block()  # a whole log to read
            log = self.log(root)
            if cached is not None and not log.has_commit(cached.version + 1):
                if not (self._found_replaced(key) or self._replaced(key, log, cached)):
                    self.hits += 1
                    return cached
                cached = None  # deleted and written again: nothing cached of the table is its own
                for forget in self.on_replaced:
                    forget(key)
                with self._guard:
                    # Not served again if the table cannot be read now (deleted, or not written yet).
                    self._latest.pop(key)
                    for older in [k for k, _ in self._versions.items() if k[0] == key]:
                        self._versions.pop(older)
            snapshot = load_snapshot(log, None, cached)
            if cached is not None and snapshot is cached:
                self.hits += 1
                return snapshot  # unchanged: nothing to put or trim
            self.misses += 1
            with self._guard:
                self._latest.put(key, snapshot)
            self.trim(snapshot)
            return snapshot

    def _root(self, root: Location) -> tuple[str, str | None]:
        """The root's URI (the cache key) and, for a local table, its log directory (`Location.uri` is
        computed on every call; small requests ask for the latest snapshot thousands of times a second)."""
        found = self._roots.get(root)
        if found is None:
            if len(self._roots) >= _MAX_LOGS:
                self._roots.clear()
            log_dir = os.path.join(root.local_path, "_delta_log") if root.cloud == "file" else None
            found = self._roots[root] = (root.uri, log_dir)
        return found

    def _next_commit(self, root: Location, log_dir: str | None, cached: Snapshot) -> bool:
        """Whether the commit after the cached snapshot exists (a Delta writer creates commit v+1 before any
        later file): for a local table one stat, allowed on the event loop."""
        if log_dir is not None:
            now = time.monotonic()
            if self._probed.get(log_dir) == (cached.version, now // NEXT_COMMIT_PROBE_SECONDS):
                return False  # looked in this millisecond already
            if os.path.lexists(f"{log_dir}/{cached.version + 1:020d}.json"):
                return True
            if len(self._probed) >= _MAX_LOGS:
                self._probed.clear()
            self._probed[log_dir] = (cached.version, now // NEXT_COMMIT_PROBE_SECONDS)
            return False
        return self.log(root).has_commit(cached.version + 1)

    def _replaced_soon(self, key: str, root: Location, cached: Snapshot) -> bool:
        """Whether the table is known to have been written again (see `_replaced`). On the event loop, a due
        check runs in a thread of its own and the request goes on with the cached snapshot: the check's
        listing made every request arriving meanwhile hop to a worker thread and queue on the table's lock."""
        if key in self._replaced_keys:
            return True
        if time.monotonic() - self._checked.get(key, -math.inf) < self.replaced_check_seconds:
            return False
        if not inline.active():
            return True  # checked (and loaded if so) under the table's lock
        with self._guard:
            if key in self._checking:
                return False
            self._checking.add(key)
        threading.Thread(
            target=self._check_replaced, args=(key, root, cached), name="lakegate-replaced-check", daemon=True
        ).start()
        return False

    def _check_replaced(self, key: str, root: Location, cached: Snapshot) -> None:
        try:
            if self._replaced(key, self.log(root), cached):
                self._replaced_keys.add(key)
        except Exception as exc:  # noqa: BLE001  - storage unreachable: the next check says it again
            log_.warning("checking whether table %s was written again failed: %s", key, exc)
        finally:
            with self._guard:
                self._checking.discard(key)

    def _found_replaced(self, key: str) -> bool:
        """Whether a check in the background found the table written again (then it is read afresh)."""
        if key not in self._replaced_keys:
            return False
        must_not_block()  # nothing lasting before the point the load would block anyway
        self._replaced_keys.discard(key)
        return True

    def _replaced(self, key: str, log: DeltaLog, cached: Snapshot) -> bool:
        """Whether the table was deleted and written again with no commit after the cached version (the probe
        for the next commit cannot tell): the cached version's commit is gone or another file, and no checkpoint
        of that version explains it (a cleaned-up log). Looked at most once per `replaced_check_seconds` per
        table: it takes a listing, and small requests run at many per second."""
        now = time.monotonic()
        if now - self._checked.get(key, -math.inf) < self.replaced_check_seconds:
            return False
        listing = log.list(start_after=f"{cached.version:020d}")  # may block: no lasting effect before it
        if len(self._checked) >= _MAX_LOGS:
            self._checked.clear()
        self._checked[key] = now
        if checkpoint_replaced(cached, listing):
            return True
        own = listing.commits.get(cached.version)
        if own is None:
            return cached.version not in listing.checkpoints
        return bool(cached.commit_mtime_ms) and own.mtime_ms != cached.commit_mtime_ms

    def at_version(self, root: Location, version: int) -> Snapshot:
        not_reusable()  # (a time-travel answer is made again each time: lakegate.validity)
        key = root.uri
        with self._guard:
            latest = self._latest.get(key)
            if latest is not None and latest.version == version:
                self.hits += 1
                return latest
            found = self._versions.get((key, version))
            if found is not None:
                self.hits += 1
                return found
            # The nearest kept snapshot at or before the version, to move forward from: a streaming client
            # polls with a rising startingVersion below the latest, and a time-travelling or paging one stays
            # near one version; without it every such request rebuilt the table from its checkpoint (or, with
            # no checkpoint, from version 0).
            older = [s for (uri, v), s in self._versions.items() if uri == key and v < version]
            if latest is not None and latest.version < version:
                older.append(latest)
            base = max(older, key=lambda s: s.version, default=None)
        must_not_block()  # a version to load (before the flight: its waiters must never see WouldBlock)
        return self._loads.run((key, version), lambda: self._load_version(root, version, base))

    def _load_version(self, root: Location, version: int, base: Snapshot | None) -> Snapshot:
        """Single-flight: concurrent requests for one version (pages, time travel) wait for one load."""
        key = root.uri
        with self._guard:
            found = self._versions.get((key, version))
        if found is not None:  # loaded by the flight that just ended
            self.hits += 1
            return found
        self.misses += 1
        snapshot = load_snapshot(self.log(root), version, base)
        with self._guard:
            self._versions.put((key, version), snapshot)
        self.trim(snapshot)
        return snapshot

    def cached_bytes(self) -> int:
        with self._guard:
            cached = {id(s): s for s in (*self._versions.values(), *self._latest.values())}
        return sum(self.sizer(s) for s in cached.values())

    def trim(self, keep: Snapshot | None = None) -> None:
        """Evict least recently used snapshots until the cache fits `max_bytes` (`keep` stays)."""
        if not self.max_bytes:
            return
        with self._guard:
            for lru in (self._versions, self._latest):
                sizes = {id(s): self.sizer(s) for s in (*self._versions.values(), *self._latest.values())}
                total = sum(sizes.values())
                while total > self.max_bytes and len(lru) and lru.values()[0] is not keep:
                    evicted = lru.pop_oldest()
                    still_cached = any(
                        s is evicted for s in (*self._versions.values(), *self._latest.values())
                    )
                    if not still_cached:
                        total -= sizes.get(id(evicted), 0)
                    self.evictions += 1


class CachedLog(DeltaLog):
    """A log whose checkpoints are read through the shared cache directory: the first reader decodes the
    checkpoint and writes its add table (with the protocol, metadata and JSON adds in the file's metadata); the
    others map it. Keyed by the checkpoint files' names, sizes and modification times as the last listing gave
    them (a table deleted and written again at the same location has new files); a checkpoint not seen in a
    listing is read directly."""

    def __init__(self, store: ObjectStore, root: Location, shared: SharedCache) -> None:
        super().__init__(store, root)
        self._shared = shared
        self._listed: dict[str, ObjectInfo] = {}

    def list(self, start_after: str | None = None) -> Listing:
        listing = super().list(start_after)
        self._listed.update(listing.checkpoint_files)
        return listing

    def read_checkpoint(self, names: builtins.list[str]) -> CheckpointActions:
        infos = [self._listed.get(name) for name in names]
        if any(info is None for info in infos):
            return super().read_checkpoint(names)
        files = tuple((i.name, i.size, i.mtime_ms) for i in infos if i is not None)

        def build() -> pa.Table:
            actions = super(CachedLog, self).read_checkpoint(names)
            table = actions.add_table()
            extra = {"protocol": actions.protocol, "metadata": actions.metadata, "adds": actions.adds}
            return table.replace_schema_metadata(
                {**(table.schema.metadata or {}), _ACTIONS: orjson.dumps(extra)}
            )

        # Its file is written once the file parts are built from it (`sharedcache.write_now`), not before.
        table = self._shared.table(("checkpoint", self.root.uri, files), build, later=True)
        extra = orjson.loads((table.schema.metadata or {})[_ACTIONS])
        return CheckpointActions(extra["protocol"], extra["metadata"], extra["adds"], [table])


_ACTIONS = b"lakegate.checkpoint.actions"
