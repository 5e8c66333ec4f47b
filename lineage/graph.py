"""The lineage graph: every asset a node, every edge of the catalog an edge.

`LineageGraph` keeps what feeds what in two adjacency maps (source -> target
-> kind -> detail, and the same the other way), sharing one entry per pair: a
full check holds the graph of the whole catalog, and a general-purpose graph
library's dictionaries per node and per edge were most of it. It is built
from the catalog in two bulk queries (assets, edges),
and answers "what feeds what" with depth and node limits and a time budget:
every answer says whether it was cut short (`partial`) and why. `SqlGraph`
(lineage/sqlgraph.py) gives the same answers without loading the graph.
"""

from __future__ import annotations

import json
import time
from array import array
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy
from sqlalchemy import Connection, Text, cast, select

from catalog.db import rows_among
from catalog.errors import NotFound
from catalog.models import Alias, Asset, Edge, ModelBinding
from lineage.below import count_reached

ASSET = Asset.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
BINDING = ModelBinding.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Node:
    uri: str
    kind: str
    version: int
    deleted: bool
    unresolved: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "kind": self.kind,
            "version": self.version,
            "deleted": self.deleted,
            "unresolved": self.unresolved,
        }


@dataclass(frozen=True, slots=True)
class EdgeInfo:
    source: str
    target: str
    kind: str
    #: target field -> source fields, where known.
    fields: dict[str, list[str]]
    #: target field -> source field -> how (column lineage transformations), where given.
    transformations: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def to_json(self, with_fields: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "target": self.target, "kind": self.kind}
        if with_fields and self.fields:
            out["fields"] = self.fields
        if with_fields and self.transformations:
            out["transformations"] = self.transformations
        return out


@dataclass
class Walk:
    """The answer to an upstream or downstream question."""

    start: str
    direction: str
    nodes: list[tuple[Node, int]] = field(default_factory=list)
    edges: list[EdgeInfo] = field(default_factory=list)
    partial: bool = False
    reason: str | None = None

    def to_json(self, with_fields: bool = False) -> dict[str, Any]:
        return {
            "start": self.start,
            "direction": self.direction,
            "partial": self.partial,
            "reason": self.reason,
            "nodes": [{**n.to_json(), "distance": d} for n, d in self.nodes],
            "edges": [e.to_json(with_fields) for e in self.edges],
        }


#: An edge's detail: its fields (target field -> source fields) and transformations,
#: each None when there are none (most edges: they share `_BARE`).
Detail = tuple[dict[str, list[str]] | None, dict[str, Any] | None]
_BARE: Detail = (None, None)
#: The edges of one (source, target) pair: (kind, detail) when there is one (most
#: pairs; a bare edge's is shared by all of its kind), else a dict kind -> detail.
Kinds = tuple[str, Detail] | dict[str, Detail]
_BARE_OF: dict[str, tuple[str, Detail]] = {}


def _one(kind: str, detail: Detail) -> tuple[str, Detail]:
    if detail is not _BARE:
        return (kind, detail)
    single = _BARE_OF.get(kind)
    if single is None:
        single = _BARE_OF[kind] = (kind, _BARE)
    return single


def _kinds(value: Kinds) -> Iterable[tuple[str, Detail]]:
    return (value,) if type(value) is tuple else value.items()  # type: ignore[union-attr]


class LineageGraph:
    """What feeds what, over every asset in the catalog.

    Nodes are URIs (a `Node` each, None for one only named by an edge); edges are
    (source, target, kind), with a `Detail`. `_succ[s][t]` and `_pred[t][s]` are the
    pair's `Kinds`, the same object; a node with no edge out (in) has no `_succ`
    (`_pred`) entry."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node | None] = {}
        self._succ: dict[str, dict[str, Kinds]] = {}
        self._pred: dict[str, dict[str, Kinds]] = {}
        self._edges = 0
        #: Each node's successors in name order, as `paths_downstream` asked for them.
        self._ordered: dict[str, tuple[str, ...]] = {}
        self._by_id: dict[int, str] = {}
        self._aliases: dict[str, str] = {}

    def _put(self, source: str, target: str, kind: str, detail: Detail) -> None:
        """Add an edge, or replace the detail of an edge already there."""
        nodes = self._nodes
        if source not in nodes:
            nodes[source] = None
        if target not in nodes:
            nodes[target] = None
        out = self._succ.get(source)
        if out is None:
            out = self._succ[source] = {}
        into = self._pred.get(target)
        if into is None:
            into = self._pred[target] = {}
        kinds = out.get(target)
        value: Kinds
        if kinds is None:
            value = _one(kind, detail)
            self._edges += 1
        elif type(kinds) is tuple:
            if kinds[0] == kind:
                value = _one(kind, detail)
            else:
                value = {kinds[0]: kinds[1], kind: detail}
                self._edges += 1
        else:
            assert isinstance(kinds, dict)
            if kind not in kinds:
                self._edges += 1
            kinds[kind] = detail
            value = kinds
        out[target] = into[source] = value
        self._ordered.pop(source, None)

    def _detail(self, source: str, target: str, kind: str) -> Detail | None:
        """The detail of edge (source, target, kind), None when there is no such edge."""
        kinds = self._out(source).get(target)
        return None if kinds is None else dict(_kinds(kinds)).get(kind)

    def _out(self, uri: str) -> dict[str, Kinds]:
        return self._succ.get(uri) or {}

    def _in(self, uri: str) -> dict[str, Kinds]:
        return self._pred.get(uri) or {}

    # -- building -------------------------------------------------------------

    @classmethod
    def from_connection(
        cls, conn: Connection, include_deleted: bool = False, only: Collection[int] | None = None
    ) -> LineageGraph:
        """Build from the catalog in bulk: one query for assets, one for edges.

        `only`: the assets of these ids and the edges between them (what an
        incremental check needs), in batches of ids.
        """
        graph = cls()
        query = select(
            ASSET.c.id,
            ASSET.c.uri,
            ASSET.c.kind,
            ASSET.c.current_version,
            ASSET.c.deleted,
            ASSET.c.unresolved,
        )
        if not include_deleted:
            query = query.where(ASSET.c.deleted.is_(False))
        by_id = graph._by_id
        rows = rows_among(conn, query, ASSET.c.id, only)
        for asset_id, uri, kind, version, deleted, unresolved in rows:
            by_id[asset_id] = uri
            graph._nodes[uri] = Node(uri, kind, version, deleted, unresolved)
        found = None if only is None else list(by_id)  # the rest: of the assets found only
        # Fields as text: most edges have none, and parsing "{}" 300,000 times is waste.
        merged: dict[tuple[str, str, str], dict[str, list[str]] | None] = {}
        how: dict[tuple[str, str, str], dict[str, Any]] = {}
        edges = select(
            EDGE.c.source_id,
            EDGE.c.target_id,
            EDGE.c.kind,
            cast(EDGE.c.fields, Text),
            cast(EDGE.c.transformations, Text),
        )
        for source_id, target_id, kind, fields, kinds in rows_among(
            conn, edges, EDGE.c.source_id, found
        ):
            source, target = by_id.get(source_id), by_id.get(target_id)
            if source is None or target is None:
                continue
            key = (source, target, kind)
            parsed = json.loads(fields) if fields and fields not in ("{}", "null") else None
            before = merged.get(key)
            if before is not None and parsed:
                before.update(parsed)
            elif before is None:
                merged[key] = parsed or None
            if kinds and kinds not in ("{}", "null"):
                how.setdefault(key, {}).update(json.loads(kinds))
        for (s, t, k), f in merged.items():
            h = how.get((s, t, k)) or None
            graph._put(s, t, k, _BARE if f is None and h is None else (f, h))
        del merged, how
        # Which embedding model built which index: an edge from the model.
        model = ASSET.alias("model")
        built = (
            select(BINDING.c.asset_id, model.c.id)
            .join(model, (model.c.name == BINDING.c.model) & (model.c.kind == "embedding_model"))
            .distinct()
        )
        for asset_id, model_id in rows_among(conn, built, BINDING.c.asset_id, found):
            if asset_id in by_id and model_id in by_id:
                graph._replace(by_id[model_id], by_id[asset_id], "embedded_by_model")
        aliases = select(ALIAS.c.uri, ALIAS.c.asset_id)
        for alias_uri, asset_id in rows_among(conn, aliases, ALIAS.c.asset_id, found):
            if asset_id in by_id:
                graph._aliases[alias_uri] = by_id[asset_id]
        return graph

    def _replace(self, source: str, target: str, kind: str) -> None:
        """An edge with no fields (its transformations, if it had any, are kept)."""
        before = self._detail(source, target, kind)
        how = before[1] if before is not None else None
        self._put(source, target, kind, _BARE if how is None else (None, how))

    def add_node(self, node: Node, asset_id: int | None = None) -> None:
        self._nodes[node.uri] = node
        if asset_id is not None:
            self._by_id[asset_id] = node.uri

    def add_edge(
        self, source: str, target: str, kind: str, fields: dict[str, list[str]] | None = None
    ) -> None:
        before = self._detail(source, target, kind)
        if before is not None:
            merged = {**(before[0] or {}), **(fields or {})}
            self._put(source, target, kind, (merged or None, before[1]))
            return
        self._put(source, target, kind, (dict(fields) if fields else None, None))

    # -- lookups --------------------------------------------------------------

    def __contains__(self, uri: object) -> bool:
        return uri in self._nodes or uri in self._aliases

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def edge_count(self) -> int:
        return self._edges

    def uri_of(self, asset_id: int) -> str | None:
        """The URI of the asset of this id, when it is in the graph."""
        return self._by_id.get(asset_id)

    def canonical(self, uri: str) -> str:
        return self._aliases.get(uri, uri)

    def node(self, uri: str) -> Node:
        node = self._nodes[self.canonical(uri)]
        if node is None:  # named by an edge only
            raise KeyError(uri)
        return node

    def nodes(self) -> Iterator[Node]:
        for uri, node in self._nodes.items():
            if node is None:
                raise KeyError(uri)
            yield node

    def edges_into(self, uri: str, kind: str | None = None) -> list[EdgeInfo]:
        """The edges into `uri` (of `kind` only, when given), by source."""
        uri = self.canonical(uri)
        return sorted(
            (
                EdgeInfo(s, uri, k, fields or {}, how or {})
                for s, kinds in self._in(uri).items()
                for k, (fields, how) in _kinds(kinds)
                if kind is None or k == kind
            ),
            key=lambda e: (e.source, e.kind),
        )

    def edges_out_of(self, uri: str) -> list[EdgeInfo]:
        uri = self.canonical(uri)
        return sorted(
            (
                EdgeInfo(uri, t, k, fields or {}, how or {})
                for t, kinds in self._out(uri).items()
                for k, (fields, how) in _kinds(kinds)
            ),
            key=lambda e: (e.target, e.kind),
        )

    # -- walks ----------------------------------------------------------------

    def _start(self, uri: str) -> str:
        uri = self.canonical(uri)
        if uri not in self._nodes:
            raise NotFound(f"no live asset {uri!r} in the lineage graph")
        return uri

    def _walk(
        self,
        start: str,
        direction: str,
        depth: int | None,
        budget: float | None,
        limit: int | None = None,
    ) -> Walk:
        """Hop after hop from `start`; whole hops only, up to `limit` nodes."""
        start = self._start(start)
        walk = Walk(start, direction)
        neighbours = self._in if direction == "upstream" else self._out
        deadline = time.monotonic() + budget if budget else None
        seen = {start: 0}
        level, distance = [start], 0
        edges: list[EdgeInfo] = []
        while level and not walk.partial:
            if depth is not None and distance >= depth:
                if any(neighbours(u) for u in level):
                    walk.partial, walk.reason = True, f"depth limit {depth} reached"
                break
            found: dict[str, None] = {}
            for current in level:
                if deadline is not None and time.monotonic() > deadline:
                    walk.partial, walk.reason = True, f"time budget of {budget} s reached"
                    break
                for other, by_kind in neighbours(current).items():
                    for kind, (fields, how) in _kinds(by_kind):
                        source, target = (
                            (other, current) if direction == "upstream" else (current, other)
                        )
                        edges.append(EdgeInfo(source, target, kind, fields or {}, how or {}))
                    if other not in seen:
                        found[other] = None
            if not walk.partial and limit is not None and len(seen) - 1 + len(found) > limit:
                walk.partial, walk.reason = True, f"node limit {limit} reached"
                break
            distance += 1
            seen.update(dict.fromkeys(found, distance))
            level = list(found)
        walk.nodes = sorted(
            ((self.node(u), d) for u, d in seen.items() if u != start),
            key=lambda item: (item[1], item[0].uri),
        )
        walk.edges = sorted(
            (e for e in edges if e.source in seen and e.target in seen),
            key=lambda e: (e.source, e.target, e.kind),
        )
        return walk

    def upstream(
        self,
        uri: str,
        depth: int | None = None,
        budget: float | None = None,
        limit: int | None = None,
    ) -> Walk:
        """Everything that feeds `uri`, nearest first."""
        return self._walk(uri, "upstream", depth, budget, limit)

    def downstream(
        self,
        uri: str,
        depth: int | None = None,
        budget: float | None = None,
        limit: int | None = None,
    ) -> Walk:
        """Everything `uri` feeds, nearest first."""
        return self._walk(uri, "downstream", depth, budget, limit)

    def path(self, source: str, target: str) -> list[str] | None:
        """The shortest path of edges from `source` to `target`, or None.

        Of several shortest paths, the one whose URIs come first in order."""
        source, target = self._start(source), self._start(target)
        to_target = {target: 0}
        queue = deque([target])
        while queue and source not in to_target:
            current = queue.popleft()
            for other in self._in(current):
                if other not in to_target:
                    to_target[other] = to_target[current] + 1
                    queue.append(other)
        if source not in to_target:
            return None
        found = [source]
        while found[-1] != target:
            step = to_target[found[-1]] - 1
            found.append(min(v for v in self._out(found[-1]) if to_target.get(v) == step))
        return found

    def _starts(self, uris: Iterable[str]) -> list[str]:
        """The nodes `uris` name (aliases resolved), once each, in name order."""
        return sorted({u for u in map(self.canonical, uris) if u in self._nodes})

    def _levels(self, uris: Iterable[str], parents: dict[str, str | None]) -> Iterator[list[str]]:
        """Breadth first from `uris`: the nodes by hops (the starts first), filling
        `parents` with each node's parent on one shortest path (None for a start) as
        it goes, so a caller that stops early has walked no further."""
        level: list[str] = []
        for uri in self._starts(uris):
            parents[uri] = None
            level.append(uri)
        ordered = self._ordered
        while level:
            yield level
            found: list[str] = []
            for current in level:
                # In name order: the same path whatever order the edges were loaded in
                # (a whole catalog's graph or an incremental check's part of it). Sorted
                # once a graph: a check walks down from every error.
                following = ordered.get(current)
                if following is None:
                    following = ordered[current] = tuple(sorted(self._out(current)))
                for other in following:
                    if other not in parents:
                        parents[other] = current
                        found.append(other)
            level = found

    @staticmethod
    def _chain(parents: dict[str, str | None], uri: str) -> list[str]:
        chain = [uri]
        while (parent := parents[chain[-1]]) is not None:
            chain.append(parent)
        return list(reversed(chain))

    def paths_downstream(self, uris: Iterable[str]) -> dict[str, list[str]]:
        """For each node reachable from any of `uris`: one shortest path to it."""
        parents: dict[str, str | None] = {}
        levels = self._levels(uris, parents)
        next(levels, None)  # the starts
        return {uri: self._chain(parents, uri) for level in levels for uri in level}

    def nearest(
        self, uris: Iterable[str], first: int, skip: Collection[str] = ()
    ) -> list[tuple[str, list[str]]]:
        """The `first` nodes downstream of `uris` (neither them nor `skip`), nearest
        first (then by URI), each with one shortest path (the one `paths_downstream`
        gives). The walk stops at the hop that completes them."""
        parents: dict[str, str | None] = {}
        nearest: list[tuple[str, list[str]]] = []
        levels = self._levels(uris, parents)
        next(levels, None)  # the starts
        for level in levels:
            if len(nearest) >= first:
                break
            kept = [u for u in level if u not in skip] if skip else level
            wanted = sorted(kept)[: first - len(nearest)]
            nearest += [(u, self._chain(parents, u)) for u in wanted]
        return nearest

    def downstream_counts(self, groups: list[tuple[Iterable[str], Collection[str]]]) -> list[int]:
        """For each `(uris, skip)`: how many nodes are downstream of `uris` (neither them
        nor `skip`), counted together (`lineage.below.count_reached`: a check counts
        below every error, and what lies below many errors is shared). The part of the
        graph below them is numbered first, as found."""
        starts = [self._starts(uris) for uris, _ in groups]
        index: dict[str, int] = {}
        for uris in starts:
            for uri in uris:
                index.setdefault(uri, len(index))
        order = list(index)
        succ, sources, targets = self._succ, array("q"), array("q")
        k = 0
        while k < len(order):
            for other in succ.get(order[k], ()):
                j = index.get(other)
                if j is None:
                    j = index[other] = len(order)
                    order.append(other)
                sources.append(k)
                targets.append(j)
            k += 1
        source = numpy.frombuffer(sources, dtype=numpy.int64)
        first = numpy.searchsorted(source, numpy.arange(len(order) + 1))
        numbered = [
            ({index[u] for u in uris}, {index[u] for u in skip if u in index})
            for uris, (_, skip) in zip(starts, groups, strict=True)
        ]
        return count_reached(
            len(order), first, numpy.frombuffer(targets, dtype=numpy.int64), numbered
        )
