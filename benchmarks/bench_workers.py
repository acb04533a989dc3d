"""Benchmark: 8 concurrent full /query answers of a 100k-file local table, served by 1 worker process and by one
per core (`workers: auto`, issue 12 goal 5).

    .venv/bin/python benchmarks/bench_workers.py [N_FILES]

Each server starts with warm-up on and is queried until every worker answers warm (a first round of queries is
not timed). Then 8 curl processes ask at once, three rounds; the figure is the best round's answers per second.
Prints a Markdown table; the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bigtable import commit_lines
from tests.e2e.server import RunningServer, start_server

CONCURRENT = 8
ROUNDS = 3


def build_table(root: Path, n_files: int) -> str:
    log = root / "_delta_log"
    log.mkdir(parents=True)
    (log / "00000000000000000000.json").write_bytes(commit_lines(n_files))
    from deltalake import DeltaTable

    DeltaTable(str(root)).create_checkpoint()
    return str(root)


def concurrent_queries(server: RunningServer) -> float:
    """Seconds until all `CONCURRENT` answers (each read whole by its own curl process) have arrived."""
    url = f"{server.endpoint}/shares/bench/schemas/s/tables/big/query"
    args = ["curl", "-sS", "--fail", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json"]
    args += ["--data", "{}", "-H", f"Authorization: Bearer {server.token}", url]
    start = time.perf_counter()
    procs = [subprocess.Popen(args) for _ in range(CONCURRENT)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit(f"a query failed:\n{server.log()}")
    return time.perf_counter() - start


def resident_mb(pid: int) -> float:
    """The server's resident memory: the process and its worker processes."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    total = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def measure(work: Path, table: str, workers: int | str) -> tuple[float, float]:
    shares = [{"name": "bench", "schemas": [{"name": "s", "tables": [{"name": "big", "location": table}]}]}]
    server = start_server(work / f"workers-{workers}", {"shares": shares, "workers": workers})
    try:
        concurrent_queries(server)  # every worker answers once (warm-up on: this waits for it)
        best = min(concurrent_queries(server) for _ in range(ROUNDS))
        return CONCURRENT / best, resident_mb(server.daemon.proc.pid)
    finally:
        server.stop()


def main() -> None:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-workers-"))
    table = build_table(work / "big", n_files)
    one = measure(work, table, 1)
    cores = measure(work, table, "auto")
    print(
        f"\n### {CONCURRENT} concurrent /query of a {n_files:,}-file local table ({os.cpu_count()} cores)\n"
    )
    print("| workers | answers/s (best of 3 rounds) | × 1 worker | resident MB (all processes) |")
    print("|---|---|---|---|")
    print(f"| 1 | {one[0]:.2f} | 1.00 | {one[1]:.0f} |")
    print(f"| auto ({os.cpu_count()}) | {cores[0]:.2f} | {cores[0] / one[0]:.2f} | {cores[1]:.0f} |")


if __name__ == "__main__":
    main()
