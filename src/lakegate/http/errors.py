"""The one place where errors become HTTP answers: `{"errorCode", "message"}` with the class's status
(`lakegate.exceptions` draws the tree). The code also goes to the request's record, for the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lakegate.exceptions import (
    INTERNAL_MESSAGE,
    DatabaseUnavailableError,
    LakegateError,
    MalformedRequestError,
    MethodNotAllowedError,
    NoSuchNamespaceError,
    NoSuchTableError,
    NotFoundError,
    PermissionDeniedError,
    RequestTooLargeError,
    StorageError,
    StorageUnavailableError,
    TableStateError,
    TooManyRequestsError,
    UnauthenticatedError,
    UnsupportedMediaTypeError,
    UnsupportedOperationError,
    public_message,
)
from lakegate.http.record import observe_error

log = logging.getLogger("lakegate.errors")

# Starlette's own HTTP errors (routing, body parsing), as the classes of the tree.
_HTTP_ERRORS: dict[int, type[LakegateError]] = {
    400: MalformedRequestError,
    401: UnauthenticatedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: RequestTooLargeError,
    415: UnsupportedMediaTypeError,
}


# The Iceberg REST catalog's error `type`s (its clients pick exception classes by status, some by type).
_ICEBERG_TYPES: list[tuple[type[LakegateError], str]] = [
    (NoSuchNamespaceError, "NoSuchNamespaceException"),
    (NoSuchTableError, "NoSuchTableException"),
    (NotFoundError, "NotFoundException"),
    (UnauthenticatedError, "NotAuthorizedException"),
    (PermissionDeniedError, "ForbiddenException"),
    (UnsupportedOperationError, "UnsupportedOperationException"),
    (TooManyRequestsError, "TooManyRequestsException"),
    (DatabaseUnavailableError, "ServiceUnavailableException"),
    (StorageUnavailableError, "ServiceUnavailableException"),
]


def iceberg_type(exc: LakegateError) -> str:
    for cls, name in _ICEBERG_TYPES:
        if isinstance(exc, cls):
            return name
    return "BadRequestException" if exc.status < 500 else "ServiceFailureException"


def _iceberg_path(request: Request) -> bool:
    """Whether the request is one of the Iceberg catalog's (its errors take the Iceberg error model)."""
    prefix: str | None = getattr(request.app.state, "iceberg_path", None)
    return prefix is not None and (request.url.path + "/").startswith(prefix + "/")


def error_response(exc: LakegateError, head: bool = False, iceberg: bool = False) -> Response:
    """The answer for `exc`: its status, code and (if public) message; HEAD answers carry no body. `iceberg`:
    in the Iceberg REST error model, `{"error": {message, type, code}}`."""
    observe_error(exc.error_code)
    if head:
        return Response(status_code=exc.status, headers=exc.headers)
    if iceberg:
        return JSONResponse(
            {"error": {"message": public_message(exc), "type": iceberg_type(exc), "code": exc.status}},
            status_code=exc.status,
            media_type="application/json; charset=utf-8",
            headers=exc.headers,
        )
    return JSONResponse(
        {"errorCode": exc.error_code, "message": public_message(exc)},
        status_code=exc.status,
        media_type="application/json; charset=utf-8",
        headers=exc.headers,
    )


async def lakegate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LakegateError)
    if isinstance(exc, TableStateError):
        # The request path names the share, schema and table; the detail names the file at fault.
        log.error("table problem on %s %s: %s", request.method, logged_path(request), exc.detail)
    if not exc.public:
        # A store failure is an operational event whose message says it all; anything else is a bug.
        trace = None if isinstance(exc, StorageError) else exc
        log.error("internal error on %s %s: %s", request.method, logged_path(request), exc, exc_info=trace)
    return error_response(exc, request.method == "HEAD", _iceberg_path(request))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error: LakegateError = NotFoundError(f"no such endpoint: {request.method} {request.url.path}")
    elif exc.status_code in _HTTP_ERRORS:
        error = _HTTP_ERRORS[exc.status_code](str(exc.detail))
    elif exc.status_code >= 500:
        error = LakegateError(str(exc.detail))
    else:  # another 4xx: keep its status, say the request was not understood
        error = MalformedRequestError(str(exc.detail))
        error.status = exc.status_code
    return error_response(error, request.method == "HEAD", _iceberg_path(request))


def logged_path(request: Request) -> str:
    """The request's path as a log line may carry it: a one-time activation code is a secret (whoever has it can
    download a credential), logged as `{code}`, as the access line does."""
    head, activate, _ = request.url.path.partition("/activate/")
    return head + activate + "{code}" if activate else request.url.path


# Connection-level database failures: the database is down or unreachable, not a bug.
DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


def log_database_down(request: Request, exc: Exception) -> None:
    log.error("database unavailable on %s %s: %s", request.method, logged_path(request), type(exc).__name__)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """Connection-level database failures (see DatabaseUnavailableError); other SQL errors are bugs (500)."""
    log_database_down(request, exc)
    return error_response(
        DatabaseUnavailableError(type(exc).__name__), request.method == "HEAD", _iceberg_path(request)
    )


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, logged_path(request), exc_info=exc)
    return error_response(LakegateError(INTERNAL_MESSAGE), request.method == "HEAD", _iceberg_path(request))


HANDLERS = {
    LakegateError: lakegate_error,
    HTTPException: http_error,
    **dict.fromkeys(DATABASE_DOWN, database_unavailable),
    Exception: unexpected_error,
}


def handler_for(exc: Exception) -> Callable[[Request, Exception], Awaitable[Response]] | None:
    """The handler Starlette's ExceptionMiddleware would give `exc` (the first of its classes, most derived
    first, with one), or None for an error only the unexpected-error handler takes (`Exception`)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = HANDLERS.get(cls)
        if handler is not None:
            return handler
    return None
