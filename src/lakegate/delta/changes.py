"""What each commit contributes to a streaming query and to a change data feed (protocol.md §2.8, §2.9, §9.4).

A streaming query (`startingVersion` on /query) returns, per version, the add and remove actions that changed
data (`dataChange=true`; OPTIMIZE and other rewrites contribute nothing). A change data feed returns, per
version, the `cdc` files when the commit wrote `_change_data/`, otherwise its data-changing adds (inserts) and
removes (deletes) — except a MERGE that changed no row, whose rewritten files are not changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from lakegate._lru import Lru
from lakegate.delta.log import DeltaLog
from lakegate.exceptions import InvalidParameterError

ADD, REMOVE, CDC = "add", "remove", "cdc"
_MERGE_METRICS = (
    ("numTargetRowsInserted", "num_target_rows_inserted"),
    ("numTargetRowsUpdated", "num_target_rows_updated"),
    ("numTargetRowsDeleted", "num_target_rows_deleted"),
)


@dataclass(frozen=True)
class Commit:
    """The actions of one version that matter for history queries, in log order."""

    version: int
    adds: tuple[dict[str, Any], ...]  # add actions with dataChange=true
    removes: tuple[dict[str, Any], ...]  # remove actions with dataChange=true
    cdcs: tuple[dict[str, Any], ...]  # cdc actions (files under _change_data/)
    metadata: dict[str, Any] | None
    protocol: dict[str, Any] | None
    commit_info: dict[str, Any] | None

    @classmethod
    def parse(cls, version: int, actions: list[dict[str, Any]]) -> Commit:
        adds: list[dict[str, Any]] = []
        removes: list[dict[str, Any]] = []
        cdcs: list[dict[str, Any]] = []
        metadata = protocol = info = None
        for action in actions:
            if "add" in action:
                if _data_change(action["add"]):
                    adds.append(action["add"])
            elif "remove" in action:
                if _data_change(action["remove"]):
                    removes.append(action["remove"])
            elif "cdc" in action:
                cdcs.append(action["cdc"])
            elif "metaData" in action:
                metadata = action["metaData"]
            elif "protocol" in action:
                protocol = action["protocol"]
            elif "commitInfo" in action:
                info = action["commitInfo"]
        return cls(version, tuple(adds), tuple(removes), tuple(cdcs), metadata, protocol, info)

    def change_timestamp(self, commit_timestamp: int) -> int:
        """`_commit_timestamp` of this version's changes: the commit's own timestamp (its in-commit timestamp,
        else `commitInfo.timestamp`), which is what deltalake's `load_cdf` reports; the commit timestamp of the
        table's history (file modification time) only when the commit records none. The two usually agree to
        the millisecond, but not always (a slow write, a copied table)."""
        info = self.commit_info or {}
        for key in ("inCommitTimestamp", "timestamp"):
            value = info.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return commit_timestamp

    def streaming_files(self) -> list[tuple[str, dict[str, Any]]]:
        """(kind, action) of the files a streaming query returns for this version."""
        return [(ADD, a) for a in self.adds] + [(REMOVE, r) for r in self.removes]

    def cdf_files(self) -> list[tuple[str, dict[str, Any]]]:
        """(kind, action) of the files a change data feed returns for this version."""
        if self.cdcs:
            return [(CDC, c) for c in self.cdcs]
        if self.is_noop_merge:
            return []
        return self.streaming_files()

    @property
    def is_noop_merge(self) -> bool:
        """A MERGE whose metrics say it inserted, updated and deleted nothing: it may still have rewritten
        files (copied rows), which must not show up as deletes and inserts."""
        info = self.commit_info or {}
        if str(info.get("operation", "")).upper() != "MERGE":
            return False
        metrics = info.get("operationMetrics") or {}
        for names in _MERGE_METRICS:
            value = next((metrics[n] for n in names if n in metrics), None)
            if value is None or str(value) != "0":
                return False
        return True


def _data_change(action: dict[str, Any]) -> bool:
    # dataChange is required by the Delta protocol; a writer that omits it gets the safe reading (a change).
    return action.get("dataChange", True) is not False


def cdf_enabled(metadata: dict[str, Any] | None) -> bool:
    config = (metadata or {}).get("configuration") or {}
    return str(config.get("delta.enableChangeDataFeed", "")).lower() == "true"


def check_cdf_recorded(
    start: int, end: int, metadata_at_start: dict[str, Any], commits: list[Commit]
) -> None:
    """Change data must have been recorded for every version of [start, end]: the feed must be enabled in the
    metadata in force at `start` and in every metadata change within the range."""
    bad = None if cdf_enabled(metadata_at_start) else start
    if bad is None:
        bad = next(
            (c.version for c in commits if c.metadata is not None and not cdf_enabled(c.metadata)), None
        )
    if bad is not None:
        raise InvalidParameterError(
            f"Error getting change data for range [{start}, {end}] as change data was not recorded for "
            f"version [{bad}]. Enable 'delta.enableChangeDataFeed' on the table to record it."
        )


class CommitCache:
    """Parsed commits, shared by requests (commit files never change once written): paged and repeated
    history queries re-read the same versions."""

    def __init__(self, max_commits: int = 512) -> None:
        self._commits: Lru[tuple[str, int], Commit] = Lru(max_commits)
        self._lock = threading.Lock()

    def get(self, log: DeltaLog, version: int) -> Commit:
        key = (log.root.uri, version)
        with self._lock:
            found = self._commits.get(key)
            if found is not None:
                return found
        commit = Commit.parse(version, log.read_commit(version))
        with self._lock:
            self._commits.put(key, commit)
        return commit
