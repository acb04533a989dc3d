"""Temporary GCS credentials: the server's token exchanged at Google's STS for a downscoped one.

The Credential Access Boundary has one rule on the table's bucket: `inRole:roles/storage.objectViewer`
(get + list), available only when

    resource.name.startsWith('projects/_/buckets/BUCKET/objects/PATH/')
    || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('PATH/')

The trailing slash is forced, so `tables/t1` never reaches `tables/t1_old/`; literals are CEL-escaped. A table
at the bucket root still gets a downscoped token (limited to that bucket), never the server's own token.

The exchange endpoint is `tokenExchangeEndpoint` (default Google's): google-auth's `downscoped.Credentials`
has no setting for it, so the exchange is made here with google-auth's STS client, with the same request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from lakegate.cloud.base import CredentialVendor, TemporaryCredential
from lakegate.cloud.gcp.storage import GcsStore
from lakegate.cloud.locations import Location
from lakegate.config import GcpStorageConfig
from lakegate.exceptions import VendingError

log = logging.getLogger(__name__)
KIND = "gcpOauthToken"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105  - an OAuth URN
OBJECT_VIEWER = "inRole:roles/storage.objectViewer"
# Refresh the source token when it has less than this left: a downscoped token ends with its source token.
SOURCE_MIN_REMAINING_S = 1800
MAX_RULES = 10  # access boundary rules per downscoped token


def cel_string(text: str) -> str:
    """`text` as a single-quoted CEL string literal. Control characters and lone surrogates are refused:
    no object name a table can have contains them, and they are the classic way to break out of a literal."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ValueError("control characters are not allowed in a GCS path used in an access boundary")
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    return f"'{escaped}'"


def access_boundary(*locations: Location) -> dict[str, Any]:
    """The Credential Access Boundary allowing read + list of exactly these directories (`options` of the STS
    request): one rule per directory (GCS allows ten)."""
    return {"accessBoundary": {"accessBoundaryRules": [_rule(location) for location in locations]}}


def _rule(location: Location) -> dict[str, Any]:
    if location.cloud != "gs":
        raise ValueError(f"not a GCS location: {location.uri}")
    prefix = f"{location.path}/" if location.path else ""
    objects = f"projects/_/buckets/{location.bucket}/objects/{prefix}"
    expression = (
        f"resource.name.startsWith({cel_string(objects)}) || "
        f"api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith({cel_string(prefix)})"
    )
    # Key order of google-auth's CredentialAccessBoundary.to_json(): the request is byte-identical to its.
    return {
        "availablePermissions": [OBJECT_VIEWER],
        "availableResource": f"//storage.googleapis.com/projects/_/buckets/{location.bucket}",
        "availabilityCondition": {"expression": expression},
    }


class GcsVendor(CredentialVendor):
    def __init__(self, store: GcsStore, settings: GcpStorageConfig) -> None:
        self._store = store
        self._endpoint = settings.token_exchange_endpoint
        self._identity = f"gcp|{store.identity_name}|{self._endpoint}"

    @property
    def identity(self) -> str:
        return self._identity

    covers_many = True

    def vend(self, location: Location) -> TemporaryCredential:
        return self.vend_all([location])

    def vend_all(self, locations: Sequence[Location]) -> TemporaryCredential:
        from google.auth.transport.requests import Request
        from google.oauth2 import sts

        location = locations[0]
        if len(locations) > MAX_RULES:
            raise VendingError(f"a GCS access boundary names at most {MAX_RULES} directories")
        try:
            boundary = access_boundary(*locations)
        except ValueError as exc:
            raise VendingError(f"cannot build an access boundary for this table: {exc}") from None
        try:
            source = self._store.access_token(SOURCE_MIN_REMAINING_S)
            started = time.time()
            # google.oauth2.sts is unannotated
            answer = sts.Client(self._endpoint).exchange_token(  # type: ignore[no-untyped-call]
                request=Request(),
                grant_type=GRANT_TYPE,
                subject_token=source,
                subject_token_type=TOKEN_TYPE,
                requested_token_type=TOKEN_TYPE,
                additional_options=boundary,
            )
        except Exception as exc:  # noqa: BLE001  - google.auth RefreshError / OAuthError / TransportError
            log.error(
                "token exchange for %s failed: %s: %s", location.uri, type(exc).__name__, _first_line(exc)
            )
            raise VendingError(
                "the cloud's token service refused to issue a downscoped token for this table; "
                "the server log has the details"
            ) from None
        token, lifetime = answer.get("access_token"), answer.get("expires_in")
        if not token or not lifetime:
            log.error("token exchange for %s answered without access_token/expires_in", location.uri)
            raise VendingError(
                "the cloud's token service gave an incomplete answer; the server log has the details"
            )
        return TemporaryCredential(
            location.display, KIND, {"oauthToken": str(token)}, int((started + float(lifetime)) * 1000)
        )


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else ""
