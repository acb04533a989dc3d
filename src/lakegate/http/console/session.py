"""The console's session: one signed cookie, and the CSRF token every form carries.

The cookie holds JSON {admin token id and name, expiry, CSRF token, flash message}, signed with a key derived
from the server's signing key (replicas accept each other's sessions). It is HTTP-only (no script reads it),
SameSite=Strict (no other site's page sends it), scoped to /console, Secure over TLS, and ends at its expiry
or when the admin token it was opened with is revoked or expires. A visitor who is not signed in gets a session
too (no admin), so the sign-in form has its CSRF token as well.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from dataclasses import dataclass, replace

import orjson
from starlette.requests import Request
from starlette.responses import Response

from lakegate.keys import KeyRing

COOKIE = "lakegate_console"
PATH = "/console"
PURPOSE = "console-session"
ANONYMOUS_SECONDS = 3600  # a sign-in form's session


@dataclass(frozen=True)
class Session:
    csrf: str
    expires: int  # seconds since 1970
    admin: str | None = None  # the admin token's name
    token_id: int | None = None  # its row, checked on every request
    flash: tuple[str, str] | None = None  # (ok|error, text) shown once on the next page

    @property
    def signed_in(self) -> bool:
        return self.admin is not None and self.token_id is not None


def new_session(
    admin: str | None = None, token_id: int | None = None, seconds: int = ANONYMOUS_SECONDS
) -> Session:
    """A fresh session with a fresh CSRF token (also at sign-in: a token seen before sign-in is not reused)."""
    return Session(secrets.token_urlsafe(24), int(time.time()) + seconds, admin, token_id)


def read(request: Request, keys: KeyRing) -> Session | None:
    """The request's valid session, or None (no cookie, a bad signature, expired)."""
    value = request.cookies.get(COOKIE, "")
    payload_text, _, signature = value.partition(".")
    try:
        payload = base64.urlsafe_b64decode(payload_text + "=" * (-len(payload_text) % 4))
    except (binascii.Error, ValueError):
        return None
    if not signature or not keys.verify(PURPOSE, payload, signature):
        return None
    data = orjson.loads(payload)
    flash = data.get("f")
    session = Session(
        data["c"], int(data["e"]), data.get("a"), data.get("i"), tuple(flash) if flash else None
    )
    return session if session.expires > time.time() else None


def write(response: Response, session: Session, keys: KeyRing, request: Request) -> None:
    data = {"c": session.csrf, "e": session.expires, "a": session.admin, "i": session.token_id}
    if session.flash:
        data["f"] = list(session.flash)
    payload = orjson.dumps(data)
    value = base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + "." + keys.sign(PURPOSE, payload)
    response.set_cookie(
        COOKIE,
        value,
        max_age=max(1, session.expires - int(time.time())),
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )


def csrf_ok(session: Session | None, given: str | None) -> bool:
    if session is None or not given:
        return False
    return hmac.compare_digest(session.csrf.encode(), given.encode("utf-8", "surrogatepass"))


def with_flash(session: Session, kind: str, text: str) -> Session:
    return replace(session, flash=(kind, text[:500]))
