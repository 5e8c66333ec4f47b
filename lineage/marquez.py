"""`GET /api/v1/lineage` in Marquez's response shape, read from the catalog.

A node id is `dataset:NAMESPACE:NAME` or `job:NAMESPACE:NAME` (a namespace
may itself hold colons, as in `postgres://host:5432`). The graph holds every
node reachable from it through lineage edges (`reads`, `writes` and the
edges connectors declare, not the field-level `column_lineage` ones) in
either direction, at most `depth` edges away, each node with its `inEdges`
and `outEdges` as Marquez answers them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from catalog.errors import InvalidInput, NotFound
from catalog.identity import asset_uri, normalize_namespace
from catalog.models import Alias, Asset, AssetField, AssetVersion, Edge, Run, key_hash

ASSET = Asset.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
FIELD = AssetField.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
DEFAULT_DEPTH = 20
MAX_NODES = 5000
CHUNK = 900


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def node_id(kind: str, namespace: str, name: str) -> str:
    return f"{'job' if kind == 'job' else 'dataset'}:{namespace}:{name}"


def resolve_node(conn: Connection, node: str) -> int:
    """The asset id a Marquez node id names; NotFound if the catalog has none."""
    kind, _, rest = node.partition(":")
    if kind not in ("dataset", "job") or not rest:
        raise InvalidInput(
            f"nodeId {node[:200]!r} must be dataset:NAMESPACE:NAME or job:NAMESPACE:NAME"
        )
    candidates: list[str] = []
    for i, char in enumerate(rest):
        if char == ":" and 0 < i < len(rest) - 1:
            try:
                candidates.append(asset_uri(normalize_namespace(rest[:i]), rest[i + 1 :]))
            except InvalidInput:
                continue
    hashes = [key_hash(uri) for uri in candidates]
    if hashes:
        rows = list(
            conn.execute(
                select(ASSET.c.id, ASSET.c.key_hash, ASSET.c.kind).where(
                    ASSET.c.key_hash.in_(hashes)
                )
            ).all()
        )
        rows += conn.execute(
            select(ALIAS.c.asset_id.label("id"), ALIAS.c.key_hash, ASSET.c.kind)
            .join(ASSET, ASSET.c.id == ALIAS.c.asset_id)
            .where(ALIAS.c.key_hash.in_(hashes))
        ).all()
        wanted_job = kind == "job"
        for h in hashes:  # the longest namespace that matches wins
            for row in rows:
                if row.key_hash == h and (row.kind == "job") == wanted_job:
                    return int(row.id)
    raise NotFound(f"no {kind} matches nodeId {node[:200]!r}")


def lineage_graph(conn: Connection, node: str, depth: int = DEFAULT_DEPTH) -> dict[str, Any]:
    """`{"graph": [node, ...]}` around `node`, as Marquez's lineage endpoint answers."""
    start = resolve_node(conn, node)
    seen = {start}
    frontier = {start}
    edges: set[tuple[int, int]] = set()
    for _ in range(max(depth, 0)):
        if not frontier or len(seen) >= MAX_NODES:
            break
        found: set[int] = set()
        ids = sorted(frontier)
        for start_at in range(0, len(ids), CHUNK):
            part = ids[start_at : start_at + CHUNK]
            rows = conn.execute(
                select(EDGE.c.source_id, EDGE.c.target_id)
                .where(or_(EDGE.c.source_id.in_(part), EDGE.c.target_id.in_(part)))
                .where(EDGE.c.kind != "column_lineage")
            )
            for row in rows:
                edges.add((row.source_id, row.target_id))
                found.update((row.source_id, row.target_id))
        frontier = found - seen
        seen |= frontier
    edges = {(s, t) for s, t in edges if s in seen and t in seen}
    return {"graph": _nodes(conn, sorted(seen), edges)}


def _nodes(conn: Connection, ids: list[int], edges: set[tuple[int, int]]) -> list[dict[str, Any]]:
    assets: dict[int, Any] = {}
    fields: dict[int, list[dict[str, Any]]] = defaultdict(list)
    runs: dict[int, Any] = {}
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        assets.update({r.id: r for r in conn.execute(select(ASSET).where(ASSET.c.id.in_(part)))})
        rows = conn.execute(
            select(FIELD)
            .join(VERSION, VERSION.c.id == FIELD.c.version_id)
            .join(ASSET, ASSET.c.id == VERSION.c.asset_id)
            .where(VERSION.c.version == ASSET.c.current_version)
            .where(ASSET.c.id.in_(part))
            .order_by(FIELD.c.asset_id, FIELD.c.position)
        )
        for f in rows:
            fields[f.asset_id].append(
                {"name": f.name, "type": f.type or None, "tags": [], "description": f.description}
            )
        for run in conn.execute(select(RUN).where(RUN.c.job_id.in_(part))):
            best = runs.get(run.job_id)
            if best is None or _run_key(run) > _run_key(best):
                runs[run.job_id] = run
    ids_of = {i: node_id(a.kind, a.namespace, a.name) for i, a in assets.items()}
    ins: dict[int, list[tuple[int, int]]] = defaultdict(list)
    outs: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, t in sorted(edges):
        outs[s].append((s, t))
        ins[t].append((s, t))
    graph = []
    for i in ids:
        a = assets[i]
        if a.kind == "job":
            data = _job_data(a, ins[i], outs[i], assets, runs.get(i))
        else:
            data = _dataset_data(a, fields.get(i, []))
        graph.append(
            {
                "id": ids_of[i],
                "type": "JOB" if a.kind == "job" else "DATASET",
                "data": data,
                "inEdges": [{"origin": ids_of[s], "destination": ids_of[t]} for s, t in ins[i]],
                "outEdges": [{"origin": ids_of[s], "destination": ids_of[t]} for s, t in outs[i]],
            }
        )
    return graph


def _run_key(run: Any) -> tuple[str, int]:
    when = run.started_at or run.state_time or run.created_at
    return (when.isoformat() if when else "", run.id)


def _facets(asset: Any) -> dict[str, Any]:
    return dict((asset.observed or {}).get("openlineage") or {})


def _dataset_data(a: Any, fields: list[dict[str, Any]]) -> dict[str, Any]:
    facets = _facets(a)
    source = (facets.get("dataSource") or {}).get("name") or a.namespace
    description = a.description or (facets.get("documentation") or {}).get("description")
    return {
        "id": {"namespace": a.namespace, "name": a.name},
        "type": "DB_TABLE",
        "name": a.name,
        "physicalName": a.name,
        "createdAt": _iso(a.created_at),
        "updatedAt": _iso(a.updated_at),
        "namespace": a.namespace,
        "sourceName": source,
        "fields": fields,
        "tags": [],
        "lastModifiedAt": None,
        "description": description,
        "kind": a.kind,
        "version": a.current_version,
        "unresolved": a.unresolved,
    }


def _job_data(
    a: Any,
    ins: list[tuple[int, int]],
    outs: list[tuple[int, int]],
    assets: dict[int, Any],
    run: Any,
) -> dict[str, Any]:
    facets = _facets(a)
    latest = None
    if run is not None:
        duration = None
        if run.started_at is not None and run.ended_at is not None:
            duration = int((run.ended_at - run.started_at).total_seconds() * 1000)
        latest = {
            "id": run.run_uuid,
            "createdAt": _iso(run.created_at),
            "updatedAt": _iso(run.updated_at),
            "state": run.state,
            "startedAt": _iso(run.started_at),
            "endedAt": _iso(run.ended_at),
            "durationMs": duration,
            "parentRunId": run.parent_run_uuid,
            "facets": run.facets or {},
        }
    name = a.name
    return {
        "id": {"namespace": a.namespace, "name": name},
        "type": "BATCH",
        "name": name,
        "simpleName": name.rsplit(".", 1)[-1],
        "parentJobName": None,
        "createdAt": _iso(a.created_at),
        "updatedAt": _iso(a.updated_at),
        "namespace": a.namespace,
        "inputs": [
            {"namespace": assets[s].namespace, "name": assets[s].name}
            for s, _ in ins
            if s in assets
        ],
        "outputs": [
            {"namespace": assets[t].namespace, "name": assets[t].name}
            for _, t in outs
            if t in assets
        ],
        "location": (facets.get("sourceCodeLocation") or {}).get("url"),
        "description": a.description or (facets.get("documentation") or {}).get("description"),
        "latestRun": latest,
        "version": a.current_version,
    }
