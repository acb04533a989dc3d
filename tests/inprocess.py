"""The server in this process: the Starlette app `lakegate serve` would run, built from a configuration and
driven through `httpx.ASGITransport` (no subprocess, no socket). Tests stay synchronous: one event loop per
client runs each request to completion.

Fixtures here build real Delta tables with deltalake and one app sharing them, once per session; tests/e2e/
runs the same server as a process, as providers do.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from starlette.applications import Starlette

from lakegate.config import parse_config
from lakegate.server import build_app
from tests.fixtures.dv_table import DvTable, build_dv_table
from tests.history_tables import build_cdf_history
from tests.tables import build_partitioned, build_plain

ENDPOINT = "/delta-sharing"


class AppClient:
    """A synchronous HTTP client of one in-process app (its lifespan entered, as uvicorn would)."""

    def __init__(self, app: Starlette, token: str | None) -> None:
        self.app = app
        self.token = token
        self._loop = asyncio.new_event_loop()
        self._lifespan = app.router.lifespan_context(app)
        self._loop.run_until_complete(self._lifespan.__aenter__())
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://lakegate.test", timeout=30
        )

    def request(self, method: str, path: str, token: str | None = "default", **kwargs: Any) -> httpx.Response:
        """`path` below the protocol prefix unless it starts with `/`…`//` (then as is); `token=None` sends
        no Authorization header."""
        headers = dict(kwargs.pop("headers", None) or {})
        token = self.token if token == "default" else token
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        url = path if path.startswith(("http:", "https:")) else ENDPOINT + path
        return self._loop.run_until_complete(self._http.request(method, url, headers=headers, **kwargs))

    def new_http(self) -> httpx.AsyncClient:
        """Another HTTP client of the app, with its own cookie jar (a second browser); run it with `run`."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://lakegate.test", timeout=30
        )

    def run(self, coroutine: Any) -> Any:
        return self._loop.run_until_complete(coroutine)

    def raw(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request to `url` exactly as given (absolute paths outside the protocol prefix, file URLs)."""
        return self._loop.run_until_complete(self._http.request(method, url, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._http.aclose())
        self._loop.run_until_complete(self._lifespan.__aexit__(None, None, None))
        self._loop.close()


def start_app(workdir: Path, config: dict[str, Any], token: str | None = "auto") -> AppClient:
    """The app of a reference-style `config` mapping (database in `workdir`, a bearer token and a signing key
    filled in unless given), with its client."""
    config = {"version": 1, "warmUp": False, **config}
    config.setdefault("database", f"sqlite:///{workdir / 'lakegate.db'}")
    config.setdefault("tokenSigningKey", secrets.token_urlsafe(32))
    if token == "auto":
        token = secrets.token_urlsafe(24)
    if token is not None:
        config.setdefault("authorization", {"bearerToken": token})
    return AppClient(build_app(parse_config(config)), token)


def start_one_table_app(work: Path, table: dict[str, Any] | None = None, **settings: Any) -> AppClient:
    """The app of a plain table written at `work / "t"` and shared as `s.d.t` (`table`: more of the table's
    settings; `settings`: the server's)."""
    shared = {"name": "t", "location": build_plain(work / "t"), **(table or {})}
    return start_app(
        work, {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": [shared]}]}], **settings}
    )


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.content.splitlines() if line.strip()]


def error_of(response: httpx.Response, status: int, code: str) -> str:
    """The message of an error answer (protocol.md §7.1), after checking its status, code and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errorCode", "message"} and body["errorCode"] == code, body
    return str(body["message"])


@pytest.fixture(scope="session")
def app_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("app-tables")
    return {
        "sales": build_partitioned(base / "sales"),
        "plain": build_plain(base / "plain"),
        "paged": build_plain(base / "paged", batches=5),
        "cdf": build_cdf_history(base / "cdf"),
        "odd name": build_plain(base / "dir with späces"),
    }


@pytest.fixture(scope="session")
def app_dv_table(tmp_path_factory: pytest.TempPathFactory) -> DvTable:
    return build_dv_table(tmp_path_factory.mktemp("app-dv") / "dv", storage="u_prefix")


SALES_ID = "00000000-0000-0000-0000-0000000000a1"


@pytest.fixture(scope="session")
def app(
    tmp_path_factory: pytest.TempPathFactory, app_tables: dict[str, str], app_dv_table: DvTable
) -> Iterator[AppClient]:
    """share1.default: sales (history shared, partitioned), plain, paged (5 files), dv (deletion vectors),
    cdf (history shared, change data feed), odd (a root with spaces and non-ASCII);
    share2.s1: plain again; empty_share: no schema."""
    tables = [
        {"name": "sales", "location": app_tables["sales"], "historyShared": True, "id": SALES_ID},
        {"name": "plain", "location": app_tables["plain"]},
        {"name": "paged", "location": app_tables["paged"]},
        {"name": "dv", "location": str(app_dv_table.root)},
        {"name": "cdf", "location": app_tables["cdf"], "historyShared": True},
        {"name": "odd", "location": app_tables["odd name"]},
    ]
    config = {
        "asyncQueryMinFiles": 1,  # every query asked with asyncquery=true runs in the background
        "shares": [
            {"name": "share1", "schemas": [{"name": "default", "tables": tables}]},
            {"name": "share2", "schemas": [{"name": "s1", "tables": [tables[1]]}]},
            {"name": "empty_share", "schemas": []},
        ],
    }
    client = start_app(tmp_path_factory.mktemp("app"), config)
    yield client
    client.close()


# -- what deltalake says about a table (the oracle) and what a response served --------------------------------


def deltalake_adds(root: str, version: int | None = None) -> dict[str, dict[str, Any]]:
    """deltalake's add actions of the snapshot: table-relative path -> {size, partitionValues, numRecords}."""
    table = DeltaTable(root, version=version) if version is not None else DeltaTable(root)
    out = {}
    for row in pa.table(table.get_add_actions(flatten=True)).to_pylist():
        partitions = {k.removeprefix("partition."): v for k, v in row.items() if k.startswith("partition.")}
        out[row["path"]] = {
            "size": row["size_bytes"],
            "partitionValues": partitions,
            "numRecords": row["num_records"],
            "modificationTime": row["modification_time"],
        }
    return out


def served_path(url: str) -> str:
    """The table-relative path of a file URL this server signed (/…/files/share/schema/table/<path>?…)."""
    path = unquote(urlsplit(url).path)
    return path.split("/", 6)[-1]


def file_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line["file"] for line in lines if "file" in line]


def walk_pages(fetch: Callable[[dict[str, Any]], list[dict[str, Any]]], max_files: int) -> list[str]:
    """Follow `nextPageToken`s from `fetch(body)` (at most 10 pages), each page holding 1..max_files files;
    the served paths of every page."""
    seen: list[str] = []
    body: dict[str, Any] = {"maxFiles": max_files}
    for _ in range(10):
        lines = fetch(body)
        page = [served_path(f["url"]) for f in file_lines(lines)]
        assert 0 < len(page) <= max_files
        seen += page
        token = lines[-1].get("endStreamAction", {}).get("nextPageToken")
        if token is None:
            break
        body = {"maxFiles": max_files, "pageToken": token}
    return seen


def read_served(app: AppClient, url: str) -> pa.Table:
    """The parquet file behind a signed URL, fetched through the app."""
    response = app.raw("GET", url)
    assert response.status_code == 200, response.text
    return pq.read_table(pa.BufferReader(response.content))
