"""Retention of the raw event log: `steward gc`.

The raw log holds every event as received (~4 KB an event), so it grows
without bound. `collect` keeps the events received within a period, or the
newest up to a total size, and for the older ones:

- an accepted event keeps its row and digest, its body is dropped (set to
  `COLLECTED`): an event sent again later is still a duplicate, so the
  catalog stays exactly-once after a collection;
- a duplicate or rejected event's row is deleted (it projected nothing).

It also empties the log of changes the next `check --incremental` would look
at (`check_change`, which grows with every write on a catalog that is never
checked) and forgets the last check's starting point: the next incremental
check runs in full, saying so.

Projections are untouched. What a collected event projected can no longer be
replayed, so `steward ingest --rebuild` refuses to run on a log with
collected bodies (`collected_bodies`): a rebuild drops every projection
first and would bring back only what the kept events say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    LargeBinary,
    and_,
    case,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)

from catalog.db import Store, take_projection_lock
from catalog.models import COLLECTED, CheckChange, RawEvent
from lineage.incremental import forget_changes

RAW = RawEvent.__table__  # type: ignore[attr-defined]
CHANGE = CheckChange.__table__  # type: ignore[attr-defined]
#: What the next `check --incremental` says when it runs in full after a gc.
FORGOTTEN = "steward gc emptied the change log since the last check"


@dataclass
class Collection:
    """What `collect` dropped (or would drop), and what it kept."""

    #: Accepted events whose bodies were dropped (their digests are kept).
    bodies: int = 0
    #: Duplicate and rejected events deleted.
    deleted: int = 0
    #: Bytes of body text freed (before the database's own compression).
    freed_bytes: int = 0
    #: Events kept whole.
    kept: int = 0
    #: Bytes of body text kept.
    kept_bytes: int = 0
    #: When the newest collected event was received (ISO 8601), if any was.
    newest_collected: str | None = None
    #: Rows of the change log an incremental check would have read, dropped.
    check_changes: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _size(conn: Connection) -> Any:
    """The size in bytes of a body, in SQL."""
    if conn.dialect.name == "postgresql":
        return func.octet_length(RAW.c.body)
    return func.length(cast(RAW.c.body, LargeBinary))


def _beyond_size(conn: Connection, keep_bytes: int) -> int | None:
    """The id of the newest event that does not fit, with every newer one, in `keep_bytes`."""
    newer = func.sum(_size(conn)).over(order_by=RAW.c.id.desc()).label("newer")
    sizes = select(RAW.c.id, newer).where(RAW.c.body != COLLECTED).subquery()
    return conn.execute(
        select(sizes.c.id).where(sizes.c.newer > keep_bytes).order_by(sizes.c.id.desc()).limit(1)
    ).scalar()


def collect(
    store: Store,
    *,
    received_before: datetime | None = None,
    keep_bytes: int | None = None,
    dry_run: bool = False,
) -> Collection:
    """Drop the bodies of events received before `received_before`, or beyond the newest
    `keep_bytes` of bodies (either or both), in one transaction."""
    with store.write() as conn:
        take_projection_lock(conn)  # not beside a rebuild, a chunk's projection or a scan
        old = []
        if received_before is not None:
            old.append(RAW.c.received_at < received_before)
        if keep_bytes is not None:
            beyond = _beyond_size(conn, keep_bytes)
            if beyond is not None:
                old.append(RAW.c.id <= beyond)
        out = Collection(dry_run=dry_run)
        if old:
            chosen = and_(RAW.c.body != COLLECTED, or_(*old))
            count = func.count()
            accepted = func.sum(case((RAW.c.status == "accepted", 1), else_=0))
            row = conn.execute(
                select(count, accepted, func.sum(_size(conn)), func.max(RAW.c.received_at)).where(
                    chosen
                )
            ).one()
            out.bodies = int(row[1] or 0)
            out.deleted = int(row[0]) - out.bodies
            out.freed_bytes = int(row[2] or 0)
            if row[3] is not None:
                newest = row[3]
                out.newest_collected = (
                    newest.isoformat() if isinstance(newest, datetime) else str(newest)
                )
            if not dry_run:
                conn.execute(delete(RAW).where(chosen).where(RAW.c.status != "accepted"))
                conn.execute(
                    update(RAW)
                    .where(chosen)
                    .where(RAW.c.status == "accepted")
                    .values(body=COLLECTED)
                )
        if dry_run:
            out.check_changes = conn.execute(select(func.count()).select_from(CHANGE)).scalar_one()
        else:
            out.check_changes = forget_changes(conn, FORGOTTEN)
        kept = conn.execute(
            select(func.count(), func.sum(_size(conn))).where(RAW.c.body != COLLECTED)
        ).one()
        out.kept = int(kept[0]) - (out.bodies + out.deleted if dry_run else 0)
        out.kept_bytes = int(kept[1] or 0) - (out.freed_bytes if dry_run else 0)
    return out


def collected_bodies(conn: Connection) -> tuple[int, Any]:
    """How many accepted events have had their bodies collected, and the newest's time."""
    row = conn.execute(
        select(func.count(), func.max(RAW.c.received_at))
        .where(RAW.c.status == "accepted")
        .where(RAW.c.body == COLLECTED)
    ).one()
    return int(row[0]), row[1]


def vacuum(store: Store) -> None:
    """Give the freed space back: SQLite rewrites the file; PostgreSQL makes it reusable
    (`VACUUM raw_event`; only `VACUUM FULL`, which locks the table, shrinks it)."""
    raw = store.engine.raw_connection()
    driver: Any = raw.driver_connection
    try:
        if store.dialect == "postgresql":
            driver.autocommit = True  # VACUUM runs outside a transaction
            try:
                driver.execute("VACUUM (ANALYZE) raw_event")
            finally:
                driver.autocommit = False
        else:  # the connection is in autocommit mode between transactions (catalog.db)
            driver.execute("VACUUM")
    finally:
        raw.close()
