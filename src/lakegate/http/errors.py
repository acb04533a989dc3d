"""The one place where errors become HTTP answers: `{"errorCode", "message"}` with the class's status."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lakegate.exceptions import LakegateError

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
    if exc.public:
        message = exc.message
    else:
        log.error("internal error on %s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        message = "An internal error occurred; the server log has the details."
    return error_response(exc.status, exc.error_code, message, request.method == "HEAD")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(
        exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500 else "MALFORMED_REQUEST"
    )
    message = (
        exc.detail if exc.status_code != 404 else f"no such endpoint: {request.method} {request.url.path}"
    )
    return error_response(exc.status_code, code, str(message), request.method == "HEAD")


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "INTERNAL_ERROR",
        "An internal error occurred; the server log has the details.",
        request.method == "HEAD",
    )


HANDLERS = {LakegateError: lakegate_error, HTTPException: http_error, Exception: unexpected_error}
