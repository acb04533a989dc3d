"""The lean front of the frequent protocol routes (shares, version, metadata, query, temporary credentials).

A small request's answer is a few microseconds of work once everything it needs is in memory; Starlette's layers
around it (the error middlewares, two routers, the mount, the route's request/response wrapper, a `Request`
whose headers and query string are parsed into objects, a `Response` rendered per answer) cost about as much
again. So `LakegateApp` answers these routes itself: it asks Starlette's own routing once per method and path
which endpoint would answer (remembered, bounded), and when that is one of the hot endpoints (`HotRoute`) it calls
it under the same observability (metrics, access line, audit) and the same unexpected-error handling Starlette
would use (its `ServerErrorMiddleware`, built with the app's handler). Every other request goes through
Starlette as before. The Starlette route of a hot path has the same `HotRoute` as its endpoint, so both ways
run one implementation and give byte-identical answers (tests/http/test_hot.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping, Sequence
from typing import Any, NamedTuple, overload

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import QueryParams
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Message, Receive, Scope, Send

from lakegate.http.errors import HANDLERS, handler_for
from lakegate.http.observability import Observer
from lakegate.http.record import RequestRecord, end_record, start_record
from lakegate.inline import run_inline
from lakegate.validity import Dependencies, stop, tracking

MAX_REMEMBERED = 1024  # paths carry callers' names: bounded, forgotten all at once when full


class Whole(NamedTuple):
    """An answer of one piece: what Starlette's `Response` would send, without building one."""

    status: int
    headers: list[tuple[bytes, bytes]]  # as `Response.raw_headers` would hold them, in the same order
    body: bytes
    # Called on the event loop once the body was sent, as a Starlette background task would be (a walk's next
    # page starts rendering then).
    after: Callable[[], None] | None = None


Answer = Whole | Response  # a `Response` (streamed answers, errors) is sent as Starlette sends it


def whole(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    media_type: str | None = None,
    after: Callable[[], None] | None = None,
) -> Whole:
    """`Response(body, 200, headers, media_type)` as Starlette would send it: the given headers (lower-case
    names), then `content-length` and `content-type` unless given (Response.init_headers; tests compare)."""
    raw = (
        []
        if headers is None
        else [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    )
    names = {name for name, _ in raw}
    if b"content-length" not in names:
        raw.append((b"content-length", str(len(body)).encode("latin-1")))
    if media_type is not None and b"content-type" not in names:
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            media_type += "; charset=utf-8"
        raw.append((b"content-type", media_type.encode("latin-1")))
    return Whole(200, raw, body, after)


def as_response(answer: Answer) -> Response:
    """A hot answer as a Starlette `Response`, for an endpoint Starlette calls."""
    if isinstance(answer, Whole):
        after = None if answer.after is None else BackgroundTask(on_the_loop, answer.after)
        response = Response(answer.body, answer.status, background=after)
        response.raw_headers = answer.headers
        return response
    return answer


async def on_the_loop(call: Callable[[], None]) -> None:
    """A quick call as a Starlette background task, on the event loop (a sync one would hop to a thread)."""
    call()


class _Headers:
    """`Request.headers.get` over the raw list: the first header of that name, decoded as Latin-1."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.encode("latin-1")  # callers give lower-case names
        for k, v in self._raw:
            if k == key:
                return v.decode("latin-1")
        return default


_NO_QUERY: Mapping[str, str] = {}  # (a QueryParams' `get` of a missing name raises and catches a KeyError)


class Call:
    """What a hot handler reads of a request, cheaper than Starlette's `Request` (its headers and query string
    are parsed into objects on first use: ~8 µs per small request); it reads the body through a `Request`.
    `whole`: the answer must be one piece (a `Whole`), never streamed (the connection's fast lane)."""

    __slots__ = ("headers", "path_params", "query_params", "receive", "scope", "services", "whole")

    def __init__(self, scope: Scope, receive: Receive, services: Any, whole: bool = False) -> None:
        self.scope = scope
        self.receive = receive
        self.services = services  # the app's Services (lakegate.http.app, which builds on this module)
        self.whole = whole
        self.path_params: dict[str, Any] = scope["path_params"]
        self.headers = _Headers(scope["headers"])
        query = scope.get("query_string")
        self.query_params = (
            QueryParams(query) if query else _NO_QUERY
        )  # Starlette's own parsing when there is one

    def stream(self) -> Any:
        return Request(self.scope, self.receive).stream()


class HotRoute:
    """The ASGI endpoint of a frequent route: `handler(call)`'s answer, or the answer of the app's handler of
    the error it raised (Starlette's ExceptionMiddleware would pick the same one); an error no handler takes is
    raised, for the unexpected-error handling around it. `now(call, body)`: the same answer computed at once
    on the event loop, for a request whose body has arrived (`LakegateApp.answer_now`); it may raise
    `WouldBlock` (`lakegate.inline`) where the handler would wait."""

    def __init__(
        self,
        handler: Callable[[Call], Awaitable[Answer]],
        services: Any,
        now: Callable[[Call, bytes], Answer],
    ) -> None:
        self.handler = handler
        self.services = services
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer = await self.handler(Call(scope, receive, self.services))
        except Exception as exc:
            on_error = handler_for(exc)
            if on_error is None:
                raise
            answer = await on_error(Request(scope, receive), exc)
        if answer.__class__ is Whole:
            await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
            await send({"type": "http.response.body", "body": answer.body})
            if answer.after is not None:
                answer.after()
        else:
            await answer(scope, receive, send)  # type: ignore[operator]  # a Response


class _Kept(NamedTuple):
    answer: Whole
    caller: object  # who asked, as remembered then (by identity)
    recipient: str | None  # the request's record, for the audit event of each answer given again
    stats: dict[str, Any]
    dependencies: Dependencies
    until: float  # time.monotonic()
    # [the millisecond (of Unix time) its checks last held in, the catalog's change mark then]
    checked: list[Any]


class KeptAnswers:
    """Answers of the fast lane given again to the same request (method, path, query, every header, body) for at
    most `seconds`, while the caller is still remembered as the same principal (`caller(call)`: from memory,
    without the database; a revocation, an expiry or any catalog change makes it another or none) and what the
    answer depends on still holds (`lakegate.validity`: the table's latest snapshot, the second a query's URLs
    were signed in, a vended credential's renewal time). Only successful whole answers of at most
    `MAX_BYTES`; bounded, forgotten all at once when full. A repeated `/metadata` cost ~30 µs of handler work
    per request (authentication, the table's lookup, the snapshot check, the answer's headers); given again, a
    few µs. Those checks (~7 µs of a served request under load: the caller's token hashed and looked up, the
    snapshot's look) are made once per millisecond per kept answer while the catalog's change mark stays
    (`changes`: a change made in this process counts at once): the same bound a table's next commit and another
    process's catalog change are looked for with, within the same second (a query's URLs are signed for their
    second)."""

    MAX_ENTRIES = 512
    MAX_BYTES = 16 * 1024

    def __init__(
        self,
        caller: Callable[[Call], object | None],
        seconds: float,
        changes: Callable[[], Hashable] = lambda: 0,
    ) -> None:
        self.caller = caller if seconds > 0 else lambda call: None
        self.seconds = seconds
        self.changes = changes
        self._entries: dict[tuple[Any, ...], _Kept] = {}
        self._sweep_at = 0.0

    def again(self, call: Call, body: bytes, record: RequestRecord) -> Whole | None:
        """The answer kept for this request if it still holds (then `record` is as the first request's left it)."""
        if not self._entries:
            return None
        kept = self._entries.get(_request_key(call.scope, body))
        if kept is None or time.monotonic() >= kept.until:
            return None
        checked = [int(time.time() * 1000), self.changes()]
        if kept.checked != checked:
            held = run_inline(lambda: self.caller(call) is kept.caller and kept.dependencies.hold())
            if held is None or not held[0]:
                return None
            kept.checked[:] = checked
        record.recipient, record.stats = kept.recipient, kept.stats
        return kept.answer

    def keep(
        self,
        call: Call,
        body: bytes,
        answer: Whole,
        caller: object,
        record: RequestRecord,
        dependencies: Dependencies,
    ) -> None:
        """Keep `answer`, made for `caller` (as remembered before it was made) under `dependencies`."""
        if answer.status != 200 or answer.after is not None or len(answer.body) > self.MAX_BYTES:
            return
        if self.caller(call) is not caller:  # the caller's catalog entry changed while the answer was made
            return
        now = time.monotonic()
        if now >= self._sweep_at:  # what has run out goes (its bytes, its caller), at most once per `seconds`
            self._entries = {key: kept for key, kept in self._entries.items() if kept.until > now}
            self._sweep_at = now + self.seconds
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        until = now + self.seconds
        self._entries[_request_key(call.scope, body)] = _Kept(
            answer, caller, record.recipient, record.stats, dependencies, until, [-1, None]
        )


def _request_key(scope: Scope, body: bytes) -> tuple[Any, ...]:
    return scope["method"], scope["path"], scope["query_string"], tuple(scope["headers"]), body


class LakegateApp(Starlette):
    """Starlette with the lean front described above; `observer`: metrics, access log and audit (also the
    middleware's, for every other request)."""

    def __init__(self, observer: Observer, kept: KeptAnswers | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.observer = observer
        self.kept = kept or KeptAnswers(lambda call: None, 0)
        self._hot: dict[tuple[str, str], tuple[HotRoute, dict[str, Any]] | None] = {}
        self._observed = ServerErrorMiddleware(self._serve_hot, handler=HANDLERS[Exception])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = (scope["method"], scope["path"])
            try:
                hot = self._hot[key]
            except KeyError:
                hot = self._remember(key, scope)
            if hot is not None:
                scope["app"] = self
                scope["endpoint"], params = hot
                scope["path_params"] = dict(params)
                await self._observed(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _serve_hot(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.observer.serve(scope["endpoint"], scope, receive, send)

    def answer_now(self, scope: Scope, body: bytes) -> Whole | None:
        """The answer to a request whose headers and body have arrived, computed at once when it is a hot route's
        and everything it needs is in memory (observed: metrics, access line, audit event), for the connection
        to write (`lakegate.http.connection`'s fast lane: no ASGI task, no layers, no messages); None when the
        request must be served the usual way (nothing of it is then recorded)."""
        key = (scope["method"], scope["path"])
        try:
            hot = self._hot[key]
        except KeyError:
            hot = self._remember(key, scope)
        # With the audit queue full the event is stored by a thread the usual way (back-pressure).
        if hot is None or not self.observer.audit.has_room():
            return None
        route, params = hot
        scope["app"] = self
        scope["endpoint"] = route
        scope["path_params"] = dict(params)
        record, token = start_record()
        try:
            start = time.perf_counter()
            call = Call(scope, _nothing_to_receive, route.services, whole=True)
            answer = self.kept.again(call, body, record)
            if answer is None:
                answer = self._made_now(route.now, call, body, record)
                if answer is None:
                    return None
            # Blocking only if the audit queue filled up meanwhile, which it cannot (only this thread queues).
            self.observer.finish(scope, record, answer.status, start, blocking=True, soon=True)
            return answer
        finally:
            end_record(token)

    def _made_now(
        self, now: Callable[[Call, bytes], Answer], call: Call, body: bytes, record: RequestRecord
    ) -> Whole | None:
        """`now`'s answer, or its error's, in inline mode (kept for the same request when it may be); None when it
        would block or failed unexpectedly (the usual way runs it again from the start, with its own handling)."""
        caller = self.kept.caller(call)
        dependencies, tracked = tracking()
        try:
            done = run_inline(lambda: now(call, body))
            if done is None:
                return None
            answer = done[0]
        except Exception as exc:  # noqa: BLE001  - given to the handler Starlette would pick, or declined
            on_error = handler_for(exc)
            if on_error is None:
                return None
            answer = _at_once(on_error(Request(call.scope, _nothing_to_receive), exc))
        finally:
            stop(tracked)
        if not isinstance(answer, Whole):
            if isinstance(answer, StreamingResponse):
                return None  # (only when not asked for one piece)
            return Whole(answer.status_code, answer.raw_headers, bytes(answer.body))  # an error's answer
        if caller is not None and dependencies.reusable:
            self.kept.keep(call, body, answer, caller, record, dependencies)
        return answer

    def _remember(self, key: tuple[str, str], scope: Scope) -> tuple[HotRoute, dict[str, Any]] | None:
        found = _endpoint(self.routes, scope)
        hot = found if found is not None and isinstance(found[0], HotRoute) else None
        if len(scope["path"]) <= 1024:
            if len(self._hot) >= MAX_REMEMBERED:
                self._hot.clear()
            self._hot[key] = hot
        return hot


async def _nothing_to_receive() -> Message:
    return {"type": "http.disconnect"}  # (a fast-lane request's body is handed over whole, never received)


def _at_once(answer: Awaitable[Response]) -> Response:
    """The result of an error handler's coroutine, which never waits (they render an error answer)."""
    assert isinstance(answer, Coroutine)
    try:
        answer.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    answer.close()
    raise RuntimeError("an error handler waited")


def _endpoint(routes: Sequence[BaseRoute], scope: Scope) -> tuple[Any, dict[str, Any]] | None:
    """(endpoint, path parameters) of the route Starlette would answer `scope` with: the first that matches fully,
    looked for in mounts as Starlette's routers do; None when none does (a 404, 405 or slash redirect)."""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            inner = {**scope, **child}
            if isinstance(route, Mount):
                return _endpoint(route.routes, inner)
            return inner.get("endpoint"), inner.get("path_params", {})
    return None
