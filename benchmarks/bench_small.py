"""Benchmark: small requests against hello-world routes on the same server stack (issue 12 goal 7).

    .venv/bin/python benchmarks/bench_small.py [SECONDS_PER_ROUTE] [ROUNDS]

Starts its own Ceph RGW and `lakegate serve` (one worker) with LAKEGATE_BENCH_HELLO=1, which adds the tiny route
`GET /bench/hello` to the application (it exists only when that variable is set, for this comparison), and a
standalone minimal Starlette app with one hello-world route run by uvicorn with the same options
(`benchmarks/hello_world.py`, one worker): the in-app route pays lakegate's middleware (metrics, access log),
the standalone one is the yardstick an outside benchmark would use. The small requests' table is local (one on
object storage adds a request to the store to every request); credentials are vended for a table on Ceph RGW.
wrk (Debian package, installed by `make services`) runs in its own process with 16 keep-alive connections
against each route in turn. A round measures both hello routes, then every route, then the hello routes again;
each ratio is to the mean of that round's two hello measurements. Prints Markdown tables (per route: min and
median requests/s and ratios over the rounds); the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.server import RunningServer, start_server
from tests.services._proc import Daemon, free_port
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


def start_hello(work: Path) -> tuple[Daemon, str]:
    port = free_port()
    script = Path(__file__).resolve().parent / "hello_world.py"
    daemon = Daemon("hello-world", [sys.executable, str(script), str(port)], work)
    daemon.wait_for_port(port, timeout=30)
    return daemon, f"http://127.0.0.1:{port}/"


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run `make services` (installs Debian's wrk)")
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-small-"))
    rgw = RgwService.start(work / "rgw")
    server = None
    standalone = None
    try:
        build_dir_table(rgw)
        role = rgw.create_role("bench-reader")
        server = start(rgw, work / "server", role)
        standalone, outside = start_hello(work)
        in_app = f"{server.base_url}/bench/hello"
        for (
            _,
            method,
            path,
            body,
        ) in ROUTES:  # each answers once before it is timed (the credential is cached)
            answer = httpx.request(method, server.endpoint + path, headers=server.headers(), content=body)
            if answer.status_code != 200:
                raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text}\n{server.log()}")
        wrk(in_app, "GET", None, None, 1)  # warms the connections' paths
        wrk(outside, "GET", None, None, 1)
        hellos: dict[str, list[float]] = {"in-app": [], "standalone": []}
        rates: dict[str, list[float]] = {name: [] for name, *_ in ROUTES}
        ratios: dict[str, dict[str, list[float]]] = {k: {name: [] for name in rates} for k in hellos}
        for _ in range(rounds):
            before = {
                "in-app": wrk(in_app, "GET", None, None, seconds),
                "standalone": wrk(outside, "GET", None, None, seconds),
            }
            measured = {
                name: wrk(server.endpoint + path, m, b, server.token, seconds) for name, m, path, b in ROUTES
            }
            after = {
                "standalone": wrk(outside, "GET", None, None, seconds),
                "in-app": wrk(in_app, "GET", None, None, seconds),
            }
            for kind, measured_hellos in hellos.items():
                base = (before[kind] + after[kind]) / 2
                measured_hellos.append(base)
                for name, rate in measured.items():
                    ratios[kind][name].append(rate / base)
            for name, rate in measured.items():
                rates[name].append(rate)
        load = os.getloadavg()
        print(
            f"\n### Small requests, {CONNECTIONS} keep-alive connections ({os.cpu_count()} cores, 1 worker each; "
            f"{rounds} rounds of {seconds} s; load average at the end {load[0]:.1f} / {load[1]:.1f})\n"
        )
        print(
            "min / median over the rounds; each ratio is to the hello-world route measured in the same round.\n"
        )
        print("| route | requests/s | × standalone hello-world | × in-app hello-world |\n|---|---|---|---|")
        standalone_rate, in_app_rate = (
            _spread(hellos["standalone"], ",.0f"),
            _spread(hellos["in-app"], ",.0f"),
        )
        print(f"| standalone Starlette hello-world (uvicorn, same options) | {standalone_rate} | 1.00 | |")
        print(f"| GET /bench/hello (in-app hello-world, lakegate's middleware) | {in_app_rate} | | 1.00 |")
        for name, values in rates.items():
            print(
                f"| {name} | {_spread(values, ',.0f')} | {_spread(ratios['standalone'][name], '.2f')} "
                f"| {_spread(ratios['in-app'][name], '.2f')} |"
            )
    finally:
        if standalone is not None:
            standalone.stop()
        if server is not None:
            server.stop()
        rgw.stop()
        shutil.rmtree(work, ignore_errors=True)  # the tables, database, logs and RGW's data of this run


def _spread(values: list[float], fmt: str) -> str:
    return f"{min(values):{fmt}} / {statistics.median(values):{fmt}}"


if __name__ == "__main__":
    main()
