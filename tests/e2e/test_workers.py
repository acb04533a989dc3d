"""`workers: 2` (`lakegate serve --workers 2`): two processes answer on one port, the supervisor prints the
banner once, counts every worker's requests in /metrics, replaces a worker that dies, and a SIGTERM or a Ctrl-C
stops them all cleanly (exit 0)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from lakegate.cli.main import app
from lakegate.metrics import FOLD_SECONDS
from tests.e2e.server import RunningServer, start_server, wait_for
from tests.tables import build_plain

METADATA = "/shares/s/schemas/d/tables/t/metadata"
REQUESTS = 40


def _workers(server: RunningServer) -> set[int]:
    pid = server.daemon.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(c) for c in children}


def _requests_counted(server: RunningServer) -> float:
    text = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    route = "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/metadata"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("lakegate_http_requests_total{") and f'route="{route}"' in line
    )


def _answer_all(server: RunningServer) -> None:
    # A connection per request: the kernel hands each to one of the workers.
    for _ in range(REQUESTS):
        assert httpx.get(server.endpoint + METADATA, headers=server.headers(), timeout=30).status_code == 200


def test_two_workers_serve_count_restart_and_stop_on_sigterm(tmp_path: Path) -> None:
    table = {"name": "t", "location": build_plain(tmp_path / "t")}
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]
    server = start_server(tmp_path / "server", {"shares": shares, "workers": 2})
    try:
        wait_for(lambda: len(_workers(server)) == 2, "two workers")
        first = _workers(server)
        _answer_all(server)
        # Every worker's requests are counted, whichever worker answers the scrape (another worker's within
        # FOLD_SECONDS: each folds its counts into the shared files in batches).
        wait_for(
            lambda: _requests_counted(server) == REQUESTS, "every request counted", timeout=FOLD_SECONDS * 8
        )
        time.sleep(FOLD_SECONDS * 2)
        assert _requests_counted(server) == REQUESTS  # and none twice
        # A worker that dies is replaced; the port keeps answering meanwhile.
        os.kill(min(first), signal.SIGKILL)
        wait_for(lambda: len(_workers(server)) == 2 and _workers(server) != first, "a replacement worker")
        _answer_all(server)
        wait_for(
            lambda: _requests_counted(server) == 2 * REQUESTS, "the dead worker's counts kept", timeout=5
        )
        workers = _workers(server)
        server.daemon.proc.send_signal(signal.SIGTERM)
        assert server.daemon.proc.wait(30) == 0
    finally:
        server.stop()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    log = server.log()
    assert log.count('"message":"lakegate ') == 1  # the banner, once
    assert "all 2 workers stopped" in log
    # Both workers answered: the audit trail names the process of each event.
    result = CliRunner().invoke(
        app, ["audit", "-c", str(server.workdir / "lakegate.yaml"), "--output", "json", "--limit", "1000"]
    )
    replicas = {event["replica"] for event in json.loads(result.stdout)}
    assert len(replicas) >= 2 and all(r.split(":")[1] != str(server.daemon.proc.pid) for r in replicas)


def _established(pid: int, port: int) -> int:
    """The process's established TCP connections on the server's port (its accepted client connections)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            inodes.add(os.readlink(fd).removeprefix("socket:[").rstrip("]"))
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
        count += local_port == port and state == "01" and inode in inodes
    return count


def test_connections_are_spread_evenly_over_the_workers(tmp_path: Path) -> None:
    """Least-connections balancing: 32 connections opened at once (as a burst of queries) are held 16/16 (±1),
    whereas asyncio alone gave a whole burst to the worker that woke first."""
    table = {"name": "t", "location": build_plain(tmp_path / "t")}
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]
    server = start_server(tmp_path / "server", {"shares": shares, "workers": 2})
    held: list[socket.socket] = []
    try:
        wait_for(lambda: len(_workers(server)) == 2, "two workers")
        workers = sorted(_workers(server))
        port = int(server.base_url.rsplit(":", 1)[1])

        def both_accept() -> bool:  # a worker still starting (its app's lifespan) accepts nothing yet
            held.append(socket.create_connection(("127.0.0.1", port)))
            return all(_established(pid, port) for pid in workers)

        wait_for(both_accept, "both workers accepting")
        for connection in held:
            connection.close()
        held.clear()
        wait_for(lambda: not any(_established(p, port) for p in workers), "the probes closed")
        held.extend(socket.create_connection(("127.0.0.1", port)) for _ in range(32))
        wait_for(lambda: sum(_established(p, port) for p in workers) == 32, "32 connections accepted")
        gained = [_established(pid, port) for pid in workers]
        assert sorted(gained) in ([16, 16], [15, 17]), gained
    finally:
        for connection in held:
            connection.close()
        server.stop()


def test_ctrl_c_at_a_terminal_stops_the_workers_through_their_shutdown(tmp_path: Path) -> None:
    """Ctrl-C signals the terminal's whole process group: each worker gets that SIGINT, and the supervisor's
    passing it on must not count as a second Ctrl-C (which skips the shutdown: queued audit events lost)."""
    table = {"name": "t", "location": build_plain(tmp_path / "t")}
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]
    server = start_server(tmp_path / "server", {"shares": shares, "workers": 2})
    # Holding the database's write lock stalls the audit writers: every event is still queued at the Ctrl-C.
    lock = sqlite3.connect(server.workdir / "lakegate.db", timeout=30, isolation_level=None)
    try:
        wait_for(lambda: len(_workers(server)) == 2, "two workers")
        lock.execute("BEGIN IMMEDIATE")
        _answer_all(server)
        os.killpg(server.daemon.proc.pid, signal.SIGINT)  # the daemon leads its own process group
        time.sleep(1)
        lock.execute("ROLLBACK")
        assert server.daemon.proc.wait(30) == 0
    finally:
        lock.close()
        server.stop()
    log = server.log()
    assert "SIGINT again" not in log, log
    result = CliRunner().invoke(
        app, ["audit", "-c", str(server.workdir / "lakegate.yaml"), "--output", "json", "--limit", "1000"]
    )
    assert len(json.loads(result.stdout)) == REQUESTS


STOPPED_AT_START = """
import os, signal, sys
import uvicorn
from lakegate.workers import serve_workers

async def app(scope, receive, send):
    raise RuntimeError("no worker may start")

class SignalledConfig(uvicorn.Config):
    def load(self):  # the supervisor's, after the port opened and before any worker is forked
        super().load()
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))

sys.exit(serve_workers(SignalledConfig(app, host="127.0.0.1", port=0, log_config=None), 2))
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_once_the_port_is_open_stops_cleanly(sig: str) -> None:
    """An orchestrator's SIGTERM (or a Ctrl-C) as soon as the port answers, before the workers run: exit 0,
    no worker started (was: killed by SIGTERM, a KeyboardInterrupt traceback for SIGINT)."""
    done = subprocess.run(
        [sys.executable, "-c", STOPPED_AT_START, sig], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "no worker may start" not in done.stderr, done.stderr
