"""coverage figures: each check's lineage coverage by kind, for the trend

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage_figure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("assets", sa.Integer(), nullable=False),
        sa.Column("traced", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("coverage_figure", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coverage_figure_checked_at"), ["checked_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("coverage_figure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coverage_figure_checked_at"))
    op.drop_table("coverage_figure")
