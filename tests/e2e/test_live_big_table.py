"""A big table written to while two workers serve it: every cold answer of a new version follows its build, with
the commits after the checkpoint merged into each block (`parts.TailMerge`), while a writer keeps committing
adds and removes and now and then a checkpoint. Every answer must be a 200 whose file lines are exactly the
files of the version it reports (by their ids: the reference server's md5 of the log path in the parquet format,
its sha256 in the delta format)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from deltalake import DeltaTable

from benchmarks.bigtable import commit_lines
from lakegate.service import parts
from tests.e2e.server import start_server

FILES = parts.STREAM_MIN_ROWS + 5000  # a build answers follow
ADDS, REMOVES = 300, 120  # per commit
COMMITS = 17  # checkpoints after the 8th and 16th
FORMATS = {
    "parquet": "responseformat=parquet",
    "delta": "responseformat=delta",
}


def _digest(paths: list[str]) -> tuple[int, str, str]:
    """(files, digest of their ids in the parquet format, and in the delta format)."""
    md5 = sorted(hashlib.md5(p.encode()).hexdigest() for p in paths)  # noqa: S324  - the protocol's file id
    sha256 = sorted(hashlib.sha256(p.encode()).hexdigest() for p in paths)
    return len(paths), _joined(md5), _joined(sha256)


def _joined(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def _answered(content: bytes) -> tuple[int, str]:
    """(file lines, digest of their ids) of a query answer."""
    files = [orjson.loads(line)["file"] for line in content.splitlines() if line.startswith(b'{"file"')]
    return len(files), _joined(sorted(f["id"] for f in files))


def _adds(count: int) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)["add"] for line in commit_lines(count).splitlines() if line.startswith(b'{"add"')
    ]


class Writer(threading.Thread):
    """Commits `COMMITS` versions (each written whole, then renamed into place as a Delta writer's put-if-absent
    does), a checkpoint after every 8th; notes the live paths of every version. It waits for an answer of each
    version before the next commit (however slow the machine, many versions are answered cold), except after a
    checkpoint: the next commit follows at once, so the new checkpoint is first read with a commit after it."""

    def __init__(self, table: Path, live: list[str]) -> None:
        super().__init__(name="writer", daemon=True)
        self.table, self.live = table, list(live)
        self.files_at = {0: _digest(live)}
        self.errors: list[BaseException] = []
        self.started = (
            threading.Event()
        )  # three commits after the checkpoint: the first cold query merges them
        self.answered = -1  # the newest version an answer reported

    def run(self) -> None:
        try:
            for version in range(1, COMMITS + 1):
                self._commit(version)
                if version % 8 == 0:
                    DeltaTable(str(self.table)).create_checkpoint()
                    continue
                if version >= 3:
                    self.started.set()
                    deadline = time.monotonic() + 30
                    while self.answered < version and time.monotonic() < deadline:
                        time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001  - reported by the test
            self.errors.append(exc)
        finally:
            self.started.set()

    def _commit(self, version: int) -> None:
        added = _adds(ADDS)
        gone = self.live[::7][:REMOVES]
        dropped = set(gone)
        self.live = [p for p in self.live if p not in dropped] + [a["path"] for a in added]
        actions: list[dict[str, Any]] = [{"commitInfo": {"timestamp": 1700000000000 + version}}]
        actions += [{"remove": {"path": p, "deletionTimestamp": version, "dataChange": True}} for p in gone]
        actions += [{"add": a} for a in added]
        log = self.table / "_delta_log"
        temporary = log / f".{version}.tmp"
        temporary.write_bytes(b"\n".join(map(orjson.dumps, actions)) + b"\n")
        self.files_at[version] = _digest(self.live)
        os.rename(temporary, log / f"{version:020d}.json")


def test_a_big_table_being_written_answers_every_version_whole(tmp_path: Path) -> None:
    table = tmp_path / "t"
    (table / "_delta_log").mkdir(parents=True)
    first = commit_lines(FILES)
    (table / "_delta_log" / "00000000000000000000.json").write_bytes(first)
    DeltaTable(str(table)).create_checkpoint()
    live = [orjson.loads(line)["add"]["path"] for line in first.splitlines() if line.startswith(b'{"add"')]
    config = {
        "warmUp": False,
        "shares": [
            {"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": str(table)}]}]}
        ],
    }
    server = start_server(tmp_path / "server", config, workers=2)
    writer = Writer(table, live)
    answers: list[tuple[str, int, int, tuple[int, str]]] = []  # (format, status, version, (files, digest))
    failures: list[BaseException] = []

    def read(fmt: str) -> None:
        headers = server.headers(**{"delta-sharing-capabilities": FORMATS[fmt]})
        url = f"{server.endpoint}/shares/s/schemas/d/tables/t/query"
        try:
            with httpx.Client(timeout=60) as client:
                while writer.is_alive():
                    answer = client.post(url, json={}, headers=headers)
                    version = int(answer.headers.get("delta-table-version", -1))
                    answers.append((fmt, answer.status_code, version, _answered(answer.content)))
                    writer.answered = max(writer.answered, version)
        except BaseException as exc:  # noqa: BLE001  - reported by the test
            failures.append(exc)

    readers = [threading.Thread(target=read, args=(fmt,)) for fmt in ("parquet", "delta", "parquet")]
    try:
        writer.start()
        writer.started.wait(60)
        for reader in readers:
            reader.start()
        writer.join(120)
        for reader in readers:
            reader.join(120)
    finally:
        server.stop()
    assert not writer.errors and not failures, (writer.errors, failures)
    assert answers and {status for _, status, _, _ in answers} == {200}, server.log()
    wrong = []
    for fmt, _, version, (files, digest) in answers:
        expected = writer.files_at.get(version)
        if expected is None or (files, digest) != (expected[0], expected[1 if fmt == "parquet" else 2]):
            wrong.append((fmt, version, files, expected and expected[0]))
    assert not wrong, wrong
    assert len({v for _, _, v, _ in answers}) >= COMMITS * 2 // 3  # many versions were answered, not one
