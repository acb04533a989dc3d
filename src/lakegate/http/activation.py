"""Recipient activation pages: `{publicUrl}/activate/CODE` (inside the sharing endpoint, where recipients
already reach this server).

GET shows the provider's name, the recipient and its shares, and a "Download credential file" button; the
button POSTs (a link preview or prefetcher that GETs the page uses nothing up) with a CSRF token bound to the
code. The first download makes the recipient's token and answers the profile file; later visits say the link
was used and whom to ask. The code is never logged: access lines and metrics name the route, not the path.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lakegate.audit import Access, AuditLog
from lakegate.catalog.activations import ActivationLinks, LinkState
from lakegate.config import ServerConfig
from lakegate.http import html
from lakegate.http.body import read_body
from lakegate.keys import KeyRing

log = logging.getLogger("lakegate.activation")
PURPOSE = "activation-form"
OPERATION = "credential-download"
MODE = "link"


@dataclass
class Activation:
    links: ActivationLinks
    audit: AuditLog
    keys: KeyRing
    config: ServerConfig

    def csrf(self, code: str) -> str:
        return self.keys.sign(PURPOSE, code.encode())

    def page(
        self, code: str, state: LinkState | None, status: int = 200, unavailable: bool = False
    ) -> Response:
        settings = self.config.activation_links
        return html.render(
            "activate.html",
            status=503 if unavailable else status if state is not None else 404,
            headers={"Retry-After": "60"} if unavailable else None,
            unavailable=unavailable,
            link=state,
            provider=settings.provider_name or "your data provider",
            contact=settings.contact,
            csrf=self.csrf(code) if state is not None else "",
        )


def _code(request: Request) -> str:
    return str(request.path_params["code"])


async def show(activation: Activation, request: Request) -> Response:
    code = _code(request)
    return activation.page(code, await run_in_threadpool(activation.links.state, code))


async def download(activation: Activation, request: Request) -> Response:
    code = _code(request)
    body = await read_body(request, 4096, activation.config.request_timeout_seconds or None)
    state = await run_in_threadpool(activation.links.state, code)
    if state is None:
        return activation.page(code, None)
    given = dict(_pairs(body)).get("csrf", "")
    if not activation.keys.verify(PURPOSE, code.encode(), given):
        return activation.page(code, state, 403)
    result, issued = await run_in_threadpool(activation.links.redeem, code)
    client = request.client.host if request.client else None
    outcome, status = ("ok", 200) if issued is not None else (f"ACTIVATION_LINK_{result.state.upper()}", 410)
    event = Access(
        recipient=result.recipient,
        operation=OPERATION,
        share=None,
        schema_name=None,
        table_name=None,
        mode=MODE,
        status=status,
        outcome=outcome,
        client=client,
        user_agent=request.headers.get("user-agent"),
    )
    await run_in_threadpool(activation.audit.record, event)
    if issued is None:
        return activation.page(code, result, 410)
    profile = issued.profile(activation.config.public_endpoint())
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", result.recipient) + ".share"  # a header value: ASCII only
    return html.secure(
        Response(
            json.dumps(profile, indent=2) + "\n",
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    )


def _pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return []


def activation_routes(activation: Activation) -> list[BaseRoute]:
    """Below the sharing endpoint; HTML, so not in the OpenAPI document."""

    def unavailable(request: Request) -> Response:
        return activation.page(_code(request), None, unavailable=True)

    pages = html.page_when_database_down(partial(show, activation), unavailable)
    downloads = html.page_when_database_down(partial(download, activation), unavailable)
    return [
        Route("/activate/" + html.STYLESHEET, html.stylesheet, include_in_schema=False),
        Route("/activate/{code}", pages, include_in_schema=False),
        Route("/activate/{code}", downloads, methods=["POST"], include_in_schema=False),
    ]
