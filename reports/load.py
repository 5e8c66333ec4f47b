"""Read what the report shows from the catalog, in a handful of bulk queries.

This is the report's only I/O. It returns a `Snapshot` of plain data (no ORM
objects, timestamps as ISO text); `reports.context` turns it into the
template's context without touching the database.

`load_snapshot` reads the whole catalog; `load_neighbourhood` reads only the
assets within some hops of one (found by `lineage.sqlgraph`'s recursive SQL),
the same things about each of them, the edges among them and the findings
that name them: what a focused report costs grows with what it draws, not
with the catalog.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Text, cast, func, select
from sqlmodel import Session

from catalog.coverage import trend as coverage_trend
from catalog.db import Store, rows_among
from catalog.models import (
    Asset,
    AssetEvidence,
    AssetField,
    AssetVersion,
    ModelBinding,
    ModelInUse,
    RawEvent,
    Run,
    RunDataset,
)
from catalog.querying import QueryBindings, load_query_bindings
from lineage.findings import list_findings
from lineage.graph import LineageGraph
from lineage.sqlgraph import SqlGraph

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
FIELD = AssetField.__table__  # type: ignore[attr-defined]
BINDING = ModelBinding.__table__  # type: ignore[attr-defined]
IN_USE = ModelInUse.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
RUN_DATASET = RunDataset.__table__  # type: ignore[attr-defined]
RAW_EVENT = RawEvent.__table__  # type: ignore[attr-defined]
EVIDENCE = AssetEvidence.__table__  # type: ignore[attr-defined]

#: Runs kept per asset and direction (the most recent ones).
RUNS_PER_ASSET = 10
#: Assets a focused report reads at most each way (whole hops: `lineage.sqlgraph`).
FOCUS_LIMIT = 5_000


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _json(value: Any) -> Any:
    """A JSON column read as text (parsing only where there is something to parse)."""
    if value is None or value in ("{}", "null"):
        return {}
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class Snapshot:
    """Everything the report shows, as plain data keyed by asset URI."""

    #: Live assets, by URI: namespace, name, kind, version, flags, origin, times.
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Lineage edges (source, target, kind), as the lineage graph has them.
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    #: Fields of each asset's current version, in order.
    fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Properties of each asset's current version.
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every version of each asset, oldest first.
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Open findings, most important first (as `steward findings --json`).
    findings: list[dict[str, Any]] = field(default_factory=list)
    #: Embedding-model bindings of each index: model, revision, part, origin, share.
    bindings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Embedding model name -> revision queries use now.
    models_in_use: dict[str, str] = field(default_factory=dict)
    #: What embeds the queries of each index (index bindings, purposes).
    query_bindings: QueryBindings = field(default_factory=lambda: QueryBindings({}, {}, {}))
    #: Recent runs that read or wrote each asset.
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Recent runs of each job: state, times, error message, inputs and outputs at their versions.
    job_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Each source's latest assertion about each asset: source, time, field names and types.
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Column lineage: target URI -> target field -> sorted `(source URI, source field)`.
    field_lineage: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    deleted: int = 0
    events: dict[str, Any] = field(default_factory=dict)
    #: Lineage coverage by kind over the last checks, oldest first (`catalog.coverage.trend`).
    coverage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: A focused snapshot's bounds (`load_neighbourhood`); None for the whole catalog.
    scope: Scope | None = None
    #: Of a finding's subject outside a focused snapshot: the assets in it that it feeds.
    readers: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    """What part of the catalog a focused snapshot holds."""

    focus: str
    depth: int
    #: Live assets in the catalog (the snapshot holds the neighbourhood's).
    catalog: int
    #: Why the neighbourhood stops short of `depth` hops, if it does.
    cut: str | None = None


def _assets(conn: Connection, snap: Snapshot, only: list[int] | None) -> dict[int, str]:
    query = select(
        ASSET.c.id,
        ASSET.c.uri,
        ASSET.c.namespace,
        ASSET.c.name,
        ASSET.c.kind,
        ASSET.c.current_version,
        ASSET.c.unresolved,
        ASSET.c.deleted,
        ASSET.c.origin,
        ASSET.c.description,
        cast(ASSET.c.observed, Text),
        ASSET.c.observed_at,
        ASSET.c.updated_at,
    )
    by_id: dict[int, str] = {}
    for row in rows_among(conn, query, ASSET.c.id, only):
        if row.deleted:
            snap.deleted += 1
            continue
        by_id[row.id] = row.uri
        snap.assets[row.uri] = {
            "namespace": row.namespace,
            "name": row.name,
            "kind": row.kind,
            "version": row.current_version,
            "unresolved": bool(row.unresolved),
            "origin": row.origin,
            "description": row.description,
            "observed": _json(row[10]),
            "observed_at": iso(row.observed_at),
            "updated_at": iso(row.updated_at),
        }
    return by_id


def _versions(
    conn: Connection, snap: Snapshot, by_id: dict[int, str], only: list[int] | None
) -> dict[int, int]:
    """Every version row (of the assets `only`); returns version id -> version number."""
    numbers: dict[int, int] = {}
    current = {uri: a["version"] for uri, a in snap.assets.items()}
    query = select(
        VERSION.c.id,
        VERSION.c.asset_id,
        VERSION.c.version,
        VERSION.c.fingerprint,
        cast(VERSION.c.diff, Text),
        VERSION.c.breaking,
        VERSION.c.restored,
        VERSION.c.origin,
        VERSION.c.created_at,
    )
    current_ids: dict[int, str] = {}
    for row in rows_among(conn, query, VERSION.c.asset_id, only):
        numbers[row.id] = row.version
        uri = by_id.get(row.asset_id)
        if uri is None:
            continue
        snap.versions.setdefault(uri, []).append(
            {
                "version": row.version,
                "fingerprint": row.fingerprint,
                "diff": _json(row[4]),
                "breaking": bool(row.breaking),
                "restored": bool(row.restored),
                "origin": row.origin,
                "created_at": iso(row.created_at),
            }
        )
        if row.version == current[uri]:
            current_ids[row.id] = uri
    for rows in snap.versions.values():
        rows.sort(key=lambda v: v["version"])
    # Properties and fields of the current versions (joined: no huge `IN` lists).
    current_version = (VERSION.c.asset_id == ASSET.c.id) & (
        VERSION.c.version == ASSET.c.current_version
    )
    definitions = select(VERSION.c.id, cast(VERSION.c.definition, Text)).join(
        ASSET, current_version
    )
    for version_id, text in rows_among(conn, definitions, ASSET.c.id, only):
        props = _json(text).get("properties") if version_id in current_ids and text else None
        if props:
            snap.properties[current_ids[version_id]] = props
    fields = (
        select(
            FIELD.c.version_id,
            FIELD.c.name,
            FIELD.c.type,
            FIELD.c.nullable,
            FIELD.c.description,
            cast(FIELD.c.attributes, Text),
        )
        .join(VERSION, VERSION.c.id == FIELD.c.version_id)
        .join(ASSET, current_version)
        .order_by(FIELD.c.version_id, FIELD.c.position)
    )
    for row in rows_among(conn, fields, ASSET.c.id, only):
        uri = current_ids.get(row.version_id)
        if uri is None:
            continue
        item: dict[str, Any] = {"name": row.name, "type": row.type, "nullable": row.nullable}
        if row.description:
            item["description"] = row.description
        attributes = _json(row[5])
        if attributes:
            item["attributes"] = attributes
        snap.fields.setdefault(uri, []).append(item)
    return numbers


def _bindings(
    conn: Connection, snap: Snapshot, by_id: dict[int, str], only: list[int] | None
) -> None:
    query = select(
        BINDING.c.asset_id,
        BINDING.c.part,
        BINDING.c.model,
        BINDING.c.revision,
        BINDING.c.origin,
        BINDING.c.share,
    )
    for row in rows_among(conn, query, BINDING.c.asset_id, only):
        uri = by_id.get(row.asset_id)
        if uri is None:
            continue
        snap.bindings.setdefault(uri, []).append(
            {
                "part": row.part,
                "model": row.model,
                "revision": row.revision,
                "origin": row.origin,
                "share": round(float(row.share), 4),
            }
        )
    for rows in snap.bindings.values():
        rows.sort(key=lambda b: (b["part"], b["model"], b["revision"], b["origin"]))
    in_use = select(ASSET.c.name, IN_USE.c.revision).join(IN_USE, IN_USE.c.model_id == ASSET.c.id)
    snap.models_in_use = {name: revision for name, revision in conn.execute(in_use)}


def _runs(
    conn: Connection,
    snap: Snapshot,
    by_id: dict[int, str],
    numbers: dict[int, int],
    only: list[int] | None,
) -> None:
    job = ASSET.alias("job")
    query = (
        select(
            RUN_DATASET.c.asset_id,
            RUN_DATASET.c.direction,
            RUN_DATASET.c.version_id,
            RUN.c.run_uuid,
            RUN.c.state,
            RUN.c.started_at,
            RUN.c.ended_at,
            RUN.c.state_time,
            job.c.uri,
        )
        .join(RUN, RUN.c.id == RUN_DATASET.c.run_id)
        .join(job, job.c.id == RUN.c.job_id)
    )
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows_among(conn, query, RUN_DATASET.c.asset_id, only):
        uri = by_id.get(row.asset_id)
        if uri is None:
            continue
        grouped[(uri, row.direction)].append(
            {
                "run": row.run_uuid,
                "job": row.uri,
                "direction": row.direction,
                "state": row.state,
                "started_at": iso(row.started_at),
                "ended_at": iso(row.ended_at or row.state_time),
                "version": numbers.get(row.version_id) if row.version_id else None,
            }
        )
    for (uri, _), rows in sorted(grouped.items()):
        rows.sort(key=lambda r: (r["ended_at"] or r["started_at"] or "", r["run"]), reverse=True)
        snap.runs.setdefault(uri, []).extend(rows[:RUNS_PER_ASSET])


def _job_runs(
    conn: Connection,
    snap: Snapshot,
    by_id: dict[int, str],
    numbers: dict[int, int],
    only: list[int] | None,
) -> None:
    """The most recent runs of each job (of the jobs `only`), with what they read and
    wrote (of the assets `by_id`)."""
    query = select(
        RUN.c.id,
        RUN.c.job_id,
        RUN.c.run_uuid,
        RUN.c.state,
        RUN.c.started_at,
        RUN.c.ended_at,
        RUN.c.state_time,
        cast(RUN.c.facets, Text),
    )
    runs: dict[int, dict[str, Any]] = {}
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows_among(conn, query, RUN.c.job_id, only):
        job = by_id.get(row.job_id)
        if job is None:
            continue
        facets = _json(row[7])
        error = facets.get("errorMessage") if isinstance(facets, dict) else None
        item: dict[str, Any] = {
            "run": row.run_uuid,
            "state": row.state,
            "started_at": iso(row.started_at),
            "ended_at": iso(row.ended_at),
            "inputs": [],
            "outputs": [],
        }
        if isinstance(error, dict) and error.get("message"):
            item["error"] = str(error["message"])
        runs[row.id] = item
        by_job[job].append(item)
    kept: set[int] = set()
    for job, rows in by_job.items():
        rows.sort(key=lambda r: (r["started_at"] or r["ended_at"] or "", r["run"]), reverse=True)
        snap.job_runs[job] = rows[:RUNS_PER_ASSET]
        kept.update(id(r) for r in snap.job_runs[job])
    io = select(
        RUN_DATASET.c.run_id,
        RUN_DATASET.c.asset_id,
        RUN_DATASET.c.direction,
        RUN_DATASET.c.version_id,
    )
    shown = None if only is None else [i for i, r in runs.items() if id(r) in kept]
    for row in rows_among(conn, io, RUN_DATASET.c.run_id, shown):
        run = runs.get(row.run_id)
        uri = by_id.get(row.asset_id)
        if run is None or uri is None or id(run) not in kept:
            continue
        side = "inputs" if row.direction == "input" else "outputs"
        run[side].append([uri, numbers.get(row.version_id) if row.version_id else None])
    for rows in snap.job_runs.values():
        for run in rows:
            run["inputs"].sort(key=lambda p: (p[0], p[1] or 0))
            run["outputs"].sort(key=lambda p: (p[0], p[1] or 0))


def _fields_of(definition: Any) -> list[list[str]]:
    fields = definition.get("fields") if isinstance(definition, dict) else None
    return [
        [str(f.get("name", "")), str(f.get("type") or "")]
        for f in fields or []
        if isinstance(f, dict)
    ]


def _evidence(
    conn: Connection, snap: Snapshot, by_id: dict[int, str], only: list[int] | None
) -> None:
    """Each source's latest assertion: its own definition, or the version it equals."""
    version = (VERSION.c.asset_id == EVIDENCE.c.asset_id) & (
        VERSION.c.fingerprint == EVIDENCE.c.fingerprint
    )
    current = {uri: snap.fields.get(uri, []) for uri in snap.assets}
    fingerprints = {
        uri: {v["fingerprint"]: v["version"] for v in rows} for uri, rows in snap.versions.items()
    }
    older = (
        select(EVIDENCE.c.id, cast(VERSION.c.definition, Text))
        .join(VERSION, version)
        .join(ASSET, ASSET.c.id == EVIDENCE.c.asset_id)
        .where(EVIDENCE.c.definition.is_(None), VERSION.c.version != ASSET.c.current_version)
    )
    defined = {
        row[0]: _fields_of(_json(row[1]))
        for row in rows_among(conn, older, EVIDENCE.c.asset_id, only)
    }
    query = select(
        EVIDENCE.c.id,
        EVIDENCE.c.asset_id,
        EVIDENCE.c.source,
        EVIDENCE.c.fingerprint,
        cast(EVIDENCE.c.definition, Text),
        EVIDENCE.c.asserted_at,
    )
    for row in rows_among(conn, query, EVIDENCE.c.asset_id, only):
        uri = by_id.get(row.asset_id)
        if uri is None:
            continue
        if row[4] is not None and row[4] != "null":
            fields = _fields_of(_json(row[4]))
        elif row.id in defined:
            fields = defined[row.id]
        else:
            fields = [[f["name"], f["type"] or ""] for f in current[uri]]
        snap.evidence.setdefault(uri, []).append(
            {
                "source": row.source,
                "at": iso(row.asserted_at),
                "version": fingerprints.get(uri, {}).get(row.fingerprint),
                "fields": fields,
            }
        )
    for rows in snap.evidence.values():
        rows.sort(key=lambda e: (e["source"], e["at"] or ""))


def _edges(conn: Connection, snap: Snapshot, only: list[int] | None) -> None:
    """The edges among the assets of `snap` (read among `only`); of the other assets
    among `only`, which assets of `snap` each feeds (`Snapshot.readers`)."""
    graph = LineageGraph.from_connection(conn, only=only)
    edges = set()
    readers: dict[str, set[str]] = {}
    for node in graph.nodes():
        for edge in graph.edges_out_of(node.uri):
            if edge.source not in snap.assets and edge.target in snap.assets:
                readers.setdefault(edge.source, set()).add(edge.target)
            if edge.source in snap.assets and edge.target in snap.assets:
                edges.add((edge.source, edge.target, edge.kind))
                for target_field, sources in (edge.fields or {}).items():
                    known = snap.field_lineage.setdefault(edge.target, {}).setdefault(
                        str(target_field), []
                    )
                    known.extend((edge.source, str(f)) for f in sources or [])
    snap.edges = sorted(edges)
    snap.readers = {uri: sorted(targets) for uri, targets in sorted(readers.items())}
    for by_field in snap.field_lineage.values():
        for name, pairs in by_field.items():
            by_field[name] = sorted(set(pairs))


def _read(
    conn: Connection, snap: Snapshot, only: list[int] | None, beside: list[int] | None = None
) -> dict[int, str]:
    """What the report shows of the assets `only` (None: of every asset); of the
    assets `beside`, only which of those they feed."""
    by_id = _assets(conn, snap, only)
    numbers = _versions(conn, snap, by_id, only)
    _edges(conn, snap, None if only is None else sorted({*only, *(beside or [])}))
    _bindings(conn, snap, by_id, only)
    _runs(conn, snap, by_id, numbers, only)
    _job_runs(conn, snap, by_id, numbers, only)
    _evidence(conn, snap, by_id, only)
    return by_id


def load_snapshot(store: Store) -> Snapshot:
    """Read the catalog into a `Snapshot` (one read transaction)."""
    snap = Snapshot()
    with store.engine.connect() as conn:
        _read(conn, snap, None)
        # Accepted events only: a duplicate a client re-sent adds nothing to the catalog.
        count, last = conn.execute(
            select(func.count(RAW_EVENT.c.id), func.max(RAW_EVENT.c.received_at)).where(
                RAW_EVENT.c.status == "accepted"
            )
        ).one()
        if count:
            snap.events = {"count": int(count), "last_received": iso(_aware(last))}
        snap.coverage = coverage_trend(conn)
        with Session(bind=conn) as session:
            snap.findings = list_findings(session)
            snap.query_bindings = load_query_bindings(session)
    return snap


def load_neighbourhood(store: Store, uri: str, depth: int, limit: int = FOCUS_LIMIT) -> Snapshot:
    """The part of the catalog within `depth` hops of `uri`, upstream and downstream
    (whole hops, up to `limit` assets each way), as a `Snapshot` with its `scope`.

    Each asset in it has what the whole catalog's snapshot has of it; the edges
    are those among them, the findings those that name one of them. Raises
    `catalog.errors.NotFound` if `uri` is no live asset."""
    snap = Snapshot()
    with store.engine.connect() as conn, Session(bind=conn) as session:
        graph = SqlGraph(conn)
        around = graph.neighbourhood(uri, depth, limit)
        named = select(ASSET.c.uri)
        uris = {row.uri for row in rows_among(conn, named, ASSET.c.id, around.ids)}
        snap.findings = list_findings(session, naming=uris)
        # What a finding is about decides whether the others it names read it.
        subjects = {f["assets"][0] for f in snap.findings if f["assets"]} - uris
        by_id = _read(conn, snap, around.ids, beside=graph.live_ids(subjects))
        live, deleted = conn.execute(
            select(
                func.count(ASSET.c.id).filter(ASSET.c.deleted.is_(False)),
                func.count(ASSET.c.id).filter(ASSET.c.deleted.is_(True)),
            )
        ).one()
        snap.deleted = int(deleted)
        snap.scope = Scope(around.uri, depth, int(live), around.cut)
        snap.coverage = coverage_trend(conn)
        snap.query_bindings = load_query_bindings(session, by_id)
    return snap


def _aware(value: Any) -> datetime | None:
    """`max()` over a UTC column comes back naive on SQLite: it is UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None
