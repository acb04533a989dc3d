"""Async queries in the database, so every replica answers a poll.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=False)  # how the models' UtcDateTime stores aware datetimes


def upgrade() -> None:
    op.create_table(
        "async_queries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("table_key", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_async_queries_dedupe_key"),
    )
    op.create_index("ix_async_queries_recipient", "async_queries", ["recipient"])
    op.create_index("ix_async_queries_expires_at", "async_queries", ["expires_at"])


def downgrade() -> None:
    op.drop_table("async_queries")
