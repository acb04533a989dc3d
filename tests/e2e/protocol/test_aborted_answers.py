"""An answer cut short (the client goes away mid-stream) leaves an audit event `ABORTED` that counts the files
actually sent, not the files the answer was going to hold: the operator's trail says what left the server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from benchmarks.bigtable import commit_lines
from lakegate.cli.main import app
from tests.e2e.server import RunningServer, start_server

FILES = 40_000  # about 12 MB of answer: more than loopback socket buffers hold


def _audit(config: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["audit", "-c", str(config), "--output", "json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def _wait_for_events(config: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while (events := _audit(config)) and len(events) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return events


def _serve_big_table(tmp_path: Path, **config: Any) -> RunningServer:
    log = tmp_path / "big" / "_delta_log"
    log.mkdir(parents=True)
    (log / "00000000000000000000.json").write_bytes(commit_lines(FILES))
    table = {"name": "big", "location": str(tmp_path / "big")}
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]
    return start_server(tmp_path / "server", {"shares": shares, **config})


def test_a_query_cut_short_is_audited_aborted_with_the_files_sent(tmp_path: Path) -> None:
    server = _serve_big_table(tmp_path)
    config = server.workdir / "lakegate.yaml"
    query = f"{server.endpoint}/shares/s/schemas/d/tables/big/query"
    try:
        full = httpx.post(query, json={}, headers=server.headers(), timeout=60)
        assert full.status_code == 200
        with httpx.stream("POST", query, json={}, headers=server.headers(), timeout=60) as answer:
            next(answer.iter_raw())  # the first bytes, then the client stops reading and leaves
            time.sleep(1)
        events = _wait_for_events(config, 2)
    finally:
        server.stop()
    ok, cut = events
    assert (ok["outcome"], ok["files"]) == ("ok", FILES)
    assert cut["outcome"] == "ABORTED" and cut["recipient"] == "bootstrap"
    assert 0 < cut["files"] < FILES


def test_a_query_cut_by_shutdown_is_audited_aborted(tmp_path: Path) -> None:
    server = _serve_big_table(tmp_path, shutdownTimeoutSeconds=1)
    query = f"{server.endpoint}/shares/s/schemas/d/tables/big/query"
    with httpx.stream("POST", query, json={}, headers=server.headers(), timeout=60) as answer:
        next(answer.iter_raw())  # the client reads a little, then stalls while the server shuts down
        server.stop()
    (cut,) = _audit(server.workdir / "lakegate.yaml")
    assert cut["outcome"] == "ABORTED" and 0 < cut["files"] < FILES
