"""Benchmark: `lakegate serve --workers N` on a 100k-file local table (issue 12 goal 5).

    .venv/bin/python benchmarks/bench_workers.py [N_FILES]

1. Throughput: 8 concurrent full /query answers (each read whole by its own curl process), served by 1 worker
   and by one per core (`workers: auto`, the default). Each server warms up first (warm-up on, then a round of
   queries that is not timed); three rounds, the best round's answers per second.
2. Memory: the proportional set size (PSS, /proc/PID/smaps_rollup: a page mapped by k processes counts 1/k
   in each, so the shared snapshot cache files count once) and the resident size (RSS, which counts a shared
   page in every process) of all the server's processes, after those queries; and what the largest worker has
   to itself (private dirty pages: what each added worker costs).
3. A second worker's first query: a server with two workers and warm-up off, each of which has answered a small
   table first (its own first requests: database connections, stores). The big table's first query is cold
   (the worker that answers it, A, reads the checkpoint, builds the file parts and writes both to the cache
   directory). Then queries one at a time, a connection each (the kernel hashes each to a worker): which
   worker answered is seen in /proc/PID/maps (a worker maps the cache files when it first answers the table);
   the query after which the other worker, B, maps them is B's first, answered from the shared files; those
   answered by A are warm.

Prints Markdown tables; the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bigtable import commit_lines
from lakegate.workers import default_workers
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


def _curl(server: RunningServer) -> list[str]:
    url = f"{server.endpoint}/shares/bench/schemas/s/tables/big/query"
    args = ["curl", "-sS", "--fail", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json"]
    return [*args, "--data", "{}", "-H", f"Authorization: Bearer {server.token}", url]


def concurrent_queries(server: RunningServer, count: int = CONCURRENT) -> float:
    """Seconds until all `count` answers have arrived."""
    start = time.perf_counter()
    procs = [subprocess.Popen(_curl(server)) for _ in range(count)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit(f"a query failed:\n{server.log()}")
    return time.perf_counter() - start


def one_query(server: RunningServer) -> float:
    return concurrent_queries(server, 1)


def processes(server: RunningServer) -> list[int]:
    """The server's process and its worker processes."""
    pid = server.daemon.proc.pid
    return [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]


def workers_of(server: RunningServer) -> list[int]:
    return processes(server)[1:]


def memory_mb(server: RunningServer) -> tuple[float, float, float]:
    """(PSS, RSS) of all the server's processes, and the most memory a worker has to itself (private dirty
    pages: its own allocations and the supervisor's pages it wrote to), MB."""
    pss = rss = own = 0
    workers = set(workers_of(server))
    for pid in processes(server):
        private = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
            elif line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Private_Dirty:"):
                private = int(line.split()[1])
        if pid in workers or not workers:
            own = max(own, private)
    return pss / 1024, rss / 1024, own / 1024


def serve(work: Path, table: str, name: str, **config: object) -> RunningServer:
    shares = [{"name": "bench", "schemas": [{"name": "s", "tables": [{"name": "big", "location": table}]}]}]
    return start_server(work / name, {"shares": shares, **config}, workers=None)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def throughput(work: Path, table: str, workers: int) -> tuple[float, float, float, float]:
    """(answers/s, PSS MB, RSS MB, a worker's own MB) with `workers` processes."""
    server = serve(work, table, f"workers-{workers}", workers=workers)
    try:
        if workers > 1:
            wait_for(lambda: len(workers_of(server)) == workers, f"{workers} workers")
        concurrent_queries(server)  # every worker answers (warm-up on: this waits for it)
        best = min(concurrent_queries(server) for _ in range(ROUNDS))
        return (CONCURRENT / best, *memory_mb(server))
    finally:
        server.stop()


def mapped_files(pid: int) -> set[str]:
    """The snapshot cache files the process maps."""
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split()[-1] for line in lines if "lakegate-snapshots-" in line}


def second_worker(work: Path, table: str) -> tuple[float, float, float]:
    """(the big table's cold first query, the best warm one on the same worker, the other worker's first),
    seconds. Each worker has first answered queries of a small table (its first requests: database connections,
    stores, thread pool), so the figures are the big table's alone."""
    small = build_table(work / "small", 10)
    shares = [
        {
            "name": "bench",
            "schemas": [
                {
                    "name": "s",
                    "tables": [{"name": "big", "location": table}, {"name": "small", "location": small}],
                }
            ],
        }
    ]
    server = start_server(work / "second-worker", {"shares": shares, "workers": 2, "warmUp": False})
    try:
        wait_for(lambda: len(workers_of(server)) == 2, "two workers")
        small_query = [arg.replace("/tables/big/", "/tables/small/") for arg in _curl(server)]
        for _ in range(200):
            subprocess.run(small_query, check=True)
            if all(mapped_files(pid) for pid in workers_of(server)):
                break
        else:
            raise SystemExit("200 small queries in a row went to one worker")
        before = {pid: mapped_files(pid) for pid in workers_of(server)}
        cold = one_query(server)
        # The worker that answered maps the files once written: after its answer (sharedcache.write_now).
        wait_for(
            lambda: any(mapped_files(pid) != before[pid] for pid in workers_of(server)),
            "the cache files mapped",
        )
        (first,) = [pid for pid in workers_of(server) if mapped_files(pid) != before[pid]]
        (other,) = [pid for pid in workers_of(server) if pid != first]
        warm: list[float] = []
        for _ in range(40):
            seconds = one_query(server)
            if mapped_files(other) != before[other]:
                return cold, min(warm or [seconds]), seconds
            warm.append(seconds)
        raise SystemExit("40 queries in a row went to one worker")
    finally:
        server.stop()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-workers-"))
    try:
        measure(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the table and the servers' directories


def measure(work: Path) -> None:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    table = build_table(work / "big", n_files)
    cores = default_workers()
    counts = [1, *([cores] if cores > 1 else [2])]
    results = {count: throughput(work, table, count) for count in counts}
    one = results[1]
    load = os.getloadavg()[0]
    print(f"\n### {CONCURRENT} concurrent full /query of a {n_files:,}-file local table")
    print(f"({cores} cores; load average {load:.1f} at the end)\n")
    print(
        "| workers | answers/s (best of 3 rounds) | × 1 worker | PSS MB (all processes) | × 1 worker | RSS MB "
        "| private MB (the largest worker's) |"
    )
    print("|---|---|---|---|---|---|---|")
    for count, (rate, pss, rss, own) in results.items():
        label = f"{count} (auto)" if count == cores and count > 1 else str(count)
        print(
            f"| {label} | {rate:.2f} | {rate / one[0]:.2f} | {pss:.0f} | {pss / one[1]:.2f} | {rss:.0f} | {own:.0f} |"
        )
    cold, warm, first_on_b = second_worker(work, table)
    print(f"\n### The second worker's first query ({n_files:,} files, 2 workers, warm-up off)\n")
    print("| query | seconds | × A's warm query |")
    print("|---|---|---|")
    print(
        f"| worker A, first (cold: checkpoint read, parts built and written) | {cold:.2f} | {cold / warm:.2f} |"
    )
    print(f"| worker A, warm (best of those before B's first) | {warm:.2f} | 1.00 |")
    print(f"| worker B, first (the shared files mapped) | {first_on_b:.2f} | {first_on_b / warm:.2f} |")


if __name__ == "__main__":
    main()
