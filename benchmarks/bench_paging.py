"""Benchmark: paging and predicate hints on a 100k-file table (local disk), served by a lakegate process.

- a walk through every page with `maxFiles=1000` against one full `/query`, warm (same server, same client);
- the same in the delta response format;
- the same walks calling the table service directly (no HTTP): what paging itself costs;
- CPU seconds of the server process and of the client for a full query and a walk: a walk's pages and the
  client's handling of each alternate on the same cores, so its wall time adds up both, while a full answer
  streams and the two overlap;
- predicate hints on the partition column (SQL `predicateHints` and `jsonPredicateHints`, selecting one partition
  of 84) and on a stats column (selective: 5% of the files; non-selective: every file), against the full query;
  "first" is a fresh selection (hints evaluated), "again" reuses it (pages of a filtered walk do).

    .venv/bin/python benchmarks/bench_paging.py [N_FILES]

Prints a Markdown table; the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bigtable import commit_lines
from lakegate.protocol.capabilities import Capabilities
from lakegate.protocol.requests import QueryRequest
from tests.e2e.server import start_server
from tests.inprocess import AppClient, start_app

QUERY = "/shares/bench/schemas/s/tables/big/query"


def _equal_day(day: str) -> dict[str, Any]:
    column = {"op": "column", "name": "date", "valueType": "string"}
    return {"op": "equal", "children": [column, {"op": "literal", "value": day, "valueType": "string"}]}


def _id_below(value: int) -> dict[str, Any]:
    column = {"op": "column", "name": "id", "valueType": "long"}
    return {
        "op": "lessThan",
        "children": [column, {"op": "literal", "value": str(value), "valueType": "long"}],
    }


# What the official (Spark) client sends: its capabilities, and for each page the same body plus the token.
PARQUET = {"delta-sharing-capabilities": "responseformat=parquet;includeendstreamaction=true"}
DELTA = {"delta-sharing-capabilities": "responseformat=delta;includeendstreamaction=true"}


def full_query(client: httpx.Client, body: dict, headers: dict[str, str] = PARQUET) -> tuple[float, int]:
    """Seconds to receive the whole answer, and its file lines."""
    start = time.perf_counter()
    files = 0
    with client.stream("POST", QUERY, json=body, headers=headers) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(1 << 20):
            files += chunk.count(b'{"file":')
    return time.perf_counter() - start, files


def page_walk(client: Any, max_files: int, headers: dict[str, str] = PARQUET) -> tuple[float, int, int]:
    """Seconds to follow every nextPageToken, pages, files."""
    start = time.perf_counter()
    body: dict = {"maxFiles": max_files}
    pages = files = 0
    while True:
        response = client.post(QUERY, json=body, headers=headers)
        response.raise_for_status()
        content = response.content
        pages += 1
        files += content.count(b'{"file":')
        token = orjson.loads(content[content.rstrip().rfind(b"\n") + 1 :])["endStreamAction"].get(
            "nextPageToken"
        )
        if token is None:
            return time.perf_counter() - start, pages, files
        body = {"maxFiles": max_files, "pageToken": token}


def in_process(client: AppClient, headers: dict[str, str] = PARQUET) -> tuple[float, int]:
    start = time.perf_counter()
    response = client.post(QUERY, json={}, headers=headers)
    response.raise_for_status()
    return time.perf_counter() - start, response.content.count(b'{"file":')


def service_walk(app: AppClient, max_files: int | None, caps: str) -> tuple[float, int]:
    """The table service called directly (no HTTP, no authentication or audit per request): seconds to answer
    every page (or the whole answer when `max_files` is None) and encode its bytes, and the pages."""
    services = app.app.state.services
    principal = services.catalog.authenticate(app.token)
    body: dict[str, Any] = {} if max_files is None else {"maxFiles": max_files}
    start = time.perf_counter()
    pages = 0
    while True:
        answer = services.tables.query(
            principal,
            "bench",
            "s",
            "big",
            QueryRequest.from_body(orjson.dumps(body)),
            Capabilities.parse(caps),
            None,
            "http://bench/delta-sharing",
        )
        content = b"".join(answer.chunks())
        pages += 1
        end = orjson.loads(content[content.rstrip().rfind(b"\n") + 1 :]).get("endStreamAction") or {}
        if not end.get("nextPageToken"):
            return time.perf_counter() - start, pages
        body = {"maxFiles": max_files, "pageToken": end["nextPageToken"]}


def median(runs: int, measure: Callable[[], tuple]) -> float:
    return statistics.median(measure()[0] for _ in range(runs))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_rows(pid: int, client: httpx.Client) -> list[tuple[str, float, str]]:
    """CPU seconds of the server and of this client for a full query and a walk (medians of 5): what the server
    spends per walk apart from the client's own work, which runs on the same cores between pages."""
    measured: dict[str, tuple[float, float]] = {}
    for name, measure in (
        ("full /query", lambda: full_query(client, {})),
        ("walk", lambda: page_walk(client, 1000)),
    ):
        server, own = [], []
        for _ in range(5):
            before, before_own = cpu_seconds(pid), time.process_time()
            measure()
            server.append(cpu_seconds(pid) - before)
            own.append(time.process_time() - before_own)
        measured[name] = statistics.median(server), statistics.median(own)
    (full_server, full_client), (walk_server, walk_client) = measured["full /query"], measured["walk"]
    return [
        ("server CPU: full /query (median of 5)", full_server, "1.00×"),
        ("server CPU: walk, maxFiles=1000 (median of 5)", walk_server, f"{walk_server / full_server:.2f}×"),
        ("client CPU (httpx, this process): full /query", full_client, "1.00×"),
        ("client CPU (httpx, this process): walk", walk_client, f"{walk_client / full_client:.2f}×"),
    ]


def in_process_rows(work: Path, config: dict[str, Any]) -> list[tuple[str, float, str]]:
    """The same app in this process, driven through ASGI (no socket, no HTTP parsing, no second process), then
    its table service called directly."""
    rows: list[tuple[str, float, str]] = []
    app = start_app(work / "in-process", config)
    try:
        in_process(app)
        full = median(5, partial(in_process, app))
        rows.append(("in-process (ASGI): full /query, warm (median of 5)", full, "1.00×"))
        walk = median(3, partial(page_walk, app, 1000))
        rows.append(("in-process (ASGI): walk, maxFiles=1000 (median of 3)", walk, f"{walk / full:.2f}×"))
        for name, caps in (("parquet", PARQUET), ("delta", DELTA)):
            header = caps["delta-sharing-capabilities"]
            service_walk(app, 1000, header)
            full = median(5, partial(service_walk, app, None, header))
            rows.append((f"table service, {name} format: full answer (median of 5)", full, "1.00×"))
            walk = median(3, partial(service_walk, app, 1000, header))
            rows.append((f"table service, {name} format: walk (median of 3)", walk, f"{walk / full:.2f}×"))
    finally:
        app.close()
    return rows


def main() -> None:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-paging-"))
    root = work / "big"
    (root / "_delta_log").mkdir(parents=True)
    (root / "_delta_log" / "00000000000000000000.json").write_bytes(commit_lines(n_files))
    from deltalake import DeltaTable

    DeltaTable(str(root)).create_checkpoint()
    config = {
        "warmUp": False,
        "queryTablePageSizeLimit": 100_000,
        "shares": [
            {"name": "bench", "schemas": [{"name": "s", "tables": [{"name": "big", "location": str(root)}]}]}
        ],
    }
    server = start_server(work / "server", config)
    rows: list[tuple[str, float, str]] = []
    try:
        with httpx.Client(base_url=server.endpoint, headers=server.headers(), timeout=300) as client:
            cold, files = full_query(client, {})
            assert files == n_files, files
            full = median(5, lambda: full_query(client, {}))
            rows.append(("full /query, cold (first request)", cold, ""))
            rows.append(("full /query, warm (median of 5)", full, "1.00×"))
            first_walk, pages, walked = page_walk(client, 1000)
            assert walked == n_files, walked
            rows.append(
                (f"first walk, maxFiles=1000 ({pages} pages)", first_walk, f"{first_walk / full:.2f}×")
            )
            walk = median(3, lambda: page_walk(client, 1000))
            rows.append(("walk, maxFiles=1000 (median of 3)", walk, f"{walk / full:.2f}×"))
            rows += cpu_rows(server.daemon.proc.pid, client)
            full_query(client, {}, DELTA)
            page_walk(client, 1000, DELTA)
            full_delta = median(5, lambda: full_query(client, {}, DELTA))
            rows.append(("delta format: full /query, warm (median of 5)", full_delta, "1.00×"))
            walk = median(3, lambda: page_walk(client, 1000, DELTA))
            rows.append(
                ("delta format: walk, maxFiles=1000 (median of 3)", walk, f"{walk / full_delta:.2f}×")
            )
            day = "2024-01-01"
            hints: dict[str, dict[str, Any]] = {
                f"SQL hint `date = '{day}'`": {"predicateHints": [f"date = '{day}'"]},
                "the same as jsonPredicateHints": {"jsonPredicateHints": json.dumps(_equal_day(day))},
                "selective stats hint `id < 5000000`": {
                    "jsonPredicateHints": json.dumps(_id_below(5_000_000))
                },
                "non-selective stats hint `id < 1e12`": {
                    "jsonPredicateHints": json.dumps(_id_below(1_000_000_000_000))
                },
                f"jsonPredicateHints `date = '{day}' AND id < 5000000`": {
                    "jsonPredicateHints": json.dumps(
                        {"op": "and", "children": [_equal_day(day), _id_below(5_000_000)]}
                    )
                },
            }
            for name, body in hints.items():
                first, selected = full_query(client, body)
                rows.append((f"{name} ({selected:,} files), first", first, f"{first / full:.2f}×"))
                took = median(5, partial(full_query, client, body))
                rows.append(("the same again (selection cached; median of 5)", took, f"{took / full:.2f}×"))
    finally:
        server.stop()
    rows += in_process_rows(work, config)
    print(f"\n### Paging and predicate hints on a {n_files:,}-file table (local disk)\n")
    print("| request | seconds | × full query |\n|---|---|---|")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
