"""What lies below some assets, held as arrays of numbers, and how many nodes each of
many start sets reaches.

An error puts at risk everything downstream of it: a check counts it for every
error, and lists the nearest. Below a hundred errors of a million-asset catalog
lie hundreds of thousands of assets; as a graph of dictionaries (`LineageGraph`)
building that part alone took most of an incremental check. `Below` holds it as
numbered nodes (numbered in URI order) and the edges between them, sorted by
source then target (compressed sparse rows), so each node's successors are one
slice of an array, already in URI order.

`count_reached` counts, for many start sets at once, the nodes each reaches:
every node gets a bit mask of the sets that reach it, passed on along the edges
in topological order a generation at a time (numpy does each generation at
once); what lies on or below a cycle is settled afterwards node by node.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy
from sqlalchemy import Connection, select

from catalog.db import plain_rows
from catalog.models import Asset, Edge, ModelBinding
from lineage.incremental import ids_of_uris

ASSET = Asset.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
BINDING = ModelBinding.__table__  # type: ignore[attr-defined]

#: How many start sets one pass counts (the bits of the mask kept per node).
COUNT_BITS = 256
#: Nodes whose mask bits are counted at a time (bounds the unpacked bits' memory).
_COUNT_ROWS = 65536

Array = Any  # numpy.ndarray of int64


def count_reached(
    n: int, first: Array, target: Array, groups: Sequence[tuple[Collection[int], Collection[int]]]
) -> list[int]:
    """For each `(starts, skip)` of node numbers: how many nodes are reached from
    `starts` (neither them nor `skip`), in a graph of `n` nodes whose edges out of
    node `i` go to `target[first[i]:first[i + 1]]`."""
    out: list[int] = []
    for i in range(0, len(groups), COUNT_BITS):
        out += _count_batch(n, first, target, groups[i : i + COUNT_BITS])
    return out


def _count_batch(
    n: int, first: Array, target: Array, groups: Sequence[tuple[Collection[int], Collection[int]]]
) -> list[int]:
    words = (len(groups) + 63) // 64
    mask = numpy.zeros((words, n), dtype=numpy.uint64)
    for i, (starts, _) in enumerate(groups):
        for node in starts:
            mask[i // 64, node] |= numpy.uint64(1 << i % 64)
    source = numpy.repeat(numpy.arange(n, dtype=numpy.int64), numpy.diff(first))
    # In topological order, a generation at a time: the nodes whose parents are all
    # done pass their masks on along their edges (one run of the arrays per node).
    waiting = numpy.bincount(target, minlength=n)
    ready = numpy.flatnonzero(waiting == 0)
    while ready.size:
        begin, size = first[ready], first[ready + 1] - first[ready]
        edges = numpy.repeat(begin - numpy.cumsum(size) + size, size) + numpy.arange(size.sum())
        into = target[edges]
        for word in mask:
            numpy.bitwise_or.at(word, into, word[source[edges]])
        reached, times = numpy.unique(into, return_counts=True)
        waiting[reached] -= times
        ready = reached[waiting[reached] == 0]
    # On or below a cycle: the nodes left waiting, settled by passing masks on until
    # none changes (their parents outside are done).
    left = [int(j) for j in numpy.flatnonzero(waiting)]
    if left:
        bits = {j: int.from_bytes(mask[:, j].astype("<u8").tobytes(), "little") for j in left}
        queue, queued = deque(left), set(left)
        while queue:
            current = queue.popleft()
            queued.discard(current)
            for j in target[first[current] : first[current + 1]].tolist():
                if bits[j] | bits[current] != bits[j]:
                    bits[j] |= bits[current]
                    if j not in queued:
                        queued.add(j)
                        queue.append(j)
        for j, value in bits.items():
            mask[:, j] = numpy.frombuffer(value.to_bytes(8 * words, "little"), dtype="<u8")
    # How many nodes have each bit.
    counts = numpy.zeros(words * 64, dtype=numpy.int64)
    for w, word in enumerate(mask):
        for at in range(0, n, _COUNT_ROWS):
            part = word[at : at + _COUNT_ROWS].astype("<u8").view(numpy.uint8).reshape(-1, 8)
            counts[w * 64 : w * 64 + 64] += numpy.unpackbits(part, axis=1, bitorder="little").sum(
                axis=0, dtype=numpy.int64
            )
    out = [int(c) for c in counts[: len(groups)]]
    for i, (starts, skip) in enumerate(groups):
        own = set(starts)
        has = mask[i // 64]
        out[i] -= len(own) + sum(1 for j in set(skip) - own if int(has[j]) >> i % 64 & 1)
    return out


class Below:
    """Nodes (URIs) numbered in URI order, and the edges between them as compressed
    sparse rows: what `rules.at_risk_of` needs of a graph (`in`, `downstream_counts`,
    `nearest`), the same answers `LineageGraph` gives."""

    def __init__(self, uris: Sequence[str], sources: Array, targets: Array) -> None:
        """`uris` in URI order, without repeats; edges as numbers into it, in any order,
        repeats allowed."""
        self._uris = list(uris)
        self._index = {uri: i for i, uri in enumerate(self._uris)}
        n = len(self._uris)
        pairs = numpy.sort(numpy.asarray(sources, dtype=numpy.int64) * n + targets)
        if len(pairs):
            pairs = pairs[numpy.r_[True, pairs[1:] != pairs[:-1]]]  # each edge once
        self._target = pairs % n if n else pairs
        self._first = numpy.searchsorted(pairs // n if n else pairs, numpy.arange(n + 1))

    @classmethod
    def from_edges(cls, uris: Iterable[str], edges: Iterable[tuple[str, str]]) -> Below:
        """From URIs and (source, target) pairs of them (pairs naming others left out)."""
        ordered = sorted(set(uris))
        index = {u: i for i, u in enumerate(ordered)}
        pairs = [(index[s], index[t]) for s, t in edges if s in index and t in index]
        sources = numpy.array([s for s, _ in pairs], dtype=numpy.int64)
        targets = numpy.array([t for _, t in pairs], dtype=numpy.int64)
        return cls(ordered, sources, targets)

    @classmethod
    def walk(cls, conn: Connection, uris: Iterable[str]) -> Below:
        """The live assets among `uris` and everything downstream of them (through
        catalog edges and from an embedding model to the indexes bound to it), walked
        in the catalog a level at a time."""
        frontier = set(ids_of_uris(conn, uris).values())
        seen = set(frontier)
        model = ASSET.alias("model")
        nodes = select(ASSET.c.id, ASSET.c.uri, ASSET.c.deleted)
        out = select(EDGE.c.source_id, EDGE.c.target_id)
        bound = (
            select(model.c.id, BINDING.c.asset_id)
            .join(model, model.c.name == BINDING.c.model)
            .where(model.c.kind == "embedding_model")
        )
        uri_of: dict[int, str] = {}
        edges: list[Any] = []
        while frontier:
            live = []
            for asset_id, uri, deleted in plain_rows(conn, nodes, ASSET.c.id, frontier):
                if not deleted:
                    uri_of[asset_id] = uri
                    live.append(asset_id)
            found: list[Any] = list(plain_rows(conn, out, EDGE.c.source_id, live))
            found += plain_rows(conn, bound, model.c.id, live)
            edges += found
            frontier = {r[1] for r in found} - seen
            seen |= frontier
        ids = numpy.array(sorted(uri_of, key=uri_of.__getitem__), dtype=numpy.int64)
        pairs = numpy.array(edges, dtype=numpy.int64).reshape(-1, 2)
        del edges
        # Asset ids to node numbers (URI order); edges into deleted assets left out.
        by_id = numpy.argsort(ids)
        sorted_ids = ids[by_id]
        at = numpy.searchsorted(sorted_ids, pairs)
        at[at >= len(ids)] = 0
        known = (sorted_ids[at] == pairs).all(axis=1) if len(ids) else numpy.zeros(len(pairs), bool)
        number = by_id[at[known]]
        return cls([uri_of[int(i)] for i in ids], number[:, 0], number[:, 1])

    def __contains__(self, uri: object) -> bool:
        return uri in self._index

    def downstream_counts(self, groups: list[tuple[Iterable[str], Collection[str]]]) -> list[int]:
        """For each `(uris, skip)`: how many nodes are downstream of `uris` (neither them
        nor `skip`); `LineageGraph.downstream_counts`."""
        index = self._index
        numbered = [
            ({index[u] for u in uris if u in index}, {index[u] for u in skip if u in index})
            for uris, skip in groups
        ]
        return count_reached(len(self._uris), self._first, self._target, numbered)

    def nearest(
        self, uris: Iterable[str], first: int, skip: Collection[str] = ()
    ) -> list[tuple[str, list[str]]]:
        """The `first` nodes downstream of `uris` (neither them nor `skip`), nearest
        first (then by URI), each with one shortest path: `LineageGraph.nearest` (a
        node's successors are walked in URI order, as there)."""
        names, index, offsets, target = self._uris, self._index, self._first, self._target
        level = sorted({index[u] for u in uris if u in index})
        parents: dict[int, int | None] = dict.fromkeys(level)
        nearest: list[tuple[str, list[str]]] = []
        while level and len(nearest) < first:
            found: list[int] = []
            for current in level:
                for other in target[offsets[current] : offsets[current + 1]].tolist():
                    if other not in parents:
                        parents[other] = current
                        found.append(other)
            kept = [names[j] for j in found if names[j] not in skip]
            for uri in sorted(kept)[: first - len(nearest)]:
                chain = [index[uri]]
                while (parent := parents[chain[-1]]) is not None:
                    chain.append(parent)
                nearest.append((uri, [names[j] for j in reversed(chain)]))
            level = found
        return nearest
