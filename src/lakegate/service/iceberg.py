"""The Iceberg REST catalog over shares (docs/iceberg.md): a warehouse is a share, a namespace one of its
schemas, a table one of its tables; read-only.

Who may see what is the sharing protocol's own rule (`Catalog` lookups with the caller's principal): an ungranted
share, schema or table is as absent as one that does not exist. The Iceberg metadata of a table comes from
`lakegate.iceberg` (generated from the Delta log); vended credentials from the directory-access vendors, for
the table's locations and its generated metadata and nothing else, under the same policy as
`temporary-table-credentials` (`DirectoryAccess`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from lakegate.catalog.base import Principal, SchemaInfo
from lakegate.cloud.base import TemporaryCredential
from lakegate.cloud.locations import Location
from lakegate.config import AwsStorageConfig
from lakegate.exceptions import (
    InvalidParameterError,
    NoSuchNamespaceError,
    NoSuchTableError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedOperationError,
)
from lakegate.iceberg import IcebergSource, IcebergTables, LoadedTable
from lakegate.protocol.requests import parse_int
from lakegate.service.browse import MAX_RESULTS, BrowseService
from lakegate.service.context import ResolvedTable, TableContext
from lakegate.service.credentials import DirectoryAccess

# What this catalog answers (the spec's `endpoints` of /v1/config): clients check it before calling, so a
# write is refused by the client itself, and reaches the server only from clients that do not check.
ENDPOINTS = [
    "GET /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials",
]
READ_ONLY = "this Iceberg catalog is read-only: lakegate shares tables, it does not change them"
# Namespace levels in a path are joined by the unit separator (0x1F); shares have one level (the schema).
LEVELS = "\x1f"


def read_only(what: str) -> PermissionDeniedError:
    return PermissionDeniedError(f"{what}: {READ_ONLY}")


class IcebergCatalog:
    def __init__(
        self,
        context: TableContext,
        browse: BrowseService,
        access: DirectoryAccess,
        tables: IcebergTables,
    ) -> None:
        self.context = context
        self.browse = browse
        self.access = access
        self.tables = tables

    # -- catalog and namespaces -------------------------------------------------------------------------------

    def config(self, principal: Principal, warehouse: str | None) -> dict[str, Any]:
        """The warehouse is a share: later paths carry it as their prefix."""
        if not warehouse:
            raise InvalidParameterError(
                "the 'warehouse' parameter is required: the name of the share to read "
                "(e.g. warehouse=<share> in the client's catalog properties)"
            )
        share = self.context.catalog.get_share(principal, warehouse)  # ungranted ≡ nonexistent (404)
        # Clients paste the prefix into their paths as it is: percent-encoded, a share named e.g. 'a#b' or
        # 'x%41' still makes one path segment (the server decodes it back to the name).
        prefix = quote(share.name, safe="")
        return {"defaults": {}, "overrides": {"prefix": prefix}, "endpoints": ENDPOINTS}

    def list_namespaces(
        self,
        principal: Principal,
        share: str,
        parent: str | None,
        page_token: str | None,
        page_size: str | None,
    ) -> dict[str, Any]:
        if parent:
            # Schemas have no sub-namespaces: a schema lists none, anything else does not exist.
            self._schema(principal, share, parent)
            return {"namespaces": []}
        items, token = self._paged(
            lambda size, token: self.browse.list_schemas(principal, share, size, token),
            page_token,
            page_size,
        )
        return _page_answer("namespaces", [[item["name"]] for item in items], token)

    def load_namespace(self, principal: Principal, share: str, namespace: str) -> dict[str, Any]:
        schema = self._schema(principal, share, namespace)
        return {"namespace": [schema.name], "properties": {}}

    def list_tables(
        self,
        principal: Principal,
        share: str,
        namespace: str,
        page_token: str | None,
        page_size: str | None,
    ) -> dict[str, Any]:
        schema = self._schema(principal, share, namespace)
        items, token = self._paged(
            lambda size, token: self.browse.list_tables(principal, share, schema.name, size, token),
            page_token,
            page_size,
        )
        identifiers = [{"namespace": [schema.name], "name": item["name"]} for item in items]
        return _page_answer("identifiers", identifiers, token)

    # -- tables -----------------------------------------------------------------------------------------------

    def table(self, principal: Principal, share: str, namespace: str, table: str) -> ResolvedTable:
        """The table, or NoSuchTableError (NoSuchNamespaceError when its namespace is not there either)."""
        if LEVELS in namespace:
            raise NoSuchNamespaceError(f"namespace {_dotted(namespace)} not found in warehouse '{share}'")
        try:
            return self.context.resolve(principal, share, namespace, table)
        except NotFoundError:
            self._schema(principal, share, namespace)
            raise NoSuchTableError(f"table {namespace}.{table} not found in warehouse '{share}'") from None

    def load_table(
        self,
        principal: Principal,
        share: str,
        namespace: str,
        table: str,
        vended_credentials: bool,
    ) -> tuple[dict[str, Any], int]:
        """The loadTable answer, and the Delta version it serves (for the audit trail)."""
        resolved = self.table(principal, share, namespace, table)
        loaded = self._load(resolved)
        answer: dict[str, Any] = {
            "metadata-location": loaded.metadata_location,
            "metadata": loaded.metadata,
            "config": {},
        }
        if vended_credentials:
            # Asked for by default by some clients (PyIceberg): where this table offers no directory access,
            # the answer has none and the client reads with its own storage credentials.
            storage = self._storage_credentials(resolved, loaded.metadata_prefix, required=False)
            if storage:
                answer["config"] = storage[0]["config"]
                answer["storage-credentials"] = storage
        return answer, loaded.version

    def load_credentials(
        self, principal: Principal, share: str, namespace: str, table: str
    ) -> dict[str, Any]:
        resolved = self.table(principal, share, namespace, table)
        prefix = self._load(resolved).metadata_prefix
        return {"storage-credentials": self._storage_credentials(resolved, prefix)}

    def _load(self, table: ResolvedTable) -> LoadedTable:
        """The generated metadata of the table's latest version, with a snapshot of every version the share
        exposes (from its startVersion when history is shared, else the latest only)."""
        info = table.info
        oldest = info.start_version if info.history_shared else None
        return self.tables.load(IcebergSource(table.root, table.auxiliary, table.token_id, oldest))

    def _storage_credentials(
        self, table: ResolvedTable, metadata_prefix: Location, required: bool = True
    ) -> list[dict[str, Any]]:
        """One `{prefix, config}` per location a client reads: the table's root and auxiliary locations and its
        generated metadata. Empty for a table on local disk (the client reads its files directly), and for a
        table without directory access unless `required` (then UnsupportedOperationError says why)."""
        locations = [table.root, *table.auxiliary, metadata_prefix]
        if all(location.cloud == "file" for location in locations):
            return []
        problem = self.access.problem(table)
        if problem is None:
            problem = self.access.vendors.problem(metadata_prefix)
        if problem is not None and not required:
            return []
        if problem is not None:
            raise UnsupportedOperationError(
                f"Vended credentials are not available for table {table.info.full_name}: {problem}."
            )
        out: list[dict[str, Any]] = []
        for covered, credential in self.access.vendors.credentials(locations):
            for location in covered:
                settings = self.context.stores.settings_for(location)
                config = client_properties(location, credential, settings.aws if settings else None)
                out.append({"prefix": _prefix(location), "config": config})
        return out

    # -- helpers ----------------------------------------------------------------------------------------------

    def _schema(self, principal: Principal, share: str, namespace: str) -> SchemaInfo:
        if LEVELS not in namespace:
            for schema in self.context.catalog.list_schemas(principal, share):
                if schema.name.lower() == namespace.lower():
                    return schema
        raise NoSuchNamespaceError(f"namespace {_dotted(namespace)} not found in warehouse '{share}'")

    def _paged(
        self,
        fetch: Callable[[str | None, str | None], dict[str, Any]],
        page_token: str | None,
        page_size: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page when the client pages (a `pageToken`, even empty, or a `pageSize`), else every item: a
        client that sends neither does not read `next-page-token`."""
        if page_token is None and page_size is None:
            return list(_all_items(fetch)), None
        size = str(min(parse_int(page_size, "pageSize"), MAX_RESULTS)) if page_size is not None else None
        if size is not None and int(size) < 1:
            raise InvalidParameterError("'pageSize' must be at least 1")
        page = fetch(size, page_token or None)
        return page["items"], page.get("nextPageToken")


def client_properties(
    location: Location, credential: TemporaryCredential, aws: AwsStorageConfig | None = None
) -> dict[str, str]:
    """A credential in the property names Iceberg's FileIOs read (S3FileIO/PyIceberg, ADLS, GCS)."""
    secret, expires = credential.secret, str(credential.expiration_ms)
    if location.cloud == "s3":
        props = {
            "s3.access-key-id": secret["accessKeyId"],
            "s3.secret-access-key": secret["secretAccessKey"],
            "s3.session-token": secret["sessionToken"],
            "s3.session-token-expires-at-ms": expires,
        }
        if aws is not None and aws.endpoint:
            props["s3.endpoint"] = aws.endpoint
        if aws is not None and aws.region:
            props["s3.region"] = props["client.region"] = aws.region
        if aws is not None and aws.path_style is not None:
            props["s3.path-style-access"] = str(aws.path_style).lower()
        return props
    if location.cloud == "azure":
        account = f"{location.account}.dfs.core.windows.net"
        return {
            f"adls.sas-token.{account}": secret["sasToken"],  # Iceberg's Java ADLSFileIO, PyIceberg fsspec
            f"adls.sas-token-expires-at-ms.{account}": expires,
            "adls.sas-token": secret["sasToken"],  # PyIceberg's pyarrow FileIO: one account per credential
            "adls.account-name": location.account,
        }
    if location.cloud == "gs":
        return {"gcs.oauth2.token": secret["oauthToken"], "gcs.oauth2.token-expires-at": expires}
    raise UnsupportedOperationError(f"'{location.cloud}' locations cannot be shared by directory")


def _all_items(fetch: Callable[[str | None, str | None], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = fetch(None, token)
        yield from page["items"]
        token = page.get("nextPageToken")
        if not token:
            return


def _page_answer(key: str, items: list[Any], token: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {key: items}
    if token:
        answer["next-page-token"] = token
    return answer


def _dotted(namespace: str) -> str:
    return ".".join(namespace.split(LEVELS))


def _prefix(location: Location) -> str:
    """The location as a prefix of the file paths clients match it against: spelled as configured (the
    manifests name data files under the root as configured, e.g. `s3a://`), a directory ending in '/'."""
    return location.display.rstrip("/") + "/"
