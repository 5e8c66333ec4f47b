"""check changes: what changed since the last check, for an incremental `check`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Triggers on the tables the rules read log each change to `check_change`, one
pending row per change (a unique index over the unclaimed rows); `check_state`
keeps what the last check ran with and a fingerprint of the runs it saw; an
index finds assets by name. A catalog upgraded to this revision has no state
yet: its first check runs in full.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from catalog.changelog import drop_triggers, install_triggers

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("what", sa.String(length=16), nullable=False),
        sa.Column("claimed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "check_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("trained_on", sa.JSON(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("runs", sa.Text(), nullable=True),
        sa.Column("forgotten", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    install_triggers(op.get_bind())


def downgrade() -> None:
    drop_triggers(op.get_bind())
    op.drop_table("check_state")
    op.drop_table("check_change")
