"""The lean front of the frequent routes (lakegate.http.hot) answers exactly as Starlette's own stack does: the
same status, headers and bytes, for answers and errors; and its answers are what Starlette's `Response` sends."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import Response

from lakegate.http.hot import LakegateApp, whole
from tests.inprocess import ENDPOINT, AppClient, start_one_table_app

TABLE = f"{ENDPOINT}/shares/s/schemas/d/tables/t"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    app = start_one_table_app(tmp_path_factory.mktemp("hot"))
    yield app
    app.close()


def _raw(app: AppClient, lean: bool, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    """(status, headers, body) of one request, through the lean front or Starlette's stack alone."""
    query = path.partition("?")[2].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("lakegate.test", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "path": path.partition("?")[0],
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(dict(message))

    call = app.app.__call__ if lean else Starlette.__call__.__get__(app.app)
    app.run(call(scope, receive, send))
    start = messages[0]
    return start["status"], start["headers"], b"".join(m.get("body", b"") for m in messages[1:])


REQUESTS = [
    ("GET", f"{ENDPOINT}/shares", b"", True),
    ("GET", f"{ENDPOINT}/shares?maxResults=1", b"", True),
    ("GET", f"{ENDPOINT}/shares?maxResults=x", b"", True),  # 400
    ("GET", f"{TABLE}/version", b"", True),
    ("GET", f"{TABLE}/version?startingTimestamp=2000-01-01T00:00:00Z", b"", True),
    ("GET", f"{TABLE}/metadata", b"", True),
    ("GET", f"{TABLE}/metadata?version=0", b"", True),
    ("GET", f"{TABLE}/metadata?version=1&timestamp=x", b"", True),  # 400, one of the two
    ("POST", f"{TABLE}/query", b"{}", True),
    ("POST", f"{TABLE}/query", b'{"limitHint": "x"}', True),  # 400
    ("POST", f"{TABLE}/temporary-table-credentials", b"{}", True),  # 400: a local table
    ("GET", f"{ENDPOINT}/shares/s/schemas/d/tables/nope/metadata", b"", True),  # 404
    ("GET", f"{TABLE}/metadata", b"", False),  # 401
    ("POST", f"{TABLE}/query", b"{", False),  # 401 before the body is read
]


@pytest.mark.parametrize(("method", "path", "body", "authorized"), REQUESTS)
def test_the_lean_front_answers_as_starlette(
    served: AppClient, method: str, path: str, body: bytes, authorized: bool
) -> None:
    headers = {"host": "lakegate.test", "user-agent": "test"}
    request = (method, path, headers, body)
    if authorized:
        headers["authorization"] = f"Bearer {served.token}"
    if body:
        headers["content-type"] = "application/json"
    answers = [(_raw(served, True, *request), _raw(served, False, *request)) for _ in range(3)]
    # A query's URLs are signed with whole seconds: of three tries, at least one pair falls within one second.
    assert any(lean == starlette for lean, starlette in answers), answers[0]
    assert isinstance(served.app, LakegateApp) and len(served.app._hot) > 0  # the lean front answered


@pytest.mark.parametrize(
    ("body", "headers", "media_type"),
    [
        (b"", {"Delta-Table-Version": "3"}, None),
        (b'{"a":1}\n', {"Content-Type": "application/x-ndjson; charset=utf-8"}, "application/x-ndjson"),
        (b"{}", {"Cache-Control": "no-store"}, "application/json; charset=utf-8"),
        (b"hello", None, "text/plain"),
        (b"x", {"Content-Length": "1"}, None),
    ],
)
def test_whole_answers_carry_the_headers_of_a_starlette_response(
    body: bytes, headers: dict[str, str] | None, media_type: str | None
) -> None:
    expected = Response(body, 200, headers, media_type)
    assert whole(body, headers, media_type) == (200, expected.raw_headers, expected.body, None)


def test_other_paths_and_methods_go_through_starlette(served: AppClient, tmp_path: Path) -> None:
    assert served.request("DELETE", "/shares").status_code == 405
    assert served.get("/shares/").status_code in (307, 404)  # a slash redirect or unknown, as Starlette does
    assert served.raw("GET", "/healthz").status_code == 200
