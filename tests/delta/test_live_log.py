"""Reading the log of a table that writers are working on, or that lost or broke a file: every snapshot is one
version's, exactly deltalake's, and a broken table is a 5xx naming the version but never the storage path."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path
from urllib.parse import unquote

import orjson
import pytest
from deltalake import DeltaTable, write_deltalake

from lakegate.cloud.base import ObjectInfo
from lakegate.cloud.local import LocalStore
from lakegate.cloud.locations import Location
from lakegate.delta.log import DeltaLog, version_name
from lakegate.delta.snapshot import Snapshot, load_snapshot
from lakegate.delta.timeline import load_timeline
from lakegate.exceptions import MalformedRequestError, TableStateError
from lakegate.keys import KeyRing
from tests.tables import rows


def _log(root: str, store: LocalStore | None = None) -> DeltaLog:
    return DeltaLog(store or LocalStore(KeyRing.random()), Location.parse(root))


def _paths(snapshot: Snapshot) -> set[str]:
    return {unquote(add["path"]) for add in snapshot.files.values()}


def _deltalake_paths(root: str, version: int | None = None) -> set[str]:
    table = DeltaTable(root, version=version) if version is not None else DeltaTable(root)
    return {unquote(uri)[len(root) + 1 :] for uri in table.file_uris()}


def _table(tmp_path: Path, commits: int = 5) -> str:
    root = str(tmp_path / "t")
    for i in range(commits):
        write_deltalake(root, rows([i * 10, i * 10 + 1]), mode="append")
    return root


def _log_file(root: str, name: str) -> Path:
    return Path(root) / "_delta_log" / name


def _assert_broken(exc: pytest.ExceptionInfo[TableStateError], root: str, *named: str) -> None:
    assert exc.value.status >= 500
    assert root not in exc.value.message and "_delta_log" not in exc.value.message
    for text in named:
        assert text in exc.value.detail


def test_temporary_files_of_writers_are_not_commits(tmp_path: Path) -> None:
    root = _table(tmp_path, 3)
    log_dir = Path(root) / "_delta_log"
    # What deltalake (object_store's staged uploads), Spark and catalog-managed commits leave behind.
    (log_dir / "00000000000000000003.json#1").write_text('{"add": {"path": "ghost.parquet"}}\n')
    (log_dir / f".00000000000000000003.json.{uuid.uuid4()}.tmp").write_text("{}\n")
    (log_dir / f"_commit_{uuid.uuid4()}.json.tmp").write_text("{}\n")
    (log_dir / "_commits").mkdir()
    (log_dir / "_commits" / f"00000000000000000003.{uuid.uuid4()}.json").write_text("{}\n")
    snapshot = load_snapshot(_log(root))
    assert snapshot.version == 2 and _paths(snapshot) == _deltalake_paths(root)


def test_listing_survives_files_renamed_while_it_runs(tmp_path: Path) -> None:
    """A writer renames its temporary files into commits while the directory is listed: the listing skips
    what vanished instead of failing (it used to stat each entry after reading the directory)."""
    directory = tmp_path / "_delta_log"
    directory.mkdir()
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            temp = directory / f"{version_name(n % 20)}.json#1"
            temp.write_bytes(b"{}\n")
            os.replace(temp, directory / f"{version_name(n % 20)}.json")
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    store = LocalStore(KeyRing.random())
    try:
        seen = 0
        for _ in range(3000):
            names = [info.name for info in store.list_dir(Location.parse(str(directory)))]
            assert all(name.endswith((".json", "#1")) for name in names)
            seen = max(seen, len(names))
    finally:
        stop.set()
        thread.join()
    assert seen > 0


def test_a_lost_commit_is_the_providers_problem(tmp_path: Path) -> None:
    root = _table(tmp_path, 5)
    _log_file(root, version_name(2) + ".json").unlink()
    with pytest.raises(TableStateError) as exc:
        load_snapshot(_log(root))
    _assert_broken(exc, root, "00000000000000000002.json", root)
    assert "commit 2" in exc.value.message and "version 4" in exc.value.message
    # Versions before the gap are still whole.
    assert _paths(load_snapshot(_log(root), 1)) == _deltalake_paths(root, 1)


def test_a_version_older_than_the_cleaned_up_log_is_the_requests_problem(tmp_path: Path) -> None:
    root = _table(tmp_path, 5)
    DeltaTable(root, version=3).create_checkpoint()
    for v in range(3):
        _log_file(root, version_name(v) + ".json").unlink()
    with pytest.raises(MalformedRequestError, match="cleaned up"):
        load_snapshot(_log(root), 1)
    assert _paths(load_snapshot(_log(root))) == _deltalake_paths(root)


def test_a_truncated_commit_is_a_clear_5xx(tmp_path: Path) -> None:
    root = _table(tmp_path, 3)
    commit = _log_file(root, version_name(2) + ".json")
    commit.write_bytes(commit.read_bytes()[:-40])
    with pytest.raises(TableStateError) as exc:
        load_snapshot(_log(root))
    _assert_broken(exc, root, str(commit))
    assert "commit 2" in exc.value.message


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "empty"])
def test_a_corrupt_checkpoint_falls_back_to_the_commits(tmp_path: Path, damage: str) -> None:
    root = _table(tmp_path, 4)
    DeltaTable(root).create_checkpoint()
    write_deltalake(root, rows([99]), mode="append")
    expected = _deltalake_paths(root, 4)  # deltalake itself cannot read the table once the checkpoint is bad
    checkpoint = _log_file(root, version_name(3) + ".checkpoint.parquet")
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(
        {
            "corrupt": b"PAR1" + bytes(len(data) - 8) + b"PAR1",
            "truncated": data[: len(data) // 2],
            "empty": b"",
        }[damage]
    )
    snapshot = load_snapshot(_log(root))
    assert snapshot.version == 4 and _paths(snapshot) == expected


def test_a_corrupt_checkpoint_without_the_commits_before_it_is_a_clear_5xx(tmp_path: Path) -> None:
    root = _table(tmp_path, 4)
    DeltaTable(root).create_checkpoint()
    for v in range(3):
        _log_file(root, version_name(v) + ".json").unlink()
    checkpoint = _log_file(root, version_name(3) + ".checkpoint.parquet")
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(TableStateError) as exc:
        load_snapshot(_log(root))
    _assert_broken(exc, root, str(checkpoint))
    assert "checkpoint" in exc.value.message


def test_last_checkpoint_naming_an_incomplete_or_missing_checkpoint(tmp_path: Path) -> None:
    root = _table(tmp_path, 3)
    DeltaTable(root).create_checkpoint()  # version 2
    for i in range(3):
        write_deltalake(root, rows([50 + i]), mode="append")
    expected = _deltalake_paths(root)  # deltalake fails on what follows (a hint without a checkpoint)
    # A multi-part checkpoint of version 4 with one of its two parts written so far, announced already.
    shutil.copy(
        _log_file(root, version_name(2) + ".checkpoint.parquet"),
        _log_file(root, version_name(4) + ".checkpoint.0000000001.0000000002.parquet"),
    )
    _log_file(root, "_last_checkpoint").write_bytes(orjson.dumps({"version": 4, "size": 9, "parts": 2}))
    assert _paths(load_snapshot(_log(root))) == expected
    # A checkpoint announced but not there at all.
    _log_file(root, "_last_checkpoint").write_bytes(orjson.dumps({"version": 5, "size": 9}))
    assert _paths(load_snapshot(_log(root))) == expected


class _CleaningStore(LocalStore):
    """A local store during whose first commit read a writer checkpoints the table and cleans up the commits
    before the checkpoint: the files the reader listed a moment ago are gone when it reads them."""

    def __init__(self, root: str) -> None:
        super().__init__(KeyRing.random())
        self.root = root
        self.cleaned = False

    def read(self, location: Location) -> bytes:
        if not self.cleaned and location.path.endswith(".json") and "_delta_log" in location.path:
            self.cleaned = True
            DeltaTable(self.root).create_checkpoint()
            latest = DeltaTable(self.root).version()
            for v in range(latest):
                _log_file(self.root, version_name(v) + ".json").unlink()
        return super().read(location)


def test_commits_removed_between_listing_and_reading(tmp_path: Path) -> None:
    root = _table(tmp_path, 5)
    expected = _deltalake_paths(root)
    store = _CleaningStore(root)
    snapshot = load_snapshot(_log(root, store))
    assert store.cleaned and snapshot.version == 4 and _paths(snapshot) == expected


class _TornListingStore(LocalStore):
    """A local store whose first listing of the log misses one commit in the middle, as a listing taken while a
    writer deletes and adds files can (directory listings are not atomic)."""

    def __init__(self, missed: str) -> None:
        super().__init__(KeyRing.random())
        self.missed = missed
        self.listings = 0

    def list_dir(self, directory: Location, start_after: str | None = None) -> list[ObjectInfo]:
        self.listings += 1
        infos = super().list_dir(directory, start_after)
        return [i for i in infos if i.name != self.missed] if self.listings == 1 else infos


def test_a_torn_listing_is_listed_again(tmp_path: Path) -> None:
    root = _table(tmp_path, 5)
    store = _TornListingStore(version_name(2) + ".json")
    snapshot = load_snapshot(_log(root, store))
    assert store.listings == 2 and _paths(snapshot) == _deltalake_paths(root)
    store = _TornListingStore(version_name(2) + ".json")
    timeline = load_timeline(_log(root, store))
    assert store.listings == 2 and timeline.versions == [0, 1, 2, 3, 4]


def test_timeline_reading_in_commit_timestamps_while_the_log_is_cleaned_up(tmp_path: Path) -> None:
    """Reading each commit's in-commit timestamp, a commit listed a moment ago is gone: list again."""
    root = _table(tmp_path, 5)
    store = _CleaningStore(root)
    timeline = load_timeline(_log(root, store), in_commit_timestamps_from=0)
    assert store.cleaned and timeline.versions == [4]
