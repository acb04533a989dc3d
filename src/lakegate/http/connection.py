"""Connection guards uvicorn does not have: a deadline for a request's headers, and a bound on their size.

uvicorn arms its keep-alive timer only between requests and disarms it at the first byte that arrives, and its
httptools parser accepts headers of any size, so a client that opens a connection and sends nothing, or half a
header, or an endless one, holds a connection (and memory) forever (uvicorn issue #157 still asks for a
request-start timeout). This subclass of uvicorn's httptools protocol (passed as `uvicorn.run(http=…)`, the
documented way to choose the protocol class) adds the two checks and answers like the application would,
`{"errorCode", "message"}` JSON (the Iceberg error model below the Iceberg catalog's path), then closes the
connection. Its own "Invalid HTTP request" answer becomes JSON
too. Bodies are bounded by the application (`lakegate.http.body`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Literal

import orjson

from lakegate.exceptions import (
    HeadersTooLargeError,
    LakegateError,
    MalformedRequestError,
    RequestTimeoutError,
)
from lakegate.http.errors import iceberg_type

log = logging.getLogger("lakegate.http")
_REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}  # by status
# Requests of this process whose headers were read and whose answer has not ended, over all connections.
_ANSWERING = [0]
# The scope key of a weak reference to a guarded request's uvicorn cycle: `lakegate.http.body` reads a body that has
# arrived whole with its headers (the cycle's `more_body` is False: reading it cannot wait) without arming a
# deadline. Weak, because the cycle holds the scope: a strong reference made every request a reference cycle
# (cycle, scope, headers, event, ...: ~8 objects) that only the garbage collector frees, ~10-20 us per request.
REQUEST_CYCLE = "lakegate.cycle"


def requests_answering() -> int:
    """Requests read and not yet answered on this process's guarded connections (0 without them): more than
    one means others wait behind the one being answered (the access log then writes lines per loop turn)."""
    return _ANSWERING[0]


def guarded_protocol(
    header_timeout_s: float | None, max_header_bytes: int, iceberg_path: str | None = None
) -> type[asyncio.Protocol] | Literal["h11"]:
    """The protocol class for uvicorn's `http=`: httptools with the guards; without httptools, h11, which bounds
    header size itself (its `h11_max_incomplete_event_size`) but has no header deadline. Requests below
    `iceberg_path` are refused in the Iceberg REST error model, as the application answers them."""
    try:
        from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
    except ImportError:  # uvicorn without its [standard] extra
        return "h11"

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        # uvicorn annotates the parameter as BaseTransport; asyncio hands this protocol a Transport.
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._header_bytes = 0
            self._chunk_bytes = 0  # the size of the chunk being parsed
            self._answering = 0  # requests of this connection counted in _ANSWERING
            self._reading_headers = False
            # The header deadline of the request being read (None between requests), and one timer per
            # connection that looks at it: a keep-alive connection's requests each set a number, and the
            # timer is armed again only when it fires early (a timer per request cost more than the request).
            self._headers_due: float | None = None
            self._timer: asyncio.TimerHandle | None = None
            self._idle_due: float | None = None  # the same for the keep-alive deadline, between requests
            self._idle_timer: asyncio.TimerHandle | None = None
            self._arm()  # the first request must begin and end its headers in time
            self._writes = HeadWithBody(transport, self.loop)
            self._keep_alive = True  # what the request being read asked for (see on_headers_complete)
            self._answer_now = _fast_lane(self.app)
            self._may_defer = False  # the request being read may take the fast lane (on_headers_complete)
            self._deferred: tuple[Any, Any] | None = None  # its (cycle, app), not started yet

        def connection_lost(self, exc: Exception | None) -> None:
            self._deferred = None
            _ANSWERING[0] -= self._answering
            self._answering = 0
            self._headers_due = None
            for timer in (self._timer, self._idle_timer):
                if timer is not None:
                    timer.cancel()
            self._timer = self._idle_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._chunk_bytes = len(data)
            super().data_received(data)
            if self._deferred is not None:  # its body goes on in later chunks: served the usual way
                self._start_deferred()
            # The headers go on past this chunk (counted whole: a bound, not a size).
            if self._reading_headers:
                self._header_bytes += len(data)
                if self._header_bytes > max_header_bytes:
                    self._refuse(HeadersTooLargeError(_too_large(max_header_bytes)))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._reading_headers, self._header_bytes = True, 0
            self._arm()

        def on_headers_complete(self) -> None:
            self._reading_headers = False
            self._headers_due = None
            # The URL and headers as parsed (uvicorn keeps them): complete, but too large, the app never sees it.
            # Added up only when the bytes received for them could be too many, not for each small request: a
            # header line counts 4 more than its name and value, and the shortest (`a:\r\n`) is 4 bytes, so what is
            # added up is at most 5/4 of the bytes received since the request began.
            if (self._header_bytes + self._chunk_bytes) * 5 > max_header_bytes * 4:
                parsed = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
                if parsed > max_header_bytes:
                    self._refuse(HeadersTooLargeError(_too_large(max_header_bytes)))
                    raise _Refused  # stops the parser: the body is not read
            self._answering += 1
            _ANSWERING[0] += 1
            self._may_defer = self._answer_now is not None and self._fast_lane_suits()
            try:
                super().on_headers_complete()
            finally:
                self._may_defer = False
            cycle = self.cycle
            if cycle is not None:
                cycle.scope[REQUEST_CYCLE] = weakref.ref(cycle)  # type: ignore[literal-required]  # an extension key
                cycle.transport = self._writes  # type: ignore[assignment]  # writes and closes, as the cycle uses it
                self._writes.hold_next()
                # Until the request's body has arrived, an answer ends the connection (on_response_complete) and
                # must say so in its head (uvicorn then writes `connection: close`): a client told nothing
                # reuses the connection for its next request, which then meets the close ("connection reset by
                # peer"). httpx sends a body in a write of its own, so a 401 can come before it.
                self._keep_alive = cycle.keep_alive
                cycle.keep_alive = False

        def on_message_complete(self) -> None:
            super().on_message_complete()
            cycle = self.cycle
            if cycle is not None and not cycle.response_started:  # the body came first: kept alive as asked
                cycle.keep_alive = self._keep_alive
            deferred = self._deferred
            if deferred is not None and deferred[0] is cycle:
                self._deferred = None
                if not self._answered_now(cycle):
                    super()._start_asgi_task(*deferred)

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if self._may_defer and app is self.app and cycle is self.cycle:
                # Until its body has arrived (on_message_complete) or this chunk ends (data_received).
                self._deferred = cycle, app
                return
            super()._start_asgi_task(cycle, app)

        def _start_deferred(self) -> None:
            deferred, self._deferred = self._deferred, None
            if deferred is not None:
                super()._start_asgi_task(*deferred)

        def _fast_lane_suits(self) -> bool:
            """Whether the request whose headers were just read may be answered at once: a GET or POST, answered
            in order (no answer pending on this connection), with nothing uvicorn's layers would do to it
            (no proxy headers for its ProxyHeadersMiddleware, no `Expect: 100-continue`), to a client that reads
            its answers (not while writing is paused: then the usual way waits for the client)."""
            if self.parser.get_method() not in (b"GET", b"POST") or self.expect_100_continue:
                return False
            if self.flow.write_paused or (self.cycle is not None and not self.cycle.response_complete):
                return False
            return not any(name.startswith(b"x-forwarded-") for name, _ in self.headers)

        def _answered_now(self, cycle: Any) -> bool:
            """The fast lane: the application's answer computed at once (`LakegateApp.answer_now`) and written
            with its head in one write, without an ASGI task, its layers and messages (~20 µs per small answer);
            False when the application wants the request served the usual way."""
            if self.transport.is_closing():
                return False
            try:
                answer = self._answer_now(cycle.scope, bytes(cycle.body))
            except Exception:  # a bug: the usual way answers (and logs) it
                log.exception("the fast lane failed on %s %s", cycle.scope["method"], cycle.scope["path"])
                return False
            if answer is None:
                return False
            cycle.response_started = cycle.response_complete = True
            cycle.body = b""
            out = [STATUS_LINE[answer.status]]
            for name, value in self.server_state.default_headers:
                out += (name, b": ", value, b"\r\n")
            for name, value in answer.headers:
                out += (name, b": ", value, b"\r\n")
            if not cycle.keep_alive:
                out.append(b"connection: close\r\n")
            out += (b"\r\n", answer.body)
            self._writes.write_whole(b"".join(out))
            if not cycle.keep_alive:
                self._writes.close()
            self.on_response_complete()
            if answer.after is not None:
                answer.after()
            return True

        def on_response_complete(self) -> None:
            if self._answering:
                self._answering -= 1
                _ANSWERING[0] -= 1
            if self.cycle is not None and self.cycle.more_body:
                # Answered before its body was read (a 401, a 413): don't read it now. Closed through the cycles'
                # transport, so a head still waiting for its body (a HEAD answer) goes out first.
                self._writes.close()
            # uvicorn's own, but for its keep-alive timer (see _unset_keepalive_if_required).
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:
                self._start_asgi_task(*self.pipeline.pop())
                return
            self._idle_due = self.loop.time() + self.timeout_keep_alive
            if self._idle_timer is None:
                self._idle_timer = self.loop.call_at(self._idle_due, self._on_idle_timer)

        def _unset_keepalive_if_required(self) -> None:
            # uvicorn cancels a keep-alive timer at every chunk received and makes another after every answer
            # (~2 µs per request); here the idle deadline is a number and one timer per connection looks at it,
            # armed again only when it fires early, as the header deadline's.
            self._idle_due = None

        def _on_idle_timer(self) -> None:
            self._idle_timer = None
            due = self._idle_due
            if due is None:  # busy since: the next answer arms the timer again
                return
            if self.loop.time() < due:
                self._idle_timer = self.loop.call_at(due, self._on_idle_timer)
                return
            self.timeout_keep_alive_handler()

        def send_400_response(self, msg: str) -> None:
            self._refuse(MalformedRequestError(msg))

        def _arm(self) -> None:
            if not header_timeout_s:
                return
            self._headers_due = self.loop.time() + header_timeout_s
            if self._timer is None:
                self._timer = self.loop.call_at(self._headers_due, self._on_timer)

        def _on_timer(self) -> None:
            self._timer = None
            due = self._headers_due
            if due is None:  # no request's headers being read: the next one arms the timer again
                return
            if self.loop.time() < due:  # a later request's deadline
                self._timer = self.loop.call_at(due, self._on_timer)
                return
            self._headers_due = None
            self._refuse(
                RequestTimeoutError(
                    f"the request's headers did not arrive within {header_timeout_s:g} seconds"
                )
            )

        def _refuse(self, error: LakegateError) -> None:
            """Answer `error` (unless a response is already going out on this connection) and close."""
            if self.transport.is_closing():
                return
            self._writes.flush()  # a response's head waiting for its body goes first
            # No answer begun on this connection (none in flight, or one still reading its body, e.g. a malformed
            # chunk): the client gets this one, as uvicorn's own 400 would be sent.
            if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
                # The URL read so far (uvicorn collects it in on_url): enough to tell the Iceberg catalog's.
                path = bytes(getattr(self, "url", b"")).split(b"?")[0].decode("latin-1") + "/"
                iceberg = iceberg_path is not None and path.startswith(iceberg_path + "/")
                self.transport.write(_error_bytes(error, self.server_state.default_headers, iceberg))
            self.transport.close()

    return GuardedHttpToolsProtocol


class HeadWithBody:
    """The transport a guarded connection's request cycles write to: a response's first write (its status line and
    headers) waits for the next (its body, or its first chunk) and both go out in one system call. uvicorn writes
    them separately, two sends and two TCP segments per small answer on a `TCP_NODELAY` socket: under load each send
    to a local client was ~10 us of the server's CPU, as much as all of lakegate's own work for a small answer. A
    head whose body does not follow before the event loop's next turn (a streamed answer waiting for its first chunk,
    a HEAD answer, which has no body) is written then on its own."""

    __slots__ = ("_held", "_hold", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._hold = False
        self._held: bytes | None = None

    def hold_next(self) -> None:
        """The next write (a new request's response head) waits for the one after it."""
        self._hold = True

    def write_whole(self, data: bytes) -> None:
        """A whole response (head and body) at once: nothing is held for it."""
        self._hold = False
        self.write(data)

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif self._hold:
            self._hold = False
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()


def _fast_lane(app: Any) -> Any:
    """The `answer_now` of the application below uvicorn's and lakegate's outer layers (`.app` each), or None."""
    for _ in range(8):
        answer_now = getattr(app, "answer_now", None)
        if answer_now is not None:
            return answer_now
        app = getattr(app, "app", None)
    return None


class _Refused(Exception):  # noqa: N818  - a signal to the parser, never seen outside this module
    """Raised from a parser callback to stop parsing a refused request."""


def _too_large(max_header_bytes: int) -> str:
    return f"the request's headers are larger than {max_header_bytes} bytes"


def _error_bytes(error: LakegateError, default_headers: Any, iceberg: bool = False) -> bytes:
    if iceberg:
        body = orjson.dumps(
            {"error": {"message": error.message, "type": iceberg_type(error), "code": error.status}}
        )
    else:
        body = orjson.dumps({"errorCode": error.error_code, "message": error.message})
    head = [f"HTTP/1.1 {error.status} {_REASONS[error.status]}".encode()]
    head += [name + b": " + value for name, value in default_headers]
    head += [
        b"content-type: application/json; charset=utf-8",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body
