"""Delta Sharing profile files (protocol.md §8; version 2 with `type` as the official client reads them) and
`PROFILE#share.schema.table` table URLs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lakegate.client.errors import ProfileError

# Profile version 2 types (the official client's names) and the fields each needs.
KINDS: dict[str, tuple[str, ...]] = {
    "bearer_token": ("bearerToken",),
    "basic": ("username", "password"),
    "oauth_client_credentials": ("tokenEndpoint", "clientId", "clientSecret"),
    "oauth_jwt_bearer_private_key_jwt": ("auth",),
}
_PRIVATE_KEY_JWT = ("tokenEndpoint", "issuer", "clientId", "privateKey")


@dataclass(frozen=True)
class Profile:
    endpoint: str  # base URL including the server's prefix, no trailing slash
    bearer_token: str = field(default="", repr=False)
    expiration_time: str | None = None
    kind: str = "bearer_token"  # a version 2 `type` (KINDS); version 1 is a bearer token
    fields: dict[str, Any] = field(default_factory=dict, repr=False)  # the file's fields for that type

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ProfileError(f"cannot read the profile file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ProfileError(f"{path}: a profile is a JSON object")
        version = data.get("shareCredentialsVersion")
        kind = "bearer_token" if version == 1 else data.get("type")
        if version not in (1, 2):
            raise ProfileError(f"{path}: shareCredentialsVersion {version!r} is not supported (1 or 2)")
        if kind not in KINDS:
            raise ProfileError(f"{path}: profile type {kind!r} is not supported ({', '.join(KINDS)})")
        missing = [key for key in ("endpoint", *KINDS[str(kind)]) if not data.get(key)]
        if kind == "oauth_jwt_bearer_private_key_jwt" and not missing:
            auth = data["auth"] if isinstance(data["auth"], dict) else {}
            missing = [f"auth.{key}" for key in _PRIVATE_KEY_JWT if not auth.get(key)]
        if missing:
            raise ProfileError(f"{path}: {', '.join(missing)} are required in a {kind} profile")
        endpoint = str(data["endpoint"]).rstrip("/")
        if urlsplit(endpoint).scheme.lower() not in (
            "http",
            "https",
        ):  # never file: or another opener's scheme
            raise ProfileError(f"{path}: the endpoint must be an http:// or https:// URL")
        profile = cls(
            endpoint, str(data.get("bearerToken") or ""), data.get("expirationTime"), str(kind), data
        )
        if profile.expired():
            raise ProfileError(f"{path}: the profile expired at {profile.expiration_time}")
        return profile

    def expired(self) -> bool:
        if not self.expiration_time:
            return False
        when = datetime.fromisoformat(self.expiration_time)
        return when.replace(tzinfo=when.tzinfo or UTC) <= datetime.now(UTC)


@dataclass(frozen=True)
class TableRef:
    share: str
    schema: str
    name: str


def parse_table_url(url: str) -> tuple[str, TableRef]:
    """`/path/profile.share#share.schema.table` -> (profile path, table)."""
    path, sep, fragment = url.rpartition("#")
    parts = fragment.split(".")
    if not sep or not path or len(parts) != 3 or not all(parts):
        raise ProfileError(f"expected PROFILE#share.schema.table, got {url!r}")
    return path, TableRef(*parts)
