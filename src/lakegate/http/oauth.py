"""The token endpoint and its metadata, below the sharing prefix: `{endpoint}/oauth/token` and
`{endpoint}/.well-known/oauth-authorization-server` (also at the RFC 8414 place, the well-known path inserted
before the endpoint path). Answers are OAuth's (RFC 6749 §5), never cached (`Cache-Control: no-store`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lakegate.auth.jose import ASYMMETRIC
from lakegate.catalog.profiles import METADATA_PATH, TOKEN_PATH
from lakegate.exceptions import UnauthenticatedError
from lakegate.http.auth import basic_credentials
from lakegate.http.body import read_body
from lakegate.service.oauth import (
    AUTH_METHODS,
    GRANT_TYPES,
    OAuthError,
    TokenEndpoint,
    invalid_client,
    invalid_request,
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM = "application/x-www-form-urlencoded"


def issuer(request: Request) -> str:
    """This server's issuer: the configured publicUrl, else the URL the client reached (the endpoint)."""
    config = request.app.state.services.config
    if config.public_url:
        return str(config.public_endpoint())
    return str(request.base_url).rstrip("/") + str(config.endpoint)


def _audiences(request: Request) -> set[str]:
    """What an assertion's `aud` may be: the issuer or the token endpoint URL, as profiles and the request name
    them (without publicUrl the Host header decides, so configure publicUrl behind a proxy)."""
    config = request.app.state.services.config
    names = {issuer(request), str(config.public_endpoint())}
    return names | {name + TOKEN_PATH for name in names}


def _form(request: Request, body: bytes) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM:
        raise invalid_request(f"the token request must be {FORM}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("the token request body is not a valid form") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:  # RFC 6749 §3.2: parameters must not be included more than once
            raise invalid_request(f"parameter {key} is given more than once")
        form[key] = value
    return form


def _answer(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


async def token(request: Request) -> Response:
    services = request.app.state.services
    endpoint: TokenEndpoint = services.token_endpoint
    config = services.config
    try:
        body = await read_body(request, config.max_request_body_bytes, config.request_timeout_seconds)
        form = _form(request, body)
        try:
            basic = basic_credentials(request)
        except UnauthenticatedError:  # its message speaks of bearer tokens: the sharing routes' words
            raise invalid_client(
                "malformed HTTP Basic client credentials (base64 of client_id:secret)"
            ) from None
        address = request.client.host if request.client else "unknown"
        answer = await run_in_threadpool(endpoint.exchange, form, basic, address, _audiences(request))
    except OAuthError as exc:
        return _answer(exc.body(), exc.status, exc.headers)
    return _answer(answer)


def metadata(request: Request) -> Response:
    """RFC 8414 authorization server metadata."""
    name = issuer(request)
    return _answer(
        {
            "issuer": name,
            "token_endpoint": name + TOKEN_PATH,
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(ASYMMETRIC),
            "response_types_supported": [],  # no authorization endpoint: machine clients only
        }
    )


def oauth_routes() -> list[Route]:
    """Routes below the sharing prefix."""
    return [Route(TOKEN_PATH, token, methods=["POST"]), Route(METADATA_PATH, metadata)]


def well_known_route(endpoint: str) -> Route:
    """The metadata where RFC 8414 §3.1 looks for an issuer with a path: /.well-known/…{endpoint}."""
    return Route(METADATA_PATH + endpoint, metadata)
