"""The default server (`workers: auto`, one process per core) read by the official delta-sharing client: every
worker answers queries, page walks and async queries the same, a table written between requests is answered at
its new version by every worker, the workers share one copy of the table's checkpoint and file parts (Arrow files
in the snapshot cache directory, each built once and mapped by every worker), and a SIGTERM stops them all,
writes the audit trail and removes the cache directory."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import delta_sharing
import httpx
from deltalake import DeltaTable, write_deltalake
from typer.testing import CliRunner

from lakegate.cli.main import app
from lakegate.workers import default_workers
from tests.e2e.server import RunningServer, start_server, wait_for
from tests.tables import build_plain, read_expected, rows

TABLE = "/shares/s/schemas/d/tables/t"
ASYNC = {"delta-sharing-capabilities": "asyncquery=true"}
CONNECTIONS = 16  # one request per connection: the kernel hands each to one of the workers

# The default (one per core) where there are several cores; two on a one-core machine, so the test always runs
# several workers.
DEFAULT = None if default_workers() > 1 else 2
EXPECTED = max(2, default_workers())


def _workers(server: RunningServer) -> list[int]:
    pid = server.daemon.proc.pid
    return sorted(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def _mapped(pid: int, directory: Path) -> set[str]:
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {Path(line.split()[-1]).name for line in lines if str(directory) in line}


def _metric(server: RunningServer, name: str) -> float:
    text = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def _query(server: RunningServer, body: dict, headers: dict | None = None) -> list[dict]:
    response = httpx.post(
        server.endpoint + TABLE + "/query", headers=server.headers(**(headers or {})), json=body, timeout=60
    )
    assert response.status_code == 200, response.text
    version = {"version": int(response.headers["delta-table-version"])}
    return [json.loads(line) for line in response.text.splitlines()] + [version]


def _ids(lines: list[dict]) -> list[str]:
    return sorted(line["file"]["id"] for line in lines if "file" in line)


def _version(lines: list[dict]) -> int:
    return int(lines[-1]["version"])


def test_default_workers_share_one_cache_and_answer_alike(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "t", batches=6)
    DeltaTable(root).create_checkpoint()
    write_deltalake(root, rows([100, 101]), mode="append")  # a commit after the checkpoint
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": root}]}]}]
    config = {"shares": shares, "asyncQueryMinFiles": 2, "warmUp": False}
    server = start_server(tmp_path / "server", config, env={"TMPDIR": str(temporary)}, workers=DEFAULT)
    try:
        wait_for(lambda: len(_workers(server)) == EXPECTED, "one worker per core")
        (cache,) = temporary.glob("lakegate-snapshots-*")
        assert cache.stat().st_mode & 0o777 == 0o700

        # The official client, many times over (a connection each): every answer is the table.
        profile = server.profile()
        for _ in range(4):
            frame = delta_sharing.load_as_pandas(f"{profile}#s.d.t")
            assert sorted(frame.to_dict("records"), key=lambda r: r["id"]) == read_expected(root)
        full = [_query(server, {}) for _ in range(CONNECTIONS)]
        assert all(_ids(answer) == _ids(full[0]) for answer in full)
        assert len(_ids(full[0])) == 7

        # Both workers answered from the same files: built once, mapped by each.
        files = {p.name for p in cache.glob("*.arrow")}
        assert len(files) == 3  # the checkpoint, its rows' parts, the snapshot's parts (parquet format)
        assert all(files <= _mapped(pid, cache) for pid in _workers(server))
        assert _metric(server, "lakegate_snapshot_cache_files_written_total") == 3

        # A page walk, one connection per page (pages land on either worker).
        ids, token = [], None
        while True:
            page = _query(server, {"maxFiles": 2, **({"pageToken": token} if token else {})})
            ids += _ids(page)
            token = page[-2]["endStreamAction"].get("nextPageToken")
            if not token:
                break
        assert sorted(ids) == _ids(full[0])

        # An async query started on one worker, polled on whichever.
        started = _query(server, {"idempotencyKey": "workers-1"}, ASYNC)
        query_id = started[0]["queryStatus"]["queryId"]
        deadline = time.monotonic() + 60
        while True:
            response = httpx.post(
                f"{server.endpoint}{TABLE}/queries/{query_id}", headers=server.headers(**ASYNC), json={}
            )
            lines = [json.loads(line) for line in response.text.splitlines()]
            if "queryStatus" not in lines[0]:
                break
            assert time.monotonic() < deadline, "the async query never finished"
            time.sleep(0.2)
        assert _ids(lines) == _ids(full[0])

        # Written between requests: every worker answers the new version.
        before = _version(full[0])
        write_deltalake(root, rows([200]), mode="append")
        after = [_query(server, {}) for _ in range(CONNECTIONS)]
        assert {_version(answer) for answer in after} == {before + 1}
        assert all(len(_ids(answer)) == 8 for answer in after)
        frame = delta_sharing.load_as_pandas(f"{profile}#s.d.t")
        assert len(frame) == len(read_expected(root))

        # A replacement worker (after a crash) finds the cache warm: it builds nothing.
        written = _metric(server, "lakegate_snapshot_cache_files_written_total")
        first = _workers(server)
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: len(_workers(server)) == len(first) and _workers(server) != first, "a replacement")
        for _ in range(CONNECTIONS):
            _query(server, {})
        assert _metric(server, "lakegate_snapshot_cache_files_written_total") == written
        replacement = (set(_workers(server)) - set(first)).pop()
        assert _mapped(replacement, cache)

        answered = 4 + 2 * CONNECTIONS + CONNECTIONS + len(ids) // 2 + 2
        server.daemon.proc.send_signal(signal.SIGTERM)
        assert server.daemon.proc.wait(30) == 0
    finally:
        server.stop()
    assert not cache.exists()
    assert f"all {EXPECTED} workers stopped" in server.log()
    # Every answered query is in the audit trail (the workers flushed theirs on SIGTERM).
    result = CliRunner().invoke(
        app, ["audit", "-c", str(server.workdir / "lakegate.yaml"), "--output", "json", "--limit", "10000"]
    )
    events = json.loads(result.stdout)
    answers = [e for e in events if e["table"] == "s.d.t" and e["status"] == 200]
    assert len(answers) >= answered
    assert len({e["replica"] for e in answers}) >= 3  # both workers, and the replacement
