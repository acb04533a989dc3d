"""A long log without a recent checkpoint: the latest snapshot moves forward without listing `_delta_log/` when
no commit is newer, and sees a new commit at once."""

from __future__ import annotations

from pathlib import Path

from deltalake import DeltaTable, write_deltalake

from lakegate.cloud.base import ObjectInfo
from lakegate.cloud.local import LocalStore
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import parse_config
from lakegate.delta.cache import SnapshotCache
from lakegate.delta.log import DeltaLog
from lakegate.delta.snapshot import load_snapshot
from lakegate.keys import KeyRing
from tests.tables import rows


class CountingStore(LocalStore):
    def __init__(self) -> None:
        super().__init__(KeyRing.random())
        self.listings = 0
        self.commits_read: list[int] = []

    def list_dir(self, directory: Location, start_after: str | None = None) -> list[ObjectInfo]:
        self.listings += 1
        return super().list_dir(directory, start_after)

    def read(self, location: Location) -> bytes:
        data = super().read(location)
        name = location.path.rsplit("/", 1)[-1]
        if name.endswith(".json") and name[:20].isdigit():
            self.commits_read.append(int(name[:20]))
        return data


class CountingCache(SnapshotCache):
    def __init__(self, store: CountingStore) -> None:
        super().__init__(StoreRegistry(parse_config({"version": 1, "shares": []}), KeyRing.random()))
        self.store = store

    def log(self, root: Location) -> DeltaLog:
        return DeltaLog(self.store, root)


def paths(root: str) -> set[str]:
    return {Path(uri).name for uri in DeltaTable(root).file_uris()}


def test_latest_is_not_listed_again_until_a_commit_appears(tmp_path: Path) -> None:
    root = str(tmp_path / "t")
    for batch in range(5):
        write_deltalake(root, rows([batch * 10 + i for i in range(3)]), mode="append")
    store = CountingStore()
    log = DeltaLog(store, Location.parse(root))
    snapshot = load_snapshot(log)
    assert snapshot.version == 4
    listed = store.listings
    for _ in range(3):
        assert load_snapshot(log, None, snapshot) is snapshot
    assert store.listings == listed  # no newer commit: found without a listing

    write_deltalake(root, rows([100, 101]), mode="append")
    newer = load_snapshot(log, None, snapshot)
    assert newer.version == 5 == DeltaTable(root).version()
    assert {Path(p).name for p, _ in newer.files} == paths(root)

    DeltaTable(root).delete("id = 0")  # a commit that removes a file
    DeltaTable(root).create_checkpoint()
    write_deltalake(root, rows([110, 111]), mode="append")
    latest = load_snapshot(log, None, newer)
    assert latest.version == 7 == DeltaTable(root).version()
    assert {Path(p).name for p, _ in latest.files} == paths(root)
    assert load_snapshot(log, 7, latest) is latest


def test_older_versions_move_forward_from_the_nearest_kept_snapshot(tmp_path: Path) -> None:
    """A streaming client polls with a rising startingVersion below the latest: each snapshot is built from the
    one kept before it, not replayed from version 0 (no checkpoint here)."""
    root = str(tmp_path / "t")
    for batch in range(10):
        write_deltalake(root, rows([batch * 10 + i for i in range(3)]), mode="append")
    DeltaTable(root).delete("id = 11")
    store = CountingStore()
    cache = CountingCache(store)
    assert cache.latest(Location.parse(root)).version == 10
    for version, replayed in ((3, range(4)), (6, range(4, 7)), (5, range(4, 6)), (9, range(7, 10))):
        store.commits_read.clear()
        snapshot = cache.at_version(Location.parse(root), version)
        assert snapshot.version == version
        assert sorted(store.commits_read) == list(replayed), version
        deltalake_files = {Path(uri).name for uri in DeltaTable(root, version=version).file_uris()}
        assert {Path(p).name for p, _ in snapshot.files} == deltalake_files
