"""The initial catalog: shares, schemas, tables, recipients, tokens, grants, admin tokens, audit, settings.

Revision ID: 0001
Revises:
Create Date: 2026-07-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The column types as they were at this revision, written out rather than imported from the live models: a
# migration must build the same schema forever, whatever later edits to `lakegate.catalog.models` change.
NAME = sa.String(255)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys
UTC_DATETIME = sa.DateTime(
    timezone=False
)  # how the models' UtcDateTime stores aware datetimes: naive, in UTC


def _token_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", NAME, nullable=False),
        sa.Column("name_key", NAME, nullable=False),
        sa.Column("public_id", sa.String(64), nullable=False),
        sa.Column("display_name", NAME, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("managed_by", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.UniqueConstraint("name_key", name="uq_shares_name_key"),
    )
    op.create_table(
        "share_schemas",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "share_id",
            sa.Integer(),
            sa.ForeignKey("shares.id", ondelete="CASCADE", name="fk_share_schemas_share_id_shares"),
            nullable=False,
        ),
        sa.Column("name", NAME, nullable=False),
        sa.Column("name_key", NAME, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.UniqueConstraint("share_id", "name_key", name="uq_share_schemas_share_id"),
    )
    op.create_table(
        "share_tables",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "schema_id",
            sa.Integer(),
            sa.ForeignKey(
                "share_schemas.id", ondelete="CASCADE", name="fk_share_tables_schema_id_share_schemas"
            ),
            nullable=False,
        ),
        sa.Column("name", NAME, nullable=False),
        sa.Column("name_key", NAME, nullable=False),
        sa.Column("public_id", sa.String(64), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("auxiliary_locations", sa.JSON(), nullable=False),
        sa.Column("history_shared", sa.Boolean(), nullable=False),
        sa.Column("start_version", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.UniqueConstraint("schema_id", "name_key", name="uq_share_tables_schema_id"),
    )
    op.create_table(
        "recipients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", NAME, nullable=False),
        sa.Column("name_key", NAME, nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("all_shares", sa.Boolean(), nullable=False),
        sa.Column("managed_by", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.UniqueConstraint("name_key", name="uq_recipients_name_key"),
    )
    op.create_table(
        "grants",
        sa.Column(
            "recipient_id",
            sa.Integer(),
            sa.ForeignKey("recipients.id", ondelete="CASCADE", name="fk_grants_recipient_id_recipients"),
            primary_key=True,
        ),
        sa.Column(
            "share_id",
            sa.Integer(),
            sa.ForeignKey("shares.id", ondelete="CASCADE", name="fk_grants_share_id_shares"),
            primary_key=True,
        ),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
    )
    op.create_index("ix_grants_share_id", "grants", ["share_id"])
    op.create_table(
        "recipient_tokens",
        *_token_columns(),
        sa.Column(
            "recipient_id",
            sa.Integer(),
            sa.ForeignKey(
                "recipients.id", ondelete="CASCADE", name="fk_recipient_tokens_recipient_id_recipients"
            ),
            nullable=False,
        ),
        sa.UniqueConstraint("token_hash", name="uq_recipient_tokens_token_hash"),
    )
    op.create_index("ix_recipient_tokens_recipient_id", "recipient_tokens", ["recipient_id"])
    op.create_table(
        "admin_tokens",
        *_token_columns(),
        sa.Column("name", NAME, nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_admin_tokens_token_hash"),
    )
    op.create_index("ix_admin_tokens_name", "admin_tokens", ["name"])
    op.create_table(
        "audit_events",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("recipient", NAME, nullable=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("share", NAME, nullable=True),
        sa.Column("schema_name", NAME, nullable=True),
        sa.Column("table_name", NAME, nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("replica", sa.String(128), nullable=True),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_recipient", "audit_events", ["recipient"])
    op.create_table(
        "server_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "server_settings",
        "audit_events",
        "admin_tokens",
        "recipient_tokens",
        "grants",
        "recipients",
        "share_tables",
        "share_schemas",
        "shares",
    ):
        op.drop_table(table)
