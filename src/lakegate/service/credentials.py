"""Directory access (protocol.md §2.11): temporary read credentials for a table's directories, and what the
listings and metadata say about them (`location`, `auxiliaryLocations`, `accessModes`).

A table offers `dir` only when a vendor is configured for its root and every auxiliary location, and only
when recipients may see its whole history: a directory credential reads every version and every file still
in storage, so a table without `historyShared` (or with a `startVersion`) stays URL-only, as in the reference
server.
"""

from __future__ import annotations

import orjson

from lakegate.catalog.base import Principal
from lakegate.cloud.vending import VendorRegistry, authorize_location
from lakegate.exceptions import UnsupportedOperationError
from lakegate.metrics import CREDENTIAL_CACHE_HITS
from lakegate.protocol.requests import json_object
from lakegate.service.context import ResolvedTable, TableContext
from lakegate.validity import depends_on, not_reusable

_MAX_ANSWERS = 4096  # encoded answers kept (cleared whole past it)
_MAX_KEPT_BODY = 1024  # bodies longer than this are not keys (clients send `{}` or a location)


class DirectoryAccess:
    """The policy deciding which tables offer directory access; given to `TableContext` at construction."""

    def __init__(self, vendors: VendorRegistry) -> None:
        self.vendors = vendors

    def problem(self, table: ResolvedTable) -> str | None:
        """Why the table has no directory access, or None if it has."""
        if not table.info.history_shared:
            return "history sharing is not enabled on it (a directory credential reads every version)"
        if table.info.start_version > 0:
            return "it is shared from a startVersion (a directory credential reads every version)"
        for location in (table.root, *table.auxiliary):
            problem = self.vendors.problem(location)
            if problem is not None:
                return problem
        return None

    def allows(self, table: ResolvedTable) -> bool:
        return self.problem(table) is None


class CredentialService:
    """Credentials are audited like every table request, by the HTTP layer's audit middleware."""

    def __init__(self, context: TableContext, access: DirectoryAccess) -> None:
        self.context = context
        self.access = access
        # The encoded answer per (resolved table, body), kept while the credential cache would hand out the
        # same credential: a cached credential's request is then a dictionary lookup.
        self._answers: dict[tuple[int, bytes], tuple[ResolvedTable, float, bytes]] = {}

    def temporary_credentials(
        self, principal: Principal, share: str, schema: str, table: str, body: bytes
    ) -> bytes:
        """The JSON answer (`{"credentials": …}`), encoded."""
        resolved = self.context.resolve(principal, share, schema, table)  # ungranted ≡ nonexistent (404)
        known = self._answers.get((id(resolved), body))
        if known is not None and known[0] is resolved and self._given_again(known):
            depends_on(self._given_again, known)  # (lakegate.validity: an answer the fast lane keeps)
            return known[2]
        problem = self.access.problem(resolved)
        if problem is not None:
            raise UnsupportedOperationError(
                f"Temporary table credentials are not available for table {resolved.info.full_name}: "
                f"{problem}. "
                "Read it through the query API (URL access)."
            )
        location = authorize_location(_requested_location(body), resolved.root, resolved.auxiliary)
        credential, until = self.access.vendors.lease(location)
        answer = orjson.dumps({"credentials": credential.to_json()})
        if len(body) <= _MAX_KEPT_BODY:
            if len(self._answers) >= _MAX_ANSWERS:
                self._answers.clear()
            self._answers[(id(resolved), body)] = kept = (resolved, until, answer)
            depends_on(self._given_again, kept)
        else:
            not_reusable()
        return answer

    def _given_again(self, kept: tuple[ResolvedTable, float, bytes]) -> bool:
        """Whether a kept answer may be given again (its credential is not due for renewal), counted if so."""
        if self.access.vendors.cache.now() < kept[1]:
            CREDENTIAL_CACHE_HITS.inc()
            return True
        return False


def _requested_location(body: bytes) -> object:
    """The body's `location`, or None for an empty body. Other keys are ignored (forward compatibility)."""
    return json_object(body).get("location")
