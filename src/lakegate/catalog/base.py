"""Who may see what: shares, schemas, tables and the recipients they are granted to.

A recipient never learns that something it is not granted exists: every lookup of an ungranted share, schema
or table fails exactly as a lookup of a name that does not exist.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field

from lakegate.exceptions import InvalidParameterError, NotFoundError


@dataclass(frozen=True)
class ShareInfo:
    name: str
    id: str = ""
    display_name: str | None = None
    comment: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SchemaInfo:
    name: str
    share: str


@dataclass(frozen=True)
class TableInfo:
    name: str
    schema: str
    share: str
    location: str
    id: str = ""
    share_id: str = ""
    auxiliary_locations: tuple[str, ...] = ()
    history_shared: bool = False
    start_version: int = 0

    @property
    def full_name(self) -> str:
        return f"{self.share}.{self.schema}.{self.name}"

    @property
    def path(self) -> str:
        """share/schema/table, as used in file URLs."""
        return f"{self.share}/{self.schema}/{self.name}"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `shares` None means every share (the reference server's single token)."""

    recipient: str
    shares: frozenset[str] | None = None

    def may_see(self, share: str) -> bool:
        return self.shares is None or share.lower() in self.shares


@dataclass(frozen=True)
class BasicCredentials:
    """HTTP Basic credentials (RFC 7617) on a sharing endpoint: the recipient's name and one of its tokens."""

    user: str
    password: str = field(repr=False)


# What a request presents: a bearer token, Basic credentials, or nothing.
Credential = str | BasicCredentials | None


def check_name(kind: str, name: str, *, dots: bool = True) -> str:
    """A name as the protocol allows it (protocol.md §1 "Names"); InvalidParameterError naming the rule."""
    if not name or len(name) > 255:
        raise InvalidParameterError(f"{kind} name must be 1 to 255 characters")
    if any(c in " /" or ord(c) < 0x20 or ord(c) == 0x7F for c in name) or (not dots and "." in name):
        forbidden = (
            "spaces, '/', '.' or control characters" if not dots else "spaces, '/' or control characters"
        )
        raise InvalidParameterError(f"{kind} name {name!r} must not contain {forbidden}")
    return name


def share_not_found(share: str) -> NotFoundError:
    return NotFoundError(f"share '{share}' not found")


def schema_not_found(share: str, schema: str) -> NotFoundError:
    return NotFoundError(f"schema '{schema}' not found in share '{share}'")


def table_not_found(share: str, schema: str, table: str) -> NotFoundError:
    return NotFoundError(
        f"[Share/Schema/Table] '{share}/{schema}/{table}' does not exist, "
        "please contact your share provider for further information."
    )


class Catalog(ABC):
    @abstractmethod
    def authenticate(self, credential: Credential) -> Principal:
        """The principal for a bearer token or Basic credentials; raises UnauthenticatedError."""

    def remembered(self, credential: Credential) -> Principal | None:
        """The principal `authenticate` would answer without waiting for anything (a database, a network), or
        None: the event loop calls this, and `authenticate` in a worker thread when it gets None."""
        return None

    def change_mark(self) -> Hashable:
        """What changes, without waiting for anything, when the catalog may have changed (as `remembered` sees
        it): a constant when it cannot tell."""
        return 0

    @abstractmethod
    def list_shares(self, principal: Principal) -> list[ShareInfo]: ...

    @abstractmethod
    def get_share(self, principal: Principal, share: str) -> ShareInfo: ...

    @abstractmethod
    def list_schemas(self, principal: Principal, share: str) -> list[SchemaInfo]: ...

    @abstractmethod
    def list_tables(self, principal: Principal, share: str, schema: str | None) -> list[TableInfo]:
        """Tables of one schema, or of every schema of the share when `schema` is None."""

    @abstractmethod
    def get_table(self, principal: Principal | None, share: str, schema: str, table: str) -> TableInfo:
        """The table; `principal` None looks it up without a grant check (signed file URLs)."""
