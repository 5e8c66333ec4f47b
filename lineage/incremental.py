"""What an incremental `check` re-evaluates: the assets changed since the last check
and everything whose findings can depend on them.

The catalog logs every change to the tables the rules read (`catalog.changelog`).
From the changed assets, the scope grows by what each rule looks at:

- one hop of lineage both ways (a breaking change is judged by its readers, a
  stale index by its sources, an unresolved reference by who uses it, a
  dropped dataset by who still reads it, a lineage gap by what feeds the asset);
- unresolved assets of the same name as a changed one (`other_spellings`);
- the assets trained on a changed one (`trained_on`, kept in `check_state`);
- every bound index when an embedding model, the model in use, a query model or
  a purpose changed (which model queries an index can turn on any of them);
- every model when a run changed (a model version's gaps are about its run):
  runs are not logged (an ingest writes them for every event); what the rules
  see of them is fingerprinted at each check and compared with the last one's.

A check first claims the logged rows (in a transaction of its own, which on
PostgreSQL waits for the writers that logged a change and have not committed),
then reads the catalog: every claimed change is in what it reads, and a write
landing after the claim logs a row of its own for the next check.

The findings of the assets in scope are found again and replace their stored
ones; the stored findings of the other assets stand. What an error puts at risk
is everything downstream of it (counted, the nearest listed): the stored errors
that reach a change get their `at_risk` computed again, over the part of the
graph below them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, select, true, update

from catalog import coverage
from catalog.changelog import named
from catalog.db import id_batches, rows_among, take_projection_lock
from catalog.embeddings import KIND as MODEL_KIND
from catalog.models import (
    Asset,
    AssetVersion,
    CheckChange,
    CheckState,
    Edge,
    ModelBinding,
    key_hash,
    utcnow,
)

ASSET = Asset.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
BINDING = ModelBinding.__table__  # type: ignore[attr-defined]
CHANGE = CheckChange.__table__  # type: ignore[attr-defined]
STATE = CheckState.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]

#: Above this share of the catalog's assets changed (and this many), a full check is the
#: cheaper one.
FULL_ABOVE = 0.2
FULL_ABOVE_COUNT = 1000


@dataclass
class Changes:
    """The change log's rows as read at the start of a check."""

    ids: list[int] = field(default_factory=list)
    assets: set[int] = field(default_factory=set)
    #: Former names and URIs of renamed or deleted assets.
    names: set[str] = field(default_factory=set)
    uris: set[str] = field(default_factory=set)
    #: Whether what the rules see of runs differs from the last check's (`run_fingerprint`).
    runs: bool = False
    #: That fingerprint, as of the claim.
    runs_seen: str = ""
    #: When the state the claim saw was saved (None: there was none).
    state_at: Any = None
    embedding: bool = False
    #: The assets whose change can alter the lineage graph, and their former URIs.
    graph: set[int] = field(default_factory=set)
    graph_uris: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.assets or self.runs or self.embedding)


@dataclass
class Scope:
    """The assets whose findings are found again, and what must be loaded for it."""

    #: Assets whose findings are evaluated again.
    ids: set[int]
    #: Their URIs (and the former URIs of renamed or deleted ones): whose stored findings go.
    owners: set[str]
    #: What the rules read to judge them (the scope, its neighbours, the embedding models).
    load: set[int]
    #: Where a change of the lineage graph shows: the URIs (former ones included) of the
    #: assets whose edges, bindings, name or life changed, and of their neighbours.
    touched: set[str]


def claim(conn: Connection, state: Any) -> Changes:
    """Claim the logged changes and fingerprint the runs, in the caller's (write)
    transaction; to be committed before the check reads the catalog.

    On PostgreSQL the claim waits for the writers that logged a change and are still
    running (their `ROW EXCLUSIVE` lock on `check_change`; a logged change that was
    already pending took it too) and for a projection of runs: their changes are then
    committed, in what the check reads. SQLite writers queue behind the claim's
    transaction already.
    """
    if conn.dialect.name == "postgresql":
        take_projection_lock(conn)
        conn.exec_driver_sql("LOCK TABLE check_change IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(update(CHANGE).where(CHANGE.c.claimed.is_(False)).values(claimed=True))
    out = read_changes(conn)
    out.state_at = state.checked_at if state is not None else None
    out.runs_seen = run_fingerprint(conn)
    out.runs = state is None or state.runs != out.runs_seen
    return out


def read_changes(conn: Connection) -> Changes:
    """The claimed rows (those of a check that failed after claiming them included)."""
    out = Changes()
    for row in conn.execute(select(CHANGE).where(CHANGE.c.claimed == true())):
        out.ids.append(row.id)
        if row.what == "embedding":
            out.embedding = True
        elif row.asset_id:  # 0: none
            out.assets.add(row.asset_id)
            if row.what == "graph":
                out.graph.add(row.asset_id)
                if row.uri:
                    out.graph_uris.add(row.uri)
        if row.name:  # '': none
            out.names.add(row.name)
        if row.uri:
            out.uris.add(row.uri)
    return out


def run_fingerprint(conn: Connection) -> str:
    """A digest of what the rules see of runs: the runs the models' versions name, each
    deleted or not and with how many inputs (`catalog.coverage.runs_of`)."""
    models = conn.execute(
        select(ASSET.c.observed, VERSION.c.definition)
        .join(
            VERSION,
            (VERSION.c.asset_id == ASSET.c.id) & (VERSION.c.version == ASSET.c.current_version),
            isouter=True,
        )
        .where(ASSET.c.kind == "model")
    )
    wanted = coverage.run_ids((((d or {}).get("properties") or {}), o or {}) for o, d in models)
    runs = coverage.runs_of(conn, wanted)
    seen = sorted((u, r.deleted, r.inputs) for u, r in runs.items())
    return hashlib.sha256(json.dumps([wanted, seen]).encode()).hexdigest()


def consume(conn: Connection, changes: Changes) -> None:
    """Forget the changes a check has claimed (not those written since)."""
    for ids in id_batches(changes.ids):
        conn.execute(delete(CHANGE).where(CHANGE.c.id.in_(ids)))


def load_state(conn: Connection) -> Any:
    return conn.execute(select(STATE).where(STATE.c.id == 1)).first()


def _lock_state(conn: Connection) -> None:
    """Saving the state and `forget_changes` (a gc) take turns (SQLite writers do)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE check_state IN EXCLUSIVE MODE")


def save_state(
    conn: Connection, settings: dict[str, Any], trained_on: dict[str, Any], changes: Changes
) -> None:
    """Save what a check saw, unless a gc emptied the change log since its claim (the
    changes written between the claim and the gc are gone: the next check is full)."""
    _lock_state(conn)
    now = load_state(conn)
    if now is not None and now.forgotten and now.checked_at != changes.state_at:
        return
    conn.execute(delete(STATE))
    conn.execute(
        STATE.insert().values(
            id=1,
            settings=settings,
            trained_on=trained_on,
            checked_at=utcnow(),
            runs=changes.runs_seen,
        )
    )


def forget_state(conn: Connection) -> None:
    """The stored findings no longer match one full set of settings: next check is full."""
    _lock_state(conn)
    conn.execute(delete(STATE))


def forget_changes(conn: Connection, why: str) -> int:
    """Empty the change log; the next check runs in full, saying `why`. How many rows
    were dropped."""
    _lock_state(conn)
    dropped = conn.execute(select(func.count()).select_from(CHANGE)).scalar() or 0
    conn.execute(delete(CHANGE))
    conn.execute(delete(STATE))
    conn.execute(
        STATE.insert().values(id=1, settings={}, trained_on={}, checked_at=utcnow(), forgotten=why)
    )
    return int(dropped)


# -- walking the lineage in the catalog ---------------------------------------------------


def neighbours(conn: Connection, ids: Collection[int], direction: str) -> set[int]:
    """The assets one edge away (`up`, `down` or `both`), deleted ones included.

    Edges are the catalog's, plus the graph's `embedded_by_model` ones (an
    embedding model to the indexes bound to a model of its name).
    """
    model = ASSET.alias("model")
    found: set[int] = set()
    for batch in id_batches(ids):
        if direction in ("down", "both"):
            found.update(
                r[0]
                for r in conn.execute(select(EDGE.c.target_id).where(EDGE.c.source_id.in_(batch)))
            )
            found.update(
                r[0]
                for r in conn.execute(
                    select(BINDING.c.asset_id)
                    .join(model, model.c.name == BINDING.c.model)
                    .where(model.c.kind == MODEL_KIND)
                    .where(model.c.id.in_(batch))
                )
            )
        if direction in ("up", "both"):
            found.update(
                r[0]
                for r in conn.execute(select(EDGE.c.source_id).where(EDGE.c.target_id.in_(batch)))
            )
            found.update(
                r[0]
                for r in conn.execute(
                    select(model.c.id)
                    .join(BINDING, model.c.name == BINDING.c.model)
                    .where(model.c.kind == MODEL_KIND)
                    .where(BINDING.c.asset_id.in_(batch))
                )
            )
    return found


def ids_of_uris(conn: Connection, uris: Iterable[str]) -> dict[str, int]:
    hashes = {key_hash(u): u for u in uris}
    out: dict[str, int] = {}
    keys = sorted(hashes)
    for i in range(0, len(keys), 500):
        for asset_id, digest in conn.execute(
            select(ASSET.c.id, ASSET.c.key_hash).where(ASSET.c.key_hash.in_(keys[i : i + 500]))
        ):
            out[hashes[digest]] = asset_id
    return out


def _rows(conn: Connection, ids: Collection[int]) -> list[Any]:
    query = select(ASSET.c.id, ASSET.c.uri, ASSET.c.name, ASSET.c.kind, ASSET.c.unresolved)
    return list(rows_among(conn, query, ASSET.c.id, ids))


def _named(conn: Connection, names: Collection[str]) -> list[Any]:
    query = select(ASSET.c.id, ASSET.c.name, ASSET.c.unresolved)
    ordered = sorted(names)
    return [
        r
        for i in range(0, len(ordered), 500)
        for r in conn.execute(query.where(named(conn, ASSET.c.name, ordered[i : i + 500])))
        if r.name in names  # an md5 shared by two names
    ]


# -- the scope --------------------------------------------------------------------------


def too_many(conn: Connection, changes: Changes) -> bool:
    """Whether so much changed that a full check is the cheaper (and simpler) one."""
    total = conn.execute(select(func.count()).select_from(ASSET)).scalar() or 0
    return len(changes.assets) > max(FULL_ABOVE_COUNT, FULL_ABOVE * total)


def scope(conn: Connection, changes: Changes, trained_on: dict[str, list[str]]) -> Scope:
    changed = _rows(conn, changes.assets)
    ids = set(changes.assets) | neighbours(conn, changes.assets, "both")
    # An unresolved asset's finding names described assets of the same name.
    names = {r.name for r in changed} | changes.names
    ids |= {r.id for r in _named(conn, names) if r.unresolved}
    # What queries an index turns on models, models in use, query models and purposes.
    if changes.embedding or any(r.kind == MODEL_KIND for r in changed):
        ids |= {r[0] for r in conn.execute(select(BINDING.c.asset_id).distinct())}
    # A model version's lineage gaps are about its run.
    if changes.runs:
        ids |= {r[0] for r in conn.execute(select(ASSET.c.id).where(ASSET.c.kind == "model"))}
    # What was trained on a changed asset is judged against its current version.
    changed_uris = {r.uri for r in changed} | changes.uris
    holders = {int(h) for h, uris in trained_on.items() if changed_uris & set(uris)}
    ids |= holders
    rows = _rows(conn, ids)
    load = ids | neighbours(conn, ids, "both")
    load |= {r[0] for r in conn.execute(select(ASSET.c.id).where(ASSET.c.kind == MODEL_KIND))}
    load |= {r.id for r in _named(conn, {r.name for r in rows if r.unresolved})}
    trained = {u for h in ids if str(h) in trained_on for u in trained_on[str(h)]}
    load |= set(ids_of_uris(conn, trained).values())
    owners = {r.uri for r in rows} | changes.uris
    near = changes.graph | neighbours(conn, changes.graph, "both")
    touched = {r.uri for r in _rows(conn, near)} | changes.graph_uris
    return Scope(ids, owners, load, touched)


def trained_on_of(definitions: Iterable[tuple[int, dict[str, Any]]]) -> dict[str, list[str]]:
    """Asset id -> the URIs its definition says it was trained on (those that say so)."""
    out: dict[str, list[str]] = {}
    for asset_id, definition in definitions:
        trained = (definition.get("properties") or {}).get("trained_on")
        if isinstance(trained, dict) and trained:
            out[str(asset_id)] = sorted(trained)
    return out


def risk_moved(assets: list[str], at_risk: list[dict[str, Any]], touched: set[str]) -> bool:
    """Whether what a stored error puts at risk may have changed, as far as its stored
    list shows (all of it when the list holds every asset at risk: `risks_moved`).

    What it reaches (its assets and what it put at risk) is all it depends on:
    a changed edge or binding shows at its source, an asset added, deleted,
    restored or renamed as itself and its neighbours. None of them among what
    it reached: the part of the graph below it is as it was, and so is its
    `at_risk` (a new version of an asset changes no edge).
    """
    return any(a in touched for a in assets) or any(r.get("uri") in touched for r in at_risk)


def risks_moved(conn: Connection, errors: list[Any], touched: set[str]) -> set[str]:
    """The ids of the stored errors (rows with `id`, `assets`, `at_risk`,
    `at_risk_count`) whose at-risk assets may have changed (`risk_moved`).

    An error lists only the nearest assets it puts at risk: whether a touched
    asset lies beyond them is asked of the catalog the other way round, from
    the touched assets up (is what the error is about upstream of one?). A
    path that a change cut still runs, in the catalog now, as far as the source
    of the cut edge or the neighbour of the deleted asset, which are touched.
    """
    moved = {e.id for e in errors if risk_moved(e.assets, e.at_risk or [], touched)}
    cut = [e for e in errors if e.id not in moved and e.at_risk_count > len(e.at_risk or [])]
    if not cut or not touched:
        return moved
    ids = ids_of_uris(conn, {a for e in cut for a in e.assets})
    above = upstream_among(conn, set(ids_of_uris(conn, touched).values()), set(ids.values()))
    return moved | {e.id for e in cut if any(ids.get(a) in above for a in e.assets)}


def upstream_among(conn: Connection, start: set[int], wanted: set[int]) -> set[int]:
    """Those of `wanted` that are among `start` or upstream of them (through deleted
    assets too), walked a level at a time until all of them are found."""
    seen = set(start)
    found = wanted & seen
    frontier = set(start)
    while frontier and found != wanted:
        frontier = neighbours(conn, frontier, "up") - seen
        seen |= frontier
        found |= wanted & frontier
    return found
