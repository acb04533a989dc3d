"""Benchmark: a full /query of a big local table (100k files by default; `BENCH_FILES=1000000` for 1M), from a
fresh server with warm-up off: cold, warm, resident memory per cached file, peak RSS while streaming, and 8
concurrent cold queries — each against an in-process floor measured in the same run (pyarrow read of the
checkpoint's add columns + one HMAC signature per file + writing the answer's bytes).

    .venv/bin/python benchmarks/bench_local.py [N_FILES]      (BENCH_TABLE=<dir>: reuse a table of N_FILES;
                                                              BENCH_CONCURRENCY=0: skip the concurrent runs;
                                                              BENCH_WORKERS=auto|N: workers, 1 if unset;
                                                              BENCH_TAIL=K: a live table's log, the last
                                                              K x 1,000 files in K commits after the checkpoint)

Prints a Markdown table; the figures in docs/performance.md come from it. Server runs: 3 (1 for 1M); the floor
is measured 3 times at any size.
"""

from __future__ import annotations

import hmac
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_query import timed_query
from benchmarks.bigtable import commit_lines
from lakegate.workers import default_workers
from tests.e2e.server import RunningServer, start_server


def make_table(root: Path, n_files: int, tail: int = 0) -> None:
    """A checkpoint of `n_files` files (what big tables read), less `tail` x 1,000 files added by as many commits
    after it (a live table's log: the floor below reads only the checkpoint)."""
    from deltalake import DeltaTable

    (root / "_delta_log").mkdir(parents=True)
    (root / "_delta_log" / "00000000000000000000.json").write_bytes(commit_lines(n_files - 1000 * tail))
    DeltaTable(str(root)).create_checkpoint()
    (root / "_delta_log" / "00000000000000000000.json").unlink()
    for version in range(1, tail + 1):
        adds = [
            line for line in commit_lines(1000).splitlines() if line.startswith((b'{"add"', b'{"commitInfo"'))
        ]
        (root / "_delta_log" / f"{version:020d}.json").write_bytes(b"\n".join(adds) + b"\n")


def floor_seconds(root: Path, answer_bytes: int) -> float:
    """pyarrow read of the checkpoint's add columns + one HMAC-SHA256 per file + writing the answer's bytes:
    issue 12's floor as its goal words it (the standard library's one-call HMAC over each path; no JSON is made
    per file, so the floor is stricter than one that also encodes a line per file)."""
    start = time.perf_counter()
    table = pq.read_table(next((root / "_delta_log").glob("*.checkpoint.parquet")), columns=["add"])
    paths = table.column("add").combine_chunks().field("path").to_pylist()
    key = b"k" * 32
    signatures = [hmac.digest(key, p.encode(), "sha256") for p in paths]
    with open(os.devnull, "wb") as sink:
        block = b"x" * (1 << 20)
        sink.writelines(block for _ in range(answer_bytes >> 20))
    assert len(signatures) == len(paths)
    return time.perf_counter() - start


def rss_mb(pid: int, field: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


# BENCH_WORKERS=auto (the server's default: one per core) or a count; 1 (one process) unless set.
WORKERS = os.environ.get("BENCH_WORKERS", "1")


def serve(work: Path, name: str, root: Path) -> RunningServer:
    config = {
        "warmUp": False,
        "shares": [
            {"name": "bench", "schemas": [{"name": "s", "tables": [{"name": "big", "location": str(root)}]}]}
        ],
    }
    server = start_server(work / name, config, workers=None if WORKERS == "auto" else int(WORKERS))
    expected = default_workers() if WORKERS == "auto" else int(WORKERS)
    deadline = time.monotonic() + 60
    while expected > 1 and len(serving(server)) < expected:  # every worker forked before "before" is read
        if time.monotonic() > deadline:
            raise SystemExit("the server's workers did not all start")
        time.sleep(0.1)
    time.sleep(0.5 if expected > 1 else 0)
    return server


def serving(server: RunningServer) -> list[int]:
    """The processes answering: the server's, or its workers when it has any."""
    pid = server.daemon.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children] or [pid]


def resident_mb(server: RunningServer) -> float:
    """RSS of a one-process server; with workers, the PSS of all its processes (pages they share, such as the
    mapped snapshot cache files, counted once)."""
    if WORKERS == "1":
        return rss_mb(server.daemon.proc.pid)
    pss = 0
    for pid in [server.daemon.proc.pid, *serving(server)]:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
    return pss / 1024


def peak_mb(server: RunningServer) -> float:
    """The highest peak RSS of the processes answering."""
    return max(rss_mb(pid, "VmHWM:") for pid in serving(server))


def url_of(server: RunningServer) -> str:
    return f"{server.endpoint}/shares/bench/schemas/s/tables/big/query"


def concurrent_cold(work: Path, root: Path, n: int) -> tuple[float, float]:
    """Seconds until all of `n` simultaneous first queries are answered, and the server's peak RSS (MB)."""
    server = serve(work, f"concurrent{n}", root)
    try:
        times: list[float] = []
        start = time.perf_counter()
        threads = [
            threading.Thread(target=lambda: times.append(timed_query(url_of(server), server.headers())[0]))
            for _ in range(n)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(times) == n
        return time.perf_counter() - start, peak_mb(server)
    finally:
        server.stop()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-local-"))
    try:
        measure(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the table and the servers' directories


def measure(work: Path) -> None:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_FILES", "100000"))
    runs = 3 if n_files <= 300_000 else 1
    # The machine may be shared: the figures say under which load they were taken.
    load_at_start = os.getloadavg()[0]
    root = work / "big"
    if os.environ.get("BENCH_TABLE"):  # a table made by an earlier run (the 1M-file one takes minutes)
        root = Path(os.environ["BENCH_TABLE"])
    else:
        make_table(root, n_files, int(os.environ.get("BENCH_TAIL", "0")))
    colds, warms, floors, resident, peaks, streaming = [], [], [], [], [], []
    size = count = 0
    for run in range(runs):
        server = serve(work, f"run{run}", root)
        try:
            before = resident_mb(server)
            cold, size, count = timed_query(url_of(server), server.headers())
            peaks.append(peak_mb(server))
            for pid in serving(server):  # reset the peaks: now only the warm answers count
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            warm = min(timed_query(url_of(server), server.headers())[0] for _ in range(3))
            after = resident_mb(server)
            streaming.append(max(rss_mb(pid, "VmHWM:") / rss_mb(pid) for pid in serving(server)))
            resident.append((after - before) * 1024 * 1024 / n_files)
            colds.append(cold)
            warms.append(warm)
        finally:
            server.stop()
        floors.append(floor_seconds(root, size))
    while len(floors) < 3:  # the floor is cheap next to a server run: its minimum is taken of 3 at any size
        floors.append(floor_seconds(root, size))
    concurrency = os.environ.get("BENCH_CONCURRENCY", "1") != "0"  # 0: skip (minutes at 1M files)
    one_cold, one_peak = concurrent_cold(work, root, 1) if concurrency else (0.0, 1.0)
    eight_cold, eight_peak = concurrent_cold(work, root, 8) if concurrency else (0.0, 1.0)
    floor = min(floors)
    cold, warm = min(colds), min(warms)
    commits = int(os.environ.get("BENCH_TAIL", "0"))
    tail = f"; {commits} commits of 1,000 files after the checkpoint" if commits else ""
    print(
        f"\n### /query of a {n_files:,}-file local table, fresh server, warm-up off ({os.cpu_count()} cores, "
        f"workers: {WORKERS}{tail})\n"
    )
    print("| measure | value |\n|---|---|")
    print(f"| in-process floor (pyarrow add columns + 1 HMAC per file + bytes), min | {floor:.2f} s |")
    print(f"| in-process floor, median of {len(floors)} | {statistics.median(floors):.2f} s |")
    print(f"| cold: first request, min of {runs} | {cold:.2f} s ({cold / floor:.2f}× floor) |")
    print(f"| cold: first request, median of {runs} | {statistics.median(colds):.2f} s |")
    print(f"| warm, min of {runs}×3 | {warm:.2f} s ({warm / floor:.2f}× floor) |")
    print(f"| warm, median of {runs} (each the best of 3) | {statistics.median(warms):.2f} s |")
    print(
        f"| resident per cached file after warm (growth / files), min (median) of {runs} | {min(resident):.0f} B "
        f"({statistics.median(resident):.0f} B) |"
    )
    print(f"| peak RSS of the cold query | {min(peaks):.0f} MB |")
    print(f"| peak RSS while streaming warm answers / RSS after them | {min(streaming):.2f}× |")
    if concurrency:  # BENCH_CONCURRENCY=0 skips these runs: no rows of zeros
        print(f"| 1 cold query: wall / peak RSS | {one_cold:.2f} s / {one_peak:.0f} MB |")
        print(
            f"| 8 concurrent cold queries: wall / peak RSS | {eight_cold:.2f} s / {eight_peak:.0f} MB "
            f"({eight_peak / one_peak:.2f}× one) |"
        )
    print(
        f"\nAnswer: {count:,} lines, {size / 1e6:.0f} MB. Load average (1 min) at start / end of the run: "
        f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
