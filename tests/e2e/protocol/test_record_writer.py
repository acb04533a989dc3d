"""A busy server's log lines and audit rows are written by its record writer process (`lakegate.recordwriter`):
every one of them is there after a clean stop, each line whole, and a lone request's line is in the log as soon
as its answer has come."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from lakegate.cli.main import app
from tests.e2e.server import start_server
from tests.tables import build_plain

REQUESTS = 1200  # at a few thousand a second: far past the 200 a second that make a process busy
CLIENTS = 8


def _writers_of(pid: int) -> list[int]:
    """The record writer processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if b"lakegate.recordchild" in cmdline and parent == pid:
                found.append(int(entry.name))
    return found


def test_a_busy_servers_records_are_all_written(tmp_path: Path) -> None:
    table = {"name": "t", "location": build_plain(tmp_path / "t")}
    server = start_server(
        tmp_path / "server", {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]}
    )
    path = "/shares/s/schemas/d/tables/t/metadata"
    try:
        statuses = server.statuses_of(server.endpoint + path, REQUESTS, CLIENTS)
        writers = _writers_of(server.daemon.proc.pid)
        # Quiet for two seconds, the server is no longer busy: a lone request's line is written at once.
        time.sleep(2.2)
        lone = httpx.get(
            f"{server.endpoint}/shares/s/schemas/d/tables/t/version?lone", headers=server.headers()
        )
        lone_line_at_once = "/version" in server.daemon.log_path.read_text().splitlines()[-1]
        server.daemon.proc.send_signal(signal.SIGTERM)
        assert server.daemon.proc.wait(30) == 0
    finally:
        server.stop()
    assert statuses == [200] * REQUESTS and lone.status_code == 200
    assert len(writers) == 1  # the server's one worker has its record writer
    assert not Path(f"/proc/{writers[0]}").exists()  # ended with it
    assert lone_line_at_once
    records = [
        json.loads(line) for line in server.daemon.log_path.read_text().splitlines()
    ]  # each line whole
    access = [
        r["http"] for r in records if r["logger"] == "lakegate.access" and r["http"]["path"].endswith(path)
    ]
    audit = [r["audit"] for r in records if r["logger"] == "lakegate.audit"]
    assert len(access) == REQUESTS and {a["status"] for a in access} == {200}
    assert len(audit) == REQUESTS and {(a["operation"], a["outcome"]) for a in audit} == {("metadata", "ok")}
    result = CliRunner().invoke(
        app, ["audit", "-c", str(server.workdir / "lakegate.yaml"), "--output", "json", "--limit", "10000"]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == REQUESTS
