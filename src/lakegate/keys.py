"""Server-side secret keys: one master key, one derived key per purpose.

Page tokens, refresh tokens and local file URLs are HMAC-signed with keys derived from the master key, so a
token made for one purpose can never be replayed as another. Replicas that share the master key (config
`tokenSigningKey`, or the database) accept each other's tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from lakegate._arrow import fixed_width
from lakegate._hmac import finish, pad_states


class KeyRing:
    def __init__(self, master: bytes) -> None:
        if len(master) < 16:
            raise ValueError("the token signing key must be at least 16 bytes")
        self._master = master
        self._derived: dict[str, bytes] = {}
        self._pads: dict[str, tuple[Any, Any]] = {}  # HMAC pad states per purpose (copied, never updated)

    @classmethod
    def random(cls) -> KeyRing:
        return cls(secrets.token_bytes(32))

    def key(self, purpose: str) -> bytes:
        if purpose not in self._derived:
            self._derived[purpose] = hmac.new(self._master, purpose.encode(), hashlib.sha256).digest()
        return self._derived[purpose]

    def pads(self, purpose: str) -> tuple[Any, Any]:
        """The purpose's HMAC (inner, outer) pad states, made once per key ring (~20 µs each time otherwise: a
        page request verifies one token and signs the next)."""
        pads = self._pads.get(purpose)
        if pads is None:
            pads = self._pads[purpose] = pad_states(self.key(purpose))
        return pads

    def sign(self, purpose: str, payload: bytes) -> str:
        inner, outer = self.pads(purpose)
        state = inner.copy()
        state.update(payload)
        return base64.urlsafe_b64encode(finish(state, outer)).rstrip(b"=").decode()

    def signer(self, purpose: str) -> Callable[[bytes], str]:
        """`sign` for one purpose, fast (one MAC per local file URL)."""
        inner, outer = self.pads(purpose)
        encode = base64.urlsafe_b64encode

        def sign(payload: bytes) -> str:
            state = inner.copy()
            state.update(payload)
            return encode(finish(state, outer)).rstrip(b"=").decode()

        return sign

    def column_signer(self, purpose: str) -> Callable[[Iterable[bytes]], pa.Array]:
        """`sign` of many payloads at once, as a string column: the MACs one by one, their base64 in one call
        over all of them (each 32-byte MAC padded to 33 bytes encodes to 44 characters, the first 43 being its
        unpadded base64), cut into columns with numpy."""
        inner, outer = self.pads(purpose)

        def sign_all(payloads: Iterable[bytes]) -> pa.Array:
            padded = bytearray()
            for payload in payloads:
                state = inner.copy()
                state.update(payload)
                mac = outer.copy()
                mac.update(state.digest())
                padded += mac.digest()
                padded += b"\0"
            text = np.frombuffer(base64.urlsafe_b64encode(padded), dtype=np.uint8).reshape(-1, 44)
            return fixed_width(text[:, :43].tobytes(), len(text), 43)

        return sign_all

    def verify(self, purpose: str, payload: bytes, signature: str) -> bool:
        # Bytes on both sides: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        given = signature.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self.sign(purpose, payload).encode(), given)
