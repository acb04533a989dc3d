"""The ASGI application: the route table on one screen, authentication, and thin handlers.

Handlers are plain (sync) functions. The small, frequent ones (listings, version, metadata, queries, temporary
credentials) first run on the event loop and move to Starlette's thread pool only when they would block — a
database query, a log to read, a snapshot to build, a credential to vend (`lakegate.inline`): most answers come
from memory, and a hop to the thread pool cost more than the answer. The others run in the thread pool, so log
reads and signing never block the event loop. NDJSON bodies stream from a generator in ~1 MiB chunks.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Lifespan

from lakegate._memo import Memo
from lakegate.catalog.base import Catalog, Principal
from lakegate.cloud.local import PURPOSE, file_url_payload
from lakegate.config import ServerConfig
from lakegate.exceptions import (
    InvalidLocationError,
    NotFoundError,
    PermissionDeniedError,
    RangeNotSatisfiableError,
)
from lakegate.http.auth import credential, quiet_credential
from lakegate.http.body import check_body_size, read_body
from lakegate.http.errors import HANDLERS
from lakegate.http.hot import (
    Answer,
    Call,
    HotRoute,
    KeptAnswers,
    LakegateApp,
    Whole,
    as_response,
    on_the_loop,
    whole,
)
from lakegate.http.iceberg import PATH as ICEBERG_PATH
from lakegate.http.iceberg import iceberg_routes
from lakegate.http.oauth import oauth_routes, well_known_route
from lakegate.http.observability import ObservabilityMiddleware, Observer
from lakegate.http.openapi import openapi_document
from lakegate.http.ranges import check_range
from lakegate.http.record import observe_answer, observe_principal
from lakegate.http.routing import RememberingRouter
from lakegate.inline import must_not_block, run_inline
from lakegate.keys import KeyRing
from lakegate.protocol.capabilities import HEADER, Capabilities
from lakegate.protocol.requests import QueryInfoRequest, QueryRequest, only_one_of, parse_version
from lakegate.service.async_queries import AsyncQueries
from lakegate.service.browse import BrowseService
from lakegate.service.context import TableContext, parse_file_id_hash
from lakegate.service.credentials import CredentialService
from lakegate.service.history import HistoryService
from lakegate.service.iceberg import IcebergCatalog
from lakegate.service.oauth import TokenEndpoint
from lakegate.service.responses import NdjsonAnswer
from lakegate.service.tables import TableService

log = logging.getLogger("lakegate.http")
T = TypeVar("T")
JSON_UTF8 = "application/json; charset=utf-8"


@dataclass
class Services:
    """The use cases the routes call, and what they share."""

    config: ServerConfig
    catalog: Catalog
    keys: KeyRing
    context: TableContext
    browse: BrowseService
    tables: TableService  # version, metadata, snapshot queries
    history: HistoryService  # streaming queries, change data feed
    async_queries: AsyncQueries
    credentials: CredentialService  # directory access (temporary table credentials)
    iceberg: IcebergCatalog  # the Iceberg REST catalog over shares (http/iceberg.py)
    token_endpoint: TokenEndpoint  # OAuth access tokens for client secrets and private-key JWTs


async def inline_first(work: Callable[[], T]) -> T:
    """`work()` on the event loop when it can run there without blocking (`lakegate.inline`), else in the
    thread pool."""
    done = run_inline(work)
    return done[0] if done is not None else await run_in_threadpool(work)


def _inline_first(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
    """The handler as an endpoint that answers on the event loop when nothing blocks (`lakegate.inline`)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        return await inline_first(lambda: handler(request))

    return endpoint


def _svc(request: Request | Call) -> Services:
    services: Services = request.services if isinstance(request, Call) else request.app.state.services
    return services


def _principal(request: Request | Call) -> Principal:
    principal = _svc(request).catalog.authenticate(credential(request))
    observe_principal(principal)
    return principal


def _json(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse(data, media_type=JSON_UTF8)


def _json_whole(data: dict[str, Any]) -> Whole:
    """`_json`'s answer, sent without the response object (its bytes are JSONResponse's own)."""
    return whole(JSONResponse.render(_JSON_RENDERER, data), None, JSON_UTF8)


_JSON_RENDERER = JSONResponse(None)


def _ndjson(answer: NdjsonAnswer, one_piece: bool = False) -> Answer:
    """An answer of one chunk (most answers) goes out whole, with no further hop to the thread pool; a longer
    one streams, chunk by chunk, from its generator, unless `one_piece` (an answer made on the event loop, of at
    most `lakegate.inline.MAX_INLINE_FILES` files, for the connection's fast lane)."""
    observe_answer(answer)
    chunks = answer.chunks()
    first = next(chunks, b"")
    second = next(chunks, None)
    media_type = answer.headers["Content-Type"]
    if second is not None and one_piece:
        first, second = b"".join((first, second, *chunks)), None
    if second is None:  # (a walk's page: its next page starts rendering once this one was sent)
        return whole(first, answer.headers, media_type, answer.after_sent)
    return StreamingResponse(
        itertools.chain((first, second), chunks),
        headers=answer.headers,
        media_type=media_type,
        background=None if answer.after_sent is None else BackgroundTask(on_the_loop, answer.after_sent),
    )


def _params(request: Request | Call) -> tuple[str, str, str]:
    p = request.path_params
    return p["share"], p["schema"], p["table"]


# Clients send the same few capability headers and query bodies again and again (parsing one costs more than
# the rest of a small answer's handler); bodies are remembered only when small.
_CAPABILITIES: Memo[str | None, Capabilities] = Memo(Capabilities.parse)
_QUERIES: Memo[bytes, QueryRequest] = Memo(QueryRequest.from_body)
_MEMO_BODY_BYTES = 1024


def _capabilities(request: Request | Call) -> Capabilities:
    return _CAPABILITIES(request.headers.get(HEADER))


def _query_request(body: bytes) -> QueryRequest:
    return _QUERIES(body) if len(body) <= _MEMO_BODY_BYTES else QueryRequest.from_body(body)


def _base_url_of(key: tuple[str, Any, str | None, str]) -> str:
    scheme, server, host, root_path = key
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    scope = {"type": "http", "scheme": scheme, "server": server, "headers": headers, "root_path": root_path}
    return str(Request(scope).base_url).rstrip("/")


_BASE_URLS = Memo(_base_url_of)


def _base_url(request: Request | Call) -> str:
    """Starlette's `request.base_url` without the slash, remembered by what it is made of (it builds two URL
    objects per request); the endpoint is appended by the callers."""
    scope = request.scope
    root_path = scope.get("app_root_path", scope.get("root_path", ""))
    server = scope.get("server")
    key = (scope.get("scheme", "http"), server and tuple(server), request.headers.get("host"), root_path)
    return _BASE_URLS(key)


# -- discovery --------------------------------------------------------------------------------------------------


def list_shares(call: Call) -> Answer:
    q = call.query_params
    return _json_whole(
        _svc(call).browse.list_shares(_principal(call), q.get("maxResults"), q.get("pageToken"))
    )


@_inline_first
def get_share(request: Request) -> Response:
    return _json(_svc(request).browse.get_share(_principal(request), request.path_params["share"]))


@_inline_first
def list_schemas(request: Request) -> Response:
    q = request.query_params
    return _json(
        _svc(request).browse.list_schemas(
            _principal(request), request.path_params["share"], q.get("maxResults"), q.get("pageToken")
        )
    )


@_inline_first
def list_tables(request: Request) -> Response:
    q, p = request.query_params, request.path_params
    return _json(
        _svc(request).browse.list_tables(
            _principal(request), p["share"], p["schema"], q.get("maxResults"), q.get("pageToken")
        )
    )


@_inline_first
def list_all_tables(request: Request) -> Response:
    q = request.query_params
    return _json(
        _svc(request).browse.list_tables(
            _principal(request), request.path_params["share"], None, q.get("maxResults"), q.get("pageToken")
        )
    )


# -- tables -----------------------------------------------------------------------------------------------------


def table_version(call: Call) -> Answer:
    version = _svc(call).tables.table_version(
        _principal(call), *_params(call), call.query_params.get("startingTimestamp")
    )
    return whole(b"", {"Delta-Table-Version": str(version)})


def table_metadata(call: Call) -> Answer:
    q = call.query_params
    principal = _principal(call)
    only_one_of(q, "version", "timestamp")  # before either value, as the reference server
    answer = _svc(call).tables.table_metadata(
        principal,
        *_params(call),
        _capabilities(call),
        version=parse_version(q.get("version")),
        timestamp=q.get("timestamp"),
    )
    return _ndjson(answer)


async def _caller_and_body(request: Request | Call) -> tuple[Principal, bytes]:
    """Authenticate first, then read the body within its bounds: a stranger's body is never read. A caller
    authenticated a moment ago is known without a hop to the thread pool."""
    principal = _svc(request).catalog.remembered(credential(request))
    if principal is None:
        principal = await run_in_threadpool(_principal, request)
    else:
        observe_principal(principal)
    config = _svc(request).config
    return principal, await read_body(request, config.max_request_body_bytes, config.request_timeout_seconds)


def _remembered_caller(call: Call, body: bytes) -> Principal:
    """`_caller_and_body`'s caller for a body that has arrived whole, from memory alone (in inline mode a caller
    only the database knows hands the request over, `lakegate.inline`), and the body within its bounds."""
    principal = _svc(call).catalog.remembered(quiet_credential(call))
    if principal is None:
        must_not_block()
        principal = _principal(call)
    else:
        observe_principal(principal)
    check_body_size(call, len(body), _svc(call).config.max_request_body_bytes)
    return principal


async def query_table(call: Call) -> Answer:
    principal, body = await _caller_and_body(call)
    return await inline_first(lambda: _query(call, principal, body))


def _query(call: Call, principal: Principal, body: bytes) -> Answer:
    query = _query_request(body)
    # A query from a starting version reads the table's history (in a worker thread); any other reads one
    # snapshot.
    if query.starting_version is not None:
        must_not_block()
    use_case = _svc(call).tables.query if query.starting_version is None else _svc(call).history.stream_query
    answer = use_case(
        principal,
        *_params(call),
        query,
        _capabilities(call),
        parse_file_id_hash(call.headers.get("fileidhash")),
        _base_url(call) + _prefix(call),
    )
    return _ndjson(answer, call.whole)


def query_now(call: Call, body: bytes) -> Answer:
    """`query_table`'s answer at once (`HotRoute.now`)."""
    return _query(call, _remembered_caller(call, body), body)


NO_STORE = {"Cache-Control": "no-store"}  # a credential must not be kept by proxies or HTTP caches


async def table_credentials(call: Call) -> Answer:
    principal, body = await _caller_and_body(call)
    return whole(await inline_first(lambda: _credentials(call, principal, body)), NO_STORE, JSON_UTF8)


def _credentials(call: Call, principal: Principal, body: bytes) -> bytes:
    return _svc(call).credentials.temporary_credentials(principal, *_params(call), body)


def credentials_now(call: Call, body: bytes) -> Answer:
    """`table_credentials`' answer at once (`HotRoute.now`)."""
    return whole(_credentials(call, _remembered_caller(call, body), body), NO_STORE, JSON_UTF8)


def table_changes(request: Request) -> Response:
    answer = _svc(request).history.changes(
        _principal(request),
        *_params(request),
        request.query_params,
        _capabilities(request),
        parse_file_id_hash(request.headers.get("fileidhash")),
        _base_url(request) + _prefix(request),
    )
    return as_response(_ndjson(answer))


async def query_info(request: Request) -> Response:
    principal, body = await _caller_and_body(request)

    def run() -> NdjsonAnswer:
        return _svc(request).async_queries.query_info(
            principal,
            *_params(request),
            request.path_params["query_id"],
            QueryInfoRequest.from_body(body),
            _capabilities(request),
        )

    return await run_in_threadpool(lambda: as_response(_ndjson(run())))


def _prefix(request: Request | Call) -> str:
    return _svc(request).config.endpoint


# -- files of local tables, served under signed URLs -------------------------------------------------------------


_MAX_EXPIRES_DIGITS = 12  # seconds since 1970, good until the year 33658


def _expires(text: str) -> int | None:
    """The `Expires` of a file URL (ASCII digits only: `isdigit()` also takes '²', which `int()` refuses)."""
    if not text or len(text) > _MAX_EXPIRES_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _file_below(root: str, path: str) -> str | None:
    """The real path of `path`, or None when it is not a regular file below the table root `root`. Symlinks are
    followed first, so a link inside the root that leads out of it is refused like a missing file."""
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if not real.startswith(real_root.rstrip(os.sep) + os.sep) or not os.path.isfile(real):
        return None
    return real


def serve_file(request: Request) -> Response:
    svc = _svc(request)
    share, schema, table = _params(request)
    relative = request.path_params["path"]
    expires = _expires(request.query_params.get("Expires", ""))
    signature = request.query_params.get("X-Amz-Signature", "")
    table_path = f"{share}/{schema}/{table}"
    if expires is None or not svc.keys.verify(
        PURPOSE, file_url_payload(table_path, relative, expires), signature
    ):
        raise PermissionDeniedError("the file URL's signature is invalid")
    if expires < time.time():
        raise PermissionDeniedError("the file URL has expired")
    resolved = svc.context.resolve(None, share, schema, table)
    if resolved.root.cloud != "file":  # only local tables' files are served here
        raise NotFoundError("file not found")
    try:
        wanted = resolved.root.child(relative).local_path
    except InvalidLocationError:  # '..', '.' or control characters in the client's path: no such file
        raise NotFoundError("file not found") from None
    path = _file_below(resolved.root.local_path, wanted)
    if path is None:
        raise NotFoundError("file not found")
    return _file_response(request, path)


def _file_response(request: Request, path: str) -> Response:
    """The file, or the ranges of it the `Range` header asks for (FileResponse reads Range from the scope, so
    the scope gets what `check_range` kept)."""
    size = os.path.getsize(path)
    ranges = check_range(request.headers.get("range"), size)
    if ranges.unsatisfiable:
        raise RangeNotSatisfiableError(
            f"no range of the Range header lies within the file's {size} bytes", size
        )
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"range"]
    if ranges.header is not None:
        headers.append((b"range", ranges.header.encode("latin-1")))
    request.scope["headers"] = headers
    return FileResponse(path, media_type="application/octet-stream")


def openapi(request: Request) -> Response:
    return _json(request.app.state.openapi)


def health(request: Request) -> Response:
    return _json({"status": "ok"})


async def bench_hello(request: Request) -> Response:
    """make bench's yardstick (benchmarks/bench_small.py): the cheapest answer this stack can give."""
    return Response(b"hello", media_type="text/plain")


KEPT_ANSWER_SECONDS = 1.0  # (lakegate.http.hot.KeptAnswers)
# The hello-world route exists only for the benchmark, which sets this variable for the server it starts.
BENCH_HELLO = "LAKEGATE_BENCH_HELLO"


def create_app(
    services: Services,
    observer: Observer,
    operations: Sequence[BaseRoute] = (),
    lifespan: Lifespan[Starlette] | None = None,
    pages: Sequence[BaseRoute] = (),
) -> Starlette:
    """`observer`: metrics, access log and audit of every request; `operations`: /metrics, /readyz, the /admin
    and /console mounts; `pages`: HTML routes below the endpoint (recipients' activation pages)."""
    tables = "/shares/{share}/schemas/{schema}/tables/{table}"

    def hot(work: Callable[[Call], Answer]) -> HotRoute:
        """The hot route of a GET whose `work` answers on the event loop when nothing blocks."""

        async def handler(call: Call) -> Answer:
            return await inline_first(lambda: work(call))

        return HotRoute(handler, services, lambda call, body: work(call))

    version = hot(table_version)
    protocol_routes = [
        Route("/shares", hot(list_shares), methods=["GET"]),
        Route("/shares/{share}", get_share),
        Route("/shares/{share}/schemas", list_schemas),
        Route("/shares/{share}/schemas/{schema}/tables", list_tables),
        Route("/shares/{share}/all-tables", list_all_tables),
        Route(tables, version, methods=["HEAD"]),
        Route(tables + "/version", version, methods=["GET"]),
        Route(tables + "/metadata", hot(table_metadata), methods=["GET"]),
        Route(tables + "/query", HotRoute(query_table, services, query_now), methods=["POST"]),
        Route(tables + "/changes", table_changes),
        Route(tables + "/queries/{query_id}", query_info, methods=["POST"]),
        Route(
            tables + "/temporary-table-credentials",
            HotRoute(table_credentials, services, credentials_now),
            methods=["POST"],
        ),
        Route("/files/{share}/{schema}/{table}/{path:path}", serve_file, methods=["GET", "HEAD"]),
        Route("/openapi.json", openapi),  # public: it describes the API (http/openapi.py), never data
        *oauth_routes(),  # the token endpoint and its metadata (http/oauth.py)
        # No slash redirects: a name that decodes to '/' (`…/tables/%2F`) is an unknown route, not a 307 to a list.
        Mount(ICEBERG_PATH, app=Router(iceberg_routes(), redirect_slashes=False)),
        *pages,
    ]
    bench = [Route("/bench/hello", bench_hello)] if os.environ.get(BENCH_HELLO) == "1" else []
    # Answers of repeated small requests, given again for at most a second (never longer than the catalog is
    # remembered: `catalogCacheSeconds` 0 remembers nothing, so keeps nothing).
    kept = KeptAnswers(
        lambda call: services.catalog.remembered(quiet_credential(call)),
        min(KEPT_ANSWER_SECONDS, services.config.catalog_cache_seconds),
        services.catalog.change_mark,
    )
    app = LakegateApp(
        observer,
        kept,
        routes=[
            Route("/healthz", health),
            *bench,
            well_known_route(services.config.endpoint),
            *operations,
            Mount(services.config.endpoint, app=RememberingRouter(protocol_routes)),
        ],
        exception_handlers=HANDLERS,
        middleware=[Middleware(ObservabilityMiddleware, observer=observer)],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.iceberg_path = services.config.endpoint + ICEBERG_PATH  # its errors take Iceberg's model
    app.state.openapi = openapi_document(services.config.endpoint)
    return app
