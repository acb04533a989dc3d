"""Stopping a server in the middle of a long download, as an operator does: Ctrl-C at the terminal, or SIGTERM
from an orchestrator. Both exit 0 within the grace, with one line for the request cut off and no traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from benchmarks.bigtable import commit_lines
from tests.e2e.server import RunningServer, start_server

FILES = 30_000  # ~15 MB of NDJSON with signed URLs: far more than socket buffers hold


def _big_table(root: Path) -> str:
    """A table whose query answer is large (a real log; the data files need not exist to list them)."""
    (root / "_delta_log").mkdir(parents=True)
    (root / "_delta_log" / "00000000000000000000.json").write_bytes(commit_lines(FILES))
    return str(root)


def _start_slow_download(server: RunningServer) -> socket.socket:
    """POST …/query from a client with a tiny receive buffer that reads the first bytes and then nothing."""
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    path = server.endpoint.removeprefix(server.base_url) + "/shares/s/schemas/d/tables/big/query"
    body = b"{}"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    first = sock.recv(4096)
    assert first.startswith(b"HTTP/1.1 200"), first[:200]
    time.sleep(1)  # the server fills the socket and waits for the client to read
    return sock


@pytest.mark.parametrize(
    ("sig", "config"),
    [
        (signal.SIGINT, {}),  # Ctrl-C with the default 30 s drain: cut at once
        (signal.SIGTERM, {"shutdownTimeoutSeconds": 2}),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_during_a_long_download(tmp_path: Path, sig: signal.Signals, config: dict) -> None:
    shares = [
        {
            "name": "s",
            "schemas": [{"name": "d", "tables": [{"name": "big", "location": _big_table(tmp_path / "big")}]}],
        }
    ]
    server = start_server(tmp_path / "srv", {**config, "shares": shares})
    try:
        sock = _start_slow_download(server)
        started = time.monotonic()
        os.kill(server.daemon.proc.pid, sig)
        code = server.daemon.proc.wait(timeout=20)
        waited = time.monotonic() - started
        sock.close()
    finally:
        server.stop()
    log = server.log()
    assert code == 0, log
    assert waited < 10, f"stopping took {waited:.1f}s"  # the 30 s default drain is not waited on Ctrl-C
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert "without completing response" not in log, log  # one line per request cut off, ours
    cut = [json.loads(line) for line in log.splitlines() if "cut off by the shutdown" in line]
    assert len(cut) == 1 and cut[0]["message"].startswith("POST "), log


def test_ctrl_c_twice_stops_at_once_without_a_traceback(tmp_path: Path) -> None:
    """An operator who presses Ctrl-C again while the server stops (uvicorn's force exit)."""
    shares = [
        {
            "name": "s",
            "schemas": [{"name": "d", "tables": [{"name": "big", "location": _big_table(tmp_path / "big")}]}],
        }
    ]
    server = start_server(tmp_path / "srv", {"shares": shares})
    try:
        sock = _start_slow_download(server)
        os.kill(server.daemon.proc.pid, signal.SIGINT)
        time.sleep(0.05)
        os.kill(server.daemon.proc.pid, signal.SIGINT)
        code = server.daemon.proc.wait(timeout=20)
        sock.close()
    finally:
        server.stop()
    log = server.log()
    assert code == 0, log
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert "SIGINT again: stopping now" in log, log
