"""The admin API under /admin: recipients, grants, shares, tables and the audit trail, as the CLI offers them.

Every request needs an admin token (`lakegate admin-tokens create NAME`); recipients' tokens are not admin
tokens and admin tokens read no data. Answers are the same JSON as `lakegate … --output json`. Each change
is logged with the admin token's name.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lakegate.audit import AuditLog, parse_since
from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.recipients import Issued, Recipients
from lakegate.catalog.shares import Shares
from lakegate.exceptions import InvalidParameterError, NotFoundError
from lakegate.http.auth import bearer_token
from lakegate.protocol.requests import json_object, parse_int

log = logging.getLogger("lakegate.admin")


@dataclass
class AdminApi:
    tokens: AdminTokens
    recipients: Recipients
    shares: Shares
    audit: AuditLog
    endpoint: str  # the public endpoint written into recipients' profiles

    def issued(self, issued: Issued) -> dict[str, Any]:
        return {"recipient": issued.recipient, "profile": issued.profile(self.endpoint)}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NewRecipient(_Body):
    name: str
    shares: list[str] = Field(default_factory=list)
    expires_in: int | None = Field(None, alias="expiresInSeconds")
    comment: str | None = None


class Rotation(_Body):
    grace: int = Field(0, alias="graceSeconds")
    expires_in: int | None = Field(None, alias="expiresInSeconds")


class NewShare(_Body):
    name: str
    display_name: str | None = Field(None, alias="displayName")
    comment: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)


class NewTable(_Body):
    schema_name: str = Field(alias="schema")
    name: str
    location: str
    history_shared: bool = Field(False, alias="historyShared")
    start_version: int = Field(0, alias="startVersion")
    auxiliary_locations: list[str] = Field(default_factory=list, alias="auxiliaryLocations")


def _parse(model: type[BaseModel], body: bytes) -> Any:
    data = json_object(body)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise InvalidParameterError(f"{where}: {err['msg']}") from None


Action = Callable[[Request, bytes], tuple[int, Any]]


def admin_routes(api: AdminApi) -> list[BaseRoute]:
    def endpoint(action: Action) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            admin = await run_in_threadpool(api.tokens.authenticate, bearer_token(request))
            if any("\x00" in str(v) for v in request.path_params.values()):
                raise NotFoundError("no such name: names cannot contain NUL characters")
            body = await request.body()
            status, data = await run_in_threadpool(action, request, body)
            if request.method != "GET":
                log.info(
                    "admin '%s': %s %s",
                    admin,
                    request.method,
                    request.url.path,
                    extra={"admin": {"token": admin, "method": request.method, "path": request.url.path}},
                )
            return JSONResponse(data, status_code=status, media_type="application/json; charset=utf-8")

        return handle

    def p(request: Request, key: str) -> str:
        return str(request.path_params[key])

    def list_recipients(request: Request, body: bytes) -> tuple[int, Any]:
        return 200, {"items": api.recipients.all()}

    def create_recipient(request: Request, body: bytes) -> tuple[int, Any]:
        new = _parse(NewRecipient, body)
        return 201, api.issued(api.recipients.create(new.name, new.shares, new.expires_in, new.comment))

    def get_recipient(request: Request, body: bytes) -> tuple[int, Any]:
        return 200, api.recipients.get(p(request, "recipient"))

    def rotate(request: Request, body: bytes) -> tuple[int, Any]:
        rotation = _parse(Rotation, body)
        return 200, api.issued(
            api.recipients.rotate(p(request, "recipient"), rotation.grace, rotation.expires_in)
        )

    def revoke(request: Request, body: bytes) -> tuple[int, Any]:
        return 200, api.recipients.revoke(p(request, "recipient"))

    def grant(request: Request, body: bytes) -> tuple[int, Any]:
        change = api.recipients.grant if request.method == "PUT" else api.recipients.ungrant
        return 200, change(p(request, "recipient"), p(request, "share"))

    def list_shares(request: Request, body: bytes) -> tuple[int, Any]:
        return 200, {"items": api.shares.all()}

    def create_share(request: Request, body: bytes) -> tuple[int, Any]:
        new = _parse(NewShare, body)
        return 201, api.shares.create(new.name, new.display_name, new.comment, new.properties)

    def share(request: Request, body: bytes) -> tuple[int, Any]:
        if request.method == "DELETE":
            return 200, api.shares.delete(p(request, "share"))
        return 200, api.shares.show(p(request, "share"))

    def add_table(request: Request, body: bytes) -> tuple[int, Any]:
        new = _parse(NewTable, body)
        return 201, api.shares.add_table(
            p(request, "share"),
            new.schema_name,
            new.name,
            new.location,
            history_shared=new.history_shared,
            start_version=new.start_version,
            auxiliary_locations=new.auxiliary_locations,
        )

    def remove_table(request: Request, body: bytes) -> tuple[int, Any]:
        return 200, api.shares.remove_table(p(request, "share"), p(request, "schema"), p(request, "table"))

    def audit(request: Request, body: bytes) -> tuple[int, Any]:
        q = request.query_params
        since = parse_since(q["since"]) if q.get("since") else None
        limit = parse_int(q.get("limit", "100"), "limit")
        return 200, {"items": api.audit.query(since, q.get("recipient"), limit)}

    return [
        Route("/recipients", endpoint(list_recipients), methods=["GET"]),
        Route("/recipients", endpoint(create_recipient), methods=["POST"]),
        Route("/recipients/{recipient}", endpoint(get_recipient), methods=["GET"]),
        Route("/recipients/{recipient}/rotate", endpoint(rotate), methods=["POST"]),
        Route("/recipients/{recipient}/revoke", endpoint(revoke), methods=["POST"]),
        Route("/recipients/{recipient}/grants/{share}", endpoint(grant), methods=["PUT", "DELETE"]),
        Route("/shares", endpoint(list_shares), methods=["GET"]),
        Route("/shares", endpoint(create_share), methods=["POST"]),
        Route("/shares/{share}", endpoint(share), methods=["GET", "DELETE"]),
        Route("/shares/{share}/tables", endpoint(add_table), methods=["POST"]),
        Route("/shares/{share}/schemas/{schema}/tables/{table}", endpoint(remove_table), methods=["DELETE"]),
        Route("/audit", endpoint(audit), methods=["GET"]),
    ]
