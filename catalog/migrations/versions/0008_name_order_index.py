"""PostgreSQL: an index on (namespace, first characters of name) for pages in name order

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Marquez's lists of a namespace's datasets and jobs are pages in name order.
Without an index PostgreSQL read and sorted the whole namespace for each
page. Names have no length limit and a b-tree entry holds about 2,700 bytes,
so the index holds a name's first `textsearch.NAME_PREFIX` characters (see
`catalog.textsearch.name_order`). SQLite has had its index since 0005.
"""

from __future__ import annotations

from alembic import op

from catalog import textsearch

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        textsearch.install_postgresql_name_index(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(textsearch.PG_NAME_INDEX, table_name="asset")
