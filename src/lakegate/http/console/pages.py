"""The console's pages and forms: Shares, Recipients, Activity, sign-in.

Every change goes through the same catalog objects as the admin API (`AdminApi`: Shares, Recipients) and is
recorded the same way (`record_change`: operation `admin:<action>`, the admin token's name as actor). A form
posts, the change is made, and the browser is sent back (303) to the page with a message; creating or rotating
a recipient answers with the page that shows its activation link, once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from lakegate.audit import MAX_LIMIT, AuditFilter
from lakegate.catalog import profiles
from lakegate.catalog.activations import ActivationLinks
from lakegate.catalog.base import TableInfo
from lakegate.catalog.db import utcnow
from lakegate.catalog.recipients import Issued, PolicyRequest, PublicKeyRequest
from lakegate.catalog.shares import table_info
from lakegate.config import ServerConfig
from lakegate.exceptions import InvalidParameterError, LakegateError, UnauthenticatedError
from lakegate.http import html
from lakegate.http.admin import AdminApi, record_change
from lakegate.http.body import read_body
from lakegate.http.console import session as sessions
from lakegate.http.console.charts import activity_charts
from lakegate.http.console.session import Session
from lakegate.keys import KeyRing
from lakegate.service.inspect import TableInspector

log = logging.getLogger("lakegate.console")
HOUR, DAY = 3600, 86400
CHART_DAYS = 14  # the Activity charts' default period


@dataclass
class Console:
    """What the console's pages use: the admin API's catalog objects, links, the table inspector, keys."""

    api: AdminApi
    links: ActivationLinks
    inspector: TableInspector
    keys: KeyRing
    config: ServerConfig

    def activation_url(self, code: str) -> str:
        return f"{self.config.public_endpoint()}/activate/{code}"


@dataclass
class Page:
    """One request to the console: its session (signed in) and form, and the session to send back."""

    console: Console
    request: Request
    session: Session
    form: dict[str, str] = field(default_factory=dict)
    form_lists: dict[str, list[str]] = field(default_factory=dict)

    @property
    def admin(self) -> str:
        assert self.session.admin is not None
        return self.session.admin

    def field(self, name: str, label: str | None = None) -> str:
        value = self.form.get(name, "").strip()
        if not value and label:
            raise InvalidParameterError(f"{label} is required")
        return value

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        flash = self.session.flash
        self.session = replace(self.session, flash=None)  # shown once
        return html.render(
            template,
            status,
            admin=self.admin,
            csrf=self.session.csrf,
            flash=flash,
            section=template.split(".", maxsplit=1)[0].split("_", maxsplit=1)[0],
            **context,
        )

    def done(self, to: str, message: str) -> Response:
        self.session = sessions.with_flash(self.session, "ok", message)
        return RedirectResponse(to, status_code=303)

    def failed(self, to: str, error: LakegateError) -> Response:
        self.session = sessions.with_flash(self.session, "error", error.message)
        return RedirectResponse(to, status_code=303)

    def audit(self, action: str, **names: str | None) -> None:
        client = self.request.client.host if self.request.client else None
        record_change(self.console.api.audit, self.admin, action, names, 200, client, self.request)


View = Callable[[Page], Response]


def _path(page: Page, key: str) -> str:
    return str(page.request.path_params[key])


def share_url(name: str) -> str:
    return "/console/shares/" + quote(name, safe="")


def recipient_url(name: str) -> str:
    return "/console/recipients/" + quote(name, safe="")


# -- shares -----------------------------------------------------------------------------------------------------


def shares_page(page: Page) -> Response:
    return page.render("shares.html", shares=page.console.api.shares.all())


def create_share(page: Page) -> Response:
    try:
        name = page.field("name", "Share name")
        created = page.console.api.shares.create(
            name, page.field("display_name") or None, page.field("comment") or None
        )
    except LakegateError as exc:
        return page.failed("/console/shares", exc)
    page.audit("share-create", share=created["name"])
    return page.done(share_url(created["name"]), f"Share '{created['name']}' created.")


def share_page(page: Page) -> Response:
    share = page.console.api.shares.show(_path(page, "share"))
    tables = []
    for table in share["tables"]:
        info = table_info(share["name"], table)
        summary = page.console.inspector.summary(info)
        tables.append({**table, "schema": info.schema, "table": info.name, "summary": summary})
    return page.render("share.html", share=share, tables=tables, url=share_url(share["name"]))


def delete_share(page: Page) -> Response:
    name = _path(page, "share")
    try:
        deleted = page.console.api.shares.delete(name)
    except LakegateError as exc:
        return page.failed(share_url(name), exc)
    page.audit("share-delete", share=deleted["name"])
    return page.done("/console/shares", f"Share '{deleted['name']}' deleted.")


def add_table(page: Page) -> Response:
    share = _path(page, "share")
    try:
        schema, name = page.field("schema", "Schema"), page.field("table", "Table name")
        location = page.console.config.absolute_location(page.field("location", "Location"))
        history = page.form.get("history_shared") == "on"
        start = _start_version(page)
        info = TableInfo(name, schema, share, location, history_shared=history, start_version=start)
        summary = page.console.inspector.inspect(info)  # a Delta table this server can read, or refused
        page.console.api.shares.add_table(
            share, schema, name, location, history_shared=history, start_version=start
        )
    except LakegateError as exc:
        return page.failed(share_url(share), exc)
    page.audit("table-add", share=share, schema=schema, table=name)
    access = (
        "directory access available" if summary.directory_access else f"URL access only: {summary.why_not}"
    )
    return page.done(
        share_url(share),
        f"Table '{schema}.{name}' added: version {summary.version}, {summary.files} files, "
        f"{html.human_size(summary.size)}; {access}.",
    )


def _start_version(page: Page) -> int:
    start = page.field("start_version") or "0"
    if not (start.isascii() and start.isdigit()) or len(start) > 19:
        raise InvalidParameterError("Start version must be a whole number, 0 or more")
    return int(start)


def update_table(page: Page) -> Response:
    share = _path(page, "share")
    try:
        schema, _, name = page.field("table", "Table").partition(".")
        history, start = page.form.get("history_shared") == "on", _start_version(page)
        page.console.api.shares.update_table(share, schema, name, history_shared=history, start_version=start)
    except LakegateError as exc:
        return page.failed(share_url(share), exc)
    page.audit("table-update", share=share, schema=schema, table=name)
    shared = "history shared" if history else "history not shared"
    return page.done(share_url(share), f"Table '{schema}.{name}': {shared}, from version {start}.")


def remove_table(page: Page) -> Response:
    share = _path(page, "share")
    try:
        schema, name = page.field("schema", "Schema"), page.field("table", "Table name")
        page.console.api.shares.remove_table(share, schema, name)
    except LakegateError as exc:
        return page.failed(share_url(share), exc)
    page.audit("table-remove", share=share, schema=schema, table=name)
    return page.done(share_url(share), f"Table '{schema}.{name}' removed.")


# -- recipients -------------------------------------------------------------------------------------------------


def recipient_status(recipient: dict[str, Any]) -> str:
    """active (a token works), revoked (the newest token was revoked), expired, or no token."""
    if recipient["status"] == "active":  # any credential of any method
        return "active"
    tokens = sorted(
        [*recipient["tokens"], *recipient.get("clientSecrets", [])], key=lambda t: t["createdAt"] or ""
    )
    return tokens[-1]["status"] if tokens else "no token"


def recipients_page(page: Page) -> Response:
    pending = page.console.links.pending()
    recipients = [
        {**r, "state": recipient_status(r), "link_expires": pending.get(r["name"])}
        for r in page.console.api.recipients.all()
    ]
    return page.render(
        "recipients.html",
        recipients=recipients,
        shares=[s["name"] for s in page.console.api.shares.all()],
        validity_days=page.console.config.activation_links.validity_seconds / DAY,
        methods=CREATE_METHODS,
    )


def _days(page: Page, name: str, label: str) -> int | None:
    text = page.field(name)
    if not text:
        return None
    try:
        days = float(text)
    except ValueError:
        raise InvalidParameterError(f"{label} must be a number of days") from None
    if not 0 < days <= 36500:
        raise InvalidParameterError(f"{label} must be more than 0 and at most 36500 days")
    return max(1, round(days * DAY))


# The methods whose secret an activation link can hand out, as the console offers them.
LINK_METHODS = {
    "token": "Bearer token (profile version 1, every client)",
    "oauth": "OAuth client credentials (profile version 2)",
    "basic": "HTTP Basic (profile version 2)",
}
# The methods a recipient can be created with: these two involve no secret of lakegate's, so no activation link;
# the provider sends the recipient the profile, which it completes with its own private key or IdP credentials.
CREATE_METHODS = {
    **LINK_METHODS,
    "private-key-jwt": "Private-key JWT: a public key the recipient gives you (profile version 2)",
    "oidc": "OIDC federation: tokens from the recipient's own identity provider (profile version 2)",
}
OIDC_FIELDS = {
    "issuer": "Issuer URL",
    "audiences": "Audiences",
    "subject": "Subject",
    "subject_claim": "Claim to match",
    "token_endpoint": "Token endpoint",
    "scope": "Scope",
}
KEY_FIELDS = {"public_key": "Public key (PEM)", "key_id": "Key ID"}


def _method(page: Page, methods: dict[str, str] = LINK_METHODS) -> str:
    auth = page.form.get("auth") or "token"
    if auth not in methods:
        raise InvalidParameterError(f"Authentication must be one of {', '.join(methods)}")
    return auth


def _only_with(page: Page, auth: str, wanted: str, fields: dict[str, str], method: str) -> None:
    """Fields filled in for another method than the one chosen: say so rather than ignore them."""
    filled = [label for name, label in fields.items() if page.field(name) and name != "subject_claim"]
    if auth != wanted and filled:
        raise InvalidParameterError(f"{', '.join(filled)}: only with Authentication '{method}'")


def _policy(page: Page) -> PolicyRequest:
    """A federation policy from the form (the catalog checks the issuer is https, the values' lengths)."""
    audiences = tuple(a for a in page.field("audiences", "Audiences").replace(",", " ").split() if a)
    return PolicyRequest(
        page.field("issuer", "Issuer URL"),
        audiences,
        page.field("subject", "Subject"),
        page.field("subject_claim") or None,
        page.field("token_endpoint") or None,
        page.field("scope") or None,
    )


def _public_key(page: Page) -> PublicKeyRequest:
    # The PEM keeps its line breaks (field() only trims the ends); the catalog refuses what is not a public key.
    return PublicKeyRequest(page.field("public_key", "Public key (PEM)"), page.field("key_id", "Key ID"))


def _current_method(recipient: dict[str, Any]) -> str:
    """The method a rotation keeps by default: oauth when only client secrets are active."""
    tokens = any(t["status"] == "active" for t in recipient["tokens"])
    secrets = any(t["status"] == "active" for t in recipient.get("clientSecrets", []))
    return "oauth" if secrets and not tokens else "token"


def _issued_page(page: Page, recipient: str, verb: str, auth: str) -> Response:
    """The page that shows a new activation link: the only time its code is shown."""
    code = page.console.links.create(recipient, page.console.config.activation_links.validity_seconds, auth)
    expires = utcnow() + timedelta(seconds=page.console.config.activation_links.validity_seconds)
    return page.render(
        "issued.html",
        recipient=page.console.api.recipients.get(recipient),
        link=page.console.activation_url(code),
        expires=expires,
        verb=verb,
        method=LINK_METHODS[auth],
    )


def create_recipient(page: Page) -> Response:
    try:
        name = page.field("name", "Recipient name")
        auth = _method(page, CREATE_METHODS)
        _only_with(page, auth, "oidc", OIDC_FIELDS, CREATE_METHODS["oidc"])
        _only_with(page, auth, "private-key-jwt", KEY_FIELDS, CREATE_METHODS["private-key-jwt"])
        recipients = page.console.api.recipients
        issued = recipients.create(
            name,
            page.form_lists.get("share", []),
            _days(page, "expires_days", "Token lifetime"),
            page.field("comment") or None,
            auth=auth,
            public_key=_public_key(page) if auth == "private-key-jwt" else None,
            policy=_policy(page) if auth == "oidc" else None,
        )
    except LakegateError as exc:
        return page.failed("/console/recipients", exc)
    page.audit("recipient-create", recipient=issued.recipient["name"])
    if issued.auth in LINK_METHODS:
        return _issued_page(page, issued.recipient["name"], "created", issued.auth)
    return _profile_page(page, issued)


def _profile_page(page: Page, issued: Issued) -> Response:
    """A recipient with no lakegate secret (private-key JWT, OIDC): its profile, shown and downloadable."""
    profile = issued.profile(page.console.api.endpoint)
    return page.render(
        "profile.html",
        recipient=issued.recipient,
        method=CREATE_METHODS[issued.auth],
        auth=issued.auth,
        profile=json.dumps(profile, indent=2),
        token_endpoint=issued.token_endpoint or "",
        scope=issued.scope or "",
        url=recipient_url(issued.recipient["name"]),
    )


def download_profile(page: Page) -> Response:
    """The profile of a recipient without a lakegate secret, as a file: made again from its newest public key,
    or (OIDC) from the token endpoint and scope the profile page carried; it holds no secret."""
    recipient = page.console.api.recipients.get(_path(page, "recipient"))
    endpoint = page.console.api.endpoint
    keys = [k for k in recipient["publicKeys"] if k["status"] == "active"]
    if page.form.get("auth") == "private-key-jwt" and keys:
        profile = profiles.private_key_jwt(
            endpoint, recipient["name"], keys[-1]["keyId"], keys[-1]["algorithm"]
        )
    elif page.form.get("auth") == "oidc" and recipient["federationPolicies"]:
        profile = profiles.federated(
            endpoint, page.field("token_endpoint") or None, page.field("scope") or None
        )
    else:
        raise InvalidParameterError(
            f"recipient '{recipient['name']}' has no public key or policy for a profile"
        )
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", recipient["name"]) + ".share"
    return html.secure(
        JSONResponse(profile, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    )


def recipient_page(page: Page) -> Response:
    recipient = page.console.api.recipients.get(_path(page, "recipient"))
    grantable = [s["name"] for s in page.console.api.shares.all() if s["name"] not in recipient["shares"]]
    return page.render(
        "recipient.html",
        recipient=recipient,
        state=recipient_status(recipient),
        link_expires=page.console.links.pending().get(recipient["name"]),
        grantable=grantable,
        url=recipient_url(recipient["name"]),
        methods=LINK_METHODS,
        method=_current_method(recipient),
        credentials=sorted(
            [
                *({**t, "kind": "bearer token"} for t in recipient["tokens"]),
                *({**t, "kind": "client secret"} for t in recipient.get("clientSecrets", [])),
                *({**k, "kind": f"public key '{k['keyId']}'"} for k in recipient.get("publicKeys", [])),
            ],
            key=lambda t: t["createdAt"] or "",
            reverse=True,
        ),
    )


def _recipient_change(action: str, message: str, change: Callable[[Page, str], Any]) -> View:
    """A change of one recipient (grant, ungrant, revoke, delete): made, audited, reported on its page."""

    def view(page: Page) -> Response:
        name = _path(page, "recipient")
        try:
            result = change(page, name)
        except LakegateError as exc:
            return page.failed(recipient_url(name), exc)
        page.audit(action, recipient=name, share=page.form.get("share"))
        to = "/console/recipients" if action == "recipient-delete" else recipient_url(result["name"])
        return page.done(to, message.format(name=result["name"], share=page.form.get("share", "")))

    return view


def rotate(page: Page) -> Response:
    name = _path(page, "recipient")
    try:
        grace_hours = page.field("grace_hours") or "0"
        try:
            grace = round(float(grace_hours) * HOUR)
        except (ValueError, OverflowError):  # OverflowError: inf (nan is a ValueError)
            raise InvalidParameterError("Grace period must be a number of hours") from None
        lifetime = _days(page, "expires_days", "Token lifetime")
        issued = page.console.api.recipients.rotate(name, grace, lifetime, auth=_method(page))
    except LakegateError as exc:
        return page.failed(recipient_url(name), exc)
    page.audit("recipient-rotate", recipient=issued.recipient["name"])
    return _issued_page(page, issued.recipient["name"], "rotated", issued.auth)


# -- activity ---------------------------------------------------------------------------------------------------


def _date(text: str, label: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidParameterError(f"{label} must be a date (YYYY-MM-DD)") from None


def activity_page(page: Page) -> Response:
    q = page.request.query_params
    filters = {
        k: q.get(k, "").strip() for k in ("recipient", "share", "table", "operation", "outcome", "from", "to")
    }
    error = None
    today = utcnow().date()
    try:
        first = _date(filters["from"], "From") or today - timedelta(days=CHART_DAYS - 1)
        last = _date(filters["to"], "To") or today
        if last < first:
            raise InvalidParameterError("'To' must not be before 'From'")
        if (last - first).days > 366:
            raise InvalidParameterError("the period is at most 366 days")
    except InvalidParameterError as exc:
        error, first, last = exc.message, today - timedelta(days=CHART_DAYS - 1), today
    start = datetime(first.year, first.month, first.day, tzinfo=utcnow().tzinfo)
    where = AuditFilter(
        recipient=filters["recipient"] or None,
        share=filters["share"] or None,
        table=filters["table"] or None,
        operation=filters["operation"] or None,
        outcome=filters["outcome"] or None,
        since=start,
        until=start + timedelta(days=(last - first).days + 1),
    )
    audit = page.console.api.audit
    events = audit.search(where, limit=200)
    charts = activity_charts(audit.events_for_charts(where, MAX_LIMIT * 10), first, last)
    return page.render(
        "activity.html",
        events=events,
        charts=charts,
        filters=filters,
        first=first,
        last=last,
        error=error,
        recipients=[r["name"] for r in page.console.api.recipients.all()],
        shares=[s["name"] for s in page.console.api.shares.all()],
        operations=OPERATIONS,
    )


OPERATIONS = [
    "metadata",
    "query",
    "changes",
    "query-info",
    "temporary-credentials",
    "credential-download",
    "admin:share-create",
    "admin:share-delete",
    "admin:table-add",
    "admin:table-remove",
    "admin:table-update",
    "admin:recipient-create",
    "admin:recipient-rotate",
    "admin:recipient-revoke",
    "admin:recipient-delete",
    "admin:grant",
    "admin:ungrant",
    "admin:policy-add",
    "admin:policy-remove",
]


# -- sign-in and the request pipeline ----------------------------------------------------------------------------


async def _form(request: Request, console: Console) -> tuple[dict[str, str], dict[str, list[str]]]:
    body = await read_body(request, console.api.max_body_bytes, console.api.body_timeout_s)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise InvalidParameterError("the form could not be read") from None
    lists: dict[str, list[str]] = {}
    for key, value in pairs:
        lists.setdefault(key, []).append(value)
    return {k: v[0] for k, v in lists.items()}, lists


def _forbidden(message: str) -> Response:
    return html.render("error.html", 403, admin=None, csrf="", flash=None, section="", message=message)


def _finish(response: Response, console: Console, request: Request, new: Session | None) -> Response:
    if new is not None:
        sessions.write(response, new, console.keys, request)
    return html.secure(response)


def _signed_in(console: Console, session: Session | None) -> Session | None:
    """The session while its admin token still works (revoked or expired tokens end their sessions)."""
    if session is None or not session.signed_in or session.token_id is None:
        return None
    name = console.api.tokens.still_active(session.token_id)
    return session if name is not None and name == session.admin else None


async def _page(console: Console, view: View, request: Request) -> Response:
    session = await run_in_threadpool(_signed_in, console, sessions.read(request, console.keys))
    if session is None:
        return html.secure(RedirectResponse("/console/sign-in", status_code=303))
    page = Page(console, request, session)
    if request.method == "POST":
        page.form, page.form_lists = await _form(request, console)
        if not sessions.csrf_ok(session, page.form.get("csrf")):
            return _forbidden(
                "This form has expired or did not come from this console. Reload the page and retry."
            )
    try:
        response = await run_in_threadpool(view, page)
    except LakegateError as exc:  # a page of something that does not exist (a deleted share, a typo)
        response = html.render(
            "error.html",
            exc.status,
            admin=page.admin,
            csrf=session.csrf,
            flash=None,
            section="",
            message=exc.message,
        )
    return _finish(response, console, request, page.session if page.session != session else None)


async def sign_in_page(console: Console, request: Request) -> Response:
    session = sessions.read(request, console.keys)
    if await run_in_threadpool(_signed_in, console, session):
        return html.secure(RedirectResponse("/console/shares", status_code=303))
    fresh = session if session is not None and not session.signed_in else sessions.new_session()
    flash = fresh.flash
    response = html.render(
        "sign_in.html",
        admin=None,
        csrf=fresh.csrf,
        flash=flash,
        section="sign-in",
        endpoint=console.config.endpoint,
    )
    return _finish(response, console, request, replace(fresh, flash=None))


async def sign_in(console: Console, request: Request) -> Response:
    session = sessions.read(request, console.keys)
    form, _ = await _form(request, console)
    if not sessions.csrf_ok(session, form.get("csrf")):
        return _forbidden(
            "This form has expired or did not come from this console. Reload the page and retry."
        )
    assert session is not None
    try:
        token_id, admin = await run_in_threadpool(console.api.tokens.identify, form.get("token", "").strip())
    except UnauthenticatedError:
        log.info("console sign-in refused (client %s)", request.client.host if request.client else "-")
        failed = sessions.with_flash(
            sessions.new_session(), "error", "That admin token is not valid (wrong, expired or revoked)."
        )
        return _finish(RedirectResponse("/console/sign-in", status_code=303), console, request, failed)
    log.info("console sign-in: admin token '%s'", admin)
    signed = sessions.new_session(admin, token_id, console.config.console.session_seconds)
    return _finish(RedirectResponse("/console/shares", status_code=303), console, request, signed)


async def sign_out(console: Console, request: Request) -> Response:
    session = sessions.read(request, console.keys)
    form, _ = await _form(request, console)
    if not sessions.csrf_ok(session, form.get("csrf")):
        return _forbidden(
            "This form has expired or did not come from this console. Reload the page and retry."
        )
    response = RedirectResponse("/console/sign-in", status_code=303)
    sessions.clear(response, request)
    return html.secure(response)


def home(request: Request) -> Response:
    return html.secure(RedirectResponse("/console/shares", status_code=303))


def _grant(page: Page, name: str) -> Any:
    return page.console.api.recipients.grant(name, page.field("share", "Share"))


def _ungrant(page: Page, name: str) -> Any:
    return page.console.api.recipients.ungrant(name, page.field("share", "Share"))


def _add_policy(page: Page, name: str) -> Any:
    p = _policy(page)
    return page.console.api.recipients.add_policy(name, p.issuer, p.audiences, p.subject, p.subject_claim)


def _remove_policy(page: Page, name: str) -> Any:
    policy = page.field("policy", "Policy")
    if not (policy.isascii() and policy.isdigit()) or len(policy) > 18:
        raise InvalidParameterError("Policy must be a policy number")
    return page.console.api.recipients.remove_policy(name, int(policy))


def _unavailable(request: Request) -> Response:
    message = "The console's database cannot be reached right now. Please try again in a minute."
    return html.render(
        "error.html", 503, {"Retry-After": "60"}, admin=None, csrf="", flash=None, section="", message=message
    )


def _when_down(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    return html.page_when_database_down(endpoint, _unavailable)


def console_routes(console: Console) -> list[BaseRoute]:
    """The /console routes (HTML, so not in the OpenAPI document: include_in_schema=False)."""

    def page(path: str, view: View, method: str = "GET") -> Route:
        return Route(
            path, _when_down(partial(_page, console, view)), methods=[method], include_in_schema=False
        )

    revoke = _recipient_change(
        "recipient-revoke",
        "Every credential of '{name}' is revoked.",
        lambda p, n: p.console.api.recipients.revoke(n),
    )
    delete = _recipient_change(
        "recipient-delete", "Recipient '{name}' deleted.", lambda p, n: p.console.api.recipients.delete(n)
    )
    return [
        Route("/", home, include_in_schema=False),
        Route("/" + html.STYLESHEET, html.stylesheet, include_in_schema=False),
        Route("/sign-in", _when_down(partial(sign_in_page, console)), include_in_schema=False),
        Route("/sign-in", _when_down(partial(sign_in, console)), methods=["POST"], include_in_schema=False),
        Route("/sign-out", partial(sign_out, console), methods=["POST"], include_in_schema=False),
        page("/shares", shares_page),
        page("/shares", create_share, "POST"),
        page("/shares/{share}", share_page),
        page("/shares/{share}/delete", delete_share, "POST"),
        page("/shares/{share}/tables", add_table, "POST"),
        page("/shares/{share}/tables/remove", remove_table, "POST"),
        page("/shares/{share}/tables/settings", update_table, "POST"),
        page("/recipients", recipients_page),
        page("/recipients", create_recipient, "POST"),
        page("/recipients/{recipient}", recipient_page),
        page(
            "/recipients/{recipient}/grant",
            _recipient_change("grant", "Share '{share}' granted to '{name}'.", _grant),
            "POST",
        ),
        page(
            "/recipients/{recipient}/ungrant",
            _recipient_change("ungrant", "Share '{share}' no longer granted to '{name}'.", _ungrant),
            "POST",
        ),
        page(
            "/recipients/{recipient}/policies",
            _recipient_change("policy-add", "Federation policy added to '{name}'.", _add_policy),
            "POST",
        ),
        page(
            "/recipients/{recipient}/policies/remove",
            _recipient_change("policy-remove", "Federation policy removed from '{name}'.", _remove_policy),
            "POST",
        ),
        page("/recipients/{recipient}/profile", download_profile, "POST"),
        page("/recipients/{recipient}/rotate", rotate, "POST"),
        page("/recipients/{recipient}/revoke", revoke, "POST"),
        page("/recipients/{recipient}/delete", delete, "POST"),
        page("/activity", activity_page),
    ]


def activity_query(**filters: str) -> str:
    return "/console/activity?" + urlencode({k: v for k, v in filters.items() if v})
