"""Benchmark: a full /query of a 100k-file table on S3 (Ceph RGW), over loopback, cold and warm, with the
in-process floor (log read, signing, encoding) measured piece by piece.

    .venv/bin/python benchmarks/bench_query.py [N_FILES]

Starts its own RGW and lakegate (needs scripts/install-test-services.sh). Prints a Markdown table; the figures
in docs/performance.md come from it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bigtable import put_on_rgw
from tests.e2e.server import start_server
from tests.services.rgw import RgwService

BUCKET = "bench"


def timed_query(url: str, headers: dict) -> tuple[float, int, int]:
    """Seconds to receive the whole answer with curl (a C client, so the figure is the server's), bytes, lines."""
    if shutil.which("curl"):
        args = [
            "curl",
            "-sS",
            "--fail",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            "{}",
            "-o",
            "-",
            "-w",
            "%{stderr}%{time_total}",
        ]
        for key, value in headers.items():
            args += ["-H", f"{key}: {value}"]
        done = subprocess.run([*args, url], capture_output=True, check=True)
        return float(done.stderr.decode().strip()), len(done.stdout), done.stdout.count(b"\n")
    return timed_query_httpx(url, headers)


def timed_query_httpx(url: str, headers: dict) -> tuple[float, int, int]:
    """The same with httpx: adds the Python client's own cost of reading 70+ MB."""
    start = time.perf_counter()
    size = lines = 0
    with httpx.stream("POST", url, headers=headers, json={}, timeout=120) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(1 << 20):
            size += len(chunk)
            lines += chunk.count(b"\n")
    return time.perf_counter() - start, size, lines


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _OneStore:
    """The one method of a StoreRegistry that Signers uses."""

    def __init__(self, store: object) -> None:
        self.store = store

    def store_for(self, location: object) -> object:
        return self.store


def in_process_floor(rgw: RgwService, n_files: int) -> dict[str, float]:
    from lakegate.cloud.aws.storage import S3Store
    from lakegate.cloud.base import SignRequest
    from lakegate.cloud.locations import Location
    from lakegate.config import AwsStorageConfig
    from lakegate.delta.log import DeltaLog
    from lakegate.delta.snapshot import load_snapshot
    from lakegate.service.files import LineCache, Signers, parts_lines

    settings = AwsStorageConfig.model_validate(rgw.aws_settings())
    store = S3Store(settings)
    root = Location.parse(f"s3://{BUCKET}/big")
    t0 = time.perf_counter()
    snapshot = load_snapshot(DeltaLog(store, root))
    t1 = time.perf_counter()
    files = LineCache().parts(snapshot, root, (), "parquet", "parquet")
    t2 = time.perf_counter()
    now = int(time.time())
    signers = Signers(_OneStore(store), SignRequest(expires_at_s=now + 3600, now_s=now))  # type: ignore[arg-type]
    total = sum(len(piece.data) for piece in parts_lines(files, "parquet", signers, root, ()))
    t3 = time.perf_counter()
    assert len(files) == n_files
    return {
        "log read (checkpoint from RGW)": t1 - t0,
        "per-snapshot line parts (cached)": t2 - t1,
        "sign + encode lines": t3 - t2,
        "MB": total / 1e6,
    }


def main() -> None:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-"))
    rgw = RgwService.start(work / "rgw")
    server = None
    try:
        put_on_rgw(rgw, BUCKET, n_files)
        config = {
            "shares": [
                {
                    "name": "bench",
                    "schemas": [{"name": "s", "tables": [{"name": "big", "location": f"s3://{BUCKET}/big"}]}],
                }
            ],
            "storage": [
                {
                    "location": f"s3://{BUCKET}/",
                    "aws": rgw.aws_settings(),
                }
            ],
        }
        # True cold: warm-up off, so the first request reads the log and prepares every line part itself.
        server = start_server(work / "cold", {**config, "warmUp": False})
        url = f"{server.endpoint}/shares/bench/schemas/s/tables/big/query"
        cold, size, count = timed_query(url, server.headers())
        warm = [timed_query(url, server.headers())[0] for _ in range(5)]
        warm_httpx = [timed_query_httpx(url, server.headers())[0] for _ in range(3)]
        rss = peak_rss_mb(server.daemon.proc.pid)
        server.stop()
        # Default: warm-up on; the first request a few seconds after start finds the table loaded.
        server = start_server(work / "warm", config)
        time.sleep(8)
        first_after_warm_up = timed_query(
            url.replace(url.split("/delta-sharing", maxsplit=1)[0], server.base_url), server.headers()
        )[0]
        floor = in_process_floor(rgw, n_files)
        print(f"\n### /query of a {n_files:,}-file table on Ceph RGW ({os.cpu_count()} cores)\n")
        print("| measure | seconds |\n|---|---|")
        print(
            f"| cold: first request, warm-up off (log read + line parts + signing + transfer) | {cold:.2f} |"
        )
        print(f"| first request 8 s after start, warm-up on (default) | {first_after_warm_up:.2f} |")
        print(f"| warm (median of 5) | {statistics.median(warm):.2f} |")
        print(f"| warm (best of 5) | {min(warm):.2f} |")
        print(f"| warm, read by a Python client (httpx; median of 3) | {statistics.median(warm_httpx):.2f} |")
        for name, value in floor.items():
            if name != "MB":
                print(f"| in-process: {name} | {value:.2f} |")
        print(f"\nResponse: {count:,} lines, {size / 1e6:.0f} MB; server peak RSS {rss:.0f} MB.")
    finally:
        if server is not None:
            server.stop()
        rgw.stop()


if __name__ == "__main__":
    main()
