"""The guarded connection's fast lane (lakegate.http.connection, LakegateApp.answer_now): a hot route's request
whose body has arrived is answered within the read that completed it, with the same bytes the usual way (an
ASGI task through every layer) gives; anything else is served the usual way. Driven through uvicorn's own
protocol with a transport that records its writes, on the in-process app."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import uvicorn
from sqlalchemy import text
from uvicorn.server import ServerState

from lakegate.audit import AuditLog
from lakegate.http.connection import guarded_protocol
from lakegate.http.hot import LakegateApp
from lakegate.service import responses
from lakegate.shutdown import CutOffQuietly
from tests.http.test_connection_writes import Recorder
from tests.inprocess import ENDPOINT, AppClient, start_one_table_app

TABLE = f"{ENDPOINT}/shares/s/schemas/d/tables/t"
_DATE = re.compile(rb"\r\ndate: [^\r]*")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    app = start_one_table_app(tmp_path_factory.mktemp("fast-lane"))
    app.get("/shares")  # the token is remembered: a body's request is answered at once from then on
    yield app
    app.close()


def connect(app: AppClient) -> tuple[Any, Recorder]:
    """A connection of `lakegate serve`'s protocol to the app, below the layers `lakegate serve` puts around it."""
    config = uvicorn.Config(
        CutOffQuietly(app.app), http=guarded_protocol(10, 8192), log_config=None, lifespan="off"
    )
    config.load()
    protocol_class: Any = config.http_protocol_class
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = Recorder()
    protocol.connection_made(transport)
    return protocol, transport


def request(method: str, path: str, token: str | None, body: bytes = b"", *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: lakegate.test", "User-Agent: test", *extra]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


async def settle(protocol: Any, transport: Recorder) -> bytes:
    """What was written once the request in flight is answered (turns of the loop for the usual way)."""
    for _ in range(400):
        if protocol.cycle is not None and protocol.cycle.response_complete:
            break
        await asyncio.sleep(0.005)
    else:
        pytest.fail("no answer")
    await asyncio.sleep(0)  # a held head goes out at the next turn
    return b"".join(transport.writes)


def fast(app: AppClient, raw: bytes) -> bytes:
    """The answer written within the read (nothing else may be needed for it)."""

    async def run() -> bytes:
        protocol, transport = connect(app)
        protocol.data_received(raw)
        answered = b"".join(transport.writes)
        protocol.connection_lost(None)
        return answered

    return app.run(run())


def usual(app: AppClient, raw: bytes) -> bytes:
    """The answer of the same request served the usual way: asked to `Expect: 100-continue` (which the fast lane
    leaves to uvicorn), its interim answer removed."""
    head, _, body = raw.partition(b"\r\n\r\n")

    async def run() -> bytes:
        protocol, transport = connect(app)
        protocol.data_received(head + b"\r\nExpect: 100-continue\r\n\r\n" + body)
        assert not transport.writes or transport.writes == [_CONTINUE]  # nothing answered within the read
        answered = await settle(protocol, transport)
        protocol.connection_lost(None)
        return answered.removeprefix(_CONTINUE)

    return app.run(run())


REQUESTS = [
    ("GET", f"{ENDPOINT}/shares", b"", True),
    ("GET", f"{ENDPOINT}/shares?maxResults=x", b"", True),  # 400
    ("GET", f"{TABLE}/version", b"", True),
    ("GET", f"{TABLE}/version?startingTimestamp=2000-01-01T00:00:00Z", b"", True),
    ("GET", f"{TABLE}/metadata", b"", True),
    ("GET", f"{TABLE}/metadata?version=1&timestamp=x", b"", True),  # 400
    ("POST", f"{TABLE}/query", b"{}", True),
    ("POST", f"{TABLE}/query", b'{"limitHint": "x"}', True),  # 400
    ("POST", f"{TABLE}/temporary-table-credentials", b"{}", True),  # 400: a local table
    ("GET", f"{ENDPOINT}/shares/s/schemas/d/tables/nope/metadata", b"", True),  # 404
    ("GET", f"{TABLE}/metadata", b"", False),  # 401: no token at all, refused from memory
]


@pytest.mark.parametrize(("method", "path", "body", "authorized"), REQUESTS)
def test_a_hot_request_is_answered_within_its_read_as_the_usual_way_answers(
    served: AppClient, method: str, path: str, body: bytes, authorized: bool
) -> None:
    raw = request(method, path, served.token if authorized else None, body)
    usual(served, raw)  # a table's first snapshot is read in a thread: not at once
    pairs = [(fast(served, raw), usual(served, raw)) for _ in range(3)]
    assert all(answer.startswith(b"HTTP/1.1 ") for pair in pairs for answer in pair), pairs[0]
    # A query's URLs are signed with whole seconds: of three tries, at least one pair falls within one second.
    assert any(_DATE.sub(b"", a) == _DATE.sub(b"", b) for a, b in pairs), pairs[0]


@pytest.mark.parametrize(
    "raw",
    [
        request("GET", f"{TABLE}/metadata", "not-a-token"),  # only the database knows a stranger
        request("POST", f"{TABLE}/query", "not-a-token", b"{}"),
        request("HEAD", f"{TABLE}", "TOKEN"),
        request("GET", f"{ENDPOINT}/shares/s", "TOKEN"),  # not a hot route
        request(
            "GET", f"{ENDPOINT}/shares", "TOKEN", b"", "X-Forwarded-For: 10.0.0.1"
        ),  # uvicorn's proxy layer
        request("GET", f"{ENDPOINT}/shares", "TOKEN", b"", "X-Forwarded-Proto: https"),
    ],
)
def test_other_requests_are_served_the_usual_way(served: AppClient, raw: bytes) -> None:
    raw = raw.replace(b"TOKEN", (served.token or "").encode())
    assert fast(served, raw) == b""
    assert usual(served, raw).startswith(b"HTTP/1.1 ")


def test_a_client_that_does_not_read_its_answers_is_served_the_usual_way(served: AppClient) -> None:
    async def run() -> bytes:
        protocol, transport = connect(served)
        protocol.pause_writing()  # what asyncio tells the protocol when the socket's buffer is full
        protocol.data_received(request("GET", f"{ENDPOINT}/shares", served.token))
        assert transport.writes == []
        protocol.resume_writing()
        return await settle(protocol, transport)

    assert served.run(run()).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_body_still_coming_is_served_the_usual_way(served: AppClient) -> None:
    raw = request("POST", f"{TABLE}/query", served.token, b"{}")

    async def run() -> bytes:
        protocol, transport = connect(served)
        protocol.data_received(raw[:-1])
        protocol.data_received(raw[-1:])
        assert transport.writes == []
        return await settle(protocol, transport)

    answer = served.run(run())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b'"protocol"' in answer


def test_pipelined_requests_are_answered_in_order_within_the_read(served: AppClient) -> None:
    token = served.token
    raw = request("GET", f"{TABLE}/version", token) + request("POST", f"{TABLE}/query", token, b"{}")
    raw += request("GET", f"{ENDPOINT}/shares", token)
    answers = fast(served, raw).split(b"HTTP/1.1 200 OK\r\n")
    assert len(answers) == 4 and answers[0] == b""
    assert b"delta-table-version: " in answers[1]
    assert b'"protocol"' in answers[2] and b'{"file":' in answers[2]
    assert b'"items"' in answers[3]


@pytest.mark.parametrize(
    "raw",
    [
        request("GET", f"{TABLE}/version", "TOKEN", b"", "Connection: close"),
        request("GET", f"{TABLE}/version", "TOKEN").replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    ],
)
def test_an_answer_that_ends_the_connection_says_so(served: AppClient, raw: bytes) -> None:
    raw = raw.replace(b"TOKEN", (served.token or "").encode())

    async def run() -> tuple[bytes, bool]:
        protocol, transport = connect(served)
        protocol.data_received(raw)
        return b"".join(transport.writes), transport.closed

    answer, closed = served.run(run())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nconnection: close\r\n" in answer
    assert closed


def test_a_fast_answer_is_audited_and_counted(served: AppClient) -> None:
    audit = audit_of(served)
    audit.flush()  # (what earlier tests' requests queued)
    before = _audited(served)
    metrics = served.raw("GET", "/metrics").text
    answer = fast(
        served, request("GET", f"{TABLE}/metadata", served.token, b"", "User-Agent: fast-lane-test")
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    audit.flush()
    rows = _audited(served)[len(before) :]
    assert [(r.operation, r.share, r.table_name, r.status, r.outcome, r.version) for r in rows] == [
        ("metadata", "s", "t", 200, "ok", 0)
    ]
    assert rows[0].user_agent == "fast-lane-test" and rows[0].client == "127.0.0.1"
    assert _count(served.raw("GET", "/metrics").text, "metadata") == _count(metrics, "metadata") + 1


def test_with_the_audit_queue_full_the_usual_way_stores_the_event(
    served: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_of(served), "has_room", lambda: False)
    raw = request("GET", f"{TABLE}/metadata", served.token)
    assert fast(served, raw) == b""
    assert usual(served, raw).startswith(b"HTTP/1.1 200 OK\r\n")


def test_an_unexpected_error_is_left_to_the_usual_way(
    served: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(served.app.state.services.tables, "table_version", broken)
    raw = request("GET", f"{TABLE}/version", served.token, b"", "X-Request: not-asked-before")
    assert fast(served, raw) == b""
    answer = usual(served, raw)
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n") and b'"INTERNAL_ERROR"' in answer


def audit_of(app: AppClient) -> AuditLog:
    assert isinstance(app.app, LakegateApp)
    return app.app.observer.audit


def _audited(app: AppClient) -> list[Any]:
    with app.app.state.services.catalog.db.read() as conn:
        return list(conn.execute(text("SELECT * FROM audit_events ORDER BY id")).all())


def _count(metrics: str, route_end: str) -> float:
    """lakegate_http_requests_total of the GET route ending in `route_end`, status 200."""
    for line in metrics.splitlines():
        if (
            line.startswith("lakegate_http_requests_total{")
            and f'/{route_end}"' in line
            and 'status="200"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_answer_of_several_chunks_goes_out_whole(
    served: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(responses, "CHUNK_BYTES", 1)  # a chunk per line: the usual way would stream them
    raw = request("POST", f"{TABLE}/query", served.token, b'{"maxFiles": 5}')
    streamed = usual(served, raw)
    assert b"\r\ntransfer-encoding: chunked\r\n" in streamed
    answer = fast(served, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert f"\r\ncontent-length: {len(body)}\r\n".encode() in head + b"\r\n"
    assert _actions(body) == _actions(_dechunked(streamed.partition(b"\r\n\r\n")[2]))


def _actions(body: bytes) -> list[tuple[str, Any]]:
    """Each line's action and what identifies it (a file's id; URLs are signed anew each second)."""
    lines = [orjson.loads(line) for line in body.splitlines()]
    return [(k, v.get("id") if k == "file" else v) for line in lines for k, v in line.items()]


def _dechunked(body: bytes) -> bytes:
    out = b""
    while True:
        size, _, rest = body.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return out
        out, body = out + rest[:n], rest[n + 2 :]


@pytest.mark.parametrize("authorization", ["Basic !!!", "Basic " + "YTpi" * 3, "Bearer", "Negotiate x"])
def test_a_malformed_credential_is_refused_as_the_usual_way_refuses_it(
    served: AppClient, authorization: str, caplog: pytest.LogCaptureFixture
) -> None:
    for method, path, body in [("GET", f"{TABLE}/metadata", b""), ("POST", f"{TABLE}/query", b"{}")]:
        raw = request(method, path, None, body, f"Authorization: {authorization}")
        answer = fast(served, raw) or usual(served, raw)
        assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), answer
        assert _DATE.sub(b"", answer) == _DATE.sub(b"", usual(served, raw))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_an_idle_connection_is_closed_at_its_keep_alive_deadline_and_a_busy_one_is_not(
    served: AppClient,
) -> None:
    """One timer per connection watches the keep-alive deadline each answer sets (not a timer per answer)."""
    timeout = 0.3

    async def run() -> list[bool]:
        config = uvicorn.Config(
            CutOffQuietly(served.app),
            http=guarded_protocol(10, 8192),
            log_config=None,
            lifespan="off",
            timeout_keep_alive=timeout,  # type: ignore[arg-type]  # uvicorn takes seconds as a number
        )
        config.load()
        protocol_class: Any = config.http_protocol_class
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = Recorder()
        protocol.connection_made(transport)
        seen = []
        for _ in range(6):  # a request every 0.1 s: busy across two deadlines, never idle for 0.3 s
            protocol.data_received(request("GET", f"{TABLE}/version", served.token))
            await asyncio.sleep(0.1)
            seen.append(transport.closed)
        await asyncio.sleep(timeout - 0.15)  # idle for 0.25 s since the last answer
        seen.append(transport.closed)
        await asyncio.sleep(0.2)  # 0.45 s
        seen.append(transport.closed)
        return seen

    assert served.run(run()) == [False] * 7 + [True]
