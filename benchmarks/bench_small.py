"""Benchmark: small requests against a hello-world route on the same server stack (issue 12 goal 7).

    .venv/bin/python benchmarks/bench_small.py [SECONDS_PER_ROUTE]

Starts its own Ceph RGW and `lakegate serve` (one worker) with LAKEGATE_BENCH_HELLO=1, which adds the tiny route
`GET /bench/hello` to the application (it exists only when that variable is set, for this comparison). The
small requests' table is local (one on object storage adds a listing of its log to every request); credentials
are vended for a table on Ceph RGW. wrk (Debian package, installed by `make services`) runs in its own process
with 16 keep-alive connections against each route in turn; the hello route is measured before and after the
others, and every ratio is to the mean of the two. Prints a Markdown table; the figures in docs/performance.md
come from it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.server import RunningServer, start_server
from tests.services.rgw import RgwService
from tests.tables import build_plain

BUCKET = "small"
CONNECTIONS = 16
TABLE = "/shares/bench/schemas/s/tables/t"  # three files on local disk
DIR_TABLE = "/shares/bench/schemas/s/tables/d"  # on RGW, with directory access (temporary credentials)
# (name, method, path below the endpoint or the server root, body)
ROUTES = [
    ("GET /shares", "GET", "/shares", None),
    ("GET …/version", "GET", TABLE + "/version", None),
    ("GET …/metadata", "GET", TABLE + "/metadata", None),
    ("POST …/query (3 files)", "POST", TABLE + "/query", "{}"),
    ("POST …/temporary-table-credentials (cached)", "POST", DIR_TABLE + "/temporary-table-credentials", "{}"),
]
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def wrk(url: str, method: str, body: str | None, token: str | None, seconds: int) -> float:
    """Requests per second of `CONNECTIONS` keep-alive connections for `seconds` (wrk, one thread: the other
    core is the server's). Every answer must be a success: an error is not a fast answer."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        f'wrk.method = "{method}"\n'
        + (f'wrk.body = \'{body}\'\nwrk.headers["Content-Type"] = "application/json"\n' if body else "")
        + (f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else "")
    )
    try:
        args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    finally:
        script.unlink()
    failed = _NON_2XX.search(out)
    if failed:
        raise SystemExit(f"{method} {url}: {failed.group(1)} answers were errors:\n{out}")
    rate = _RATE.search(out)
    if rate is None:
        raise SystemExit(f"wrk printed no rate:\n{out}")
    return float(rate.group(1))


def build_dir_table(rgw: RgwService) -> str:
    """In a bucket of the broker: lakegate's identity, which reads the log and assumes the role."""
    rgw.boto3_client("s3", rgw.broker).create_bucket(Bucket=BUCKET)
    saved = dict(os.environ)
    os.environ.update(rgw.env(rgw.broker))
    try:
        return build_plain(f"s3://{BUCKET}/d")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start(rgw: RgwService, work: Path, role: str) -> RunningServer:
    aws = {  # the broker's keys: it may assume the role (tests/services/rgw.py)
        "endpoint": rgw.endpoint,
        "region": rgw.region,
        "accessKeyId": rgw.broker.access_key_id,
        "secretAccessKey": rgw.broker.secret_access_key,
        "pathStyle": True,
        "roleArn": role,
        "stsEndpoint": rgw.endpoint,
        "durationSeconds": 900,
    }
    config = {
        "shares": [
            {
                "name": "bench",
                "schemas": [
                    {
                        "name": "s",
                        "tables": [
                            {"name": "t", "location": build_plain(work / "t", batches=3)},
                            {"name": "d", "location": f"s3://{BUCKET}/d", "historyShared": True},
                        ],
                    }
                ],
            }
        ],
        "storage": [{"location": f"s3://{BUCKET}/", "aws": aws}],
    }
    return start_server(work, config, env={"LAKEGATE_BENCH_HELLO": "1"})


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run `make services` (installs Debian's wrk)")
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-small-"))
    rgw = RgwService.start(work / "rgw")
    server = None
    try:
        build_dir_table(rgw)
        role = rgw.create_role("bench-reader")
        server = start(rgw, work / "server", role)
        hello = f"{server.base_url}/bench/hello"
        for (
            _,
            method,
            path,
            body,
        ) in ROUTES:  # each answers once before it is timed (and the credential is cached)
            answer = httpx.request(method, server.endpoint + path, headers=server.headers(), content=body)
            if answer.status_code != 200:
                raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text}\n{server.log()}")
        wrk(hello, "GET", None, None, 1)  # warms the connections' path
        before = wrk(hello, "GET", None, None, seconds)
        rates = [
            (name, wrk(server.endpoint + path, m, b, server.token, seconds)) for name, m, path, b in ROUTES
        ]
        after = wrk(hello, "GET", None, None, seconds)
        base = (before + after) / 2
        print(
            f"\n### Small requests, {CONNECTIONS} keep-alive connections ({os.cpu_count()} cores, 1 worker)\n"
        )
        print("| route | requests/s | × hello-world |\n|---|---|---|")
        print(f"| GET /bench/hello (hello-world; before / after) | {before:,.0f} / {after:,.0f} | 1.00 |")
        for name, rate in rates:
            print(f"| {name} | {rate:,.0f} | {rate / base:.2f} |")
    finally:
        if server is not None:
            server.stop()
        rgw.stop()


if __name__ == "__main__":
    main()
