"""raw events: each digest accepted at most once (a unique index, for several writers)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Catalogs written before this revision by two processes at once (two
servers on one PostgreSQL catalog) may hold one digest accepted twice: the
check for an earlier acceptance and the insert were two statements. The
first acceptance (lowest id) is kept; the later ones become `duplicate`,
with an error saying so, before the unique index is created. What those
later copies projected stays in the catalog until `steward ingest
--rebuild`, which replays each accepted event once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ux_raw_event_accepted_digest"
ACCEPTED = sa.text("status = 'accepted'")
NOTE = "accepted twice before the catalog enforced it (migration 0007); a duplicate"


def upgrade() -> None:
    raw = sa.table(
        "raw_event",
        sa.column("id", sa.Integer),
        sa.column("digest", sa.String),
        sa.column("status", sa.String),
        sa.column("error", sa.Text),
    )
    first = (
        sa.select(raw.c.digest, sa.func.min(raw.c.id).label("id"))
        .where(raw.c.status == "accepted")
        .group_by(raw.c.digest)
        .having(sa.func.count() > 1)
        .subquery()
    )
    later = (
        sa.select(raw.c.id)
        .join(first, first.c.digest == raw.c.digest)
        .where(raw.c.status == "accepted")
        .where(raw.c.id != first.c.id)
    )
    op.execute(
        raw.update()
        .where(raw.c.id.in_(later.scalar_subquery()))
        .values(status="duplicate", error=NOTE)
    )
    op.create_index(
        INDEX,
        "raw_event",
        ["digest"],
        unique=True,
        sqlite_where=ACCEPTED,
        postgresql_where=ACCEPTED,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="raw_event")
