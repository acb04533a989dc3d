"""Audit events are written by a background writer in batches: a SIGTERM while events are still queued leaves
one stored event per request answered (the queue is written before the database is closed)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

from typer.testing import CliRunner

from lakegate.cli.main import app
from tests.e2e.server import start_server
from tests.tables import build_plain

REQUESTS = 400
CLIENTS = 16


def test_every_answered_request_is_in_the_trail_after_sigterm(tmp_path: Path) -> None:
    table = {"name": "t", "location": build_plain(tmp_path / "t")}
    server = start_server(
        tmp_path / "server", {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]}
    )
    url = f"{server.endpoint}/shares/s/schemas/d/tables/t/metadata"
    # Holding the database's write lock stalls the writer: every event is still queued when SIGTERM arrives.
    lock = sqlite3.connect(server.workdir / "lakegate.db", timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        statuses = server.statuses_of(url, REQUESTS, CLIENTS)
        server.daemon.proc.send_signal(signal.SIGTERM)
        time.sleep(1)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        server.stop()
    assert statuses == [200] * REQUESTS
    assert server.daemon.proc.returncode == 0
    result = CliRunner().invoke(
        app, ["audit", "-c", str(server.workdir / "lakegate.yaml"), "--output", "json", "--limit", "10000"]
    )
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)
    assert len(events) == REQUESTS
    assert {(e["operation"], e["outcome"], e["recipient"]) for e in events} == {
        ("metadata", "ok", "bootstrap")
    }
