"""Alembic environment: migrations run on the connection steward hands in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import catalog.models  # noqa: F401  (registers the tables)

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - steward always passes its connection
    raise RuntimeError("steward's migrations run through catalog.db.Store.migrate()")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
