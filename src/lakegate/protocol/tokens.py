"""Opaque, tamper-evident tokens: list page tokens, query page tokens and refresh tokens.

A token is `base64url(JSON payload) "." HMAC`, with a key derived per token kind, so a client can neither forge
nor edit one, nor use one kind of token as another. Payloads hold no secrets (only positions, versions, expiry).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from lakegate.exceptions import InvalidParameterError
from lakegate.keys import KeyRing


def encode(keys: KeyRing, kind: str, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=")
    return f"{body.decode()}.{keys.sign(kind, body)}"


def decode(keys: KeyRing, kind: str, token: str, error: str) -> dict[str, Any]:
    """The payload of a token made by `encode`; InvalidParameterError(error) if it was not, or was edited."""
    body, _, signature = token.strip().partition(".")
    if not body or not signature or not keys.verify(kind, body.encode(), signature):
        raise InvalidParameterError(error)
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidParameterError(error) from None
    if not isinstance(payload, dict):
        raise InvalidParameterError(error)
    return payload


def now_ms() -> int:
    """The clock token expiries are measured against (epoch milliseconds)."""
    return int(time.time() * 1000)
