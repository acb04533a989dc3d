"""Server-rendered HTML (the console and the activation page): Jinja2 with autoescaping, and the headers every
HTML answer carries.

Every value reaching a template is escaped (autoescape on for every template, whatever its name); the pages use
no script and no inline style, so the Content-Security-Policy allows neither, and no page may be framed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from lakegate.http.errors import DATABASE_DOWN, log_database_down

# No script at all; styles from this origin's stylesheet only; forms post only here; never in a frame.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Activation pages carry their one-time code in the URL: no other site may see it as a referrer.
    "Referrer-Policy": "no-referrer",
    # Pages show recipients, tokens' states and one-time links: no cache may keep them.
    "Cache-Control": "no-store",
}
STYLESHEET = "lakegate.css"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("lakegate.http", "templates"),
        autoescape=True,  # every template, not only *.html: a value is never written unescaped
        undefined=StrictUndefined,  # a misspelt name fails the test that renders it, not silently blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["size"] = human_size
    return env


def when(value: datetime | str | None) -> str:
    """A time as people read it: `2026-12-07 14:59 UTC` (from a datetime or the API's ISO-8601 text)."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def human_size(value: int | None) -> str:
    """Bytes in decimal units (1.6 KB), as the Activity charts' axes count them."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:g} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def render(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    body = _environment().get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def page_when_database_down(
    endpoint: Callable[[Request], Awaitable[Response]], unavailable: Callable[[Request], Response]
) -> Callable[[Request], Awaitable[Response]]:
    """An HTML route's endpoint that answers `unavailable(request)` (a 503 page saying to come back) when the
    database cannot be reached: people read these pages in a browser, not the protocol's JSON error."""

    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except DATABASE_DOWN as exc:
            log_database_down(request, exc)
            return unavailable(request)

    return answer


def secure(response: Response) -> Response:
    """A non-page answer of the HTML routes (redirects, downloads) with the same headers."""
    response.headers.update(SECURITY_HEADERS)
    return response


@cache
def _stylesheet() -> bytes:
    return (files("lakegate.http") / "static" / STYLESHEET).read_bytes()


def stylesheet(request: Request) -> Response:
    # Not secret: browsers may keep it an hour.
    return Response(
        _stylesheet(),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
