"""Benchmark: the Iceberg REST catalog on a 100k-file table on S3 (Ceph RGW): loadTable cold (metadata generated
from the Delta log and written), warm (from memory), cold after a restart (from what storage holds), and
PyIceberg's scan planning (every file, a partition filter, a stats filter) over the generated manifests.

    .venv/bin/python benchmarks/bench_iceberg.py [N_FILES]

Starts its own RGW and lakegate (needs scripts/install-test-services.sh). Prints a Markdown table; the figures
in docs/performance.md come from it.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bigtable import put_on_rgw
from tests.e2e.server import RunningServer, start_server
from tests.services.rgw import RgwService

BUCKET = "bench"


def timed_load(server: RunningServer) -> tuple[float, int]:
    """Seconds for one loadTable, and the answer's size."""
    url = f"{server.endpoint}/iceberg/v1/bench/namespaces/s/tables/big"
    start = time.perf_counter()
    answer = httpx.get(url, headers=server.headers(), timeout=600)
    elapsed = time.perf_counter() - start
    assert answer.status_code == 200, answer.text[:500]
    return elapsed, len(answer.content)


def timed_plans(server: RunningServer, rgw: RgwService, n_files: int) -> dict[str, tuple[float, int]]:
    """PyIceberg's planning (manifest list and manifests read from RGW with the owner's keys), per filter."""
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog(
        "bench",
        type="rest",
        uri=f"{server.endpoint}/iceberg",
        warehouse="bench",
        token=server.token,
        **{
            "s3.endpoint": rgw.endpoint,
            "s3.region": rgw.region,
            "s3.access-key-id": rgw.owner.access_key_id,
            "s3.secret-access-key": rgw.owner.secret_access_key,
        },
    )
    table = catalog.load_table("s.big")
    out: dict[str, tuple[float, int]] = {}
    for name, row_filter in (
        ("every file", None),
        ("partition filter (one day of 84)", "date = '2024-01-01'"),
        ("stats filter (id < 1000: one file)", "id < 1000"),
    ):
        scan = table.scan() if row_filter is None else table.scan(row_filter=row_filter)
        start = time.perf_counter()
        count = sum(1 for _ in scan.plan_files())
        out[name] = (time.perf_counter() - start, count)
    assert out["every file"][1] == n_files
    return out


def main() -> None:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-iceberg-"))
    rgw = RgwService.start(work / "rgw")
    server: RunningServer | None = None
    try:
        put_on_rgw(rgw, BUCKET, n_files)
        table = {
            "name": "big",
            "location": f"s3://{BUCKET}/big",
            "id": "00000000-0000-0000-0000-00000000b1c0",
        }
        config: dict[str, Any] = {
            "warmUp": False,
            "shares": [{"name": "bench", "schemas": [{"name": "s", "tables": [table]}]}],
            "storage": [
                {
                    "location": f"s3://{BUCKET}/",
                    "aws": {**rgw.aws_settings(), "pathStyle": True},
                    "iceberg": {"metadataLocation": f"s3://{BUCKET}/iceberg/"},
                }
            ],
        }
        server = start_server(work / "first", config)
        cold, size = timed_load(server)
        warm = [timed_load(server)[0] for _ in range(5)]
        server.stop()
        # A new process: nothing in memory, the generated files in storage.
        server = start_server(work / "second", config)
        restarted, _ = timed_load(server)
        plans = timed_plans(server, rgw, n_files)
        print(f"\n### Iceberg REST catalog, a {n_files:,}-file table on Ceph RGW ({os.cpu_count()} cores)\n")
        print("| measure | seconds |\n|---|---|")
        print(f"| loadTable, cold: metadata generated from the Delta log and written to RGW | {cold:.2f} |")
        print(f"| loadTable, warm (median of 5) | {statistics.median(warm):.3f} |")
        print(f"| loadTable after a restart (generated files read back, nothing rebuilt) | {restarted:.2f} |")
        for name, (seconds, count) in plans.items():
            print(f"| PyIceberg plan_files, {name}: {count:,} files | {seconds:.2f} |")
        print(f"\nloadTable answer: {size / 1e3:.0f} kB.")
    finally:
        if server is not None:
            server.stop()
        rgw.stop()


if __name__ == "__main__":
    main()
