"""Reading the caller's credential: `Authorization: Bearer <token>` (RFC 6750) or `Basic` (RFC 7617)."""

from __future__ import annotations

import base64
import binascii
import logging

from starlette.requests import Request

from lakegate.catalog.base import BasicCredentials, Credential
from lakegate.catalog.sql import UNAUTHENTICATED
from lakegate.exceptions import UnauthenticatedError
from lakegate.http.hot import Call

log = logging.getLogger("lakegate.auth")


def bearer_token(request: Request | Call) -> str | None:
    """The bearer token, or None when the header is missing, empty or of another scheme."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def basic_credentials(request: Request | Call) -> tuple[str, str] | None:
    """(user, password) of `Authorization: Basic`, None for another scheme; UnauthenticatedError when the
    Basic value cannot be decoded (a malformed credential is refused, never read as no credential), with the
    answer every other refusal gets (the reason goes to the log)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    pair = _basic_pair(value)
    if pair is None:
        log.info("refused (401): malformed Basic credentials (expected base64 of user:password)")
        raise UnauthenticatedError(UNAUTHENTICATED)
    return pair


def _basic_pair(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon and user and password else None


def quiet_credential(request: Request | Call) -> Credential:
    """`credential`, except that malformed Basic credentials are None, refused by no one and logged nowhere
    (for looking the caller up in memory: `credential`'s caller refuses them)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return credential(request)
    pair = _basic_pair(value)
    return None if pair is None else BasicCredentials(*pair)


def credential(request: Request | Call) -> Credential:
    """What the caller presents on a sharing endpoint: a bearer token, Basic credentials, or None. (The header
    is read once: every request asks.)"""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme != "basic":
        return None
    basic = basic_credentials(request)
    return None if basic is None else BasicCredentials(*basic)
