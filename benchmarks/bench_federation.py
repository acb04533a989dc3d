"""Benchmark: a federated JWT bearer against an opaque lakegate token on the same small request (issue 10).

    .venv/bin/python benchmarks/bench_federation.py [SECONDS_PER_RUN]

Starts a loopback OpenID provider (tests/services/oidc.py, RS256) and `lakegate serve` (one worker) twice: with
the default `catalogCacheSeconds` (1 s: a verified token is remembered for that second, as an opaque token's
lookup is) and with 0 (every request verifies the JWT's signature and claims and reads its policy from the
database, as every opaque token is looked up). Recipient `opaque` holds a token, `federated` a policy on the
provider. wrk (one thread, 16 keep-alive connections) runs GET /shares with each bearer in turn, twice
(opaque, JWT, opaque, JWT), and the ratio is JWT over opaque, both summed. Prints a Markdown table; the figures in
docs/performance.md come from it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_small import CONNECTIONS, wrk
from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from tests.e2e.server import start_server
from tests.services.oidc import OpenIdProvider
from tests.tables import build_plain

AUDIENCE = "api://lakegate-bench"


def measure(work: Path, idp: OpenIdProvider, cache_seconds: float, seconds: int) -> tuple[float, float]:
    """Requests per second of GET /shares with an opaque token, and with a federated JWT."""
    shares = [
        {"name": "bench", "schemas": [{"name": "s", "tables": [{"name": "t", "location": str(work / "t")}]}]}
    ]
    server = start_server(
        work / f"server-{cache_seconds}", {"shares": shares, "catalogCacheSeconds": cache_seconds}
    )
    try:
        db = Database(f"sqlite:///{server.workdir / 'lakegate.db'}")
        recipients = Recipients(db)
        opaque = recipients.create("opaque", ["bench"]).token
        recipients.create("federated", ["bench"])
        recipients.revoke("federated")
        recipients.add_policy("federated", idp.issuer, [AUDIENCE], "bench-app")
        db.close()
        jwt = idp.mint("bench-app", AUDIENCE)
        url = server.endpoint + "/shares"
        for token in (
            opaque,
            jwt,
        ):  # each answers once before it is timed (and the issuer's keys are fetched)
            answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
            if answer.status_code != 200:
                raise SystemExit(f"GET /shares: {answer.status_code} {answer.text}\n{server.log()}")
        wrk(url, "GET", None, opaque, 1)  # warms the connections' path
        runs = [wrk(url, "GET", None, token, seconds) for token in (opaque, jwt, opaque, jwt)]
        return runs[0] + runs[2], runs[1] + runs[3]
    finally:
        server.stop()


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run `make services` (installs Debian's wrk)")
    work = Path(tempfile.mkdtemp(prefix="lakegate-bench-federation-"))
    build_plain(work / "t")
    idp = OpenIdProvider.start("RS256")
    try:
        rows = [(cache, *measure(work, idp, cache, seconds)) for cache in (1.0, 0.0)]
    finally:
        idp.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n### JWT bearer vs opaque token, GET /shares, {CONNECTIONS} connections ({os.cpu_count()} cores)\n"
    )
    print(
        "| catalogCacheSeconds | opaque token, requests/s | federated JWT (RS256), requests/s | JWT ÷ opaque |"
    )
    print("|---|---|---|---|")
    for cache, opaque, jwt in rows:
        print(f"| {cache:g} | {opaque / 2:,.0f} | {jwt / 2:,.0f} | {jwt / opaque:.2f} |")


if __name__ == "__main__":
    main()
