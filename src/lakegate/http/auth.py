"""Reading the caller's credential: `Authorization: Bearer <token>` (RFC 6750)."""

from __future__ import annotations

from starlette.requests import Request


def bearer_token(request: Request) -> str | None:
    """The bearer token, or None when the header is missing, empty or of another scheme."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
