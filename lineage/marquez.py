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
from typing import Any

import orjson
from sqlalchemy import Connection, select

from catalog import reads
from catalog.db import CHUNK
from catalog.errors import InvalidInput, NotFound
from catalog.identity import asset_uri, job_uri, normalize_namespace
from catalog.models import Alias, Asset, key_hash
from lineage.api import load
from lineage.api.shapes import node_id
from lineage.sqlgraph import EITHER_WAY, Links, link_rows, nearest

ASSET = Asset.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
DEFAULT_DEPTH = 20
MAX_NODES = 5000
#: About the most JSON one answer holds.
MAX_BYTES = 16 * 1024 * 1024
#: Nodes read at once (each with its facets, which may be large).
NODE_CHUNK = 100


def resolve_node(conn: Connection, node: str) -> int:
    """The asset id a Marquez node id names; NotFound if the catalog has none."""
    kind, _, rest = node.partition(":")
    if kind not in ("dataset", "job") or not rest:
        raise InvalidInput(
            f"nodeId {node[:200]!r} must be dataset:NAMESPACE:NAME or job:NAMESPACE:NAME"
        )
    candidates: list[str] = []
    uri = job_uri if kind == "job" else asset_uri
    for i, char in enumerate(rest):
        if char == ":" and 0 < i < len(rest) - 1:
            try:
                candidates.append(uri(normalize_namespace(rest[:i]), rest[i + 1 :]))
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


def lineage_graph(
    conn: Connection,
    node: str,
    depth: int = DEFAULT_DEPTH,
    max_nodes: int = MAX_NODES,
    max_bytes: int = MAX_BYTES,
) -> dict[str, Any]:
    """`{"graph": [node, ...]}` around `node`, as Marquez's lineage endpoint answers.

    At most `max_nodes` nodes (the nearest hops first) and about
    `max_bytes` of JSON (counted node by node, the start node first): a wider
    graph is cut there, and the answer says so with `"truncated": true`.
    """
    start = resolve_node(conn, node)
    seen, edges, full = around(conn, start, depth, max_nodes)
    order = [start, *sorted(seen - {start})]
    graph, cut = _nodes(conn, order, edges, max_bytes)
    answer: dict[str, Any] = {"graph": graph}
    if full or cut:
        answer["truncated"] = True
    return answer


def around(
    conn: Connection, start: int, depth: int, max_nodes: int
) -> tuple[set[int], set[tuple[int, int]], bool]:
    """The ids of the nodes within `depth` hops of `start` either way (at most
    `max_nodes`, the nearest hops first), the (source, target) lineage edges a hop
    nearer than `depth` follows between them, and whether nodes were left out.
    Recursive SQL, reading only what the walk reaches."""
    links = Links(EITHER_WAY, live_only=False)
    hops, full = nearest(conn, links, start, max(depth, 0), max(max_nodes, 1))
    near = [i for i, h in hops.items() if h < depth]
    edges: set[tuple[int, int]] = set()
    for arm, a, b in link_rows(conn, links, near):
        if a in hops and b in hops:
            edges.add((a, b) if arm == 0 else (b, a))
    return set(hops), edges, full


def _nodes(
    conn: Connection, ids: list[int], edges: set[tuple[int, int]], max_bytes: int
) -> tuple[list[dict[str, Any]], bool]:
    """The nodes of `ids` in order, until about `max_bytes` of JSON; whether cut.

    Names are read for all of them (the edges need them), the nodes' data a
    chunk at a time, so that one answer never holds every node's facets."""
    names: dict[int, tuple[str, str, str]] = {}  # id -> (kind, namespace, name)
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        for r in conn.execute(
            select(ASSET.c.id, ASSET.c.kind, ASSET.c.namespace, ASSET.c.name).where(
                ASSET.c.id.in_(part)
            )
        ):
            names[r.id] = (r.kind, r.namespace, r.name)
    ids = [i for i in ids if i in names]
    ids_of = {i: node_id(*names[i]) for i in ids}
    ins: dict[int, list[tuple[int, int]]] = defaultdict(list)
    outs: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, t in sorted(edges):
        if s in ids_of and t in ids_of:
            outs[s].append((s, t))
            ins[t].append((s, t))
    graph: list[dict[str, Any]] = []
    used = 0
    cut = False
    for start in range(0, len(ids), NODE_CHUNK):
        part = ids[start : start + NODE_CHUNK]
        assets = reads.assets_by_id(conn, part)
        jobs = [assets[i] for i in part if assets[i].kind == "job"]
        data = dict(zip([j.id for j in jobs], load.jobs(conn, jobs), strict=True))
        datasets = [assets[i] for i in part if assets[i].kind != "job"]
        data.update(zip([d.id for d in datasets], load.datasets(conn, datasets), strict=True))
        for i in part:
            item: dict[str, Any] = {
                "id": ids_of[i],
                "type": "JOB" if assets[i].kind == "job" else "DATASET",
                "data": data[i],
                "inEdges": [{"origin": ids_of[s], "destination": ids_of[t]} for s, t in ins[i]],
                "outEdges": [{"origin": ids_of[s], "destination": ids_of[t]} for s, t in outs[i]],
            }
            used += len(orjson.dumps(item, default=str))
            if used > max_bytes and graph:
                cut = True
                break
            graph.append(item)
        if cut:
            break
    if cut:  # no edge to a node left out
        kept = {item["id"] for item in graph}
        for item in graph:
            for key in ("inEdges", "outEdges"):
                item[key] = [
                    e for e in item[key] if e["origin"] in kept and e["destination"] in kept
                ]
    return graph, cut
