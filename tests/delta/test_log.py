"""The log reader on every checkpoint shape the Delta protocol allows, against deltalake's file list at the same
version (computed from the commits before they are cleaned up, so the reader must start from the checkpoint)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakegate.cloud.local import LocalStore
from lakegate.cloud.locations import Location
from lakegate.delta.actions import data_location
from lakegate.delta.log import DeltaLog
from lakegate.delta.snapshot import Snapshot, load_snapshot
from lakegate.exceptions import TableStateError
from lakegate.keys import KeyRing
from tests.checkpoints import classic_checkpoint, drop_commits_through, make_multipart, make_v2
from tests.tables import build_partitioned, rows

# A table root, deltalake's file paths per version, the table id.
Built = tuple[str, dict[int, set[str]], str]
CHECKPOINT = 3  # build_partitioned: v0 create, v1 append, v2 delete, v3 update (adds and removes)


def _log(root: str) -> DeltaLog:
    return DeltaLog(LocalStore(KeyRing.random()), Location.parse(root))


def _paths(snapshot: Snapshot) -> set[str]:
    return {unquote(add["path"]) for add in snapshot.files.values()}


def _deltalake_paths(root: str, version: int | None = None) -> set[str]:
    """deltalake's file list relative to the root: its URIs are the URL-encoded root plus the path as stored
    (the log's path decoded once: a directory named `name=100%25` stays so)."""
    table = DeltaTable(root, version=version) if version is not None else DeltaTable(root)
    prefix = urlsplit(table.table_uri).path.rstrip("/") + "/"
    assert all(uri.startswith(prefix) for uri in table.file_uris())
    return {uri[len(prefix) :] for uri in table.file_uris()}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """build_partitioned plus two appends (v4, v5); deltalake's paths per version from v3; the table id.
    Built once: each test edits its own copy."""
    root = str(tmp_path_factory.mktemp("log") / "t")
    build_partitioned(root)
    write_deltalake(root, rows([40, 41]), mode="append")
    write_deltalake(root, rows([50]), mode="append")
    expected = {v: _deltalake_paths(root, v) for v in range(CHECKPOINT, 6)}
    return root, expected, str(DeltaTable(root).metadata().id)


@pytest.fixture
def table(tmp_path: Path, pristine: Built) -> Built:
    root, expected, table_id = pristine
    copy = str(tmp_path / "t")
    shutil.copytree(root, copy)
    return copy, expected, table_id


def _check(root: str, expected: dict[int, set[str]], table_id: str) -> None:
    for version, paths in expected.items():
        snapshot = load_snapshot(_log(root), version)
        assert (snapshot.version, _paths(snapshot)) == (version, paths)
        assert snapshot.metadata["id"] == table_id
    assert load_snapshot(_log(root)).version == max(expected)


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_multi_part_checkpoint(table: Built, parts: int) -> None:
    root, expected, table_id = table
    assert len(make_multipart(root, CHECKPOINT, parts)) == parts
    drop_commits_through(root, CHECKPOINT)
    _check(root, expected, table_id)


def test_incomplete_multi_part_checkpoint_is_not_used(table: Built) -> None:
    root, expected, table_id = table
    make_multipart(root, CHECKPOINT, 3)[1].unlink()
    _check(root, expected, table_id)  # from the commits: the two parts left would lose files


@pytest.mark.parametrize("top_level", ["json", "parquet"])
@pytest.mark.parametrize(("sidecars", "inline_adds"), [(1, 0), (2, 0), (3, 1), (0, 99)])
def test_v2_checkpoint(table: Built, top_level: str, sidecars: int, inline_adds: int) -> None:
    root, expected, table_id = table
    make_v2(root, CHECKPOINT, top_level=top_level, sidecars=sidecars, inline_adds=inline_adds)
    drop_commits_through(root, CHECKPOINT)
    _check(root, expected, table_id)
    assert "v2Checkpoint" in load_snapshot(_log(root), CHECKPOINT).protocol["readerFeatures"]


def test_stale_last_checkpoint_pointing_at_an_older_checkpoint(
    table: Built,
) -> None:
    root, expected, table_id = table
    classic_checkpoint(root, 1)
    old_pointer = (Path(root) / "_delta_log" / "_last_checkpoint").read_text()
    classic_checkpoint(root, CHECKPOINT)
    (Path(root) / "_delta_log" / "_last_checkpoint").write_text(old_pointer)
    assert json.loads(old_pointer)["version"] == 1
    drop_commits_through(root, CHECKPOINT)
    _check(root, expected, table_id)


@pytest.mark.parametrize("pointer", [2, 4, 99])
def test_last_checkpoint_pointing_at_a_missing_checkpoint(table: Built, pointer: int) -> None:
    """A checkpoint at v1 and commits 2..5: whatever missing checkpoint `_last_checkpoint` names, the reader
    lists the log and replays from what is there."""
    root, expected, table_id = table
    classic_checkpoint(root, 1)
    drop_commits_through(root, 1)
    (Path(root) / "_delta_log" / "_last_checkpoint").write_text(json.dumps({"version": pointer, "size": 3}))
    _check(root, expected, table_id)


def test_last_checkpoint_missing_with_a_later_checkpoint_and_time_travel(
    table: Built,
) -> None:
    """`_last_checkpoint` names v2 (gone); checkpoints exist at v1 and v4: version 3 replays from v1."""
    root, expected, table_id = table
    classic_checkpoint(root, 1)
    classic_checkpoint(root, 4)
    drop_commits_through(root, 0)
    (Path(root) / "_delta_log" / "_last_checkpoint").write_text(json.dumps({"version": 2, "size": 3}))
    _check(root, expected, table_id)


@pytest.mark.parametrize("content", [b"", b"{", b'{"size": 3}', b'{"version": "x"}', b"[]"])
def test_unreadable_last_checkpoint_is_ignored(table: Built, content: bytes) -> None:
    root, expected, table_id = table
    classic_checkpoint(root, CHECKPOINT)
    (Path(root) / "_delta_log" / "_last_checkpoint").write_bytes(content)
    drop_commits_through(root, CHECKPOINT)
    _check(root, expected, table_id)


@pytest.mark.parametrize("json_stats", [True, False])
def test_checkpoint_with_struct_stats(tmp_path: Path, json_stats: bool) -> None:
    """`delta.checkpoint.writeStatsAsStruct`: the checkpoint has `stats_parsed` (and `stats` only if
    writeStatsAsJson). Either way each file's stats say what deltalake reads from the log."""
    root = str(tmp_path / "t")
    config = {
        "delta.checkpoint.writeStatsAsStruct": "true",
        "delta.checkpoint.writeStatsAsJson": str(json_stats).lower(),
    }
    write_deltalake(root, rows([1, 2, 3]), partition_by=["region"], configuration=config)
    write_deltalake(root, rows([4, 5]), mode="append")
    expected = {r["path"]: r for r in pa.table(DeltaTable(root).get_add_actions(flatten=True)).to_pylist()}
    commit_stats = {
        a["add"]["path"]: a["add"]["stats"]
        for v in (0, 1)
        for line in (Path(root) / "_delta_log" / f"{v:020d}.json").read_text().splitlines()
        if "add" in (a := json.loads(line))
    }
    classic_checkpoint(root, 1)
    drop_commits_through(root, 1)
    snapshot = load_snapshot(_log(root))
    assert _paths(snapshot) == set(expected)
    for add in snapshot.files.values():
        assert "stats_parsed" not in add and "partitionValues_parsed" not in add
        stats = orjson.loads(add["stats"])
        row = expected[add["path"]]
        assert stats["numRecords"] == row["num_records"]
        assert stats["minValues"]["id"] == row["min.id"] and stats["maxValues"]["id"] == row["max.id"]
        assert stats["minValues"]["day"] == row["min.day"].isoformat()
        assert stats["nullCount"]["note"] == row["null_count.note"]
        if json_stats:
            assert add["stats"] == commit_stats[add["path"]]  # the log's own string, untouched


NAMES = ["größe 1", "100%", "a b+c", "x=y", "日本", "slash/in/value", "quote'\""]


@pytest.mark.parametrize("checkpoint", [False, True])
def test_non_ascii_and_percent_encoded_paths(tmp_path: Path, checkpoint: bool) -> None:
    root = str(tmp_path / "tàble with space")
    data = pa.table({"id": pa.array(range(len(NAMES)), pa.int64()), "name": NAMES})
    write_deltalake(root, data, partition_by=["name"])
    write_deltalake(root, data, mode="append", partition_by=["name"])
    expected = _deltalake_paths(root)
    if checkpoint:
        classic_checkpoint(root, 1)
        drop_commits_through(root, 1)
    snapshot = load_snapshot(_log(root))
    assert _paths(snapshot) == expected
    assert sorted(a["partitionValues"]["name"] for a in snapshot.files.values()) == sorted(NAMES * 2)
    location = Location.parse(root)
    for add in snapshot.files.values():
        assert Path(data_location(location, add["path"], ()).local_path).is_file(), add["path"]


class _WholeObjects(LocalStore):
    """A store that reads whole objects only (as the object stores do)."""

    def reader(self, location: Location) -> None:
        return None


def test_a_checkpoint_read_a_buffer_at_a_time_is_the_one_read_whole(table: Built) -> None:
    """A local checkpoint is decoded from the open file, a buffer at a time; what it gives is what decoding
    the whole file read into memory gives. Missing, or a directory in its place: FileNotFoundError (the caller
    falls back to an older checkpoint); cut short: a corrupt checkpoint."""
    root, _, _ = table
    name = classic_checkpoint(root, CHECKPOINT).name
    keys = KeyRing.random()
    buffered = DeltaLog(LocalStore(keys), Location.parse(root)).read_checkpoint([name])
    whole = DeltaLog(_WholeObjects(keys), Location.parse(root)).read_checkpoint([name])
    assert buffered.add_table().equals(whole.add_table())
    assert (buffered.protocol, buffered.metadata) == (whole.protocol, whole.metadata)
    assert len(buffered.add_table()) == len(_deltalake_paths(root, CHECKPOINT))
    log = DeltaLog(LocalStore(keys), Location.parse(root))
    with pytest.raises(FileNotFoundError):
        log.read_checkpoint([f"{0:020d}.checkpoint.parquet"])
    (Path(root) / "_delta_log" / f"{1:020d}.checkpoint.parquet").mkdir()
    with pytest.raises(FileNotFoundError):
        log.read_checkpoint([f"{1:020d}.checkpoint.parquet"])
    path = Path(root) / "_delta_log" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TableStateError, match="corrupt or truncated"):
        log.read_checkpoint([name])
