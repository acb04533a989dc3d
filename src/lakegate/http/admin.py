"""The admin API under /admin: recipients, grants, shares, tables and the audit trail, as the CLI offers them.

Every request needs an admin token (`lakegate admin-tokens create NAME`); recipients' tokens are not admin
tokens and admin tokens read no data. Answers are the same JSON as `lakegate … --output json`. Each change
is recorded in the audit trail (operation `admin:<action>`) with the admin token's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lakegate.audit import AuditLog, admin_change, parse_since
from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.recipients import Issued, PolicyRequest, PublicKeyRequest, Recipients
from lakegate.catalog.shares import Shares
from lakegate.exceptions import InvalidParameterError, NotFoundError
from lakegate.http.auth import bearer_token
from lakegate.http.body import read_body
from lakegate.protocol.requests import json_object, parse_int

log = logging.getLogger("lakegate.admin")


@dataclass
class AdminApi:
    tokens: AdminTokens
    recipients: Recipients
    shares: Shares
    audit: AuditLog
    endpoint: str  # the public endpoint written into recipients' profiles
    max_body_bytes: int = 1 << 20  # maxRequestBodyBytes
    body_timeout_s: float | None = None  # requestTimeoutSeconds

    def issued(self, issued: Issued) -> dict[str, Any]:
        return {"recipient": issued.recipient, "profile": issued.profile(self.endpoint)}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Free text (comments, display names, properties) is stored as is: PostgreSQL refuses a NUL in text.
        texts = (
            [*value, *value.values()]
            if isinstance(value, dict)
            else value
            if isinstance(value, list)
            else [value]
        )
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("text cannot contain NUL characters")
        return value


class _Credential(_Body):
    """Which credential to issue: `auth` (AUTH_METHODS) and, for private-key-jwt, the key to register."""

    auth: str = "token"
    public_key: str | None = Field(None, alias="publicKey")  # PEM
    key_id: str | None = Field(None, alias="keyId")
    algorithm: str | None = None

    def key(self) -> PublicKeyRequest | None:
        if self.public_key is None and self.key_id is None and self.algorithm is None:
            return None
        if not self.public_key or not self.key_id:
            raise InvalidParameterError("publicKey and keyId go together (auth private-key-jwt)")
        return PublicKeyRequest(self.public_key, self.key_id, self.algorithm)


class NewPolicy(_Body):
    """An OIDC federation policy (docs/recipients.md, "OIDC federation")."""

    issuer: str
    audiences: list[str]
    subject: str
    subject_claim: str | None = Field(None, alias="subjectClaim")  # default "sub"


class NewRecipient(_Credential):
    name: str
    shares: list[str] = Field(default_factory=list)
    expires_in: int | None = Field(None, alias="expiresInSeconds")
    comment: str | None = None
    # auth oidc: the recipient's federation policy, and its IdP's token endpoint and scope for the profile
    federation_policy: NewPolicy | None = Field(None, alias="federationPolicy")
    token_endpoint: str | None = Field(None, alias="tokenEndpoint")
    scope: str | None = None

    def policy(self) -> PolicyRequest | None:
        if self.federation_policy is None:
            if self.token_endpoint is not None or self.scope is not None:
                raise InvalidParameterError(
                    "tokenEndpoint and scope go with auth oidc and its federationPolicy"
                )
            return None
        p = self.federation_policy
        return PolicyRequest(
            p.issuer, tuple(p.audiences), p.subject, p.subject_claim, self.token_endpoint, self.scope
        )


class Rotation(_Credential):
    grace: int = Field(0, alias="graceSeconds")
    expires_in: int | None = Field(None, alias="expiresInSeconds")  # default: the last token's lifetime
    never_expires: bool = Field(False, alias="neverExpires")


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


class TableSettings(_Body):
    history_shared: bool | None = Field(None, alias="historyShared")
    start_version: int | None = Field(None, alias="startVersion")


def _parse_body(model: type[BaseModel], body: bytes) -> Any:
    data = json_object(body)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise InvalidParameterError(f"{where}: {err['msg']}") from None


# A handler runs in a worker thread with the API's parts, the request and its body; it returns (status, JSON).
Handler = Callable[[AdminApi, Request, bytes], tuple[int, Any]]


def _path_param(request: Request, key: str) -> str:
    return str(request.path_params[key])


def all_recipients(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, {"items": api.recipients.all()}


def create_recipient(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    new = _parse_body(NewRecipient, body)
    issued = api.recipients.create(
        new.name,
        new.shares,
        new.expires_in,
        new.comment,
        auth=new.auth,
        public_key=new.key(),
        policy=new.policy(),
    )
    return 201, api.issued(issued)


def get_recipient(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, api.recipients.get(_path_param(request, "recipient"))


def rotate_tokens(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    rotation = _parse_body(Rotation, body)
    issued = api.recipients.rotate(
        _path_param(request, "recipient"),
        rotation.grace,
        rotation.expires_in,
        rotation.never_expires,
        auth=rotation.auth,
        public_key=rotation.key(),
    )
    return 200, api.issued(issued)


def revoke_tokens(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, api.recipients.revoke(_path_param(request, "recipient"))


def delete_recipient(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, api.recipients.delete(_path_param(request, "recipient"))


def grant(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, api.recipients.grant(_path_param(request, "recipient"), _path_param(request, "share"))


def ungrant(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, api.recipients.ungrant(_path_param(request, "recipient"), _path_param(request, "share"))


def add_policy(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    new = _parse_body(NewPolicy, body)
    recipient = _path_param(request, "recipient")
    return 201, api.recipients.add_policy(
        recipient, new.issuer, new.audiences, new.subject, new.subject_claim
    )


def remove_policy(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    policy_id = parse_int(_path_param(request, "policy_id"), "policy id")
    return 200, api.recipients.remove_policy(_path_param(request, "recipient"), policy_id)


def all_shares(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, {"items": api.shares.all()}


def create_share(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    new = _parse_body(NewShare, body)
    return 201, api.shares.create(new.name, new.display_name, new.comment, new.properties)


def show_share(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, api.shares.show(_path_param(request, "share"))


def delete_share(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    return 200, api.shares.delete(_path_param(request, "share"))


def add_table(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    new = _parse_body(NewTable, body)
    return 201, api.shares.add_table(
        _path_param(request, "share"),
        new.schema_name,
        new.name,
        new.location,
        history_shared=new.history_shared,
        start_version=new.start_version,
        auxiliary_locations=new.auxiliary_locations,
    )


def update_table(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    settings = _parse_body(TableSettings, body)
    names = (_path_param(request, "share"), _path_param(request, "schema"), _path_param(request, "table"))
    return 200, api.shares.update_table(
        *names, history_shared=settings.history_shared, start_version=settings.start_version
    )


def remove_table(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    names = (_path_param(request, "share"), _path_param(request, "schema"), _path_param(request, "table"))
    return 200, api.shares.remove_table(*names)


def audit_events(api: AdminApi, request: Request, body: bytes) -> tuple[int, Any]:
    q = request.query_params
    since = parse_since(q["since"]) if q.get("since") else None
    limit = parse_int(q.get("limit", "100"), "limit")
    return 200, {"items": api.audit.query(since, q.get("recipient"), limit)}


def _change(action: str, request: Request, body: bytes, data: Any) -> dict[str, str | None]:
    """What a change touched, for the audit trail: names from the path, else from the answer or the body."""
    names: dict[str, str | None] = {
        key: request.path_params.get(key) for key in ("recipient", "share", "schema", "table")
    }
    if action == "recipient-create":
        names["recipient"] = data["recipient"]["name"]
    elif action == "share-create":
        names["share"] = data["name"]
    elif action == "table-add":
        new = _parse_body(NewTable, body)
        names.update(schema=new.schema_name, table=new.name)
    return names


async def _handle(api: AdminApi, handler: Handler, action: str | None, request: Request) -> Response:
    """What every admin request goes through: the admin token, the names, the handler, the audit trail."""
    admin = await run_in_threadpool(api.tokens.authenticate, bearer_token(request))
    if any("\x00" in str(v) for v in request.path_params.values()):
        raise NotFoundError("no such name: names cannot contain NUL characters")
    body = await read_body(request, api.max_body_bytes, api.body_timeout_s)
    status, data = await run_in_threadpool(handler, api, request, body)
    if action is not None:
        client = request.client.host if request.client else None
        names = _change(action, request, body, data)
        await run_in_threadpool(record_change, api.audit, admin, action, names, status, client, request)
    return JSONResponse(data, status_code=status, media_type="application/json; charset=utf-8")


def record_change(
    audit: AuditLog,
    admin: str,
    action: str,
    names: dict[str, str | None],
    status: int,
    client: str | None,
    request: Request,
) -> None:
    """Log and audit an admin change made by admin token `admin` (the admin API's and the console's alike)."""
    log.info(
        "admin '%s': %s %s",
        admin,
        request.method,
        request.url.path,
        extra={"admin": {"token": admin, "method": request.method, "path": request.url.path}},
    )
    change = admin_change(
        admin,
        action,
        recipient=names.get("recipient"),
        share=names.get("share"),
        schema_name=names.get("schema"),
        table_name=names.get("table"),
    )
    audit.record(change._replace(status=status, client=client))


def _route(api: AdminApi, path: str, handler: Handler, method: str, action: str | None = None) -> Route:
    """A route; `action` names a change for the audit trail (None: a read)."""
    return Route(path, partial(_handle, api, handler, action), methods=[method])


def admin_routes(api: AdminApi) -> list[BaseRoute]:
    """The /admin route table; each route's endpoint is `_handle` bound to the API and its handler."""
    return [
        _route(api, "/recipients", all_recipients, "GET"),
        _route(api, "/recipients", create_recipient, "POST", "recipient-create"),
        _route(api, "/recipients/{recipient}", get_recipient, "GET"),
        _route(api, "/recipients/{recipient}", delete_recipient, "DELETE", "recipient-delete"),
        _route(api, "/recipients/{recipient}/rotate", rotate_tokens, "POST", "recipient-rotate"),
        _route(api, "/recipients/{recipient}/revoke", revoke_tokens, "POST", "recipient-revoke"),
        _route(api, "/recipients/{recipient}/grants/{share}", grant, "PUT", "grant"),
        _route(api, "/recipients/{recipient}/grants/{share}", ungrant, "DELETE", "ungrant"),
        _route(api, "/recipients/{recipient}/federation-policies", add_policy, "POST", "policy-add"),
        _route(
            api,
            "/recipients/{recipient}/federation-policies/{policy_id}",
            remove_policy,
            "DELETE",
            "policy-remove",
        ),
        _route(api, "/shares", all_shares, "GET"),
        _route(api, "/shares", create_share, "POST", "share-create"),
        _route(api, "/shares/{share}", show_share, "GET"),
        _route(api, "/shares/{share}", delete_share, "DELETE", "share-delete"),
        _route(api, "/shares/{share}/tables", add_table, "POST", "table-add"),
        _route(
            api, "/shares/{share}/schemas/{schema}/tables/{table}", remove_table, "DELETE", "table-remove"
        ),
        _route(api, "/shares/{share}/schemas/{schema}/tables/{table}", update_table, "PATCH", "table-update"),
        _route(api, "/audit", audit_events, "GET"),
    ]
