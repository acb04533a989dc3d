"""Log replay against deltalake's own view of the same tables: checkpoints, removes, incremental refresh."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from deltalake import DeltaTable, write_deltalake

from lakegate.cloud.local import LocalStore
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import parse_config
from lakegate.delta.cache import SnapshotCache
from lakegate.delta.log import DeltaLog
from lakegate.delta.snapshot import load_snapshot
from lakegate.exceptions import MalformedRequestError, TableFilesMissingError
from lakegate.keys import KeyRing
from tests.tables import build_partitioned, rows


def _log(root: str) -> DeltaLog:
    return DeltaLog(LocalStore(KeyRing.random()), Location.parse(root))


def _paths(snapshot) -> set[str]:
    return {unquote(add["path"]) for add in snapshot.files.values()}


def _deltalake_paths(root: str, version: int | None = None) -> set[str]:
    table = DeltaTable(root, version=version) if version is not None else DeltaTable(root)
    return {unquote(uri)[len(root) + 1 :] for uri in table.file_uris()}


@pytest.mark.parametrize("checkpoint_at", [None, 1, 3])
def test_replay_matches_deltalake_at_every_version(tmp_path: Path, checkpoint_at: int | None) -> None:
    root = str(tmp_path / "t")
    build_partitioned(root)
    if checkpoint_at is not None:
        DeltaTable(root, version=checkpoint_at).create_checkpoint()
        write_deltalake(root, rows([40, 41]), mode="append")
    latest = DeltaTable(root).version()
    for version in range(latest + 1):
        if checkpoint_at is not None and version < checkpoint_at:
            continue
        snapshot = load_snapshot(_log(root), version)
        assert snapshot.version == version
        assert _paths(snapshot) == _deltalake_paths(root, version)
        assert snapshot.metadata["id"] == DeltaTable(root).metadata().id
    assert load_snapshot(_log(root)).version == latest


def test_incremental_refresh_equals_cold_replay(tmp_path: Path) -> None:
    root = str(tmp_path / "t")
    build_partitioned(root)
    log = _log(root)
    base = load_snapshot(log)
    DeltaTable(root).delete("id = 3")
    write_deltalake(root, rows([50, 51, 52]), mode="append")
    moved = load_snapshot(log, None, base)
    cold = load_snapshot(log)
    assert moved.version == cold.version == base.version + 2
    assert moved.files == cold.files
    assert _paths(base) != _paths(moved)  # the old snapshot is untouched (copy-on-write)
    assert load_snapshot(log, None, moved) is moved  # nothing new: the same object


def test_refresh_after_the_table_was_made_again_at_its_location(tmp_path: Path) -> None:
    # A table deleted and written again at the same path: its newer commits must not be applied to the old
    # table's files (the answer mixed both tables' files).
    root = str(tmp_path / "t")
    build_partitioned(root)
    log = _log(root)
    base = load_snapshot(log)
    shutil.rmtree(root)
    for batch in range(base.version + 3):
        write_deltalake(root, rows([100 + batch]), mode="append")
    moved = load_snapshot(log, None, base)
    assert moved.version == DeltaTable(root).version()
    assert _paths(moved) == _deltalake_paths(root)


def test_cache_reuses_and_refreshes(tmp_path: Path) -> None:
    root = str(tmp_path / "t")
    build_partitioned(root)
    config = parse_config({"version": 1})
    cache = SnapshotCache(StoreRegistry(config, KeyRing.random()))
    location = Location.parse(root)
    first = cache.latest(location)
    assert cache.latest(location) is first and cache.hits == 1
    write_deltalake(root, rows([60]), mode="append")
    second = cache.latest(location)
    assert second.version == first.version + 1
    assert cache.at_version(location, first.version).files == first.files


def test_missing_versions_and_tables(tmp_path: Path) -> None:
    root = str(tmp_path / "t")
    build_partitioned(root)
    with pytest.raises(MalformedRequestError):
        load_snapshot(_log(root), 99)
    with pytest.raises(TableFilesMissingError):
        load_snapshot(_log(str(tmp_path / "nothing")))
    DeltaTable(root).create_checkpoint()
    (Path(root) / "_delta_log" / "00000000000000000000.json").unlink()
    with pytest.raises(MalformedRequestError, match="cleaned up"):
        load_snapshot(_log(root), 0)
    assert load_snapshot(_log(root)).version == 3  # the checkpoint still serves the latest version


def test_parts_of_unchanged_files_are_reused_after_a_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakegate.service import parts
    from lakegate.service.files import LineCache

    root = str(tmp_path / "t")
    build_partitioned(root)
    DeltaTable(root).create_checkpoint()  # the checkpoint's rows are the column-wise base
    log, location = _log(root), Location.parse(root)
    base_builds = []
    build_base = parts.build_base

    def counted(*args: Any, **kwargs: Any) -> Any:
        base_builds.append(1)
        return build_base(*args, **kwargs)

    monkeypatch.setattr(parts, "build_base", counted)
    cache = LineCache()
    base = load_snapshot(log)
    before = cache.parts(base, location, (), "parquet", "parquet")
    assert cache.parts(base, location, (), "parquet", "parquet") is before  # built once per snapshot
    write_deltalake(root, rows([70]), mode="append")
    moved = load_snapshot(log, None, base)
    assert base.files is not moved.files and len(base.files) == len(before)  # the older snapshot is untouched
    after = cache.parts(moved, location, (), "parquet", "parquet")
    assert len(after) == len(before) + 1
    assert len(base_builds) == 1  # the checkpoint's rows were encoded once, for both versions
    cold = LineCache().parts(load_snapshot(log), location, (), "parquet", "parquet")
    assert cold.table.drop_columns(["row"]).equals(after.table.drop_columns(["row"]))
