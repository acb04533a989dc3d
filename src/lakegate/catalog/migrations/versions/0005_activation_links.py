"""Recipient activation links: one-time codes (kept as hashes) that hand a recipient its profile.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=False)  # how the models' UtcDateTime stores aware datetimes


def upgrade() -> None:
    op.create_table(
        "activation_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column(
            "recipient_id",
            sa.Integer(),
            sa.ForeignKey(
                "recipients.id", ondelete="CASCADE", name="fk_activation_links_recipient_id_recipients"
            ),
            nullable=False,
        ),
        sa.Column(
            "token_id",
            sa.Integer(),
            sa.ForeignKey(
                "recipient_tokens.id",
                ondelete="CASCADE",
                name="fk_activation_links_token_id_recipient_tokens",
            ),
            nullable=False,
        ),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("used_at", UTC_DATETIME, nullable=True),
        sa.UniqueConstraint("code_hash", name="uq_activation_links_code_hash"),
    )
    op.create_index("ix_activation_links_recipient_id", "activation_links", ["recipient_id"])


def downgrade() -> None:
    op.drop_table("activation_links")
