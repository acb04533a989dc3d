"""Activation links for every method whose secret the server makes: a link hands out a bearer token (methods
token and basic) or an OAuth client secret (method oauth), whose row it names.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activation_links") as batch:
        batch.add_column(sa.Column("auth", sa.String(16), nullable=False, server_default="token"))
        batch.alter_column("token_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(
            sa.Column(
                "client_secret_id",
                sa.Integer(),
                sa.ForeignKey(
                    "recipient_client_secrets.id",
                    ondelete="CASCADE",
                    name="fk_activation_links_client_secret_id_recipient_client_secrets",
                ),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("activation_links") as batch:
        batch.drop_column("client_secret_id")
        batch.alter_column("token_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("auth")
