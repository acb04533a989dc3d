"""The snapshot cache shared between worker processes (`lakegate.sharedcache`): a checkpoint's add table and the
file parts built from it are written once to the cache directory and memory-mapped by every worker; a second
worker's first query builds nothing; two processes cold at once build once; a corrupt or foreign file is built
again; the directory stays within its bound; a table written again at the same location is not confused with
the old one.

A "worker" here is what each `serve --workers N` process holds: its own SnapshotCache and LineCache over the
one directory (separate objects, nothing shared in memory)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakegate import sharedcache
from lakegate.cloud.base import SignRequest
from lakegate.cloud.local import LocalStore
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig
from lakegate.delta.cache import SnapshotCache
from lakegate.exceptions import ConfigError
from lakegate.keys import KeyRing
from lakegate.protocol.capabilities import DELTA, PARQUET
from lakegate.server import shared_cache
from lakegate.service.files import LineCache, Signers, parts_lines
from lakegate.sharedcache import LATER_FIELD, WRITE_LATER_SECONDS, SharedCache, name_of, write_later
from tests.tables import rows

NOW = int(time.time())
REQUEST = SignRequest(NOW + 600, NOW, "http://h/delta-sharing", "s/sc/t")


class _Stores:
    def __init__(self) -> None:
        self.store = LocalStore(KeyRing(b"k" * 32))

    def store_for(self, location: Location) -> LocalStore:
        return self.store


class Worker:
    def __init__(self, shared: SharedCache | None) -> None:
        self.stores = _Stores()
        self.snapshots = SnapshotCache(self.stores, shared=shared)  # type: ignore[arg-type]
        self.lines = LineCache(shared=shared)

    def answer(self, root: Location, fmt: str = PARQUET, version: int | None = None) -> bytes:
        snapshot = (
            self.snapshots.latest(root) if version is None else self.snapshots.at_version(root, version)
        )
        parts = self.lines.parts(snapshot, root, (), fmt, PARQUET)
        pieces = parts_lines(parts, fmt, Signers(self.stores, REQUEST), root, ())  # type: ignore[arg-type]
        return b"".join(piece.data for piece in pieces)


def _table(path: Path, files: int = 6) -> Location:
    for i in range(files):
        write_deltalake(str(path), rows([i * 10, i * 10 + 1]), mode="append", partition_by=["region"])
    DeltaTable(str(path)).create_checkpoint()
    return Location.parse(str(path))


def _cache_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.arrow"))


def _mapped(directory: Path) -> set[str]:
    """The cache files this process has mapped."""
    maps = Path("/proc/self/maps").read_text().splitlines()
    return {line.split()[-1] for line in maps if str(directory) in line}


def test_a_second_worker_maps_what_the_first_built_and_answers_the_same(tmp_path: Path) -> None:
    root = _table(tmp_path / "t")
    write_deltalake(
        str(tmp_path / "t"), rows([99]), mode="append", partition_by=["region"]
    )  # after the checkpoint
    directory = tmp_path / "cache"
    directory.mkdir()
    first, second = Worker(SharedCache(directory)), Worker(SharedCache(directory))
    alone = Worker(None)  # the reference: memory only
    for fmt in (PARQUET, DELTA):
        expected = alone.answer(root, fmt)
        assert first.answer(root, fmt) == expected
        built = {p.name for p in _cache_files(directory)}
        assert second.answer(root, fmt) == expected
        assert {p.name for p in _cache_files(directory)} == built  # nothing written again
    assert first.lines.shared is not None and second.lines.shared is not None
    # checkpoint, base parts and snapshot parts (a commit after the checkpoint), for each format but the first
    assert first.lines.shared.builds == 5 and second.lines.shared.builds == 0
    assert len(_cache_files(directory)) == 5
    assert {str(p) for p in _cache_files(directory)} <= _mapped(directory)
    # The snapshot's files are the mapped checkpoint table (what predicates and the delta format read).
    snapshot = second.snapshots.latest(root)
    name = name_of(snapshot.files.base)
    assert name is not None and str(directory / f"{name}.arrow") in _mapped(directory)
    assert sorted(a["path"] for a in snapshot.files.values()) == sorted(
        a["path"] for a in alone.snapshots.latest(root).files.values()
    )
    # An older version (time travel, pages) is shared too.
    assert second.answer(root, PARQUET, version=3) == alone.answer(root, PARQUET, version=3)


def _build_in_child(directory: Path, log: Path) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:

            def build() -> pa.Table:
                with log.open("a") as f:
                    f.write(f"{os.getpid()}\n")
                time.sleep(0.5)
                return pa.table({"x": list(range(1000))})

            table = SharedCache(directory).table(("k",), build)
            code = 0 if table.column("x").to_pylist() == list(range(1000)) else 2
        finally:
            os._exit(code)
    return pid


def test_two_processes_cold_at_once_build_once(tmp_path: Path) -> None:
    log = tmp_path / "builds"
    children = [_build_in_child(tmp_path, log) for _ in range(3)]
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    assert codes == [0, 0, 0]
    assert len(log.read_text().split()) == 1


def _wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_checkpoint_is_written_once_its_parts_are_built_and_its_snapshot_then_maps_it(
    tmp_path: Path,
) -> None:
    """The checkpoint's add table is handed to the cold query at once and written to the directory once the
    file parts are built from it (not before: an answer following the build has its first lines by then); the
    snapshot then reads the mapped file, not its own copy."""
    root = _table(tmp_path / "t")
    directory = tmp_path / "cache"
    directory.mkdir()
    worker = Worker(SharedCache(directory))
    snapshot = worker.snapshots.latest(root)
    assert _cache_files(directory) == []  # read, not written yet
    name = name_of(snapshot.files.base)
    assert (snapshot.files.base.schema.metadata or {}).get(LATER_FIELD) is not None
    parts = worker.lines.parts(snapshot, root, (), PARQUET, PARQUET)
    assert str(directory / f"{name}.arrow") in _mapped(directory)
    assert name_of(snapshot.files.base) == name
    assert (snapshot.files.base.schema.metadata or {}).get(LATER_FIELD) is None  # the mapped file's table
    pieces = parts_lines(parts, PARQUET, Signers(worker.stores, REQUEST), root, ())  # type: ignore[arg-type]
    assert b"".join(p.data for p in pieces) == Worker(None).answer(root)


def test_a_table_not_followed_by_a_build_is_written_within_seconds(tmp_path: Path) -> None:
    held = SharedCache(tmp_path).table(("k",), lambda: pa.table({"x": [1, 2]}), later=True)
    assert _cache_files(tmp_path) == []
    assert _wait_for(lambda: len(_cache_files(tmp_path)) == 1, WRITE_LATER_SECONDS + 3)
    assert held.column("x").to_pylist() == [1, 2]


def test_another_process_waits_for_a_file_written_later_and_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharedcache, "WRITE_LATER_SECONDS", 60)  # written when this test says (`write_later`)
    held = SharedCache(tmp_path).table(("k",), lambda: pa.table({"x": [1, 2]}), later=True)
    # A fresh process (not a fork: it must not see this one's tables waiting to be written).
    code = (
        "import sys, pyarrow as pa; from pathlib import Path; from lakegate.sharedcache import SharedCache; "
        "(Path(sys.argv[1]) / 'asking').touch(); "
        "t = SharedCache(Path(sys.argv[1])).table(('k',), lambda: pa.table({'x': [9]})); "
        "print(t.column('x').to_pylist())"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert _wait_for((tmp_path / "asking").exists, 30)
    time.sleep(0.3)
    assert child.poll() is None  # waiting for the build lock
    write_later()
    out, _ = child.communicate(timeout=30)
    assert out.strip() == "[1, 2]"  # the file this process wrote, not a build of its own
    assert held.column("x").to_pylist() == [1, 2]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"not an arrow file"),
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
        lambda p: shutil.copyfile(p.with_name("other.arrow"), p),  # a whole file, of another key
    ],
    ids=["garbage", "truncated", "another key"],
)
def test_an_unreadable_file_is_built_again(tmp_path: Path, damage) -> None:
    cache = SharedCache(tmp_path)
    cache.table(("other",), lambda: pa.table({"x": [7]}))
    (other,) = _cache_files(tmp_path)
    other.rename(tmp_path / "other.arrow")
    cache.table(("k",), lambda: pa.table({"x": [1, 2]}))
    (written,) = [p for p in _cache_files(tmp_path) if p.name != "other.arrow"]
    damage(written)
    again = SharedCache(tmp_path).table(("k",), lambda: pa.table({"x": [1, 2, 3]}))
    assert again.column("x").to_pylist() == [1, 2, 3]
    assert SharedCache(tmp_path).table(("k",), lambda: pa.table({"x": [0]})).column("x").to_pylist() == [
        1,
        2,
        3,
    ]


def test_a_worker_answers_when_its_cache_file_is_corrupt(tmp_path: Path) -> None:
    root = _table(tmp_path / "t")
    directory = tmp_path / "cache"
    directory.mkdir()
    expected = Worker(SharedCache(directory)).answer(root)
    for path in _cache_files(directory):
        path.write_bytes(b"\0" * 64)
    assert Worker(SharedCache(directory)).answer(root) == expected


def test_the_directory_is_bounded_and_a_removed_file_stays_readable_where_mapped(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path, max_bytes=30_000)
    first = cache.table(("a",), lambda: pa.table({"x": list(range(2000))}))  # ~16 KB each
    cache.table(("b",), lambda: pa.table({"x": list(range(2000))}))
    assert len(_cache_files(tmp_path)) == 1 and cache.removed == 1  # "a", the least recently used, went
    assert first.column("x").to_pylist() == list(range(2000))  # still mapped
    time.sleep(0.01)
    rebuilt = cache.table(("a",), lambda: pa.table({"x": [5]}))
    assert rebuilt.column("x").to_pylist() == [5]
    assert cache.disk_bytes() <= 30_000


def test_a_table_written_again_at_the_same_location_is_not_the_cached_one(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    root = _table(tmp_path / "t", files=3)
    before = Worker(SharedCache(directory)).answer(root)
    shutil.rmtree(tmp_path / "t")
    time.sleep(0.01)
    _table(tmp_path / "t", files=3)  # the same versions and checkpoint name, other files
    after = Worker(SharedCache(directory)).answer(root)
    assert after != before
    assert after == Worker(None).answer(root)


def test_a_private_directory_is_removed_by_its_maker_only(tmp_path: Path) -> None:
    cache = SharedCache.private()
    assert cache.directory.stat().st_mode & 0o777 == 0o700
    pid = os.fork()
    if pid == 0:  # a forked worker: its close leaves the directory to the supervisor
        cache.close()
        os._exit(0)
    os.waitpid(pid, 0)
    assert cache.directory.exists()
    cache.close()
    assert not cache.directory.exists()


def test_files_are_private_to_the_server_user(tmp_path: Path) -> None:
    SharedCache(tmp_path).table(("k",), lambda: pa.table({"x": [1]}))
    (written,) = _cache_files(tmp_path)
    assert written.stat().st_mode & 0o777 == 0o600


def test_a_configured_directory_is_made_private_kept_and_checked(tmp_path: Path, caplog) -> None:
    wanted = tmp_path / "made" / "cache"
    cache = shared_cache(ServerConfig.model_validate({"version": 1, "snapshotCacheDirectory": str(wanted)}))
    assert cache is not None and cache.directory == wanted and wanted.stat().st_mode & 0o777 == 0o700
    cache.close()
    assert wanted.exists()  # not the server run's own: kept for the next start
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with caplog.at_level(logging.WARNING, "lakegate"):
        shared_cache(ServerConfig.model_validate({"version": 1, "snapshotCacheDirectory": str(shared)}))
    assert "can be read or written by other users" in caplog.text
    (tmp_path / "a file").write_text("")
    with pytest.raises(ConfigError, match="snapshotCacheDirectory"):
        shared_cache(
            ServerConfig.model_validate({"version": 1, "snapshotCacheDirectory": str(tmp_path / "a file")})
        )


def test_without_a_writable_temporary_directory_the_server_keeps_snapshots_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))  # where mkdtemp makes directories
    with caplog.at_level(logging.WARNING, "lakegate"):
        assert shared_cache(ServerConfig.model_validate({"version": 1, "workers": 2})) is None
    assert "each worker keeps its own snapshots in memory" in caplog.text


def test_one_process_shares_through_a_configured_directory_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private directory would have no other reader when one process serves: none is made (a cold table's
    first answer does not write its checkpoint and parts there); a configured one is still used (kept for the
    next start)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert shared_cache(ServerConfig.model_validate({"version": 1, "workers": 1})) is None
    assert not list(tmp_path.iterdir())
    two = shared_cache(ServerConfig.model_validate({"version": 1, "workers": 2}))
    assert two is not None and two.directory.parent == tmp_path
    two.close()
    wanted = tmp_path / "configured"
    configured = {"version": 1, "workers": 1, "snapshotCacheDirectory": str(wanted)}
    one = shared_cache(ServerConfig.model_validate(configured))
    assert one is not None and one.directory == wanted


def test_a_killed_run_s_directory_is_removed_by_the_next_start_and_a_live_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    live = SharedCache.private()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a server run killed before it could clean up
        os.close(read)
        made = SharedCache.private()
        os.write(write, str(made.directory).encode())
        time.sleep(60)
        os._exit(0)
    os.close(write)
    killed = Path(os.read(read, 4096).decode())
    os.close(read)
    assert killed.exists() and killed != live.directory
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    started = SharedCache.private()
    assert not killed.exists()
    assert live.directory.exists() and started.directory.exists()
    live.close()
    started.close()
    assert list(tmp_path.iterdir()) == []


def test_a_table_without_a_checkpoint_is_shared_by_its_snapshot_parts(tmp_path: Path) -> None:
    for i in range(3):
        write_deltalake(str(tmp_path / "t"), rows([i * 3 + 1, i * 3 + 2]), mode="append")
    root = Location.parse(str(tmp_path / "t"))
    directory = tmp_path / "cache"
    directory.mkdir()
    first, second = SharedCache(directory), SharedCache(directory)
    expected = Worker(None).answer(root)
    assert Worker(first).answer(root) == expected
    assert Worker(second).answer(root) == expected
    assert (first.builds, second.builds) == (1, 0)  # the snapshot's parts only: no checkpoint, no base parts
