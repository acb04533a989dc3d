"""A table's state at one version: protocol, metadata and the live data files, rebuilt by log replay.

Files are keyed by (path, deletion vector id) as the Delta protocol requires: a commit that adds a deletion
vector to a file removes the file without it and adds it again with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

from lakegate._gc import paused_gc
from lakegate.delta.addfiles import AddFiles, Changes, dv_id, file_key
from lakegate.delta.log import DeltaLog, Listing, contiguous, version_name
from lakegate.exceptions import (
    LakegateError,
    MalformedRequestError,
    StorageError,
    TableFilesMissingError,
    TableStateError,
)

__all__ = ["Snapshot", "dv_id", "file_key", "load_snapshot"]  # dv_id, file_key: where callers know them

log_ = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Immutable once built, so concurrent requests share it freely. Caches built from it (the file lines of
    `lakegate.service.files.LineCache`) are kept by the service layer, keyed by the object (`eq=False`:
    identity), never stored on it."""

    version: int
    protocol: dict[str, Any]
    metadata: dict[str, Any]
    # The live add actions (by file key), column-wise; never changed once the snapshot is built.
    files: AddFiles
    commit_mtime_ms: int  # modification time of this version's commit file (0 if unknown)
    in_commit_timestamp: int | None = None
    # Read from a checkpoint whose version has no commit file (a cleaned-up log, or one written checkpoint
    # only): its files' (name, size, modification time), what tells this log from a table written again.
    checkpoint_files: tuple[tuple[str, int, int], ...] = ()

    @cached_property
    def schema(self) -> dict[str, Any]:
        try:
            schema: dict[str, Any] = orjson.loads(self.metadata.get("schemaString") or "{}")
            return schema
        except orjson.JSONDecodeError as exc:
            raise StorageError("the table's schemaString is not valid JSON") from exc

    @cached_property
    def column_types(self) -> dict[str, str]:
        """Top-level column name -> Delta type name (nested types as 'struct', 'array', 'map')."""
        types = {}
        for f in self.schema.get("fields", []):
            kind = f.get("type")
            types[f["name"]] = kind if isinstance(kind, str) else kind.get("type", "struct")
        return types

    @property
    def partition_columns(self) -> list[str]:
        return list(self.metadata.get("partitionColumns") or [])

    @property
    def configuration(self) -> dict[str, str]:
        return dict(self.metadata.get("configuration") or {})

    @property
    def reader_features(self) -> set[str]:
        return set(self.protocol.get("readerFeatures") or [])

    @property
    def min_reader_version(self) -> int:
        return int(self.protocol.get("minReaderVersion", 1))

    @cached_property
    def size_bytes(self) -> int:
        return self.files.total_size()


@dataclass
class _State:
    """A snapshot being built: nobody else sees it yet, so commits are applied to it in place."""

    version: int
    protocol: dict[str, Any]
    metadata: dict[str, Any]
    files: Changes
    mtime_ms: int
    in_commit_timestamp: int | None = None
    checkpoint_files: tuple[tuple[str, int, int], ...] = ()

    def apply(self, version: int, actions: list[dict[str, Any]], mtime_ms: int) -> None:
        ict = None
        for action in actions:
            if "add" in action:
                self.files.add(action["add"])
            elif "remove" in action:
                self.files.remove(action["remove"])
            elif "metaData" in action:
                self.metadata = action["metaData"]
            elif "protocol" in action:
                self.protocol = action["protocol"]
            elif "commitInfo" in action:
                ict = action["commitInfo"].get("inCommitTimestamp")
        self.version, self.mtime_ms, self.in_commit_timestamp = version, mtime_ms, ict
        self.checkpoint_files = ()  # the commit file's modification time tells the log now

    def snapshot(self) -> Snapshot:
        return Snapshot(
            self.version,
            self.protocol,
            self.metadata,
            self.files.done(),
            self.mtime_ms,
            self.in_commit_timestamp,
            self.checkpoint_files,
        )


# How often a snapshot is rebuilt from a fresh listing when the log changed under the reader: a listed file
# vanished before it was read, or the listing shows a gap (a directory listing is not atomic: a writer cleaning
# the log up while it runs can leave a commit out of it). A gap or a missing file that persists across fresh
# listings is real.
_ATTEMPTS = 4


def load_snapshot(log: DeltaLog, version: int | None = None, base: Snapshot | None = None) -> Snapshot:
    """The snapshot at `version` (latest if None), reusing `base` (an older snapshot) when possible."""
    with paused_gc():
        full_listing = gap_seen = False
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return _load(log, version, base, full_listing or attempt == _ATTEMPTS)
            except FileNotFoundError as exc:  # listed, then removed before it was read: list again
                if attempt == _ATTEMPTS:
                    raise StorageError(
                        f"files of the log of {log.root.display} keep vanishing: {exc}"
                    ) from exc
            except _GapError as gap:  # once only: a version older than the cleaned-up log is common
                if gap_seen or attempt == _ATTEMPTS:
                    raise gap.error from None
                full_listing = gap_seen = True
            except _NeedsOlderEntriesError:
                full_listing = True
        raise AssertionError("unreachable: the last attempt lists the whole log")


class _NeedsOlderEntriesError(Exception):
    """The newest checkpoint cannot be read, and the listing (which started at it) has nothing older."""


class _GapError(Exception):
    """A commit needed for the snapshot is not in the listing; `error` is the answer if a fresh listing
    shows the same gap."""

    def __init__(self, error: LakegateError) -> None:
        super().__init__(error.message)
        self.error = error


def _load(log: DeltaLog, version: int | None, base: Snapshot | None, full_listing: bool) -> Snapshot:
    if base is not None and (version is None or version >= base.version):
        if version == base.version or (version is None and not log.has_commit(base.version + 1)):
            return base  # nothing newer: no listing (O(log) on stores that cannot list after a name)
        # Listed from the base's own commit: if that file is not the one the base was built from (the table was
        # deleted and made again at the same location), the newer commits belong to another log.
        listing = log.list(start_after=f"{base.version:020d}")
        newer = sorted(v for v in listing.commits if v > base.version and (version is None or v <= version))
        own = listing.commits.get(base.version)
        same_log = not checkpoint_replaced(base, listing) and (
            own is None or not base.commit_mtime_ms or own.mtime_ms == base.commit_mtime_ms
        )
        if (
            same_log
            and contiguous(base.version, newer)
            and (version is None or version in (base.version, *newer))
        ):
            if not newer:
                return base
            # One copy of the base's files for all the commits (Snapshot.apply copies per commit: a base many
            # commits behind would cost files × commits).
            state = _State(
                base.version,
                base.protocol,
                base.metadata,
                base.files.changed(),
                base.commit_mtime_ms,
                base.in_commit_timestamp,
            )
            for v in newer:
                state.apply(v, log.commit_actions(v), listing.commits[v].mtime_ms)
            return state.snapshot()
    start = None if full_listing else log.last_checkpoint_version()
    if start is None or (version is not None and version < start):
        return _replay(log, log.list(), version, partial=False)
    listing = log.list(start_after=f"{start:020d}")
    if start not in listing.checkpoints:
        # _last_checkpoint names a checkpoint that is gone or incomplete: a later one found in the partial
        # listing would not serve an earlier version, and the commits before it are not listed.
        return _replay(log, log.list(), version, partial=False)
    return _replay(log, listing, version, partial=True)


def _replay(log: DeltaLog, listing: Listing, version: int | None, partial: bool) -> Snapshot:
    latest = listing.latest_version
    if latest is None:
        log_.error("no Delta table at %s: _delta_log is empty or missing", log.root.display)
        raise TableFilesMissingError("table files missing: the provider's table has no Delta log")
    target = latest if version is None else version
    if target > latest:
        raise MalformedRequestError(f"Cannot load table version {target} as the latest version is {latest}")
    state = _starting_point(log, listing, target, partial)
    for v in range(state.version + 1, target + 1):
        state.apply(v, log.commit_actions(v), listing.commits[v].mtime_ms)
    if not state.metadata or not state.protocol:
        raise TableStateError(
            "The table cannot be read: its log has no metadata or protocol; the provider must repair it",
            f"the log of {log.root.display} has no metaData or protocol action at version {target}",
        )
    return state.snapshot()


def _starting_point(log: DeltaLog, listing: Listing, target: int, partial: bool) -> _State:
    """The state at the newest checkpoint at or before `target` whose commits up to `target` are all in the
    log; an older checkpoint (or none: version -1) when it cannot be read."""
    candidates: list[int | None] = [
        *sorted((v for v in listing.checkpoints if v <= target), reverse=True),
        None,
    ]
    broken: TableStateError | None = None
    for checkpoint in candidates:
        first = 0 if checkpoint is None else checkpoint + 1
        missing = next((v for v in range(first, target + 1) if v not in listing.commits), None)
        if missing is not None:
            if broken is not None and partial:  # older checkpoints and commits were not listed
                raise _NeedsOlderEntriesError
            raise broken or _GapError(_missing_commit(log, listing, target, missing))
        if checkpoint is None:
            break
        try:
            state = log.read_checkpoint(listing.checkpoints[checkpoint])
        except TableStateError as exc:
            log_.error("%s; reading an older checkpoint or the commits instead", exc.detail)
            broken = broken or exc
            continue
        ckpt_info = listing.commits.get(checkpoint)
        return _State(
            checkpoint,
            state.protocol or {},
            state.metadata or {},
            AddFiles.from_table(state.add_table(), state.adds).changed(),
            ckpt_info.mtime_ms if ckpt_info else 0,
            checkpoint_files=() if ckpt_info else _checkpoint_identity(listing, checkpoint),
        )
    return _State(-1, {}, {}, AddFiles().changed(), 0)


def _checkpoint_identity(listing: Listing, version: int) -> tuple[tuple[str, int, int], ...]:
    infos = [(name, listing.checkpoint_files.get(name)) for name in listing.checkpoints.get(version, [])]
    return tuple((name, info.size, info.mtime_ms) for name, info in infos if info is not None)


def checkpoint_replaced(snapshot: Snapshot, listing: Listing) -> bool:
    """For a snapshot read from a checkpoint whose version has no commit file: whether `listing` (from that
    version on) no longer shows that log, i.e. the table was deleted and written again (a commit file of the
    version appeared, or its checkpoint is gone or another file). False for other snapshots: their commit
    file's modification time tells."""
    if not snapshot.checkpoint_files:
        return False
    return (
        snapshot.version in listing.commits
        or _checkpoint_identity(listing, snapshot.version) != snapshot.checkpoint_files
    )


def _missing_commit(log: DeltaLog, listing: Listing, target: int, missing: int) -> LakegateError:
    """A commit needed for `target` is not in the log. Before a later checkpoint, log cleanup removed it and
    the version is simply too old (the request's problem); otherwise the table lost a commit it still needs
    (the provider's problem)."""
    if any(v > target for v in listing.checkpoints):
        return MalformedRequestError(
            f"Cannot load table version {target}: the log no longer has commit {missing} "
            "(it was cleaned up); choose a later version"
        )
    return TableStateError(
        f"The table cannot be read at version {target}: commit {missing} is missing from its log and no "
        "checkpoint covers it; the provider must repair the table",
        f"{log.log_dir.child(version_name(missing) + '.json').display} is missing and no checkpoint "
        f"covers it (needed for version {target})",
    )
