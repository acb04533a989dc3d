"""Recipients without long-lived bearer tokens: OAuth client secrets, registered public keys (private-key JWT),
used assertion ids (replay protection across replicas) and OIDC federation policies.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = sa.String(255)
UTC_DATETIME = sa.DateTime(timezone=False)  # how the models' UtcDateTime stores aware datetimes


def _recipient_id(table: str) -> sa.Column[int]:
    return sa.Column(
        "recipient_id",
        sa.Integer(),
        sa.ForeignKey("recipients.id", ondelete="CASCADE", name=f"fk_{table}_recipient_id_recipients"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "recipient_client_secrets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        _recipient_id("recipient_client_secrets"),
        sa.UniqueConstraint("token_hash", name="uq_recipient_client_secrets_token_hash"),
    )
    op.create_index("ix_recipient_client_secrets_recipient_id", "recipient_client_secrets", ["recipient_id"])
    op.create_table(
        "recipient_public_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        _recipient_id("recipient_public_keys"),
        sa.Column("kid", NAME, nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.UniqueConstraint("recipient_id", "kid", name="uq_recipient_public_keys_recipient_id"),
    )
    op.create_table(
        "used_assertions",
        sa.Column("jti_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
    )
    op.create_index("ix_used_assertions_expires_at", "used_assertions", ["expires_at"])
    op.create_table(
        "federation_policies",
        sa.Column("id", sa.Integer(), primary_key=True),
        _recipient_id("federation_policies"),
        sa.Column("issuer", sa.String(1024), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("subject_claim", NAME, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
    )
    op.create_index("ix_federation_policies_recipient_id", "federation_policies", ["recipient_id"])
    op.create_index("ix_federation_policies_issuer", "federation_policies", ["issuer"])


def downgrade() -> None:
    for table in (
        "federation_policies",
        "used_assertions",
        "recipient_public_keys",
        "recipient_client_secrets",
    ):
        op.drop_table(table)
