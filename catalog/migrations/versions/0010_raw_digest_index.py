"""Drop the plain index on raw_event.digest: the unique index on accepted digests serves

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

Since 0007 a chunk claims its events against the unique index on accepted
digests (`ux_raw_event_accepted_digest`), and nothing else looks a raw event
up by its digest. The plain index was a second B-tree on random 64-character
keys that every event received wrote to: about a tenth of a file ingest's
writes.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEX = "ix_raw_event_digest"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="raw_event")


def downgrade() -> None:
    op.create_index(INDEX, "raw_event", ["digest"], unique=False)
