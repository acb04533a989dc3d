"""The few Delta Sharing calls the recipient client needs, over the standard library's HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from lakegate.client.auth import authorization
from lakegate.client.errors import SharingError
from lakegate.client.profile import Profile, TableRef


class RestClient:
    def __init__(self, profile: Profile, timeout_s: float = 60) -> None:
        self.profile = profile
        self.timeout_s = timeout_s
        self._authorization = authorization(profile, timeout_s)

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
    ) -> bytes:
        request = urllib.request.Request(  # noqa: S310  - the endpoint of the user's own profile
            self.profile.endpoint + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None),
            headers={
                "Authorization": self._authorization(),
                "Content-Type": "application/json",
                "User-Agent": "lakegate-client",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310  - Profile.load admits http(s) endpoints only
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())
            except ValueError:
                error = {}
            raise SharingError(
                exc.code, str(error.get("errorCode", "HTTP_ERROR")), str(error.get("message", exc.reason))
            ) from None

    def _pages(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = f"?{urlencode({'pageToken': token})}" if token else ""
            page = json.loads(self._call("GET", path + query))
            items += page.get("items") or []
            token = page.get("nextPageToken")
            if not token:
                return items

    def list_shares(self) -> list[dict[str, Any]]:
        return self._pages("/shares")

    def list_all_tables(self, share: str) -> list[dict[str, Any]]:
        return self._pages(f"/shares/{quote(share, safe='')}/all-tables")

    def _table_path(self, table: TableRef) -> str:
        return "/shares/{}/schemas/{}/tables/{}".format(
            *(quote(p, safe="") for p in (table.share, table.schema, table.name))
        )

    def table_metadata(self, table: TableRef) -> dict[str, Any]:
        """The `metaData` line (parquet format): schema, location, auxiliaryLocations, accessModes."""
        lines = self._call("GET", self._table_path(table) + "/metadata").splitlines()
        return dict(json.loads(lines[1])["metaData"])

    def temporary_credentials(self, table: TableRef, location: str | None = None) -> dict[str, Any]:
        body = {"location": location} if location else None
        answer = json.loads(
            self._call("POST", self._table_path(table) + "/temporary-table-credentials", body)
        )
        return dict(answer["credentials"])
