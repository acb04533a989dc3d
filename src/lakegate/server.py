"""Assembling a server from its configuration."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount

from lakegate.audit import AuditLog
from lakegate.auth.access_tokens import AccessTokens
from lakegate.auth.oidc import IssuerKeys, KeyCacheSettings
from lakegate.auth.ratelimit import FailureLimiter
from lakegate.banner import log_banner
from lakegate.catalog.activations import ActivationLinks
from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.client_credentials import ClientCredentials
from lakegate.catalog.db import Database
from lakegate.catalog.federation import FederatedAuthenticator
from lakegate.catalog.keystore import signing_key
from lakegate.catalog.migrate import open_database
from lakegate.catalog.recipients import Recipients, active_token_count
from lakegate.catalog.shares import Shares
from lakegate.catalog.sql import SqlCatalog
from lakegate.cloud.registry import StoreRegistry
from lakegate.cloud.vending import VendorRegistry
from lakegate.config import ServerConfig
from lakegate.delta.cache import SnapshotCache
from lakegate.exceptions import ConfigError
from lakegate.http.activation import Activation, activation_routes
from lakegate.http.admin import AdminApi, admin_routes
from lakegate.http.app import Services, create_app
from lakegate.http.console.pages import Console, console_routes
from lakegate.http.observability import Observer, operational_routes
from lakegate.iceberg import IcebergTables
from lakegate.keys import KeyRing
from lakegate.metrics import TALLY, Metrics
from lakegate.preflight import catalog_locations, check_locations
from lakegate.service.async_queries import AsyncQueries
from lakegate.service.browse import BrowseService
from lakegate.service.context import TableContext
from lakegate.service.credentials import CredentialService, DirectoryAccess
from lakegate.service.history import HistoryService
from lakegate.service.iceberg import IcebergCatalog
from lakegate.service.inspect import TableInspector
from lakegate.service.oauth import TokenEndpoint
from lakegate.service.tables import TableService
from lakegate.service.warmup import create_stores, start_warm_up
from lakegate.sharedcache import SharedCache
from lakegate.workers import default_workers

log = logging.getLogger("lakegate")


def build_services(config: ServerConfig, db: Database | None = None) -> Services:
    db = db or open_database(config)
    # Replicas share the key (configured, or kept in the database), so their page and refresh tokens and
    # file URLs are valid on each other.
    keys = KeyRing(signing_key(db, config))
    anonymous = config.authorization is not None and config.authorization.allow_anonymous
    access_tokens = AccessTokens(keys, config.public_endpoint(), config.oauth.access_token_lifetime_seconds)
    catalog = SqlCatalog(
        db,
        allow_anonymous=anonymous,
        access_tokens=access_tokens,
        federation=federation(db, config),
        cache_seconds=config.catalog_cache_seconds,
    )
    _warn_about_access(db, anonymous)
    stores = StoreRegistry(config, keys)
    snapshots = SnapshotCache(
        stores,
        max_tables=config.delta_table_cache_size or 1,
        staleness_acceptable=config.staleness_acceptable,
        max_bytes=config.snapshot_cache_bytes,
        shared=shared_cache(config),
    )
    access = DirectoryAccess(VendorRegistry(config, stores))
    context = TableContext(config, catalog, snapshots, stores, keys, dir_access=access.allows)
    async_queries = AsyncQueries(context, db)
    browse = BrowseService(catalog, keys, table_extras=context.table_extras)
    return Services(
        config,
        catalog,
        keys,
        context,
        browse,
        TableService(context, async_queries),
        HistoryService(context, async_queries),
        async_queries,
        CredentialService(context, access),
        IcebergCatalog(context, browse, access, IcebergTables(config, stores, snapshots)),
        TokenEndpoint(
            ClientCredentials(db),
            access_tokens,
            FailureLimiter(config.oauth.max_failed_per_client, config.oauth.failure_window_seconds),
            FailureLimiter(config.oauth.max_failed_per_address, config.oauth.failure_window_seconds),
        ),
    )


def shared_cache(config: ServerConfig) -> SharedCache | None:
    """The directory the workers share snapshots through: configured, or private to this run; None (each
    worker keeps its own, in memory) when no temporary directory can be made, e.g. a read-only filesystem, and
    when one process serves and no directory is configured: a private directory would have no other reader,
    and writing a cold table's checkpoint and parts there costs its first answer ~30-50 ms per 100k files."""
    if not config.snapshot_cache_directory and _one_process(config):
        return None
    if config.snapshot_cache_directory:
        try:
            return SharedCache.at(
                config.absolute_location(config.snapshot_cache_directory), config.snapshot_cache_bytes
            )
        except OSError as exc:
            raise ConfigError(
                f"snapshotCacheDirectory: cannot use {config.snapshot_cache_directory}: {exc.strerror}"
            ) from None
    try:
        return SharedCache.private(config.snapshot_cache_bytes)
    except OSError as exc:
        log.warning(
            "no snapshot cache directory (%s): each worker keeps its own snapshots in memory; set "
            "snapshotCacheDirectory to a writable directory to share them",
            exc.strerror,
        )
        return None


def _one_process(config: ServerConfig) -> bool:
    return (default_workers() if config.workers == "auto" else config.workers) == 1


def federation(db: Database, config: ServerConfig) -> FederatedAuthenticator:
    """OIDC federation as configured: the identity providers' key cache, and the tokens' clock tolerance."""
    settings = config.federation
    keys = IssuerKeys(
        KeyCacheSettings(
            cache_seconds=settings.jwks_cache_seconds,
            min_refresh_seconds=settings.jwks_min_refresh_seconds,
            fetch_timeout_seconds=settings.fetch_timeout_seconds,
        )
    )
    return FederatedAuthenticator(db, keys, settings.clock_skew_seconds)


def _warn_about_access(db: Database, anonymous: bool) -> None:
    if anonymous:
        log.warning(
            "authorization.allowAnonymous is true: ANYONE who can reach this server can read EVERY share"
        )
    elif active_token_count(db) == 0:
        log.warning(
            "no recipient can connect: there is no authorization.bearerToken and no active recipient "
            "token; every request is refused (401) until you run `lakegate recipients create NAME "
            "--share SHARE --profile-out FILE`"
        )


def build_app(config: ServerConfig, writer_process: bool = False) -> Starlette:
    """`writer_process`: records written by a child process (`lakegate.recordwriter`; `lakegate serve`'s)."""
    db = open_database(config)
    try:
        check_locations(catalog_locations(db))  # tables added with the admin API since the last start
    except ConfigError:
        db.close()
        raise
    if config.public_endpoint_warning():
        log.warning(config.public_endpoint_warning())
    services = build_services(config, db)
    log_banner(config, db, services.context)
    audit = AuditLog(db, background=True, writer_process=writer_process)
    admin = AdminApi(
        AdminTokens(db),
        Recipients(db),
        Shares(db),
        audit,
        config.public_endpoint(),
        max_body_bytes=config.max_request_body_bytes,
        body_timeout_s=config.request_timeout_seconds,
    )
    operations = [
        *operational_routes(db, Metrics(services.context.snapshots)),
        Mount("/admin", routes=admin_routes(admin)),
    ]
    links = ActivationLinks(db)
    if config.console.enabled:  # off by default: /console then answers 404 like any unknown path
        inspector = TableInspector(services.context, services.credentials.access)
        console = Console(admin, links, inspector, services.keys, config)
        operations.append(Mount("/console", routes=console_routes(console)))
    pages = activation_routes(Activation(links, audit, services.keys, config))
    observer = Observer(audit, config.endpoint)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        create_stores(services.context)
        if config.warm_up:
            start_warm_up(services.context, config.delta_table_cache_size)
        yield
        # After uvicorn has drained in-flight requests: their counts and audit events are written, then the
        # database closed.
        TALLY.fold()
        audit.close()
        db.close()

    return create_app(services, observer, operations, lifespan, pages)
