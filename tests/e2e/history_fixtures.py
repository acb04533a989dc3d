"""Session fixtures for the history tests (time travel, streaming, change data feed, paging): the tables, a
server sharing them, and small helpers for raw protocol calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.server import RunningServer, start_server
from tests.history_tables import (
    build_cdf_history,
    build_cdf_turned_off,
    build_late_cdf,
    build_log_gap,
    build_many_files,
    build_schema_change,
)
from tests.tables import build_plain

TABLE_IDS = {"cdf": "11111111-0000-0000-0000-000000000001", "pages": "11111111-0000-0000-0000-000000000002"}


@pytest.fixture(scope="session")
def history_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("history")
    return {
        "cdf": build_cdf_history(base / "cdf"),
        "late": build_late_cdf(base / "late"),
        "off": build_cdf_turned_off(base / "off"),
        "gap": build_log_gap(base / "gap"),
        "schema": build_schema_change(base / "schema"),
        "private": build_plain(base / "private"),
        "pages": build_many_files(base / "pages", versions=6),
        "moving": build_many_files(base / "moving", versions=3),
    }


def history_shares(tables: dict[str, str]) -> list[dict[str, Any]]:
    def shared(name: str, location: str, **more: Any) -> dict[str, Any]:
        return {"name": name, "location": location, "historyShared": True, **more}

    return [
        {
            "name": "hist",
            "schemas": [
                {
                    "name": "s",
                    "tables": [
                        shared("cdf", tables["cdf"], id=TABLE_IDS["cdf"]),
                        shared("late", tables["late"]),
                        shared("off", tables["off"]),
                        shared("gap", tables["gap"]),
                        shared("schema", tables["schema"]),
                        {"name": "private", "location": tables["private"]},
                        shared("started", tables["cdf"], startVersion=2),
                        shared("pages", tables["pages"], id=TABLE_IDS["pages"]),
                        shared("moving", tables["moving"]),
                    ],
                }
            ],
        }
    ]


@pytest.fixture(scope="session")
def history_server(
    tmp_path_factory: pytest.TempPathFactory, history_tables: dict[str, str]
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("history-server"), {"shares": history_shares(history_tables)}
    )
    yield running
    running.stop()


class Raw:
    """Raw protocol calls against one server, for checks the official client does not expose."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.endpoint, headers=server.headers(), timeout=30)

    def table(self, name: str) -> str:
        return f"/shares/hist/schemas/s/tables/{name}"

    def query(self, name: str, body: dict | None = None, **headers: str) -> httpx.Response:
        return self.http.post(self.table(name) + "/query", json=body or {}, headers=headers)

    def changes(self, name: str, params: dict | str, **headers: str) -> httpx.Response:
        return self.http.get(self.table(name) + "/changes", params=params, headers=headers)

    def get(self, path: str, params: dict | None = None, **headers: str) -> httpx.Response:
        return self.http.get(self.table(path), params=params, headers=headers)


@pytest.fixture(scope="session")
def raw(history_server: RunningServer) -> Iterator[Raw]:
    client = Raw(history_server)
    yield client
    client.http.close()


def ndjson(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [orjson.loads(line) for line in response.content.splitlines() if line.strip()]


def error_of(response: httpx.Response, status: int = 400, code: str = "INVALID_PARAMETER_VALUE") -> str:
    """The message of an error answer, after checking its status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errorCode", "message"} and body["errorCode"] == code, body
    return body["message"]


def file_actions(lines: list[dict]) -> list[tuple[str, dict]]:
    """(wrapper or delta action name, fields) of the file lines of a response."""
    out = []
    for line in lines:
        ((key, value),) = line.items()
        if key == "file" and "deltaSingleAction" in value:
            ((kind, action),) = value["deltaSingleAction"].items()
            out.append((kind, {**value, **action}))
        elif key in ("file", "add", "remove", "cdf"):
            out.append((key, value))
    return out


def log_path(url: str) -> str:
    """The table-relative path of a lakegate file URL (for comparing with log actions)."""
    from urllib.parse import unquote, urlsplit

    path = unquote(urlsplit(url).path)
    return path.split("/", 6)[-1]  # /delta-sharing/files/share/schema/table/<path>
