"""Fuzz every route of a running server, then check it still answers correctly and logged no secret.

FUZZ_REQUESTS (default 5000), FUZZ_SEED (default fixed, so CI is reproducible; `random` picks one and prints
it) and FUZZ_CONNECTIONS (default 4) size the run; `make fuzz` runs 50,000 requests with a random seed.
"""

from __future__ import annotations

import json
import os
import random
from urllib.parse import unquote, urlsplit

import httpx
import pyarrow as pa
from deltalake import DeltaTable
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.security.conftest import LINKED, TABLES, Target
from tests.e2e.security.fuzzer import World, ndjson, run

DEFAULT_SEED = 20261130


def _seed() -> int:
    value = os.environ.get("FUZZ_SEED", "")
    if value == "random":
        return random.SystemRandom().randrange(2**32)
    return int(value) if value else DEFAULT_SEED


def harvest(target: Target) -> World:
    """Valid requests first: the tokens, query ids and file URLs they hand out are what the fuzzer mutates."""
    world = World(
        endpoint=urlsplit(target.endpoint).path,
        tables={
            **{share: {schema: list(names) for schema, names in s.items()} for share, s in TABLES.items()},
            **LINKED,
        },
        tokens=target.tokens,
    )
    with httpx.Client(base_url=target.endpoint, timeout=30) as client:
        for caller, share, schema, table in [
            ("alice", "share1", "default", "sales"),
            ("alice", "share1", "default", "paged"),
            ("alice", "share1", "default", "plain"),
            ("bob", "share2", "other", "plain2"),
            ("alice", "links", "default", "escape"),
            ("alice", "links", "default", "via_link"),
        ]:
            auth = target.auth(caller)
            for path in ("/shares", f"/shares/{share}/schemas", f"/shares/{share}/all-tables"):
                response = client.get(path, params={"maxResults": 1}, headers=auth)
                world.harvest(response.json())
            tpath = f"/shares/{share}/schemas/{schema}/tables/{table}"
            where = (share, schema, table)
            for body, caps in [
                ({}, "responseformat=parquet"),
                ({}, "responseformat=delta"),
                ({"maxFiles": 1, "includeRefreshToken": True}, ""),
                ({"idempotency_key": f"harvest-{caller}"}, "asyncquery=true"),
            ]:
                response = client.post(
                    f"{tpath}/query", json=body, headers={**auth, "delta-sharing-capabilities": caps}
                )
                assert response.status_code == 200, response.text
                world.harvest(list(ndjson(response.content)), where)
            response = client.get(
                f"{tpath}/changes", params={"startingVersion": 0, "maxFiles": 1}, headers=auth
            )
            world.harvest(list(ndjson(response.content)), where)
    assert world.file_urls and world.page_tokens and world.refresh_tokens and world.query_ids
    return world


def served_files(target: Target, caller: str, share: str, schema: str, table: str) -> set[str]:
    """The files a query answers, as paths relative to the table root (from their signed URLs)."""
    response = httpx.post(
        f"{target.endpoint}/shares/{share}/schemas/{schema}/tables/{table}/query",
        json={},
        headers=target.auth(caller),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    prefix = f"/files/{share}/{schema}/{table}/"
    urls = [urlsplit(line["file"]["url"]).path for line in ndjson(response.content) if "file" in line]
    return {unquote(path.split(prefix, 1)[1]) for path in urls}


def table_files(root: str) -> set[str]:
    return set(pa.table(DeltaTable(root).get_add_actions()).column("path").to_pylist())


def test_fuzz_every_route(target: Target) -> None:
    fuzz(target, int(os.environ.get("FUZZ_REQUESTS", "5000")))


def test_fuzz_every_route_on_postgresql(pg_target: Target) -> None:
    """A smaller run on PostgreSQL: what reaches the catalog (names, tokens) meets another SQL dialect."""
    fuzz(pg_target, int(os.environ.get("FUZZ_REQUESTS", "5000")) // 5)


def fuzz(target: Target, count: int) -> None:
    seed = _seed()
    world = harvest(target)
    report = run(
        target.server.base_url,
        world,
        seed,
        count,
        secrets=target.secrets(),
        server_paths=target.server_paths(),
        connections=int(os.environ.get("FUZZ_CONNECTIONS", "4")),
    )
    print(report.summary())  # the seed, size and duration, shown with -s and on failure
    assert not report.findings, report.summary()
    assert sum(report.statuses.values()) == count

    # Afterwards: still alive, still correct, still quick to answer a health check.
    target.server.daemon.check_alive()
    for caller, (share, schema, table), source in [
        ("alice", ("share1", "default", "sales"), "sales"),
        ("bob", ("share2", "other", "plain2"), "plain"),
    ]:
        assert served_files(target, caller, share, schema, table) == table_files(target.tables[source])
    health = httpx.get(f"{target.server.base_url}/healthz", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    # Metric labels stay the route templates, whatever paths and methods strangers sent.
    exposition = httpx.get(f"{target.server.base_url}/metrics", timeout=30).text
    routes = {
        sample.labels["route"]
        for family in text_string_to_metric_families(exposition)
        if family.name == "lakegate_http_requests"
        for sample in family.samples
    }
    assert "unmatched" in routes and len(routes) < 40, sorted(routes)
    assert not [r for r in routes if ".." in r or "%" in r or "fz-" in r], sorted(routes)

    # The server's own log: no secret in any line, and no internal error.
    log = target.log()
    leaked = [line[:200] for line in log.splitlines() if any(s in line for s in target.secrets())]
    assert not leaked, leaked[:5]
    # Every line is one JSON object (no path or header forged a line of its own), none an internal error.
    records = [json.loads(line) for line in log.splitlines()]
    assert all(isinstance(r, dict) and "level" in r for r in records)
    assert sum(r.get("logger") == "lakegate.access" for r in records) >= count
    errors = [r for r in records if r["level"] in ("error", "critical")]
    assert not errors, errors[:3]
