"""An answer cut short is audited with the file lines that went out, counted from what the renderer says each
piece holds (no byte scanning): checked here against the bytes the transport really took."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from lakegate.audit import Access
from lakegate.exceptions import StorageUnavailableError
from lakegate.http.app import _ndjson
from lakegate.http.hot import as_response
from lakegate.http.observability import ObservabilityMiddleware
from lakegate.service.responses import Lines, NdjsonAnswer

PREFIX = "/delta-sharing"


class _Audit:
    records = None  # no record writer process

    def __init__(self) -> None:
        self.events: list[Access] = []

    def record(
        self, access: Access, wait: bool = False, soon: bool = False, lines_there: bool = False
    ) -> bool:
        self.events.append(access)
        return True


def _file_lines(n: int, start: int) -> bytes:
    return b"".join(b'{"file":{"id":"%d","url":"%s"}}\n' % (start + i, b"u" * 600) for i in range(n))


def _answer(fail_after: int | None = None) -> NdjsonAnswer:
    """Head lines, batches of file lines that say how many they are, and single history-style lines that do not
    (counted by their starts), of several ~1 MiB chunks; `fail_after`: the store fails after that many pieces."""
    pieces: list[bytes | Lines] = [b'{"protocol":{"minReaderVersion":1}}\n', b'{"metaData":{"id":"m"}}\n']
    at = 0
    for size in (1500, 700, 2100, 900, 1300, 2500):
        pieces.append(Lines(_file_lines(size, at), size))
        at += size
        pieces.append(b'{"add":{"path":"p%d"}}\n' % at)
        pieces.append(b'{"metaData":{"id":"n"}}\n')
    stats = {"version": 1, "files": at + 6}
    if fail_after is None:
        return NdjsonAnswer({"Content-Type": "application/x-ndjson"}, pieces, stats)

    def failing() -> Iterator[bytes | Lines]:
        yield from pieces[:fail_after]
        raise StorageUnavailableError("reading s3://bucket/t/_delta_log/00000000000000000007.json failed")

    return NdjsonAnswer({"Content-Type": "application/x-ndjson"}, failing(), stats)


async def _serve(
    body_messages: int | None, fail_after: int | None = None, received: list[bytes] | None = None
) -> tuple[bytes, list[Access]]:
    """The answer through the middleware to a client that stops reading after `body_messages` body messages
    and leaves (None: reads it all); the bytes the transport took (also in `received`), and the audit events."""
    audit = _Audit()
    gone = asyncio.Event()
    received = [] if received is None else received

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await as_response(_ndjson(_answer(fail_after)))(scope, receive, send)

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        if len(received) == body_messages:  # the client stopped reading and leaves: this send never ends
            gone.set()
            await asyncio.Event().wait()
        received.append(message.get("body", b""))

    scope = {
        "type": "http",
        "method": "POST",
        "path": f"{PREFIX}/shares/s/schemas/d/tables/t/query",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "app": SimpleNamespace(routes=[]),
    }
    try:
        await ObservabilityMiddleware(app, audit, PREFIX)(scope, receive, send)  # type: ignore[arg-type]
    finally:
        _EVENTS[:] = audit.events
    return b"".join(received), audit.events


_EVENTS: list[Access] = []  # the audit events of the last `_serve`, also when the answer failed


def _files_in(data: bytes) -> int:
    return sum(line.startswith((b'{"file":', b'{"add":')) for line in data.splitlines())


@pytest.mark.parametrize("body_messages", [1, 2, 3, 4])
def test_an_answer_cut_short_is_audited_with_the_file_lines_sent(body_messages: int) -> None:
    sent, events = asyncio.run(_serve(body_messages))
    (event,) = events
    assert event.outcome == "ABORTED"
    assert event.files == _files_in(sent) > 0
    assert event.files < 9006 and event.data_bytes is None


def test_a_whole_answer_is_audited_with_every_file() -> None:
    sent, events = asyncio.run(_serve(None))
    (event,) = events
    assert (event.outcome, event.files) == ("ok", _files_in(sent)) == ("ok", 9006)


@pytest.mark.parametrize("fail_after", [10, 16])
def test_an_answer_that_fails_after_its_status_is_audited_with_what_was_sent(fail_after: int) -> None:
    """The store fails mid-answer: the client got a 200 and some file lines, then a cut connection. The audit
    says so: status 200, the file lines sent whole, and that the answer failed (not a 500 that never went out,
    nor the files the answer was going to hold)."""
    received: list[bytes] = []
    with pytest.raises(StorageUnavailableError):  # on to the server, which closes the connection
        asyncio.run(_serve(None, fail_after, received))
    (event,) = _EVENTS
    assert (event.status, event.outcome) == (200, "FAILED_MID_ANSWER")
    assert event.files == _files_in(b"".join(received)) > 0
    assert event.files < 9006 and event.data_bytes is None
