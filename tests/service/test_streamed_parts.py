"""A cold snapshot's answer follows the build of its file parts block by block (`LineCache.streamed`): the same
bytes as an answer from the finished parts, one build however many answers arrive during it (in this process or,
through the shared cache directory, another), nothing cached when the build fails, and no streaming where a
build error could come after the first bytes."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from benchmarks.bigtable import commit_lines
from lakegate import sharedcache
from lakegate.cloud.locations import Location
from lakegate.delta.addfiles import AddFiles, _Base, file_key
from lakegate.delta.log import add_table
from lakegate.exceptions import UnsupportedOperationError
from lakegate.protocol.capabilities import DELTA, PARQUET
from lakegate.service import files, parts
from lakegate.service.files import LineCache, parts_lines
from lakegate.service.responses import Lines
from lakegate.sharedcache import LATER_FIELD, SharedCache, name_of
from tests.delta.test_checkpoint_rows import ADD
from tests.service.test_parts import ROOT, _joined, _signers, _snapshot
from tests.service.test_shared_cache import Worker, _mapped, _wait_for

FILES = parts.STREAM_MIN_ROWS + 7000  # three blocks


def _answer(selected: parts.FileParts | parts.StreamedParts, fmt: str, signers: Any) -> bytes:
    return _joined(parts_lines(selected, fmt, signers, ROOT, ()))


def _counting_builds(monkeypatch: pytest.MonkeyPatch, pause: float = 0.0) -> list[int]:
    """Counts `build_base` calls; `pause`: seconds after each block (so answers arrive during the build)."""
    builds: list[int] = []
    build_base = parts.build_base

    def counted(*args: Any, on_block: Any = None, **kwargs: Any) -> pa.Table:
        builds.append(1)

        def slowed(block: pa.RecordBatch) -> None:
            if on_block is not None:
                on_block(block)
            time.sleep(pause)

        return build_base(*args, **{**kwargs, "on_block": slowed})

    monkeypatch.setattr(parts, "build_base", counted)
    return builds


@pytest.mark.parametrize("fmt", [PARQUET, DELTA])
def test_a_followed_build_answers_the_bytes_of_the_finished_parts(fmt: str) -> None:
    snapshot, signers = _snapshot(FILES), _signers()
    cache = LineCache()
    followed = cache.streamed(snapshot, ROOT, (), fmt, fmt)
    assert isinstance(followed, parts.StreamedParts)
    assert len(followed) == FILES and followed.total_size() == sum(range(FILES))
    got = _answer(followed, fmt, signers)
    reference = LineCache().parts(snapshot, ROOT, (), fmt, fmt)
    assert got == _answer(reference, fmt, signers) and got.count(b"\n") == FILES
    # Cached whole once the build ended: later answers read the finished parts.
    cached = cache.streamed(snapshot, ROOT, (), fmt, fmt)
    assert isinstance(cached, parts.FileParts) and cached is cache.parts(snapshot, ROOT, (), fmt, fmt)
    assert cache.builds == 1


def test_answers_arriving_during_a_build_follow_it_and_nothing_is_built_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds = _counting_builds(monkeypatch, pause=0.1)
    snapshot, signers, cache = _snapshot(FILES), _signers(), LineCache()
    answers: list[bytes] = []
    kinds: list[type] = []

    def query(whole: bool) -> None:
        got = cache.streamed if whole else cache.parts
        selected = got(snapshot, ROOT, (), PARQUET, PARQUET)
        kinds.append(type(selected))
        answers.append(_answer(selected, PARQUET, signers))

    threads = [threading.Thread(target=query, args=(i % 2 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
        time.sleep(0.01)
    for t in threads:
        t.join()
    assert len(builds) == 1 and cache.builds == 1
    assert len(answers) == 8 and len(set(answers)) == 1 and answers[0].count(b"\n") == FILES
    assert kinds.count(parts.StreamedParts) == 4  # every whole answer followed the build


def _until_failure(pieces: Iterator[Lines]) -> tuple[int, BaseException | None]:
    """The file lines rendered before the answer failed, and its error (None: it did not fail)."""
    sent = 0
    try:
        for piece in pieces:
            sent += piece.files
    except Exception as exc:  # noqa: BLE001  - returned for the test to check
        return sent, exc
    return sent, None


def test_a_build_failing_half_way_fails_its_answers_and_caches_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build_base = parts.build_base

    def failing(*args: Any, on_block: Any = None, **kwargs: Any) -> pa.Table:
        def one_then_fail(block: pa.RecordBatch) -> None:
            on_block(block)
            raise ValueError("the disk went away")

        return build_base(*args, **{**kwargs, "on_block": one_then_fail})

    monkeypatch.setattr(parts, "build_base", failing)
    snapshot, signers, cache = _snapshot(FILES), _signers(), LineCache()
    followed = cache.streamed(snapshot, ROOT, (), PARQUET, PARQUET)
    sent, error = _until_failure(parts_lines(followed, PARQUET, signers, ROOT, ()))
    assert isinstance(error, ValueError) and str(error) == "the disk went away"
    assert sent <= parts.BLOCK  # at most the block made before the failure went out
    assert cache.builds == 0 and cache.nbytes(snapshot) == 0
    monkeypatch.setattr(parts, "build_base", build_base)
    again = cache.streamed(snapshot, ROOT, (), PARQUET, PARQUET)  # a later answer builds it again, whole
    assert _answer(again, PARQUET, signers).count(b"\n") == FILES and cache.builds == 1


def test_small_tables_and_paths_the_build_may_refuse_are_not_followed() -> None:
    cache = LineCache()
    assert isinstance(cache.streamed(_snapshot(100), ROOT, (), PARQUET, PARQUET), parts.FileParts)
    odd = _snapshot(FILES)
    table = odd.files.base
    paths = table.column("path").to_pylist()
    paths[-1] = "a%20b.parquet"  # decoded and checked by `data_location`, which may refuse a path
    assert not parts.streamable(
        type(odd.files).from_table(table.set_column(0, "path", pa.array(paths, pa.string())))
    )


def _checkpointed(table: Path) -> Location:
    """A table of FILES files whose log is one checkpoint (its rows all live: a build answers follow)."""
    (table / "_delta_log").mkdir(parents=True)
    (table / "_delta_log" / "00000000000000000000.json").write_bytes(commit_lines(FILES))
    DeltaTable(str(table)).create_checkpoint()
    (table / "_delta_log" / "00000000000000000000.json").unlink()
    return Location.parse(str(table))


def test_two_workers_cold_at_once_build_once_through_the_shared_directory(tmp_path: Path) -> None:
    root = _checkpointed(tmp_path / "t")
    directory = tmp_path / "cache"
    directory.mkdir()
    workers = [Worker(SharedCache(directory)), Worker(SharedCache(directory))]
    answers: list[bytes] = []
    kinds: list[type] = []

    def query(worker: Worker) -> None:
        snapshot = worker.snapshots.latest(root)
        selected = worker.lines.streamed(snapshot, root, (), PARQUET, PARQUET)
        kinds.append(type(selected))
        answers.append(b"".join(p.data for p in parts_lines(selected, PARQUET, _signers(), root, ())))

    threads = [threading.Thread(target=query, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 2 and answers[0].count(b"\n") == FILES
    assert [a.split(b"?")[0] for a in answers[0].splitlines()] == [
        a.split(b"?")[0] for a in answers[1].splitlines()
    ]
    built = [w.lines.shared.builds for w in workers if w.lines.shared is not None]
    assert sum(built) == 2  # the checkpoint table and the parts, once each across both workers
    assert parts.StreamedParts in kinds
    assert len(list(directory.glob("*.arrow"))) == 2


def test_a_followed_build_writes_its_shared_files_after_its_answer_then_keeps_them_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written while an answer renders its last blocks, the shared files slowed its end: they are written once
    no answer follows the build any more, and the kept parts and checkpoint are then the mapped files'."""
    for module in (sharedcache, files):  # no timer writes them in this test
        monkeypatch.setattr(module, "WRITE_LATER_SECONDS", 60)
    root = _checkpointed(tmp_path / "t")
    directory = tmp_path / "cache"
    directory.mkdir()
    worker = Worker(SharedCache(directory))
    snapshot = worker.snapshots.latest(root)
    selected = worker.lines.streamed(snapshot, root, (), PARQUET, PARQUET)
    assert isinstance(selected, parts.StreamedParts)
    blocks = selected.blocks()
    rows = next(blocks).num_rows  # an answer following the build, not at its end
    assert _wait_for(
        lambda: isinstance(worker.lines.streamed(snapshot, root, (), PARQUET, PARQUET), parts.FileParts)
    )
    time.sleep(0.3)
    assert list(directory.glob("*.arrow")) == []  # the build ended; its files wait for the answer
    rows += sum(block.num_rows for block in blocks)
    assert rows == FILES
    assert _wait_for(lambda: len(list(directory.glob("*.arrow"))) == 2)  # the checkpoint's and the parts'
    kept = worker.lines.parts(snapshot, root, (), PARQUET, PARQUET)
    assert str(directory / f"{name_of(kept.table)}.arrow") in _mapped(directory)
    assert (kept.table.schema.metadata or {}).get(LATER_FIELD) is None  # the mapped file's, not the copy
    assert (snapshot.files.base.schema.metadata or {}).get(LATER_FIELD) is None
    # An answer object outliving its response holds the mapped file too, not the build's copy.
    late = next(selected.blocks())
    assert (late.schema.metadata or {}).get(LATER_FIELD) is None and name_of(late) == name_of(kept.table)
    signers, alone = _signers(), Worker(None)  # one expiry for both answers
    reference = alone.lines.parts(alone.snapshots.latest(root), root, (), PARQUET, PARQUET)
    got = _answer(kept, PARQUET, signers)
    assert got == _answer(reference, PARQUET, signers) and got.count(b"\n") == FILES


def _with_tail(table: Path) -> Location:
    """`_checkpointed`, then two commits after the checkpoint: a live table's log. They remove every 13th
    checkpoint file, add files whose paths sort among the checkpoint's, remove some of those again and add one
    removed path back (the parts then hold it as an added file)."""
    root = _checkpointed(table)
    adds = [
        orjson.loads(line)["add"] for line in commit_lines(FILES).splitlines() if line.startswith(b'{"add"')
    ]
    base_paths = DeltaTable(str(table)).file_uris()
    base = [Path(uri).relative_to(table).as_posix() for uri in base_paths]
    removed = base[::13]
    added = adds[:2500]
    first = [{"remove": {"path": p, "deletionTimestamp": 1, "dataChange": True}} for p in removed]
    first += [{"add": add} for add in added]
    second = [{"remove": {"path": a["path"], "deletionTimestamp": 2, "dataChange": True}} for a in added[::7]]
    second += [{"add": add} for add in adds[2500:3000]]
    second.append({"add": {**adds[3000], "path": removed[5]}})
    for version, actions in ((1, first), (2, second)):
        lines = [{"commitInfo": {"timestamp": 1700000000000 + version}}, *actions]
        (table / "_delta_log" / f"{version:020d}.json").write_bytes(
            b"\n".join(map(orjson.dumps, lines)) + b"\n"
        )
    return root


@pytest.mark.parametrize("fmt", [PARQUET, DELTA])
@pytest.mark.parametrize("shared", [False, True], ids=["one process", "shared directory"])
def test_a_live_table_s_cold_answer_follows_its_build_and_equals_the_combined_parts(
    tmp_path: Path, fmt: str, shared: bool
) -> None:
    """Commits after the checkpoint (removes, adds, a path added back): the followed build merges them into
    each block, so the cold answer streams and holds the same lines, in the same order, as the parts combined
    whole; with a shared directory the kept parts are then the mapped files'."""
    root = _with_tail(tmp_path / "t")
    directory = tmp_path / "cache"
    directory.mkdir()
    worker = Worker(SharedCache(directory) if shared else None)
    snapshot = worker.snapshots.latest(root)
    assert snapshot.files.added and not snapshot.files.all_base_live
    signers = _signers()
    followed = worker.lines.streamed(snapshot, root, (), fmt, fmt)
    assert isinstance(followed, parts.StreamedParts)
    got = _joined(parts_lines(followed, fmt, signers, root, ()))
    alone = Worker(None)
    whole = alone.lines.parts(alone.snapshots.latest(root), root, (), fmt, fmt)
    expected = _joined(parts_lines(whole, fmt, signers, root, ()))
    assert got == expected and got.count(b"\n") == len(snapshot.files)
    kept = worker.lines.parts(snapshot, root, (), fmt, fmt)
    if shared:  # the checkpoint's, its parts' and the snapshot's parts' files, the last one kept mapped
        assert _wait_for(lambda: len(list(directory.glob("*.arrow"))) == 3)
        assert _wait_for(
            lambda: (
                (worker.lines.parts(snapshot, root, (), fmt, fmt).table.schema.metadata or {}).get(
                    LATER_FIELD
                )
                is None
            )
        )
        kept = worker.lines.parts(snapshot, root, (), fmt, fmt)
        assert str(directory / f"{name_of(kept.table)}.arrow") in _mapped(directory)
    assert _joined(parts_lines(kept, fmt, signers, root, ())) == expected


def test_a_commit_after_the_checkpoint_with_a_refused_path_fails_a_followed_answer_before_its_first_line(
    tmp_path: Path,
) -> None:
    table = tmp_path / "t"
    root = _checkpointed(table)
    outside = {
        "path": "/etc/passwd",
        "partitionValues": {},
        "size": 1,
        "modificationTime": 1,
        "dataChange": True,
    }
    lines = [{"commitInfo": {"timestamp": 1}}, {"add": outside}]
    (table / "_delta_log" / f"{1:020d}.json").write_bytes(b"\n".join(map(orjson.dumps, lines)) + b"\n")
    worker = Worker(None)
    followed = worker.lines.streamed(worker.snapshots.latest(root), root, (), PARQUET, PARQUET)
    assert isinstance(followed, parts.StreamedParts)
    sent, error = _until_failure(parts_lines(followed, PARQUET, _signers(), root, ()))
    assert sent == 0 and isinstance(error, UnsupportedOperationError)


def _dv(tag: str) -> dict[str, Any]:
    return {
        "storageType": "u",
        "pathOrInlineDv": tag.ljust(22, "0"),
        "offset": 1,
        "sizeInBytes": 3,
        "cardinality": 2,
    }


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fmt", [PARQUET, DELTA])
def test_a_tail_merged_block_by_block_equals_the_combined_parts(seed: int, fmt: str) -> None:
    """Small blocks, deletion vectors (keys of a path and a vector id), dead checkpoint rows, added files sorting
    before, among and after them, a dead path added back with another vector: the merged blocks, in order, are
    the table `combine` makes."""
    rng = random.Random(seed)
    base_rows = []
    for i in range(200):
        path = f"p{i:04d}.parquet"
        dv = _dv(f"b{i}") if rng.random() < 0.3 else None
        base_rows.append(
            {"path": path, "partitionValues": [], "size": i, "stats": None, "deletionVector": dv}
        )
    table = add_table(pa.chunked_array([pa.array(base_rows, type=ADD)]))
    live = np.array([rng.random() < 0.7 for _ in base_rows])
    added: dict[Any, dict[str, Any]] = {}
    for i in range(60):
        kind = rng.choice(["first", "among", "last", "again"])
        named = {
            "first": f"a{i}.parquet",
            "among": f"p{rng.randrange(200):04d}x{i}.parquet",
            "last": f"z{i}.parquet",
        }
        if kind == "again":
            dead = [r for r, alive in zip(base_rows, live, strict=True) if not alive]
            add: dict[str, Any] = {
                "path": rng.choice(dead)["path"],
                "size": 7,
                "partitionValues": {},
                "deletionVector": _dv(f"n{i}"),
            }
        else:
            add = {"path": named[kind], "size": i, "partitionValues": {}}
        added[file_key(add)] = add
    files = AddFiles(_Base(table), live, added)
    overlay = LineCache._overlay(files, ROOT, (), fmt, fmt)
    blocks: list[pa.RecordBatch] = []
    merge = parts.TailMerge(files, overlay, blocks.append)
    base = parts.build_base(files, ROOT, (), fmt, fmt, block=16, on_block=merge.add)
    merged = merge.finish()
    expected = parts.combine(base, files, overlay)
    assert merged is not None and merged.equals(expected)
    assert pa.Table.from_batches(blocks).equals(expected) and all(b.num_rows for b in blocks)
    assert len(expected) == len(files)
