"""`lakegate recipient head PROFILE#table -n 3` on a table of several files, as a recipient runs it: the limit
reaches the server (limitHint) and the client, so only the files holding 3 rows are downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deltalake import DeltaTable

from lakegate.client.table import first_rows
from tests.e2e.server import start_server
from tests.tables import build_partitioned, build_plain, read_expected

FILES = 6  # one file of 3 rows per batch


def _files_downloaded(log: str) -> set[str]:
    """The data files the client fetched (it reads one file in several ranged GETs)."""
    access = [json.loads(line)["http"] for line in log.splitlines() if '"lakegate.access"' in line]
    return {
        a["path"] for a in access if a["method"] == "GET" and a["path"].startswith("/delta-sharing/files/")
    }


def test_head_reads_only_the_files_it_needs(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "t", batches=FILES)
    assert len(DeltaTable(root).file_uris()) == FILES
    table = {"name": "t", "location": root}
    server = start_server(
        tmp_path / "srv", {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]}
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lakegate", "recipient", "head", f"{server.profile()}#s.d.t", "-n", "3"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        log = server.log()
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    summary, header, *printed = result.stdout.strip().splitlines()
    assert summary == "# first 3 rows, read in url mode"
    assert header.split() == ["id", "region", "amount", "day", "note"]
    assert 1 <= len(_files_downloaded(log)) < FILES, log
    # Exactly 3 rows of the table, whole: each printed row is one of the table's rows, none twice.
    by_id = {row["id"]: row for row in read_expected(root)}
    ids = [int(line.split()[0]) for line in printed]
    assert len(ids) == 3 and len(set(ids)) == 3
    for line, row_id in zip(printed, ids, strict=True):
        row = by_id[row_id]
        assert line.split()[1:3] == [row["region"], str(row["amount"])]


def test_first_rows_of_a_directory_mode_table(tmp_path: Path) -> None:
    """Directory mode's head: the first rows of the deltalake table, not the whole table."""
    root = build_plain(tmp_path / "t", batches=FILES)
    rows = first_rows(DeltaTable(root), 4).to_pylist()
    assert len(rows) == 4
    table = {r["id"]: r for r in read_expected(root)}
    assert all(table[r["id"]] == r for r in rows) and len({r["id"] for r in rows}) == 4
    assert first_rows(DeltaTable(root), 0).num_rows == 0
    # Partition values are columns of the rows too.
    partitioned = build_partitioned(tmp_path / "p")
    expected = {r["id"]: r for r in read_expected(partitioned)}
    got = first_rows(DeltaTable(partitioned), 2).to_pylist()
    assert len(got) == 2 and all(expected[r["id"]] == r for r in got)


def test_head_refuses_a_negative_count(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lakegate", "recipient", "head", "p.share#s.d.t", "-n", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.strip() == "error: --rows must be 0 or more, not -1"
