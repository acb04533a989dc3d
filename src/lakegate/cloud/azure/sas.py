"""Shared access signatures for one storage account: per-blob (URL access), container and directory (vending).

Signed with a user-delegation key when the server has an Entra ID identity (revocable, tied to that identity,
at most 7 days), else with the account key ("SAS-only" setups). The delegation key is fetched once and reused
until it could no longer cover the SAS being asked for; a SAS never outlives its key.

Per-blob signing is the URL-access hot path. The SDK's `generate_blob_sas` costs ~100 µs per blob,
so `blob_signer` asks the SDK once for a template (its string-to-sign, through `sts_hook`), then per blob only
swaps the canonical resource and computes one HMAC-SHA256. The SDK stays the source of the string-to-sign
layout, which changes with the signed version; tests compare the result with `generate_blob_sas`.

The SDK's signed version matters: azure-storage-blob 12.29+ signs `sv=2026-04-06`, which Azurite 3.35 rejects
for user-delegation SAS; the `azure` extra pins `< 12.29` until the emulator catches up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

# A delegation key is fetched to start a little in the past: Azure rejects a key whose start is ahead of its
# clock, and clocks drift.
_KEY_START_SKEW = timedelta(minutes=5)
_MARK_CONTAINER, _MARK_BLOB = "lakegatecontainermark", "lakegate-blob-mark"


class SasSigner:
    def __init__(
        self,
        account: str,
        *,
        account_key: str | None = None,
        fetch_key: Callable[[datetime, datetime], Any] | None = None,
        key_lifetime_s: int = 6 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (account_key is None) == (fetch_key is None):
            raise ValueError("give exactly one of account_key and fetch_key")
        self.account = account
        self._account_key = account_key
        self._fetch_key = fetch_key
        self._key_lifetime = timedelta(seconds=key_lifetime_s)
        self._clock = clock
        self._key: Any = None
        self._lock = threading.Lock()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(int(self._clock()), UTC)

    def _credential(self, expiry: datetime) -> tuple[dict[str, Any], datetime]:
        """SDK keyword for the signing credential, and the expiry capped to what the credential allows."""
        if self._account_key is not None:
            return {"account_key": self._account_key}, expiry
        key = self.delegation_key(expiry)
        return {"user_delegation_key": key}, min(expiry, key_expiry(key))

    def delegation_key(self, needed_until: datetime) -> Any:
        """The cached user-delegation key, renewed when it would expire before `needed_until`, or before half
        its lifetime from now when more is asked: a SAS asked to last longer than a key lives (or nearly as
        long) would otherwise fetch a key for every answer; it is cut to the key's expiry instead."""
        assert self._fetch_key is not None
        with self._lock:
            now = self._now()
            needed_until = min(needed_until, now + self._key_lifetime / 2)
            if self._key is None or key_expiry(self._key) < needed_until:
                self._key = self._fetch_key(now - _KEY_START_SKEW, now + self._key_lifetime)
            return self._key

    def container_sas(self, container: str, expiry: datetime) -> tuple[str, datetime]:
        """Read + list on the whole container (`sr=c`, `sp=rl`): flat-namespace accounts."""
        from azure.storage.blob import generate_container_sas

        credential, expiry = self._credential(expiry)
        return generate_container_sas(
            self.account, container, permission="rl", expiry=expiry, **credential
        ), expiry

    def directory_sas(self, container: str, directory: str, expiry: datetime) -> tuple[str, datetime]:
        """Read + list below one directory (`sr=d`, `sdd`=depth, `sp=rl`): hierarchical-namespace accounts.
        Leading and trailing slashes are stripped (ABFS paths have none; `sdd` counts segments)."""
        from azure.storage.filedatalake import generate_directory_sas

        directory = directory.strip("/")
        if not directory:
            raise ValueError("a directory SAS needs a directory; use a container SAS for the container root")
        credential, expiry = self._credential(expiry)
        token = generate_directory_sas(
            self.account,
            container,
            directory,
            credential.get("account_key") or credential["user_delegation_key"],
            permission="rl",
            expiry=expiry,
        )
        return token, expiry

    def blob_signer(self, expiry: datetime) -> tuple[Callable[[str, str], str], datetime]:
        """A fast `sign(container, blob) -> SAS token` for read-only blob SAS (`sr=b`, `sp=r`), all with one
        expiry (capped to the key's), and that expiry."""
        from azure.storage.blob import generate_blob_sas

        credential, expiry = self._credential(expiry)
        captured: list[str] = []
        template = generate_blob_sas(
            self.account,
            _MARK_CONTAINER,
            _MARK_BLOB,
            permission="r",
            expiry=expiry,
            sts_hook=captured.append,
            **credential,
        )
        resource = f"/blob/{self.account}/{_MARK_CONTAINER}/{_MARK_BLOB}"
        head, found, tail = captured[0].partition(resource)
        if not found or resource in tail:
            raise RuntimeError("unexpected SAS string-to-sign layout from azure-storage-blob")
        query = "&".join(part for part in template.split("&") if not part.startswith("sig="))
        secret = credential.get("account_key") or credential["user_delegation_key"].value
        key = base64.b64decode(secret)
        prefix = f"{head}/blob/{self.account}/"

        def sign(container: str, blob: str) -> str:
            to_sign = f"{prefix}{container}/{blob}{tail}".encode()
            signature = base64.b64encode(hmac.digest(key, to_sign, hashlib.sha256)).decode()
            return f"{query}&sig={quote(signature)}"  # as the SDK: '/' stays

        return sign, expiry


def key_expiry(key: Any) -> datetime:
    """When a user-delegation key (the SDK's `UserDelegationKey`) expires."""
    return _parse_time(key.signed_expiry)


def _parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.strptime(value.rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
