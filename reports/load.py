"""Read what the report shows from the catalog, in a handful of bulk queries.

This is the report's only I/O. It returns a `Snapshot` of plain data (no ORM
objects, timestamps as ISO text); `reports.context` turns it into the
template's context without touching the database.
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
from catalog.db import Store
from catalog.models import (
    Asset,
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

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
FIELD = AssetField.__table__  # type: ignore[attr-defined]
BINDING = ModelBinding.__table__  # type: ignore[attr-defined]
IN_USE = ModelInUse.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
RUN_DATASET = RunDataset.__table__  # type: ignore[attr-defined]
RAW_EVENT = RawEvent.__table__  # type: ignore[attr-defined]

#: Runs kept per asset and direction (the most recent ones).
RUNS_PER_ASSET = 10


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
    deleted: int = 0
    events: dict[str, Any] = field(default_factory=dict)
    #: Lineage coverage by kind over the last checks, oldest first (`catalog.coverage.trend`).
    coverage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _assets(conn: Connection, snap: Snapshot) -> dict[int, str]:
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
    for row in conn.execute(query):
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


def _versions(conn: Connection, snap: Snapshot, by_id: dict[int, str]) -> dict[int, int]:
    """Every version row; returns version id -> version number."""
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
    for row in conn.execute(query):
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
    for version_id, text in conn.execute(definitions):
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
    for row in conn.execute(fields):
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


def _bindings(conn: Connection, snap: Snapshot, by_id: dict[int, str]) -> None:
    query = select(
        BINDING.c.asset_id,
        BINDING.c.part,
        BINDING.c.model,
        BINDING.c.revision,
        BINDING.c.origin,
        BINDING.c.share,
    )
    for row in conn.execute(query):
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


def _runs(conn: Connection, snap: Snapshot, by_id: dict[int, str], numbers: dict[int, int]) -> None:
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
    for row in conn.execute(query):
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


def _edges(conn: Connection, snap: Snapshot) -> None:
    graph = LineageGraph.from_connection(conn)
    edges = set()
    for node in graph.nodes():
        for edge in graph.edges_out_of(node.uri):
            if edge.source in snap.assets and edge.target in snap.assets:
                edges.add((edge.source, edge.target, edge.kind))
    snap.edges = sorted(edges)


def load_snapshot(store: Store) -> Snapshot:
    """Read the catalog into a `Snapshot` (one read transaction)."""
    snap = Snapshot()
    with store.engine.connect() as conn:
        by_id = _assets(conn, snap)
        numbers = _versions(conn, snap, by_id)
        _edges(conn, snap)
        _bindings(conn, snap, by_id)
        _runs(conn, snap, by_id, numbers)
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


def _aware(value: Any) -> datetime | None:
    """`max()` over a UTC column comes back naive on SQLite: it is UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None
