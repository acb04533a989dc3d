"""The start-up banner: what a server is about to serve, where and to whom, as INFO log lines, so an operator
reads the state of a start in its first lines rather than finding it out from a recipient."""

from __future__ import annotations

import logging

from lakegate import __version__
from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from lakegate.catalog.shares import Shares, table_info
from lakegate.config import ServerConfig
from lakegate.service.context import TableContext

log = logging.getLogger("lakegate")


def log_banner(config: ServerConfig, db: Database, context: TableContext) -> None:
    log.info("lakegate %s", __version__)
    log.info("endpoint: %s", config.listen_url())
    log.info("public URL (written into profiles): %s", config.public_endpoint())
    log.info(
        "database: %s (configuration '%s')", db.url.render_as_string(hide_password=True), config.identity
    )
    shares = Shares(db)
    listed = shares.all()
    if not listed:
        log.warning("no share is configured: recipients will see nothing")
    # Recipients that read every share (the configuration's bearerToken is one) hold no grant of their own.
    everywhere = [
        f"{r['name']} (every share)"
        for r in Recipients(db).all()
        if r["allShares"] and r["status"] == "active"
    ]
    for summary in listed:
        share = shares.show(summary["name"])
        origin = "from the configuration" if share["managedBy"] == "config" else "created live"
        recipients = ", ".join([*share["recipients"], *everywhere]) or "none granted"
        log.info("share '%s' (%s; recipients: %s)", share["name"], origin, recipients)
        for table in share["tables"]:
            info = table_info(share["name"], table)
            modes = ",".join(context.table_extras(info)["accessModes"])
            history = ", history" if table["historyShared"] else ""
            log.info("  table %s [%s%s] %s", table["name"], modes, history, table["location"])
    admins = [t for t in AdminTokens(db).all() if t["status"] == "active"]
    if admins:
        log.info("admin API: on at /admin (%d active admin token(s))", len(admins))
    else:
        log.info("admin API: closed at /admin (no admin token: `lakegate admin-tokens create NAME` opens it)")
    if config.console.enabled:
        log.info("web console: on at /console (sign in with an admin token)")
    else:
        log.info("web console: off (`console: {enabled: true}` turns it on at /console)")
