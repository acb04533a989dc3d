"""The Iceberg REST catalog routes, mounted at `{endpoint}/iceberg` (the use cases are `service.iceberg`).

Same credentials (bearer tokens, access tokens of the token endpoint, which Iceberg clients reach at
`/v1/oauth/tokens` too, Basic), grants and audit as the sharing protocol. Every write of the spec is routed, so
that it is refused as the read-only catalog's 403 (ForbiddenException) after authentication, not as an unknown
route.
Errors take the spec's shape (`{"error": {message, type, code}}`, http/errors.py).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lakegate.catalog.base import Principal
from lakegate.http.auth import credential
from lakegate.http.oauth import token as oauth_token
from lakegate.http.record import observe_principal, observe_stats
from lakegate.service.iceberg import IcebergCatalog, read_only

PATH = "/iceberg"  # below the sharing endpoint
DELEGATION = "x-iceberg-access-delegation"
JSON_UTF8 = "application/json; charset=utf-8"


def _catalog(request: Request) -> IcebergCatalog:
    catalog: IcebergCatalog = request.app.state.services.iceberg
    return catalog


def _principal(request: Request) -> Principal:
    principal: Principal = request.app.state.services.catalog.authenticate(credential(request))
    observe_principal(principal)
    return principal


def _json(data: dict[str, Any], no_store: bool = False) -> JSONResponse:
    # no-store: vended credentials must not be kept by proxies or HTTP caches.
    headers = {"Cache-Control": "no-store"} if no_store else None
    return JSONResponse(data, media_type=JSON_UTF8, headers=headers)


def _names(request: Request) -> tuple[str, str]:
    return request.path_params["prefix"], request.path_params["namespace"]


def config(request: Request) -> Response:
    return _json(_catalog(request).config(_principal(request), request.query_params.get("warehouse")))


def namespaces(request: Request) -> Response:
    principal = _principal(request)
    if request.method == "POST":
        raise read_only("creating a namespace")
    q = request.query_params
    return _json(
        _catalog(request).list_namespaces(
            principal, request.path_params["prefix"], q.get("parent"), q.get("pageToken"), q.get("pageSize")
        )
    )


def namespace(request: Request) -> Response:
    principal = _principal(request)
    if request.method == "DELETE":
        raise read_only("dropping a namespace")
    answer = _catalog(request).load_namespace(principal, *_names(request))
    return Response(status_code=204) if request.method == "HEAD" else _json(answer)


def tables(request: Request) -> Response:
    principal = _principal(request)
    if request.method == "POST":
        raise read_only("creating a table")
    q = request.query_params
    return _json(
        _catalog(request).list_tables(principal, *_names(request), q.get("pageToken"), q.get("pageSize"))
    )


def table(request: Request) -> Response:
    principal = _principal(request)
    if request.method == "POST":
        raise read_only("committing to a table")
    if request.method == "DELETE":
        raise read_only("dropping a table")
    name = request.path_params["table"]
    if request.method == "HEAD":
        _catalog(request).table(principal, *_names(request), name)
        return Response(status_code=204)
    vended = "vended-credentials" in request.headers.get(DELEGATION, "").lower()
    answer, version = _catalog(request).load_table(principal, *_names(request), name, vended)
    observe_stats({"version": version, "credentials": "storage-credentials" in answer})
    return _json(answer, no_store=vended)


def credentials(request: Request) -> Response:
    answer = _catalog(request).load_credentials(
        _principal(request), *_names(request), request.path_params["table"]
    )
    observe_stats({"credentials": bool(answer["storage-credentials"])})
    return _json(answer, no_store=True)


def write(what: str) -> Any:
    """A route refusing a write the spec defines (after authentication, so a stranger gets 401 first)."""

    async def refuse(request: Request) -> Response:
        await run_in_threadpool(_principal, request)
        raise read_only(what)

    return refuse


def iceberg_routes() -> list[BaseRoute]:
    prefix = "/v1/{prefix}"
    ns = prefix + "/namespaces/{namespace}"
    return [
        Route("/v1/config", config),
        # Where Iceberg clients given `credential=<client id>:<secret>` ask for a token (the spec's deprecated
        # endpoint, which PyIceberg, Spark and Trino still use): the server's own token endpoint.
        Route("/v1/oauth/tokens", oauth_token, methods=["POST"]),
        Route(prefix + "/namespaces", namespaces, methods=["GET", "POST"]),
        Route(ns, namespace, methods=["GET", "HEAD", "DELETE"]),
        Route(ns + "/properties", write("changing a namespace's properties"), methods=["POST"]),
        Route(ns + "/register", write("registering a table"), methods=["POST"]),
        Route(ns + "/tables", tables, methods=["GET", "POST"]),
        Route(ns + "/tables/{table}", table, methods=["GET", "HEAD", "POST", "DELETE"]),
        Route(ns + "/tables/{table}/credentials", credentials, methods=["GET", "POST"]),
        Route(prefix + "/tables/rename", write("renaming a table"), methods=["POST"]),
        Route(prefix + "/transactions/commit", write("committing a transaction"), methods=["POST"]),
    ]
