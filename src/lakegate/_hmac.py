"""HMAC-SHA256 for hot paths (one MAC per file URL, 100k per answer).

HMAC (RFC 2104) is two SHA-256 states: key^ipad and key^opad. Made once per key and copied per message, they
cost ~1.5 µs per MAC, against ~4.5 µs for hmac.digest() and ~3 µs for hmac.new()/HMAC.copy() here.
"""

from __future__ import annotations

import hashlib
from typing import Any

_BLOCK = 64  # SHA-256 block size


def pad_states(key: bytes) -> tuple[Any, Any]:
    """The (inner, outer) SHA-256 states of HMAC-SHA256 under `key`, to be `.copy()`-ed per message."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


def finish(inner: Any, outer: Any) -> bytes:
    """The MAC, given a copy of the inner state that has absorbed the message."""
    mac = outer.copy()
    mac.update(inner.digest())
    digest: bytes = mac.digest()
    return digest
