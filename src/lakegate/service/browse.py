"""Discovery: list shares, schemas and tables, with `maxResults` / `pageToken` pagination (protocol.md §2.1–2.5).

A page token names the last item returned (not an offset), so items added or removed between pages neither
repeat nor vanish; it is bound to the listing it came from and signed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from lakegate.catalog.base import Catalog, Principal, SchemaInfo, ShareInfo, TableInfo
from lakegate.exceptions import InvalidParameterError
from lakegate.keys import KeyRing
from lakegate.protocol import tokens
from lakegate.protocol.requests import parse_int

MAX_RESULTS = 500
LIST_PAGE = "list-page"
T = TypeVar("T", ShareInfo, SchemaInfo, TableInfo)


def share_json(share: ShareInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"name": share.name}
    if share.id:
        out["id"] = share.id
    if share.display_name:
        out["displayName"] = share.display_name
    if share.comment:
        out["comment"] = share.comment
    if share.properties:
        out["properties"] = share.properties
    return out


class BrowseService:
    def __init__(
        self,
        catalog: Catalog,
        keys: KeyRing,
        table_extras: Callable[[TableInfo], dict[str, Any]] | None = None,
    ) -> None:
        self.catalog = catalog
        self.keys = keys
        # The `accessModes` (and, for directory access, `location`, `auxiliaryLocations`) of a table item: the
        # server passes TableContext.table_extras; without it, table items carry no such fields.
        self.table_extras = table_extras

    def list_shares(
        self, principal: Principal, max_results: str | None, page_token: str | None
    ) -> dict[str, Any]:
        items, token = self._page(self.catalog.list_shares(principal), "shares", max_results, page_token)
        return _listing([share_json(s) for s in items], token)

    def get_share(self, principal: Principal, share: str) -> dict[str, Any]:
        return {"share": share_json(self.catalog.get_share(principal, share))}

    def list_schemas(
        self, principal: Principal, share: str, max_results: str | None, page_token: str | None
    ) -> dict[str, Any]:
        schemas = self.catalog.list_schemas(principal, share)
        items, token = self._page(schemas, f"schemas/{share.lower()}", max_results, page_token)
        return _listing([{"name": s.name, "share": share} for s in items], token)

    def list_tables(
        self,
        principal: Principal,
        share: str,
        schema: str | None,
        max_results: str | None,
        page_token: str | None,
    ) -> dict[str, Any]:
        tables = self.catalog.list_tables(principal, share, schema)
        scope = f"tables/{share.lower()}/{schema.lower() if schema else '*'}"
        items, token = self._page(tables, scope, max_results, page_token)
        return _listing([self._table_json(t, share, schema) for t in items], token)

    def _table_json(self, table: TableInfo, share: str, schema: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": table.name, "schema": schema or table.schema, "share": share}
        if table.share_id:
            out["shareId"] = table.share_id
        if table.id:
            out["id"] = table.id
        if self.table_extras is not None:
            out.update(self.table_extras(table))
        return out

    def _page(
        self, items: Sequence[T], scope: str, max_results: str | None, page_token: str | None
    ) -> tuple[Sequence[T], str | None]:
        limit = MAX_RESULTS
        if max_results is not None:
            limit = parse_int(max_results, "maxResults")
            if limit > MAX_RESULTS:
                raise InvalidParameterError(
                    f"Acceptable values of 'maxResults' are 0 to {MAX_RESULTS}, inclusive. (Default: {MAX_RESULTS})"
                )
        start = 0
        if page_token:
            payload = tokens.decode(self.keys, LIST_PAGE, page_token, "invalid 'nextPageToken'")
            if payload.get("s") != scope:
                raise InvalidParameterError("invalid 'nextPageToken'")
            after = str(payload.get("a", "")).lower()
            names = [_name(i) for i in items]
            # Resume after the last item returned; if it is gone, after the position it had.
            start = names.index(after) + 1 if after in names else min(int(payload.get("i", 0)), len(items))
        page = items[start : start + limit]
        more = start + len(page) < len(items)
        token = None
        if more:
            last = page[-1] if page else (items[start - 1] if start else None)
            token = tokens.encode(
                self.keys, LIST_PAGE, {"s": scope, "a": _name(last) if last else "", "i": start + len(page)}
            )
        return page, token


def _name(item: ShareInfo | SchemaInfo | TableInfo) -> str:
    if isinstance(item, TableInfo):
        return f"{item.schema}.{item.name}".lower()
    return item.name.lower()


def _listing(items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"items": items}
    if token:
        out["nextPageToken"] = token
    return out
