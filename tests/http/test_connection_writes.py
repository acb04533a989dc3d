"""What the guarded connection (lakegate.http.connection) does to each request's writes and memory, driven through
uvicorn's own protocol with a transport that records what it is given (no socket: the writes are the subject)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from lakegate.http.connection import guarded_protocol


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def slow_stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        await asyncio.sleep(0.05)  # the first chunk comes turns of the event loop after the head
        yield b"late"

    return StreamingResponse(chunks(), media_type="text/plain")


async def posted(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


APP = Starlette(
    routes=[Route("/", hello), Route("/slow", slow_stream), Route("/post", posted, methods=["POST"])]
)


class Recorder(asyncio.Transport):
    """Every write as one entry: two entries are two system calls on a real socket."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        self.writes.append(b"".join(parts))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connect() -> tuple[Any, Recorder]:
    config = uvicorn.Config(APP, http=guarded_protocol(10, 8192), log_config=None, lifespan="off")
    config.load()
    protocol_class: Any = config.http_protocol_class  # uvicorn types it as a bare asyncio.Protocol
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = Recorder()
    protocol.connection_made(transport)
    return protocol, transport


async def answered(protocol: Any, request: bytes) -> None:
    protocol.data_received(request)
    for _ in range(200):
        await asyncio.sleep(0.005)
        if protocol.cycle.response_complete:
            return
    pytest.fail("no answer")


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()


def test_a_whole_answer_goes_out_in_one_write() -> None:
    asyncio.run(_a_whole_answer_goes_out_in_one_write())


async def _a_whole_answer_goes_out_in_one_write() -> None:
    protocol, transport = connect()
    await answered(protocol, get("/"))
    await answered(protocol, b"POST /post HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc")
    assert len(transport.writes) == 2, transport.writes
    first, second = transport.writes
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"\r\n\r\nhello")
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b"\r\n\r\n3")


def test_a_head_whose_body_is_late_is_sent_before_it() -> None:
    asyncio.run(_a_head_whose_body_is_late_is_sent_before_it())


async def _a_head_whose_body_is_late_is_sent_before_it() -> None:
    protocol, transport = connect()
    protocol.data_received(get("/slow"))
    await asyncio.sleep(0.02)  # turns of the loop later, the body still to come
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")
    await answered(protocol, b"")
    assert b"".join(transport.writes[1:]) == b"4\r\nlate\r\n0\r\n\r\n"  # chunked, after the head


def test_a_head_without_a_body_is_sent() -> None:
    asyncio.run(_a_head_without_a_body_is_sent())


async def _a_head_without_a_body_is_sent() -> None:
    protocol, transport = connect()
    await answered(protocol, b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n")
    await asyncio.sleep(0.01)
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 5\r\n" in transport.writes[0] and transport.writes[0].endswith(b"\r\n\r\n")


def test_a_request_leaves_nothing_for_the_garbage_collector() -> None:
    asyncio.run(_a_request_leaves_nothing_for_the_garbage_collector())


async def _a_request_leaves_nothing_for_the_garbage_collector() -> None:
    # A request's objects (uvicorn's cycle, the scope, its headers) are freed when the next request replaces them,
    # not only by a collection: a reference cycle per request made the collector run every few requests.
    protocol, _ = connect()
    gc.collect()
    gc.disable()
    try:
        await answered(protocol, get("/"))
        first = weakref.ref(protocol.cycle)
        await answered(protocol, get("/"))
        await asyncio.sleep(0.01)
        assert first() is None
    finally:
        gc.enable()


def test_a_head_answered_before_its_request_body_is_sent_before_the_close() -> None:
    asyncio.run(_a_head_answered_before_its_request_body_is_sent_before_the_close())


async def _a_head_answered_before_its_request_body_is_sent_before_the_close() -> None:
    # The answer ends while the request's body is still coming: the connection is closed rather than read on.
    protocol, transport = connect()
    await answered(protocol, b"HEAD / HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nabc")
    await asyncio.sleep(0.01)
    assert transport.closed
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
