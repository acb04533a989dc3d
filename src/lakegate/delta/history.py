"""Commit timestamps and the mapping between timestamps and versions.

A commit's timestamp is its in-commit timestamp when the table writes them (`delta.enableInCommitTimestamps`),
otherwise the modification time of its commit file, made strictly increasing (a later commit never gets a
timestamp at or before an earlier one), as Delta readers do.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from lakegate.delta.log import DeltaLog
from lakegate.exceptions import InvalidParameterError


@dataclass(frozen=True)
class History:
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
                f"({self.latest}, committed at {_iso(self.timestamps[-1])})."
            )
        return self.versions[i]

    def version_as_of(self, ts_ms: int, text: str) -> int:
        """Latest version committed at or before the timestamp (time travel semantics)."""
        i = bisect_right(self.timestamps, ts_ms)
        if i == 0:
            raise InvalidParameterError(
                f"The provided timestamp ({text}) is before the earliest version available to this table "
                f"({self.earliest}, committed at {_iso(self.timestamps[0])})."
            )
        return self.versions[i - 1]


def load_history(log: DeltaLog, in_commit_timestamps_from: int | None = None) -> History:
    """All commits still in the log. `in_commit_timestamps_from`: first version whose commitInfo carries an
    in-commit timestamp (None when the table does not use them)."""
    listing = log.list()
    versions = sorted(listing.commits)
    # Keep only the contiguous run ending at the latest commit (older commits may have been cleaned up).
    start = len(versions) - 1
    while start > 0 and versions[start - 1] == versions[start] - 1:
        start -= 1
    versions = versions[start:]
    if not versions:
        raise InvalidParameterError(f"the table at {log.root.display} has no commits")
    timestamps: list[int] = []
    for v in versions:
        ts = None
        if in_commit_timestamps_from is not None and v >= in_commit_timestamps_from:
            ts = _in_commit_timestamp(log, v)
        if ts is None:
            ts = listing.commits[v].mtime_ms
            if timestamps and ts <= timestamps[-1]:
                ts = timestamps[-1] + 1
        timestamps.append(ts)
    return History(versions, timestamps)


def _in_commit_timestamp(log: DeltaLog, version: int) -> int | None:
    for action in log.read_commit(version):
        if "commitInfo" in action:
            ts = action["commitInfo"].get("inCommitTimestamp")
            return int(ts) if ts is not None else None
    return None


def _iso(ts_ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts_ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")
