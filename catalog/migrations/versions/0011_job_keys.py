"""job keys: jobs and datasets are separate key spaces

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

A job's URI is `job:NAMESPACE/NAME` (`catalog.identity.job_uri`), a dataset's
(any asset but a job) `NAMESPACE/NAME`, so that an OpenLineage job and a
dataset with the same namespace and name are two assets. This moves every
asset of kind `job` to its key: its `uri` gains the prefix and its `key_hash`
is the hash of that. Nothing else changes (its id, versions, runs and edges
stay), and the change log of `check --incremental` records each move as the
rename it is. No schema changes.

Before this revision a job and a dataset named alike were one asset, of the
kind whichever last described it. Such an asset stays one asset: it moves to
the key space of its kind now, keeping everything it holds (versions of both
kinds, its edges to itself). `steward ingest --rebuild` replays the raw log
and splits it into the job and the dataset. A job whose new URI is already
another asset's (a dataset whose namespace starts with `job:`) keeps its old
key, with a warning.

Downgrade moves the jobs back to `NAMESPACE/NAME`, but for those whose dataset
twin holds that key: they keep the prefix (the older release cannot tell the
two apart, and would find the dataset under that name).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

PREFIX = "job:"
#: Rows updated by one statement.
BATCH = 500


def _hash(uri: str) -> str:
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()


def _move(conn: Any, rows: list[tuple[int, str]]) -> None:
    """Give each asset id its new URI (and key), but where another asset holds that key."""
    wanted = {_hash(uri): (asset_id, uri) for asset_id, uri in rows}
    keys = list(wanted)
    taken: set[str] = set()
    for start in range(0, len(keys), BATCH):
        found = conn.execute(
            sa.text("SELECT key_hash FROM asset WHERE key_hash IN :keys").bindparams(
                sa.bindparam("keys", expanding=True)
            ),
            {"keys": keys[start : start + BATCH]},
        )
        taken.update(found.scalars())
    for key in sorted(taken):
        asset_id, uri = wanted.pop(key)
        log.warning("asset %s keeps its key: another asset is %r", asset_id, uri)
    params = [{"id": i, "uri": uri, "key": key} for key, (i, uri) in wanted.items()]
    update = sa.text("UPDATE asset SET uri = :uri, key_hash = :key WHERE id = :id")
    for start in range(0, len(params), BATCH):
        conn.execute(update, params[start : start + BATCH])


def _plain(namespace: str, name: str) -> str:
    """`catalog.identity.asset_uri` as of this revision."""
    if namespace == "file" and name.startswith("/"):
        return f"file://{name}"
    return f"{namespace}/{name}"


def _jobs(conn: Any, prefix: str) -> list[tuple[int, str]]:
    """(id, URI it is to have) of the jobs not there yet."""
    rows = conn.execute(
        sa.text("SELECT id, namespace, name, uri FROM asset WHERE kind = 'job' ORDER BY id")
    )
    wanted = [(r.id, prefix + _plain(r.namespace, r.name), r.uri) for r in rows]
    return [(i, uri) for i, uri, now in wanted if uri != now]


def upgrade() -> None:
    conn = op.get_bind()
    _move(conn, _jobs(conn, PREFIX))


def downgrade() -> None:
    conn = op.get_bind()
    _move(conn, _jobs(conn, ""))
