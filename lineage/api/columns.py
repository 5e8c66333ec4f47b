"""`GET /api/v1/column-lineage` in Marquez's shape: a graph of dataset fields.

The walk is over fields: from the start (a dataset's fields, one field, or a
job's outputs' fields) upstream through `column_lineage` edges (target field
<- source fields), and downstream too with `withDownstream`, at most `depth`
dataset hops. A `#VERSION` suffix on the node id is accepted and ignored
(the graph is the current one).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection

from catalog import reads
from catalog.errors import InvalidInput, NotFound
from lineage.marquez import resolve_node

MAX_NODES = 5000
Field = tuple[int, str]


def _start(conn: Connection, node: str) -> tuple[list[int], str | None]:
    """The datasets to start from, and the one field if the node names a field."""
    node = node.split("#", 1)[0]
    kind, _, rest = node.partition(":")
    if kind == "datasetField":
        head, sep, field = rest.rpartition(":")
        if not sep or not field:
            raise InvalidInput(f"nodeId {node[:200]!r} must be datasetField:NS:NAME:FIELD")
        return [resolve_node(conn, f"dataset:{head}")], field
    start = resolve_node(conn, node)
    if kind == "job":
        io = reads.job_io(conn, [start]).get(start, {})
        keys = [(r.namespace, r.name) for r in io.get("outputs", [])]
        ids = [a.id for ns, name in keys if (a := reads.asset_by_key(conn, ns, name, job=False))]
        return ids, None
    return [start], None


def column_lineage(conn: Connection, node: str, depth: int, downstream: bool) -> list[Any]:
    datasets, only = _start(conn, node)
    # target field -> its source fields, over every edge loaded so far
    sources: dict[Field, set[Field]] = defaultdict(set)
    targets: dict[Field, set[Field]] = defaultdict(set)
    loaded: set[int] = set()

    def load(ids: set[int]) -> None:
        for e in reads.edges_around(conn, sorted(ids - loaded), field_level=True):
            for target_field, source_fields in (e.fields or {}).items():
                for source_field in source_fields or []:
                    s, t = (e.source_id, str(source_field)), (e.target_id, str(target_field))
                    sources[t].add(s)
                    targets[s].add(t)
        loaded.update(ids)

    load(set(datasets))
    frontier: set[Field] = {
        f for f in (*sources, *targets) if f[0] in datasets and (only is None or f[1] == only)
    }
    if only is not None and not frontier:
        frontier = {(datasets[0], only)}
    seen = set(frontier)
    for _ in range(depth):
        if not frontier or len(seen) >= MAX_NODES:
            break
        load({d for d, _ in frontier})
        found: set[Field] = set()
        for f in frontier:
            found |= sources.get(f, set())
            if downstream:
                found |= targets.get(f, set())
        frontier = found - seen
        seen |= frontier
    assets = reads.assets_by_id(conn, [d for d, _ in seen])
    types = {
        (d, f.name): f.type or None
        for d, fields in reads.current_fields(conn, list(assets)).items()
        for f in fields
    }

    def fid(f: Field) -> str:
        a = assets[f[0]]
        return f"datasetField:{a.namespace}:{a.name}:{f[1]}"

    graph = []
    for f in sorted(seen, key=fid):
        a = assets[f[0]]
        ins = sorted((s for s in sources.get(f, set()) if s in seen), key=fid)
        outs = sorted((t for t in targets.get(f, set()) if t in seen), key=fid)
        graph.append(
            {
                "id": fid(f),
                "type": "DATASET_FIELD",
                "data": {
                    "namespace": a.namespace,
                    "dataset": a.name,
                    "datasetVersion": None,
                    "field": f[1],
                    "fieldType": types.get(f),
                    "transformationDescription": None,
                    "transformationType": None,
                    "inputFields": [
                        {
                            "namespace": assets[s[0]].namespace,
                            "dataset": assets[s[0]].name,
                            "field": s[1],
                            "transformationDescription": None,
                            "transformationType": None,
                        }
                        for s in ins
                    ],
                },
                "inEdges": [{"origin": fid(s), "destination": fid(f)} for s in ins],
                "outEdges": [{"origin": fid(f), "destination": fid(t)} for t in outs],
            }
        )
    if not graph and not datasets:
        raise NotFound(f"no column lineage for nodeId {node[:200]!r}")
    return graph
