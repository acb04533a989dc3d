"""Page and refresh tokens: opaque to clients, tamper-evident, one kind never accepted as another."""

from __future__ import annotations

import base64

import orjson
import pytest

from lakegate.exceptions import InvalidParameterError
from lakegate.keys import KeyRing
from lakegate.protocol.tokens import decode, encode

KEYS = KeyRing(b"k" * 32)
PAYLOAD = {"v": 3, "pos": [1, "part-0.parquet"], "exp": 1_800_000_000_000}


def test_round_trip() -> None:
    assert decode(KEYS, "page", encode(KEYS, "page", PAYLOAD), "bad") == PAYLOAD
    assert decode(KEYS, "page", "  " + encode(KEYS, "page", PAYLOAD) + "\n", "bad") == PAYLOAD


def _edited(token: str) -> list[str]:
    body, signature = token.split(".")
    payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(orjson.dumps({**payload, "v": 0})).rstrip(b"=").decode()
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return [f"{forged}.{signature}", f"{body}.{flipped}", body, f".{signature}", f"{body}.", "", "a.b.c"]


@pytest.mark.parametrize("index", range(7))
def test_edited_tokens_are_refused(index: int) -> None:
    bad = _edited(encode(KEYS, "page", PAYLOAD))[index]
    with pytest.raises(InvalidParameterError, match=r"^bad page token$"):
        decode(KEYS, "page", bad, "bad page token")


def test_a_token_of_one_kind_or_key_is_not_another() -> None:
    token = encode(KEYS, "page", PAYLOAD)
    with pytest.raises(InvalidParameterError):
        decode(KEYS, "refresh", token, "bad")
    with pytest.raises(InvalidParameterError):
        decode(KeyRing(b"o" * 32), "page", token, "bad")


def test_a_signed_non_object_is_refused() -> None:
    body = base64.urlsafe_b64encode(b"[1,2]").rstrip(b"=")
    token = f"{body.decode()}.{KEYS.sign('page', body)}"
    with pytest.raises(InvalidParameterError):
        decode(KEYS, "page", token, "bad")


def test_payload_is_not_secret_but_signed() -> None:
    """Tokens carry positions, not secrets: the payload is readable base64url JSON (documented choice)."""
    body = encode(KEYS, "page", PAYLOAD).split(".")[0]
    assert orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == PAYLOAD
