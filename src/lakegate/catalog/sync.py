"""Applying the YAML's shares and bearer token to the database, declaratively and idempotently.

The YAML wins for what it declares: a share it names is made to match it exactly (schemas and tables added,
changed, removed), whether the share was created by the YAML or earlier with the CLI; a share the YAML once
declared and no longer does is deleted. Shares created with the CLI or admin API and not named in the YAML
are left alone. Rows are updated in place, so grants and generated ids survive a restart.

`authorization.bearerToken` becomes the token of the bootstrap recipient, which sees every share. A revoked
bootstrap token stays revoked across restarts: only a new token value in the YAML brings access back.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.bearer_tokens import revoke_active, token_hash
from lakegate.catalog.db import utcnow
from lakegate.catalog.models import SCHEMAS, SHARES, TABLES, Recipient, RecipientToken
from lakegate.config import SchemaConfig, ServerConfig, ShareConfig
from lakegate.exceptions import ConfigError

log = logging.getLogger(__name__)
BOOTSTRAP = "bootstrap"
CONFIG = "config"


def sync_config(conn: sa.Connection, config: ServerConfig, now: datetime | None = None) -> None:
    now = now or utcnow()
    existing = {row.name_key: row for row in conn.execute(sa.select(SHARES))}
    for position, share in enumerate(config.shares):
        share_id = _sync_share(conn, existing.get(share.name.lower()), share, position, now)
        _sync_schemas(conn, share_id, share.schemas)
    declared = {s.name.lower() for s in config.shares}
    for key, row in existing.items():
        if row.managed_by == CONFIG and key not in declared:
            log.warning("share '%s' is no longer in the configuration: deleted with its grants", row.name)
            conn.execute(sa.delete(SHARES).where(SHARES.c.id == row.id))
    token = config.authorization.bearer_token if config.authorization else None
    _sync_bootstrap(conn, token.get_secret_value() if token else None, now)


def _sync_share(conn: sa.Connection, row: Any, share: ShareConfig, position: int, now: datetime) -> int:
    values = {
        "name": share.name,
        "public_id": share.id,
        "display_name": share.display_name,
        "comment": share.comment,
        "properties": dict(share.properties),
        "managed_by": CONFIG,
        "position": position,
    }
    if row is None:
        log.info("share '%s' added from the configuration", share.name)
        return int(
            conn.execute(
                sa.insert(SHARES)
                .values(name_key=share.name.lower(), created_at=now, **values)
                .returning(SHARES.c.id)
            ).scalar_one()
        )
    _update_if_changed(conn, SHARES, row, values)
    return int(row.id)


def _sync_schemas(conn: sa.Connection, share_id: int, schemas: list[SchemaConfig]) -> None:
    wanted = [{"name": s.name, "position": i} for i, s in enumerate(schemas)]
    ids = _sync_children(conn, SCHEMAS, SCHEMAS.c.share_id, share_id, wanted)
    for schema in schemas:
        tables = [
            {
                "name": t.name,
                "public_id": t.id,
                "location": t.location,
                "auxiliary_locations": list(t.auxiliary_locations),
                "history_shared": t.history_shared,
                "start_version": t.start_version,
                "position": i,
            }
            for i, t in enumerate(schema.tables)
        ]
        _sync_children(conn, TABLES, TABLES.c.schema_id, ids[schema.name.lower()], tables)


def _sync_children(
    conn: sa.Connection, table: sa.Table, parent: sa.Column[int], parent_id: int, wanted: list[dict[str, Any]]
) -> dict[str, int]:
    """Make the rows under one parent exactly `wanted`, matched by name; returns name_key -> row id."""
    rows = {row.name_key: row for row in conn.execute(sa.select(table).where(parent == parent_id))}
    ids: dict[str, int] = {}
    for values in wanted:
        key = values["name"].lower()
        row = rows.pop(key, None)
        if row is None:
            ids[key] = int(
                conn.execute(
                    sa.insert(table)
                    .values(**{parent.key: parent_id}, name_key=key, **values)
                    .returning(table.c.id)
                ).scalar_one()
            )
        else:
            _update_if_changed(conn, table, row, values)
            ids[key] = int(row.id)
    if rows:
        conn.execute(sa.delete(table).where(table.c.id.in_([row.id for row in rows.values()])))
    return ids


def _update_if_changed(conn: sa.Connection, table: sa.Table, row: Any, values: dict[str, Any]) -> None:
    # Writing only real differences keeps a restart with an unchanged YAML free of writes.
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if changed:
        conn.execute(sa.update(table).where(table.c.id == row.id).values(**changed))


def _sync_bootstrap(conn: sa.Connection, token: str | None, now: datetime) -> None:
    recipient_id = conn.execute(sa.select(Recipient.id).where(Recipient.name_key == BOOTSTRAP)).scalar()
    if token is None:
        if recipient_id is not None and _revoke_active(conn, recipient_id, now):
            log.warning("authorization.bearerToken was removed from the configuration: its token is revoked")
        return
    if recipient_id is None:
        recipient_id = conn.execute(
            sa.insert(Recipient)
            .values(
                name=BOOTSTRAP,
                name_key=BOOTSTRAP,
                all_shares=True,
                managed_by=CONFIG,
                created_at=now,
                comment="the configuration's authorization.bearerToken",
            )
            .returning(Recipient.id)
        ).scalar_one()
    digest = token_hash(token)
    known = conn.execute(
        sa.select(RecipientToken.recipient_id, RecipientToken.revoked_at, RecipientToken.expires_at).where(
            RecipientToken.token_hash == digest
        )
    ).first()
    if known is None:
        _revoke_active(conn, recipient_id, now)  # the previous configured token, if any
        conn.execute(
            sa.insert(RecipientToken).values(recipient_id=recipient_id, token_hash=digest, created_at=now)
        )
    elif known.recipient_id != recipient_id:
        raise ConfigError("authorization.bearerToken: this token already belongs to another recipient")
    elif known.revoked_at is not None or (known.expires_at is not None and known.expires_at <= now):
        log.warning(
            "authorization.bearerToken was revoked or has expired: it no longer authenticates; "
            "set a new value to restore the bootstrap recipient"
        )


def _revoke_active(conn: sa.Connection, recipient_id: int, now: datetime) -> int:
    return revoke_active(conn, RecipientToken, RecipientToken.recipient_id == recipient_id, now)
