"""packed raw bodies: a SQLite catalog stores each raw event's body zlib-compressed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

SQLite does not compress, so its raw log was the bodies' size: some 4 KB an
event from a light producer, 11 KB with column lineage. From this revision a
body is stored as its UTF-8 text compressed by zlib (`catalog.models.pack_body`,
a BLOB in the same TEXT column), about six times smaller, and read back as
text (`catalog.models.RawBody`). Upgrade packs the bodies already stored, a
batch at a time; the body of an event `steward gc` collected stays empty.
PostgreSQL compresses by itself (TOAST) and is left as it is. No schema
changes.

Downgrade unpacks them into text again, which a release before this one reads.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: Rows read and rewritten by one statement (some 11 KB each as text).
BATCH = 1000
#: `catalog.models.BODY_LEVEL`, as of this revision.
LEVEL = 1


def _rewrite(stored_as: str, change: Callable[[Any], Any]) -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    last = 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, body FROM raw_event WHERE id > :last AND typeof(body) = :kind"
                " AND body != '' ORDER BY id LIMIT :batch"
            ),
            {"last": last, "kind": stored_as, "batch": BATCH},
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        conn.execute(
            sa.text("UPDATE raw_event SET body = :body WHERE id = :id"),
            [{"id": row_id, "body": change(body)} for row_id, body in rows],
        )


def _pack(body: str) -> bytes | str:
    try:
        return zlib.compress(body.encode("utf-8"), LEVEL)
    except UnicodeEncodeError:  # not UTF-8 text (SQLite holds what it was given): as it is
        return body


def upgrade() -> None:
    _rewrite("text", _pack)


def downgrade() -> None:
    _rewrite("blob", lambda body: zlib.decompress(body).decode("utf-8"))
