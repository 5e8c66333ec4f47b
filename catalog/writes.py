"""The catalog's write functions for what projections add beside `apply`.

`catalog` owns its tables: versions go through `catalog.apply`, merges and
renames through `catalog.merge`, and the edges, aliases and observations a
projection (the OpenLineage ingester) adds through the functions here. Callers
pass Python values; nobody else writes these tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from catalog.db import CHUNK, db_time, insert_rows, json_text, update_rows
from catalog.models import (
    EDGE_COLUMNS,
    EDGE_JSON,
    Alias,
    Asset,
    AssetEvidence,
    AssetField,
    AssetVersion,
    Edge,
    key_hash,
)

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
FIELD = AssetField.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
EVIDENCE = AssetEvidence.__table__  # type: ignore[attr-defined]
_KNOWN_ALIASES = select(ALIAS.c.key_hash).where(
    ALIAS.c.key_hash.in_(bindparam("keys", expanding=True))
)


def add_edges(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert lineage edges (`source_id`, `target_id`, `kind`, `origin_id`, `fields`,
    `transformations`, `created_at`): a projection's, declared by their origin.

    Straight to the driver (`insert_rows`): a file ingest adds some in every chunk.
    No transformations are JSON's `null`, as the JSON column writes None."""
    insert_rows(
        conn,
        "edge",
        EDGE_COLUMNS,
        [
            (
                row["source_id"],
                row["target_id"],
                row["kind"],
                row["origin_id"],
                json_text(row["fields"]),
                json_text(row.get("transformations")),
                db_time(conn, row["created_at"]),
            )
            for row in rows
        ],
        EDGE_JSON,
    )


def add_aliases(
    conn: Connection, names: Iterable[tuple[int, str, str, str]], now: datetime
) -> None:
    """Record other names (`asset_id`, namespace, name, uri) of assets; known ones are kept."""
    wanted = {uri: (asset_id, namespace, name) for asset_id, namespace, name, uri in names}
    hashes = [key_hash(uri) for uri in wanted]
    known = {
        row.key_hash
        for start in range(0, len(hashes), CHUNK)
        for row in conn.execute(_KNOWN_ALIASES, {"keys": hashes[start : start + CHUNK]})
    }
    rows = [
        {
            "asset_id": asset_id,
            "key_hash": key_hash(uri),
            "namespace": namespace,
            "name": name,
            "uri": uri,
            "created_at": now,
        }
        for uri, (asset_id, namespace, name) in wanted.items()
        if key_hash(uri) not in known
    ]
    if rows:
        conn.execute(insert(ALIAS), rows)


def set_observed(
    conn: Connection, observed: Iterable[tuple[int, dict[str, Any]]], now: datetime
) -> None:
    """Replace assets' observations (already merged by the caller) and their time.
    Straight to the driver: a file ingest updates some in every chunk, and SQLAlchemy's
    processing of each value was a third of the update."""
    at = db_time(conn, now)
    rows = [(json_text(value), at, asset_id) for asset_id, value in observed]
    update_rows(conn, "asset", {"observed": True, "observed_at": False}, rows)


def forget_projection(conn: Connection, origin: str) -> None:
    """Undo what a projection wrote (its evidence everywhere; the versions, fields,
    aliases and edges of the assets it registered, which become unresolved again),
    so that it can be replayed (`steward ingest --rebuild`)."""
    mine = ASSET.c.origin.startswith(origin)
    ours = select(ASSET.c.id).where(mine).scalar_subquery()
    conn.execute(delete(EVIDENCE).where(EVIDENCE.c.source.startswith(origin)))
    conn.execute(delete(EDGE).where(EDGE.c.origin_id.in_(ours)))
    conn.execute(delete(ALIAS).where(ALIAS.c.asset_id.in_(ours)))
    conn.execute(delete(FIELD).where(FIELD.c.asset_id.in_(ours)))
    conn.execute(delete(VERSION).where(VERSION.c.asset_id.in_(ours)))
    conn.execute(
        update(ASSET)
        .where(mine)
        .values(current_version=0, fingerprint=None, unresolved=True, observed={})
    )
