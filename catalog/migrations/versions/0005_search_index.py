"""search index of asset names and URIs (SQLite FTS5 trigram, PostgreSQL pg_trgm);
SQLite: an index on (namespace, name)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

See `catalog.textsearch`: the index answers `LIKE '%text%'` on names and
URIs without reading every asset. It is filled from the assets already there.
"""

from __future__ import annotations

from alembic import op

from catalog import textsearch

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        textsearch.install_sqlite(bind)
    else:
        textsearch.install_postgresql(bind)


def downgrade() -> None:
    textsearch.uninstall(op.get_bind())
