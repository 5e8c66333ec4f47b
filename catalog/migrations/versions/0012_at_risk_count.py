"""finding.at_risk_count: how many assets an error puts at risk, beside the nearest few

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

`finding.at_risk` listed every asset downstream of an error with its path:
on a catalog of a million assets that is millions of entries per error. It
now lists the nearest few (`lineage.rules.AT_RISK_SHOWN`) and this column
says how many there are in all. A finding recorded before lists them all:
its count is the length of its list, and the next check writes the bounded
form.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "finding",
        sa.Column("at_risk_count", sa.Integer(), server_default="0", nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE finding SET at_risk_count = json_array_length(at_risk)"
            " WHERE json_typeof(at_risk) = 'array' AND json_array_length(at_risk) > 0"
        )
    else:
        op.execute(
            "UPDATE finding SET at_risk_count = json_array_length(at_risk)"
            " WHERE json_type(at_risk) = 'array' AND json_array_length(at_risk) > 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("finding") as batch:
        batch.drop_column("at_risk_count")
