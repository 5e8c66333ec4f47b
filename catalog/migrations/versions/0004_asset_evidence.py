"""asset evidence: each source's latest assertion; when a version became true; merges;
column lineage transformations

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Every resolved asset gets one evidence row from what registered it last
(its `origin`), asserting its current version's definition (stored by
fingerprint) and its observations (those of OpenLineage events stay on the
asset), since its last update.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "asset_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("observed", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("asserted_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("asset_id", "source_hash"),
    )
    with op.batch_alter_table("asset_evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_evidence_asset_id"), ["asset_id"], unique=False)

    with op.batch_alter_table("asset_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("valid_from", sa.DateTime(), nullable=True))
    op.execute("UPDATE asset_version SET valid_from = created_at")
    with op.batch_alter_table("alias", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("edge", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transformations", sa.JSON(), nullable=True))

    asset = sa.table(
        "asset",
        sa.column("id", sa.Integer),
        sa.column("origin", sa.Text),
        sa.column("fingerprint", sa.String),
        sa.column("observed", sa.JSON),
        sa.column("description", sa.Text),
        sa.column("updated_at", sa.DateTime),
        sa.column("current_version", sa.Integer),
        sa.column("unresolved", sa.Boolean),
    )
    evidence = sa.table(
        "asset_evidence",
        sa.column("asset_id", sa.Integer),
        sa.column("source", sa.Text),
        sa.column("source_hash", sa.String),
        sa.column("fingerprint", sa.String),
        sa.column("definition", sa.JSON),
        sa.column("observed", sa.JSON),
        sa.column("description", sa.Text),
        sa.column("asserted_at", sa.DateTime),
        sa.column("recorded_at", sa.DateTime),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(asset).where(asset.c.current_version > 0).where(asset.c.unresolved.is_(False))
    ).all()
    values = []
    for row in rows:
        source = row.origin or "unknown"
        observed = {k: v for k, v in (row.observed or {}).items() if k != "openlineage"}
        values.append(
            {
                "asset_id": row.id,
                "source": source,
                "source_hash": hashlib.sha256(source.encode("utf-8")).hexdigest(),
                "fingerprint": row.fingerprint or "",
                "definition": None,
                "observed": observed,
                "description": row.description,
                "asserted_at": row.updated_at,
                "recorded_at": row.updated_at,
            }
        )
    for start in range(0, len(values), 500):
        op.bulk_insert(evidence, values[start : start + 500])


def downgrade() -> None:
    with op.batch_alter_table("edge", schema=None) as batch_op:
        batch_op.drop_column("transformations")
    with op.batch_alter_table("alias", schema=None) as batch_op:
        batch_op.drop_column("merged_at")
    with op.batch_alter_table("asset_version", schema=None) as batch_op:
        batch_op.drop_column("valid_from")
    with op.batch_alter_table("asset_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_evidence_asset_id"))
    op.drop_table("asset_evidence")
