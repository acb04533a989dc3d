"""Slow and oversized requests against a running server: headers and bodies are bounded in size and time, and a
stranger's body is never read (issue 8, item 4). Raw sockets, because HTTP clients refuse to misbehave."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import RunningServer, start_server

QUERY = "/delta-sharing/shares/share1/schemas/default/tables/plain/query"
TIMEOUT_S = 2


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, local_tables: dict[str, str]) -> Iterator[RunningServer]:
    share = {
        "name": "share1",
        "schemas": [{"name": "default", "tables": [{"name": "plain", "location": local_tables["plain"]}]}],
    }
    config = {
        "shares": [share],
        "requestTimeoutSeconds": TIMEOUT_S,
        "maxRequestBodyBytes": 64 * 1024,
        "maxRequestHeaderBytes": 8 * 1024,
    }
    running = start_server(tmp_path_factory.mktemp("strict"), config)
    yield running
    running.stop()


def _connect(server: RunningServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=TIMEOUT_S * 5)


def _answer(sock: socket.socket) -> tuple[int, dict, float]:
    """(status, JSON body, seconds until the whole answer arrived); status 0 if the server closed without one."""
    start, data = time.monotonic(), b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    if not data:
        return 0, {}, time.monotonic() - start
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
        )
    )
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split()[1]), json.loads(body), time.monotonic() - start


def _post_head(server: RunningServer, length: int, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {QUERY} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_a_silent_connection_is_closed(strict: RunningServer) -> None:
    with _connect(strict) as sock:
        status, body, waited = _answer(sock)
    assert status == 408 and body["errorCode"] == "REQUEST_TIMEOUT"
    assert waited < TIMEOUT_S * 4


def test_half_sent_headers_are_dropped(strict: RunningServer) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(TIMEOUT_S * 2):  # a byte a second resets no timer
            time.sleep(1)
            try:
                sock.sendall(b"a")
            except OSError:
                break
        status, _, _ = _answer(sock)
    assert status in (0, 408)  # answered 408, or closed while the client was still writing
    assert httpx.get(strict.base_url + "/healthz").status_code == 200


def test_a_half_sent_body_is_a_408(strict: RunningServer) -> None:
    with _connect(strict) as sock:
        sock.sendall(_post_head(strict, 100, strict.token) + b'{"maxFiles"')
        status, body, waited = _answer(sock)
    assert status == 408 and body["errorCode"] == "REQUEST_TIMEOUT" and "body" in body["message"]
    assert waited < TIMEOUT_S * 4


@pytest.mark.parametrize("end", [b"", b"\r\n\r\n"])
def test_oversized_headers_are_a_431(strict: RunningServer, end: bytes) -> None:
    """Without an end (an endless header) and complete (one header too large): both refused, app not called."""
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9 * 1024 + end)
        status, body, _ = _answer(sock)
    assert status == 431 and body["errorCode"] == "MALFORMED_REQUEST" and "8192 bytes" in body["message"]


def test_many_tiny_headers_count_as_parsed(strict: RunningServer) -> None:
    """Headers are measured as parsed (name + value + 4 each), not as the bytes sent: 1,900 `a:` lines are fewer
    than 8 KiB on the wire but more once parsed, and refused like one large header."""
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"a:\r\n" * 1900 + b"\r\n")
        status, body, _ = _answer(sock)
    assert status == 431 and "8192 bytes" in body["message"]


@pytest.mark.parametrize("end", [b"", b"\r\n\r\n"])
def test_an_oversized_iceberg_request_is_refused_in_its_error_model(
    strict: RunningServer, end: bytes
) -> None:
    """A huge table name in the Iceberg catalog's path: the spec's `{"error": {message, type, code}}`."""
    path = b"/delta-sharing/iceberg/v1/share1/namespaces/default/tables/" + b"t" * 9 * 1024
    with _connect(strict) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x" + end)
        status, body, _ = _answer(sock)
    assert status == 431 and body["error"]["code"] == 431 and "8192 bytes" in body["error"]["message"]
    assert body["error"]["type"] == "BadRequestException"


def test_a_large_body_is_a_413(strict: RunningServer) -> None:
    big = {"predicateHints": ["x" * 1000] * 100}  # ~100 KB
    response = httpx.post(
        strict.endpoint + QUERY.removeprefix("/delta-sharing"), json=big, headers=strict.headers()
    )
    assert response.status_code == 413 and response.json()["errorCode"] == "MALFORMED_REQUEST"
    assert "65536 bytes" in response.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"predicateHints": ["'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"]}'

    response = httpx.post(
        strict.endpoint + QUERY.removeprefix("/delta-sharing"), content=chunks(), headers=strict.headers()
    )
    assert response.status_code == 413


def test_a_strangers_body_is_not_read(strict: RunningServer) -> None:
    """200 MB declared, nothing sent: the 401 comes at once, without waiting for (or reading) the body."""
    with _connect(strict) as sock:
        sock.sendall(_post_head(strict, 200 * 1024 * 1024, "not-a-token"))
        status, body, waited = _answer(sock)
        assert status == 401 and body["errorCode"] == "UNAUTHENTICATED"
        assert waited < TIMEOUT_S  # answered before the body deadline could pass
        sock.settimeout(TIMEOUT_S)  # and then the connection is closed, not kept to drain 200 MB
        assert sock.recv(65536) == b""


def test_a_normal_query_still_works(strict: RunningServer, tmp_path: Path) -> None:
    response = httpx.post(
        strict.endpoint + QUERY.removeprefix("/delta-sharing"), json={}, headers=strict.headers()
    )
    assert response.status_code == 200 and len(response.text.splitlines()) == 3


def test_a_request_the_parser_refuses_is_a_json_400(strict: RunningServer) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        status, body, _ = _answer(sock)
    assert status == 400 and body["errorCode"] == "MALFORMED_REQUEST"


def test_a_malformed_chunked_body_is_a_json_400(strict: RunningServer) -> None:
    """The request's handler is already waiting for its body when the parser refuses a chunk."""
    with _connect(strict) as sock:
        head = _post_head(strict, 0, strict.token).replace(
            b"Content-Length: 0", b"Transfer-Encoding: chunked"
        )
        sock.sendall(head + b"zz\r\n{}\r\n0\r\n\r\n")
        status, body, _ = _answer(sock)
    assert status == 400 and body["errorCode"] == "MALFORMED_REQUEST"


def test_a_websocket_upgrade_is_a_plain_request(strict: RunningServer) -> None:
    """lakegate serves no WebSocket: an upgrade request gets an ordinary answer, no protocol switch."""
    with _connect(strict) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        status, body, _ = _answer(sock)
    assert status == 200 and body == {"status": "ok"}


def _raw_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one answer read from the socket."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return head.lower(), body


def test_an_answer_before_the_body_says_it_closes_the_connection(strict: RunningServer) -> None:
    """A client whose token was revoked sends its headers and its body in two writes (httpx does): the 401 can go
    out between them, and the connection then ends (the body is not read). The answer says so: a client told
    nothing would send its next request on the closed connection and meet a reset."""
    with _connect(strict) as sock:
        sock.sendall(_post_head(strict, 2, "revoked-token"))
        head, body = _raw_answer(sock)
        assert head.startswith(b"http/1.1 401") and b"connection: close" in head.split(b"\r\n")
        assert json.loads(body)["errorCode"] == "UNAUTHENTICATED"
        sock.sendall(b"{}")  # too late: the server is closing
        sock.settimeout(TIMEOUT_S)
        # Closed: an end of stream, or a reset when the body reached the server before its close (a socket closed
        # with unread data resets the connection).
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(65536) == b""


def test_an_answer_after_the_whole_request_keeps_the_connection(strict: RunningServer) -> None:
    """Headers and body in one write: the refusal does not end the connection, the next request is answered."""
    with _connect(strict) as sock:
        for _ in range(2):
            sock.sendall(_post_head(strict, 2, "revoked-token") + b"{}")
            head, body = _raw_answer(sock)
            assert head.startswith(b"http/1.1 401") and b"connection: close" not in head
            assert json.loads(body)["errorCode"] == "UNAUTHENTICATED"
