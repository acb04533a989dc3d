"""Work done before the first recipient asks.

At start, `create_stores` creates the store (cloud SDK client) of every shared table's location and imports
what the first conversion of a checkpoint would import (pyarrow loads pandas lazily): together ~1 s that would
otherwise fall on the first request. Then, unless `warmUp: false`, a background thread reads the latest snapshot
of up to `deltaTableCacheSize` tables and prepares their parquet-format file lines, so the first query of a 100k-file
table is as fast as later ones. A table that fails is named in a warning and left for its requests to report."""

from __future__ import annotations

import contextlib
import logging
import threading

from lakegate.catalog.base import Principal, TableInfo
from lakegate.protocol.capabilities import PARQUET
from lakegate.service.context import TableContext

log = logging.getLogger("lakegate.warmup")


def _tables(tables: TableContext) -> list[TableInfo]:
    everyone = Principal("warm-up")  # sees every share; nothing is sent to anyone
    return [
        info
        for share in tables.catalog.list_shares(everyone)
        for info in tables.catalog.list_tables(everyone, share.name, None)
    ]


def create_stores(tables: TableContext) -> None:
    with contextlib.suppress(ImportError):
        import pandas  # noqa: F401  - pyarrow imports it on first use anyway
    for info in _tables(tables):
        try:
            resolved = tables.resolve(None, info.share, info.schema, info.name)
            for location in (resolved.root, *resolved.auxiliary):
                tables.stores.store_for(location)
        except Exception as exc:  # noqa: BLE001  - the table's own requests will report it properly
            log.info("could not prepare the store of %s: %s", info.full_name, exc)


def warm_up(tables: TableContext, limit: int) -> int:
    """Loads up to `limit` tables; returns how many were loaded."""
    loaded = 0
    for info in _tables(tables):
        if loaded >= limit:
            break
        try:
            resolved = tables.resolve(None, info.share, info.schema, info.name)
            snapshot = tables.snapshots.latest(resolved.root)
            tables.lines.parts(snapshot, resolved.root, resolved.auxiliary, PARQUET, PARQUET)
            loaded += 1
        except Exception as exc:  # noqa: BLE001  - the table's own requests will report it properly
            # A warning, not info: a table that cannot be read at start (a lost commit, no Delta log) is the
            # provider's to repair, and start-up is when the provider is watching the log.
            log.warning("warm-up skipped %s: %s", info.full_name, exc)
    return loaded


def start_warm_up(tables: TableContext, limit: int) -> threading.Thread:
    thread = threading.Thread(target=warm_up, args=(tables, limit), name="lakegate-warmup", daemon=True)
    thread.start()
    return thread
