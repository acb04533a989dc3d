"""Assembling a server from its configuration."""

from __future__ import annotations

import logging

from lakegate.catalog.config_catalog import ConfigCatalog
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import ServerConfig
from lakegate.delta.cache import SnapshotCache
from lakegate.http.app import Services, create_app
from lakegate.keys import KeyRing
from lakegate.service.browse import BrowseService
from lakegate.service.tables import TableService

log = logging.getLogger("lakegate")


def build_services(config: ServerConfig) -> Services:
    if config.token_signing_key is not None:
        keys = KeyRing(config.token_signing_key.get_secret_value().encode())
    else:
        log.warning("no tokenSigningKey configured: page tokens and file URLs are valid only until restart "
                    "and only on this process")
        keys = KeyRing.random()
    catalog = ConfigCatalog(config)
    stores = StoreRegistry(config, keys)
    snapshots = SnapshotCache(stores, max_tables=config.delta_table_cache_size or 1,
                              staleness_acceptable=config.staleness_acceptable)
    tables = TableService(config, catalog, snapshots, stores, keys)
    return Services(config, catalog, BrowseService(catalog, keys), tables, keys)


def build_app(config: ServerConfig):  # noqa: ANN201 - a Starlette app
    return create_app(build_services(config))
