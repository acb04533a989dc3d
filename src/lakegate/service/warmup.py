"""Loading tables before the first recipient asks: after start, a background thread reads the latest snapshot
of up to `deltaTableCacheSize` shared tables and prepares their parquet-format file lines, so the first query
of a 100k-file table is as fast as later ones. Failures are logged and left for the request to report."""

from __future__ import annotations

import logging
import threading

from lakegate.catalog.base import Principal
from lakegate.protocol.capabilities import PARQUET
from lakegate.service.files import entries
from lakegate.service.tables import TableService

log = logging.getLogger("lakegate.warmup")


def warm_up(tables: TableService, limit: int) -> int:
    """Loads up to `limit` tables; returns how many were loaded."""
    everyone = Principal("warm-up")  # sees every share; nothing is sent to anyone
    loaded = 0
    for share in tables.catalog.list_shares(everyone):
        for info in tables.catalog.list_tables(everyone, share.name, None):
            if loaded >= limit:
                return loaded
            try:
                resolved = tables.resolve(None, info.share, info.schema, info.name)
                snapshot = tables.snapshots.latest(resolved.root)
                entries(snapshot, resolved.root, resolved.auxiliary, PARQUET, PARQUET)
                loaded += 1
            except Exception as exc:  # the table's own requests will report it properly
                log.info("warm-up skipped %s: %s", info.full_name, exc)
    return loaded


def start_warm_up(tables: TableService, limit: int) -> threading.Thread:
    thread = threading.Thread(target=warm_up, args=(tables, limit), name="lakegate-warmup", daemon=True)
    thread.start()
    return thread
