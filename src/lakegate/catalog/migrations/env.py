"""Alembic environment: migrations run on the connection lakegate hands over (under its startup lock)."""

from __future__ import annotations

from alembic import context

from lakegate.catalog.migrate import VERSION_TABLE
from lakegate.catalog.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `lakegate db upgrade`, which holds the startup lock")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them; batch mode does that portably
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
