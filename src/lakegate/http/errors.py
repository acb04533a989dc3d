"""The one place where errors become HTTP answers: `{"errorCode", "message"}` with the class's status."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lakegate.exceptions import INTERNAL_MESSAGE, LakegateError, TableStateError, public_message

log = logging.getLogger("lakegate.errors")

_HTTP_CODES = {
    400: "MALFORMED_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "METHOD_NOT_ALLOWED",
    413: "MALFORMED_REQUEST",
    415: "MALFORMED_REQUEST",
}


def error_response(
    status: int, code: str, message: str, head: bool = False, headers: dict[str, str] | None = None
) -> Response:
    if head:  # HEAD answers carry no body
        return Response(status_code=status, headers=headers)
    return JSONResponse(
        {"errorCode": code, "message": message},
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=headers,
    )


async def lakegate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LakegateError)
    if isinstance(exc, TableStateError):
        # The request path names the share, schema and table; the detail names the file at fault.
        log.error("table problem on %s %s: %s", request.method, request.url.path, exc.detail)
    if not exc.public:
        log.error("internal error on %s %s: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_response(exc.status, exc.error_code, public_message(exc), request.method == "HEAD")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(
        exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500 else "MALFORMED_REQUEST"
    )
    message = (
        exc.detail if exc.status_code != 404 else f"no such endpoint: {request.method} {request.url.path}"
    )
    return error_response(exc.status_code, code, str(message), request.method == "HEAD")


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """The catalog's database refused or dropped the connection (stopped, restarting, failing over): 503, so
    clients retry; the connection pool pings before reuse, so requests succeed again once it is back."""
    log.error("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(
        503,
        "TEMPORARILY_UNAVAILABLE",
        "The server's database is unavailable right now; try again shortly.",
        request.method == "HEAD",
    )


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", INTERNAL_MESSAGE, request.method == "HEAD")


HANDLERS = {
    LakegateError: lakegate_error,
    HTTPException: http_error,
    # Connection-level database failures only; other SQL errors are bugs (500).
    sa.exc.OperationalError: database_unavailable,
    sa.exc.InterfaceError: database_unavailable,
    sa.exc.TimeoutError: database_unavailable,
    Exception: unexpected_error,
}
