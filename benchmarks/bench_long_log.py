"""Benchmark: a long-lived table (10,000 commits, no checkpoint) on local disk, served by a lakegate process:
`/version`, `/metadata` and `/query` on it, a streaming query (`startingVersion`) and `/changes` over 100 and
1,000 commits, and the same requests on a 1,000-commit table, to show what each cost grows with.

    .venv/bin/python benchmarks/bench_long_log.py [N_COMMITS]

Prints a Markdown table; the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from deltalake import DeltaTable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.longlog import write_long_log
from tests.e2e.server import start_server


def timed(client: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response


def median_of(client: httpx.Client, runs: int, method: str, path: str, **kwargs: object) -> str:
    """Median and best of `runs` requests, in ms (the best shows the cost when the shared machine is quiet)."""
    times = [timed(client, method, path, **kwargs)[0] * 1000 for _ in range(runs)]
    return f"{statistics.median(times):.1f} ({min(times):.1f})"


def first(client: httpx.Client, method: str, path: str, **kwargs: object) -> str:
    return f"{timed(client, method, path, **kwargs)[0] * 1000:.1f}"


def measure(client: httpx.Client, table: str, commits: int) -> dict[str, str]:
    base = f"/shares/bench/schemas/s/tables/{table}"
    latest = commits - 1
    out: dict[str, str] = {}
    out["first /version (reads the whole log: no checkpoint)"] = first(client, "GET", f"{base}/version")
    out["/version (20 requests)"] = median_of(client, 20, "GET", f"{base}/version")
    out["/metadata (10 requests)"] = median_of(client, 10, "GET", f"{base}/metadata")
    out["/query, latest snapshot (5 requests)"] = median_of(client, 5, "POST", f"{base}/query", json={})
    for span in (100, 1000):
        start = latest - span + 1
        body = {"startingVersion": start}
        out[f"stream over {span} commits, first"] = first(client, "POST", f"{base}/query", json=body)
        out[f"stream over {span} commits (3 requests)"] = median_of(
            client, 3, "POST", f"{base}/query", json=body
        )
        changes = f"{base}/changes?startingVersion={start}"
        out[f"/changes over {span} commits, first"] = first(client, "GET", changes)
        out[f"/changes over {span} commits (3 requests)"] = median_of(client, 3, "GET", changes)
    return out


def main() -> None:
    n_commits = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-long-"))
    sizes = (n_commits // 10, n_commits)
    started = time.perf_counter()
    for n in sizes:
        write_long_log(work / f"t{n}", n)
    written = time.perf_counter() - started
    for n in sizes:  # the hand-written log is a valid Delta log: deltalake reads it
        table = DeltaTable(str(work / f"t{n}"))
        assert table.version() == n - 1, n
        assert len(table.file_uris()) == n - n // 10, n
    tables = [{"name": f"t{n}", "location": str(work / f"t{n}"), "historyShared": True} for n in sizes]
    config = {"warmUp": False, "shares": [{"name": "bench", "schemas": [{"name": "s", "tables": tables}]}]}
    server = start_server(work / "server", config)
    try:
        with httpx.Client(base_url=server.endpoint, headers=server.headers(), timeout=300) as client:
            results = {n: measure(client, f"t{n}", n) for n in sizes}
    finally:
        server.stop()
    print(f"\n### A long log: tables of {sizes[0]:,} and {sizes[1]:,} commits, no checkpoint (local disk)\n")
    print(f"(the two logs written in {written:.1f} s)\n")
    print("ms; for repeated requests: median (best)\n")
    print(f"| request | {sizes[0]:,} commits | {sizes[1]:,} commits |\n|---|---|---|")
    for name in results[sizes[0]]:
        print(f"| {name} | {results[sizes[0]][name]} | {results[sizes[1]][name]} |")


if __name__ == "__main__":
    main()
