"""Per-version rules for streaming and change data feed (lakegate.delta.changes), and commit timestamps
(lakegate.delta.timeline): which files each version contributes, the MERGE no-op rule, the CDF range check,
in-commit timestamps, monotonized mtimes and the incremental Timeline cache."""

from __future__ import annotations

import builtins  # CountingLog.list shadows the builtin in its class body
import json
import os
from pathlib import Path

import pytest
from deltalake import DeltaTable, write_deltalake

from lakegate.cloud.local import LocalStore
from lakegate.cloud.locations import Location
from lakegate.delta.changes import Commit, CommitCache, cdf_enabled, check_cdf_recorded
from lakegate.delta.log import DeltaLog
from lakegate.delta.timeline import TimelineCache, load_timeline
from lakegate.exceptions import InvalidParameterError, TableFilesMissingError
from lakegate.keys import KeyRing
from tests.tables import rows


def _add(path: str, data_change: bool = True) -> dict:
    return {
        "add": {
            "path": path,
            "partitionValues": {},
            "size": 1,
            "modificationTime": 0,
            "dataChange": data_change,
        }
    }


def _remove(path: str, data_change: bool = True) -> dict:
    return {"remove": {"path": path, "deletionTimestamp": 0, "dataChange": data_change}}


def _merge(**metrics: object) -> dict:
    return {"commitInfo": {"operation": "MERGE", "operationMetrics": metrics}}


def test_streaming_takes_data_changes_only() -> None:
    commit = Commit.parse(
        3,
        [
            _add("a"),
            _add("b", False),
            _remove("c"),
            _remove("d", False),
            {"cdc": {"path": "_change_data/x", "partitionValues": {}, "size": 1, "dataChange": False}},
        ],
    )
    assert [(k, a["path"]) for k, a in commit.streaming_files()] == [("add", "a"), ("remove", "c")]


def test_cdf_prefers_change_data_files() -> None:
    cdc = {"cdc": {"path": "_change_data/x", "partitionValues": {}, "size": 1, "dataChange": False}}
    assert [(k, a["path"]) for k, a in Commit.parse(1, [_add("a"), cdc, _remove("c")]).cdf_files()] == [
        ("cdc", "_change_data/x")
    ]
    assert [(k, a["path"]) for k, a in Commit.parse(1, [_add("a"), _remove("c")]).cdf_files()] == [
        ("add", "a"),
        ("remove", "c"),
    ]
    optimize = Commit.parse(
        1, [{"commitInfo": {"operation": "OPTIMIZE"}}, _add("a", False), _remove("c", False)]
    )
    assert optimize.cdf_files() == [] and optimize.streaming_files() == []


@pytest.mark.parametrize(
    ("metrics", "noop"),
    [
        (
            {"numTargetRowsInserted": "0", "numTargetRowsUpdated": "0", "numTargetRowsDeleted": "0"},
            True,
        ),  # Spark
        (
            {"num_target_rows_inserted": 0, "num_target_rows_updated": 0, "num_target_rows_deleted": 0},
            True,
        ),  # delta-rs
        ({"numTargetRowsInserted": "0", "numTargetRowsUpdated": "1", "numTargetRowsDeleted": "0"}, False),
        (
            {"numTargetRowsInserted": "0", "numTargetRowsUpdated": "0"},
            False,
        ),  # metrics missing: not known to be a no-op
        ({}, False),
    ],
)
def test_merge_that_changed_nothing_contributes_no_change(metrics: dict, noop: bool) -> None:
    commit = Commit.parse(5, [_merge(**metrics), _add("rewritten"), _remove("old")])
    assert commit.is_noop_merge is noop
    assert commit.cdf_files() == ([] if noop else commit.streaming_files())
    assert len(commit.streaming_files()) == 2  # streaming still sees the rewrite


def test_cdf_recorded_over_the_range() -> None:
    on = {"configuration": {"delta.enableChangeDataFeed": "true"}}
    off = {"configuration": {"delta.enableChangeDataFeed": "false"}}
    assert cdf_enabled(on) and not cdf_enabled(off) and not cdf_enabled(None) and not cdf_enabled({})
    later = [Commit.parse(1, [_add("a")]), Commit.parse(2, [{"metaData": off}]), Commit.parse(3, [_add("b")])]
    check_cdf_recorded(0, 1, on, later[:1])
    with pytest.raises(InvalidParameterError, match=r"range \[0, 3\] .* not recorded for version \[2\]"):
        check_cdf_recorded(0, 3, on, later)
    with pytest.raises(InvalidParameterError, match=r"version \[0\]"):
        check_cdf_recorded(0, 1, off, later[:1])


# -- on real logs -----------------------------------------------------------------------------------------------


class CountingLog(DeltaLog):
    """A DeltaLog that counts listings and commit reads, to check what the caches save."""

    def __init__(self, root: str) -> None:
        super().__init__(LocalStore(KeyRing.random()), Location.parse(root))
        self.listings: list[str | None] = []
        self.reads: list[int] = []

    def list(self, start_after: str | None = None):
        self.listings.append(start_after)
        return super().list(start_after)

    def read_commit(self, version: int) -> builtins.list[dict]:
        self.reads.append(version)
        return super().read_commit(version)


def _table(tmp_path: Path, commits: int) -> str:
    root = str(tmp_path / "t")
    for i in range(commits):
        write_deltalake(root, rows([i * 3 + 1]), mode="append")
    return root


def _set_mtime(root: str, version: int, ms: int) -> None:
    os.utime(Path(root) / "_delta_log" / f"{version:020d}.json", ns=(ms * 1_000_000, ms * 1_000_000))


def test_commit_cache_reads_each_commit_once(tmp_path: Path) -> None:
    log = CountingLog(_table(tmp_path, 2))
    cache = CommitCache(max_commits=8)
    assert cache.get(log, 1) is cache.get(log, 1)
    assert log.reads == [1]


def test_timestamps_are_mtimes_made_increasing(tmp_path: Path) -> None:
    root = _table(tmp_path, 4)
    for version, ms in enumerate([1_000, 5_000, 4_000, 5_000]):  # a clock that went back
        _set_mtime(root, version, ms)
    history = load_timeline(CountingLog(root))
    assert history.timestamps == [1_000, 5_000, 5_001, 5_002]
    assert history.version_as_of(5_001, "t") == 2 and history.version_at_or_after(5_001, "t") == 2
    assert history.version_at_or_after(1_001, "t") == 1 and history.version_at_or_after(0, "t") == 0
    with pytest.raises(InvalidParameterError, match="before the earliest version"):
        history.version_as_of(999, "t")
    with pytest.raises(InvalidParameterError, match="after the latest version"):
        history.version_at_or_after(5_003, "t")
    assert history.version_as_of(5_002, "t") == 3
    with pytest.raises(InvalidParameterError, match="after the latest version"):
        history.version_as_of(5_003, "t")  # time travel past the last commit
    assert history.version_as_of(5_003, "t", after_latest=True) == 3  # the end of a change data range


def test_in_commit_timestamps_win_over_mtimes(tmp_path: Path) -> None:
    root = _table(tmp_path, 3)
    for version in (1, 2):  # as a writer with in-commit timestamps enabled at v1 would record them
        path = Path(root) / "_delta_log" / f"{version:020d}.json"
        actions = [json.loads(line) for line in path.read_text().splitlines()]
        for action in actions:
            if "commitInfo" in action:
                action["commitInfo"]["inCommitTimestamp"] = 10_000 * version
        path.write_text("\n".join(json.dumps(a) for a in actions) + "\n")
        _set_mtime(root, version, 99_999_999)
    _set_mtime(root, 0, 500)
    assert load_timeline(CountingLog(root), in_commit_timestamps_from=1).timestamps == [500, 10_000, 20_000]
    assert load_timeline(CountingLog(root)).timestamps[1:] == [99_999_999, 100_000_000]


def test_history_cache_lists_only_new_commits(tmp_path: Path) -> None:
    root = _table(tmp_path, 2)
    log = CountingLog(root)
    cache = TimelineCache()
    first = cache.get(log, None, at_least=1)
    assert first.versions == [0, 1] and log.listings == [None]
    assert (
        cache.get(log, None, at_least=1) is first and len(log.listings) == 1
    )  # already covers v1: no listing
    write_deltalake(root, rows([7]), mode="append")
    write_deltalake(root, rows([8]), mode="append")
    grown = cache.get(log, None, at_least=3)
    assert grown.versions == [0, 1, 2, 3]
    assert grown.timestamps[:2] == first.timestamps
    assert log.listings[-1] == f"{1:020d}.json"  # listed after the last known commit only
    assert cache.get(log, None).versions == [0, 1, 2, 3]  # without at_least it looks for newer commits
    assert log.reads == []  # mtimes only: no commit was read


def test_a_log_without_commits_does_not_show_its_location(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a checkpoint is left (commits cleaned up): the recipient is told the files are missing, and only
    the provider's log names the location."""
    root = tmp_path / "secret-provider-path"
    write_deltalake(str(root), rows([1, 2]))
    DeltaTable(str(root)).create_checkpoint()
    (root / "_delta_log" / "00000000000000000000.json").unlink()
    with pytest.raises(TableFilesMissingError) as info:
        load_timeline(DeltaLog(LocalStore(KeyRing.random()), Location.parse(str(root))))
    assert "secret-provider-path" not in info.value.message
    assert any("secret-provider-path" in r.getMessage() for r in caplog.records)
