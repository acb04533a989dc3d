"""The catalog declared in the YAML file, with the reference server's single optional bearer token."""

from __future__ import annotations

import hmac
import logging

from lakegate.catalog.base import (
    Catalog,
    Principal,
    SchemaInfo,
    ShareInfo,
    TableInfo,
    schema_not_found,
    share_not_found,
    table_not_found,
)
from lakegate.config import ServerConfig, ShareConfig
from lakegate.exceptions import UnauthenticatedError

log = logging.getLogger(__name__)


class ConfigCatalog(Catalog):
    def __init__(self, config: ServerConfig) -> None:
        self._shares = {s.name.lower(): s for s in config.shares}
        token = config.authorization.bearer_token if config.authorization else None
        self._token = token.get_secret_value().encode() if token else None
        if self._token is None:
            log.warning("no authorization.bearerToken configured: every request is accepted")

    def authenticate(self, bearer_token: str | None) -> Principal:
        if self._token is None:
            return Principal("anonymous")
        if bearer_token is None or not hmac.compare_digest(bearer_token.encode(), self._token):
            raise UnauthenticatedError("missing or invalid bearer token")
        return Principal("bearer-token")

    def _share(self, principal: Principal | None, name: str) -> ShareConfig:
        share = self._shares.get(name.lower())
        if share is None or (principal is not None and not principal.may_see(share.name)):
            raise share_not_found(name)
        return share

    def list_shares(self, principal: Principal) -> list[ShareInfo]:
        return [_share_info(s) for s in self._shares.values() if principal.may_see(s.name)]

    def get_share(self, principal: Principal, share: str) -> ShareInfo:
        return _share_info(self._share(principal, share))

    def list_schemas(self, principal: Principal, share: str) -> list[SchemaInfo]:
        config = self._share(principal, share)
        return [SchemaInfo(s.name, config.name) for s in config.schemas]

    def list_tables(self, principal: Principal, share: str, schema: str | None) -> list[TableInfo]:
        config = self._share(principal, share)
        schemas = [s for s in config.schemas if schema is None or s.name.lower() == schema.lower()]
        if schema is not None and not schemas:
            raise schema_not_found(share, schema)
        return [
            TableInfo(
                name=t.name, schema=s.name, share=config.name, location=t.location, id=t.id, share_id=config.id,
                auxiliary_locations=tuple(t.auxiliary_locations), history_shared=t.history_shared,
                start_version=t.start_version,
            )
            for s in schemas
            for t in s.tables
        ]

    def get_table(self, principal: Principal | None, share: str, schema: str, table: str) -> TableInfo:
        try:
            tables = self.list_tables(principal or Principal("internal"), share, schema)
        except Exception:
            raise table_not_found(share, schema, table) from None
        for info in tables:
            if info.name.lower() == table.lower():
                return info
        raise table_not_found(share, schema, table)


def _share_info(share: ShareConfig) -> ShareInfo:
    return ShareInfo(share.name, share.id, share.display_name, share.comment, dict(share.properties))
