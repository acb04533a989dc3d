"""A table deleted and written again at the same location is noticed by the latest-snapshot check even when the
new log has no commit after the cached version (the cheap probe for the next commit finds nothing): the cached
snapshot named files that no longer exist. A log cleaned up through a checkpoint is not mistaken for one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import parse_config
from lakegate.delta.cache import SnapshotCache
from lakegate.delta.timeline import TimelineCache
from lakegate.exceptions import TableFilesMissingError
from lakegate.keys import KeyRing
from tests.checkpoints import drop_commits_through


def rows(ids: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


def _cache() -> SnapshotCache:
    cache = SnapshotCache(StoreRegistry(parse_config({"version": 1}), KeyRing.random()))
    cache.replaced_check_seconds = 0.0  # check at every request (the server checks at most once a second)
    return cache


def _paths(root: str) -> set[str]:
    return set(DeltaTable(root).get_add_actions(flatten=True).column("path").to_pylist())


def _snapshot_paths(cache: SnapshotCache, root: Location) -> set[str]:
    return {add["path"] for add in cache.latest(root).files.values()}


def _appended(tmp_path: Path, commits: int) -> tuple[str, Location]:
    """A table of `commits` one-row appends (versions 0 to commits - 1), and its root."""
    path = str(tmp_path / "t")
    for i in range(commits):
        write_deltalake(path, rows([i]), mode="append")
    return path, Location.parse(path)


def test_a_table_written_again_with_as_many_versions_is_read_again(tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    write_deltalake(path, rows([1, 2]))
    root = Location.parse(path)
    cache = _cache()
    assert _snapshot_paths(cache, root) == _paths(path)
    shutil.rmtree(path)
    write_deltalake(path, rows([3, 4, 5]))  # version 0 again, other files
    assert cache.latest(root).version == 0
    assert _snapshot_paths(cache, root) == _paths(path)


def test_a_table_written_again_with_fewer_versions_is_read_again(tmp_path: Path) -> None:
    path, root = _appended(tmp_path, 3)
    cache = _cache()
    assert cache.latest(root).version == 2
    shutil.rmtree(path)
    write_deltalake(path, rows([7]))
    assert cache.latest(root).version == 0
    assert _snapshot_paths(cache, root) == _paths(path)
    write_deltalake(path, rows([8]), mode="append")
    assert cache.latest(root).version == 1
    assert _snapshot_paths(cache, root) == _paths(path)


def test_a_log_cleaned_up_through_its_checkpoint_keeps_the_cached_snapshot(tmp_path: Path) -> None:
    path, root = _appended(tmp_path, 3)
    DeltaTable(path).create_checkpoint()
    cache = _cache()
    first = cache.latest(root)
    drop_commits_through(path, 2)  # only the checkpoint of version 2 is left
    assert cache.latest(root) is first  # not rebuilt from the checkpoint at every check


def test_older_versions_of_the_replaced_table_are_not_served(tmp_path: Path) -> None:
    path, root = _appended(tmp_path, 3)
    cache = _cache()
    old_first = {add["path"] for add in cache.at_version(root, 0).files.values()}
    cache.latest(root)
    shutil.rmtree(path)
    write_deltalake(path, rows([7]))
    write_deltalake(path, rows([8]), mode="append")
    assert cache.latest(root).version == 1
    first = {add["path"] for add in cache.at_version(root, 0).files.values()}
    assert first == set(DeltaTable(path, version=0).get_add_actions(flatten=True).column("path").to_pylist())
    assert first != old_first


def test_commit_timestamps_of_the_replaced_table_are_read_again(tmp_path: Path) -> None:
    path, root = _appended(tmp_path, 4)
    cache = _cache()
    timelines = TimelineCache()
    cache.on_replaced.append(timelines.forget)  # as the service context wires them
    assert timelines.get(cache.log(root), None, cache.latest(root).version).latest == 3
    shutil.rmtree(path)
    write_deltalake(path, rows([7]))
    write_deltalake(path, rows([8]), mode="append")
    timeline = timelines.get(cache.log(root), None, cache.latest(root).version)
    assert timeline.latest == 1
    commit = Path(path) / "_delta_log" / f"{1:020d}.json"
    assert timeline.timestamp_of(1) == commit.stat().st_mtime_ns // 1_000_000


def _checkpoint_only(path: str) -> None:
    """A checkpoint of the latest version and no commit file (a cleaned-up log, or a big table as benchmarks
    and bulk loaders write it): the version's only trace in the log is its checkpoint."""
    table = DeltaTable(path)
    table.create_checkpoint()
    drop_commits_through(path, table.version())


@pytest.mark.parametrize(
    ("commits", "checkpoint_only"),
    [
        (2, True),  # the same version again, its checkpoint another file
        (3, False),  # the next commit is there, built on other files
    ],
)
def test_a_checkpoint_only_table_written_again_is_read_again(
    tmp_path: Path, commits: int, checkpoint_only: bool
) -> None:
    path, root = _appended(tmp_path, 2)
    _checkpoint_only(path)
    cache = _cache()
    assert _snapshot_paths(cache, root) == _paths(path)
    shutil.rmtree(path)
    _appended(tmp_path, commits)  # another table at the same location
    if checkpoint_only:
        _checkpoint_only(path)
    assert cache.latest(root).version == commits - 1
    assert _snapshot_paths(cache, root) == _paths(path)


def test_a_deleted_table_is_not_served_from_memory_between_checks(tmp_path: Path) -> None:
    """Once found written again, the cached snapshot is dropped: when the table cannot be read (deleted, or not
    written yet), the next requests before the next check do not get the old table's files back."""
    path, root = _appended(tmp_path, 2)
    cache = _cache()
    cache.replaced_check_seconds = 60.0  # the next check long after this test
    cache.latest(root)
    shutil.rmtree(path)
    for _ in range(3):
        with pytest.raises(TableFilesMissingError):
            cache.latest(root)
