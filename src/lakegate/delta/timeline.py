"""Commit timestamps and the mapping between timestamps and versions.

A commit's timestamp is its in-commit timestamp when the table writes them (`delta.enableInCommitTimestamps`),
otherwise the modification time of its commit file, made strictly increasing (a later commit never gets a
timestamp at or before an earlier one), as Delta readers do.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from lakegate._lru import Lru
from lakegate.delta.log import DeltaLog, contiguous, version_name
from lakegate.exceptions import InvalidParameterError, StorageError, TableFilesMissingError
from lakegate.inline import holding
from lakegate.timestamps import iso_from_ms

log_ = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timeline:
    versions: list[int]  # ascending, contiguous up to the latest version
    timestamps: list[int]  # ms, strictly increasing, aligned with `versions`

    @property
    def latest(self) -> int:
        return self.versions[-1]

    @property
    def earliest(self) -> int:
        return self.versions[0]

    def timestamp_of(self, version: int) -> int:
        i = version - self.versions[0]
        if i < 0 or i >= len(self.versions):
            raise InvalidParameterError(f"version {version} is not in the table's history")
        return self.timestamps[i]

    def version_at_or_after(self, ts_ms: int, text: str) -> int:
        """Earliest version committed at or after the timestamp (startingTimestamp semantics)."""
        i = bisect_left(self.timestamps, ts_ms)
        if i == len(self.versions):
            raise InvalidParameterError(
                f"The provided timestamp ({text}) is after the latest version available to this table "
                f"({self.latest}, committed at {iso_from_ms(self.timestamps[-1])})."
            )
        return self.versions[i]

    def version_as_of(self, ts_ms: int, text: str, *, after_latest: bool = False) -> int:
        """Latest version committed at or before the timestamp. Time travel (the default) refuses a timestamp
        after the latest commit, as Delta does: the table's state then is not known yet. The end of a change
        data range (`after_latest=True`) is the latest version."""
        i = bisect_right(self.timestamps, ts_ms)
        if i == 0:
            raise InvalidParameterError(
                f"The provided timestamp ({text}) is before the earliest version available to this table "
                f"({self.earliest}, committed at {iso_from_ms(self.timestamps[0])})."
            )
        if i == len(self.versions) and ts_ms > self.timestamps[-1] and not after_latest:
            raise InvalidParameterError(
                f"The provided timestamp ({text}) is after the latest version available to this table "
                f"({self.latest}, committed at {iso_from_ms(self.timestamps[-1])}). Use a timestamp at or before it, "
                "or query the latest version without a timestamp."
            )
        return self.versions[i - 1]


def load_timeline(log: DeltaLog, in_commit_timestamps_from: int | None = None) -> Timeline:
    """All commits still in the log. `in_commit_timestamps_from`: first version whose commitInfo carries an
    in-commit timestamp (None when the table does not use them)."""
    for _ in range(_ATTEMPTS - 1):
        try:
            return _load_timeline(log, in_commit_timestamps_from)
        except FileNotFoundError:
            pass  # a commit whose in-commit timestamp was to be read was cleaned up since the listing
    try:
        return _load_timeline(log, in_commit_timestamps_from)
    except FileNotFoundError as exc:
        raise StorageError(f"commits of the log of {log.root.display} keep vanishing: {exc}") from exc


_ATTEMPTS = 3


def _load_timeline(log: DeltaLog, in_commit_timestamps_from: int | None) -> Timeline:
    listing = log.list()
    versions = _latest_run(sorted(listing.commits))
    if len(versions) < len(listing.commits):
        # Commits before a gap: a listing taken while a writer cleaned the log up (listings are not atomic)
        # can show the old commits it had not deleted yet beside the new ones. A fresh listing tells.
        listing = log.list()
        versions = _latest_run(sorted(listing.commits))
    if not versions:
        # The location is the provider's business: it goes to the log, never to the recipient.
        log_.error("no commits in the Delta log at %s", log.root.display)
        raise TableFilesMissingError("table files missing: the provider's table has no commits")
    return _extend(
        Timeline([], []), log, [(v, listing.commits[v].mtime_ms) for v in versions], in_commit_timestamps_from
    )


def _latest_run(versions: list[int]) -> list[int]:
    """The contiguous run of `versions` (ascending) ending at the latest; older commits may be cleaned up."""
    start = len(versions) - 1
    while start > 0 and versions[start - 1] == versions[start] - 1:
        start -= 1
    return versions[start:]


def _extend(
    timeline: Timeline, log: DeltaLog, commits: list[tuple[int, int]], ict_from: int | None
) -> Timeline:
    """`timeline` followed by `commits` ((version, mtime ms), ascending and contiguous with it)."""
    versions, timestamps = list(timeline.versions), list(timeline.timestamps)
    for v, mtime in commits:
        ts = _in_commit_timestamp(log, v) if ict_from is not None and v >= ict_from else None
        if ts is None:
            ts = mtime
            if timestamps and ts <= timestamps[-1]:
                ts = timestamps[-1] + 1
        versions.append(v)
        timestamps.append(ts)
    return Timeline(versions, timestamps)


class TimelineCache:
    """The Timeline of each table, kept between requests and extended with new commits only.

    Rebuilding it from a full listing of `_delta_log/` (and, with in-commit timestamps, a read of every
    commit) on each time-travel or change-feed request would cost O(versions) per request; commits never
    change once written, so only the commits after the cached latest version are listed and read."""

    def __init__(self, max_tables: int = 64) -> None:
        self._tables: Lru[tuple[str, int | None], Timeline] = Lru(max_tables)
        self._locks: dict[tuple[str, int | None], threading.Lock] = {}
        self._guard = threading.Lock()

    def forget(self, uri: str) -> None:
        """Drop the table's timelines (the table at `uri` was deleted and written again)."""
        with self._guard:
            for key in [k for k, _ in self._tables.items() if k[0] == uri]:
                self._tables.pop(key)

    def get(
        self, log: DeltaLog, in_commit_timestamps_from: int | None = None, at_least: int | None = None
    ) -> Timeline:
        """The table's Timeline, covering at least version `at_least` (the version the caller's snapshot has);
        without `at_least` the log is listed for newer commits."""
        key = (log.root.uri, in_commit_timestamps_from)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with holding(lock):  # on the event loop (lakegate.inline), a load in progress is not waited for
            cached = self._tables.get(key)
            if cached is not None and at_least is not None and cached.latest >= at_least:
                timeline = cached
            elif cached is None:
                timeline = load_timeline(log, in_commit_timestamps_from)
            else:
                listing = log.list(start_after=f"{version_name(cached.latest)}.json")
                newer = sorted(v for v in listing.commits if v > cached.latest)
                if newer and not contiguous(cached.latest, newer):
                    timeline = load_timeline(log, in_commit_timestamps_from)  # a gap: start over
                elif newer:
                    commits = [(v, listing.commits[v].mtime_ms) for v in newer]
                    try:
                        timeline = _extend(cached, log, commits, in_commit_timestamps_from)
                    except FileNotFoundError:  # cleaned up since the listing: start over
                        timeline = load_timeline(log, in_commit_timestamps_from)
                else:
                    timeline = cached
            with self._guard:
                self._tables.put(key, timeline)
            return timeline


def _in_commit_timestamp(log: DeltaLog, version: int) -> int | None:
    """The commit's in-commit timestamp; FileNotFoundError when the commit is gone since it was listed."""
    for action in log.commit_actions(version):
        if "commitInfo" in action:
            ts = action["commitInfo"].get("inCommitTimestamp")
            return int(ts) if ts is not None else None
    return None
