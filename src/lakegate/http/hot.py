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

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple, overload

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import QueryParams
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Receive, Scope, Send

from lakegate.http.errors import HANDLERS, handler_for
from lakegate.http.observability import Observer

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
    are parsed into objects on first use: ~8 µs per small request); it reads the body through a `Request`."""

    __slots__ = ("headers", "path_params", "query_params", "receive", "scope", "services")

    def __init__(self, scope: Scope, receive: Receive, services: Any) -> None:
        self.scope = scope
        self.receive = receive
        self.services = services  # the app's Services (lakegate.http.app, which builds on this module)
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
    raised, for the unexpected-error handling around it."""

    def __init__(self, handler: Callable[[Call], Awaitable[Answer]], services: Any) -> None:
        self.handler = handler
        self.services = services

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


class LakegateApp(Starlette):
    """Starlette with the lean front described above; `observer`: metrics, access log and audit (also the
    middleware's, for every other request)."""

    def __init__(self, observer: Observer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.observer = observer
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

    def _remember(self, key: tuple[str, str], scope: Scope) -> tuple[HotRoute, dict[str, Any]] | None:
        found = _endpoint(self.routes, scope)
        hot = found if found is not None and isinstance(found[0], HotRoute) else None
        if len(scope["path"]) <= 1024:
            if len(self._hot) >= MAX_REMEMBERED:
                self._hot.clear()
            self._hot[key] = hot
        return hot


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
