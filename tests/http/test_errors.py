"""Every error lakegate can answer, raised through a route: the status and code protocol.md §7 gives it, the
`{"errorCode","message"}` body, and no internal detail in the message."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

import lakegate.exceptions as errors
from lakegate.http.errors import HANDLERS

SECRET = "s3://bucket/secret/path?X-Amz-Credential=AKIA"

# protocol.md §7.2 (the reference server's mapping) and §12 point 10.
PROTOCOL = {
    "InvalidParameterError": (400, "INVALID_PARAMETER_VALUE"),
    "MalformedRequestError": (400, "MALFORMED_REQUEST"),
    "UnsupportedOperationError": (400, "UNSUPPORTED_OPERATION"),
    "UnauthenticatedError": (401, "UNAUTHENTICATED"),
    "PermissionDeniedError": (403, "PERMISSION_DENIED"),
    "NotFoundError": (404, "RESOURCE_DOES_NOT_EXIST"),
    "TableFilesMissingError": (400, "RESOURCE_DOES_NOT_EXIST"),
    "StorageError": (500, "INTERNAL_ERROR"),
    "LakegateError": (500, "INTERNAL_ERROR"),
}


def _error_classes() -> list[type[errors.LakegateError]]:
    found, todo = [], [errors.LakegateError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    # Private bases (`_ClientError`) are never raised themselves.
    return sorted(
        {c for c in found if c.__module__.startswith("lakegate") and not c.__name__.startswith("_")},
        key=lambda c: c.__name__,
    )


def _answer(exc: BaseException, method: str = "GET") -> httpx.Response:
    def fail(request: Request) -> None:
        raise exc

    app = Starlette(routes=[Route("/fail", fail, methods=["GET", "HEAD"])], exception_handlers=HANDLERS)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, "/fail")

    return asyncio.run(call())


def test_the_protocols_errors_are_all_there() -> None:
    assert set(PROTOCOL) <= {c.__name__ for c in _error_classes()}


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_renders_its_status_and_code(cls: type[errors.LakegateError]) -> None:
    response = _answer(cls(f"failed on {SECRET}"))
    body = response.json()
    assert set(body) == {"errorCode", "message"}
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    if cls.__name__ in PROTOCOL:
        assert (response.status_code, body["errorCode"]) == PROTOCOL[cls.__name__]
    assert (response.status_code, body["errorCode"]) == (cls.status, cls.error_code)
    # Internal errors (every 500 the protocol lists) keep their details in the server log; client errors, and
    # the errors whose messages are written to be shown, say what was wrong.
    hidden = not cls.public or PROTOCOL.get(cls.__name__, (0,))[0] >= 500
    if hidden:
        assert SECRET not in body["message"]
    else:
        assert body["message"] == f"failed on {SECRET}"
    head = _answer(cls("x"), "HEAD")
    assert head.status_code == response.status_code and head.content == b""


def test_an_unexpected_exception_is_a_500_without_details() -> None:
    response = _answer(KeyError(SECRET))
    assert response.status_code == 500
    assert response.json()["errorCode"] == "INTERNAL_ERROR" and SECRET not in response.text


@pytest.mark.parametrize(
    ("status", "code"), [(405, "METHOD_NOT_ALLOWED"), (413, "MALFORMED_REQUEST"), (415, "MALFORMED_REQUEST")]
)
def test_starlettes_http_errors_get_the_same_shape(status: int, code: str) -> None:
    response = _answer(HTTPException(status, "nope"))
    assert response.status_code == status and response.json() == {"errorCode": code, "message": "nope"}
