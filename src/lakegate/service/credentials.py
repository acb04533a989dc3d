"""Directory access (protocol.md §2.11): temporary read credentials for a table's directories, and what the
listings and metadata say about them (`location`, `auxiliaryLocations`, `accessModes`).

A table offers `dir` only when a vendor is configured for its root and every auxiliary location, and only
when recipients may see its whole history: a directory credential reads every version and every file still
in storage, so a table without `historyShared` (or with a `startVersion`) stays URL-only, as in the reference
server.
"""

from __future__ import annotations

from typing import Any

from lakegate.catalog.base import Principal
from lakegate.cloud.vending import VendorRegistry, authorize_location
from lakegate.exceptions import UnsupportedOperationError
from lakegate.protocol.requests import json_object
from lakegate.service.context import ResolvedTable, TableContext


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

    def temporary_credentials(
        self, principal: Principal, share: str, schema: str, table: str, body: bytes
    ) -> dict[str, Any]:
        resolved = self.context.resolve(principal, share, schema, table)  # ungranted ≡ nonexistent (404)
        problem = self.access.problem(resolved)
        if problem is not None:
            raise UnsupportedOperationError(
                f"Temporary table credentials are not available for table {resolved.info.full_name}: "
                f"{problem}. "
                "Read it through the query API (URL access)."
            )
        location = authorize_location(_requested_location(body), resolved.root, resolved.auxiliary)
        return {"credentials": self.access.vendors.credential(location).to_json()}


def _requested_location(body: bytes) -> object:
    """The body's `location`, or None for an empty body. Other keys are ignored (forward compatibility)."""
    return json_object(body).get("location")
