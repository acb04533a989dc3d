"""Delta Sharing profile files (protocol.md §8) and `PROFILE#share.schema.table` table URLs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from lakegate.client.errors import ProfileError


@dataclass(frozen=True)
class Profile:
    endpoint: str  # base URL including the server's prefix, no trailing slash
    bearer_token: str = field(repr=False)
    expiration_time: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ProfileError(f"cannot read the profile file {path}: {exc}") from None
        version = data.get("shareCredentialsVersion")
        if version != 1:
            raise ProfileError(f"{path}: shareCredentialsVersion {version!r} is not supported (only 1)")
        if not data.get("endpoint") or not data.get("bearerToken"):
            raise ProfileError(f"{path}: endpoint and bearerToken are required")
        endpoint = str(data["endpoint"]).rstrip("/")
        if urlsplit(endpoint).scheme.lower() not in (
            "http",
            "https",
        ):  # never file: or another opener's scheme
            raise ProfileError(f"{path}: the endpoint must be an http:// or https:// URL")
        profile = cls(endpoint, str(data["bearerToken"]), data.get("expirationTime"))
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
