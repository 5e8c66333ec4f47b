"""Two names found to be one thing: merging two known assets into one.

An alias (OpenLineage `symlinks`) may tie two names that are both known as
assets already: a Hive table and the HDFS path a Spark job wrote, each seen
first in a different event. Whatever the order they arrive in, they become
one asset: the one a declared source (a scan) describes is kept (else the
older); the other's versions (renumbered after the kept one's), fields,
evidence, edges, run links, profiles and bindings move to it, and its name
becomes an alias that records the merge (`alias.merged_at`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from catalog.evidence import is_declared
from catalog.identity import kind_uri
from catalog.models import (
    Alias,
    Asset,
    AssetEvidence,
    AssetField,
    AssetVersion,
    Edge,
    ModelBinding,
    ModelInUse,
    Profile,
    Run,
    RunDataset,
    key_hash,
)

log = logging.getLogger(__name__)

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
FIELD = AssetField.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
EVIDENCE = AssetEvidence.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
RUN_DATASET = RunDataset.__table__  # type: ignore[attr-defined]
PROFILE = Profile.__table__  # type: ignore[attr-defined]
BINDING = ModelBinding.__table__  # type: ignore[attr-defined]
IN_USE = ModelInUse.__table__  # type: ignore[attr-defined]


def keeper(conn: Connection, a: int, b: int) -> tuple[int, int]:
    """(kept, merged away) of two assets: the one a declared source describes, else the
    described one, else the older."""

    def rank(asset_id: int) -> tuple[int, int, int]:
        sources = conn.execute(
            select(EVIDENCE.c.source).where(EVIDENCE.c.asset_id == asset_id)
        ).scalars()
        declared = any(is_declared(s) for s in sources)
        version = conn.execute(
            select(ASSET.c.current_version).where(ASSET.c.id == asset_id)
        ).scalar_one()
        return (int(declared), int(version > 0), -asset_id)

    return (a, b) if rank(a) >= rank(b) else (b, a)


def merge_assets(conn: Connection, keep: int, gone: int, now: datetime) -> None:
    """Merge asset `gone` into asset `keep` in the caller's transaction."""
    if keep == gone:
        return
    row = conn.execute(select(ASSET).where(ASSET.c.id == gone)).one()
    kept = conn.execute(select(ASSET).where(ASSET.c.id == keep)).one()
    log.info("merging %s into %s (one asset, two names)", row.uri, kept.uri)

    # Versions: the merged-away asset's history continues after the kept one's.
    top = conn.execute(
        select(func.coalesce(func.max(VERSION.c.version), 0)).where(VERSION.c.asset_id == keep)
    ).scalar_one()
    conn.execute(
        update(VERSION)
        .where(VERSION.c.asset_id == gone)
        .values(asset_id=keep, version=VERSION.c.version + top)
    )
    conn.execute(update(FIELD).where(FIELD.c.asset_id == gone).values(asset_id=keep))
    if kept.current_version == 0 and row.current_version > 0:
        conn.execute(
            update(ASSET)
            .where(ASSET.c.id == keep)
            .values(
                kind=row.kind,
                current_version=row.current_version + top,
                fingerprint=row.fingerprint,
                unresolved=False,
                deleted=row.deleted,
                description=row.description,
                observed=row.observed,
                origin=row.origin,
                updated_at=now,
            )
        )
    elif row.observed and row.observed != kept.observed:
        observed = {**(row.observed or {}), **(kept.observed or {})}
        conn.execute(update(ASSET).where(ASSET.c.id == keep).values(observed=observed))

    # Evidence: one latest assertion per source (the newer of two).
    theirs = conn.execute(
        select(EVIDENCE.c.id, EVIDENCE.c.source_hash, EVIDENCE.c.asserted_at).where(
            EVIDENCE.c.asset_id == gone
        )
    ).all()
    ours = {
        r.source_hash: r
        for r in conn.execute(
            select(EVIDENCE.c.id, EVIDENCE.c.source_hash, EVIDENCE.c.asserted_at).where(
                EVIDENCE.c.asset_id == keep
            )
        )
    }
    for r in theirs:
        mine = ours.get(r.source_hash)
        if mine is None:
            continue
        older = r.id if r.asserted_at <= mine.asserted_at else mine.id
        conn.execute(delete(EVIDENCE).where(EVIDENCE.c.id == older))
    conn.execute(update(EVIDENCE).where(EVIDENCE.c.asset_id == gone).values(asset_id=keep))

    _move_edges(conn, keep, gone)
    _move_unique(conn, RUN_DATASET, "asset_id", ("run_id", "direction"), keep, gone)
    conn.execute(update(RUN).where(RUN.c.job_id == gone).values(job_id=keep))
    conn.execute(update(PROFILE).where(PROFILE.c.asset_id == gone).values(asset_id=keep))
    _move_unique(conn, BINDING, "asset_id", ("part", "origin", "model", "revision"), keep, gone)
    if conn.execute(select(IN_USE.c.model_id).where(IN_USE.c.model_id == keep)).first():
        conn.execute(delete(IN_USE).where(IN_USE.c.model_id == gone))
    else:
        conn.execute(update(IN_USE).where(IN_USE.c.model_id == gone).values(model_id=keep))
    conn.execute(update(ALIAS).where(ALIAS.c.asset_id == gone).values(asset_id=keep))

    conn.execute(delete(ASSET).where(ASSET.c.id == gone))
    _alias(conn, keep, row, now, merged=True)


def _move_edges(conn: Connection, keep: int, gone: int) -> None:
    """Point the edges at the kept asset; drop those that would repeat one or loop."""
    touching = conn.execute(
        select(EDGE).where(
            (EDGE.c.source_id == gone) | (EDGE.c.target_id == gone) | (EDGE.c.origin_id == gone)
        )
    ).all()

    def moved(value: int) -> int:
        return keep if value == gone else value

    existing = {
        (r.source_id, r.target_id, r.kind, r.origin_id)
        for r in conn.execute(
            select(EDGE).where(
                (EDGE.c.source_id == keep) | (EDGE.c.target_id == keep) | (EDGE.c.origin_id == keep)
            )
        )
    }
    for edge in touching:
        key = (moved(edge.source_id), moved(edge.target_id), edge.kind, moved(edge.origin_id))
        if key in existing or key[0] == key[1]:
            conn.execute(delete(EDGE).where(EDGE.c.id == edge.id))
            continue
        existing.add(key)
        conn.execute(
            update(EDGE)
            .where(EDGE.c.id == edge.id)
            .values(source_id=key[0], target_id=key[1], origin_id=key[3])
        )


def _move_unique(
    conn: Connection, table: Any, column: str, rest: tuple[str, ...], keep: int, gone: int
) -> None:
    """Move rows to the kept asset; a row that would repeat one of its rows is dropped."""
    cols = [table.c[name] for name in rest]
    have = {tuple(r) for r in conn.execute(select(*cols).where(table.c[column] == keep))}
    for r in conn.execute(select(table.c.id, *cols).where(table.c[column] == gone)).all():
        if tuple(r[1:]) in have:
            conn.execute(delete(table).where(table.c.id == r.id))
    conn.execute(update(table).where(table.c[column] == gone).values({column: keep}))


def rename_asset(conn: Connection, asset_id: int, namespace: str, name: str, now: datetime) -> None:
    """Give an asset a new name (a RENAME); its old name becomes an alias of it."""
    row = conn.execute(select(ASSET).where(ASSET.c.id == asset_id)).one()
    uri = kind_uri(namespace, name, row.kind)
    conn.execute(
        update(ASSET)
        .where(ASSET.c.id == asset_id)
        .values(key_hash=key_hash(uri), namespace=namespace, name=name, uri=uri, updated_at=now)
    )
    conn.execute(delete(ALIAS).where(ALIAS.c.key_hash == key_hash(uri)))
    _alias(conn, asset_id, row, now, merged=False)


def _alias(conn: Connection, asset_id: int, old: Any, now: datetime, merged: bool) -> None:
    """The name `old` (an asset row) as an alias of `asset_id`."""
    conn.execute(
        insert(ALIAS).values(
            asset_id=asset_id,
            key_hash=key_hash(old.uri),
            namespace=old.namespace,
            name=old.name,
            uri=old.uri,
            created_at=now,
            merged_at=now if merged else None,
        )
    )
