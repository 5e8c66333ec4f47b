"""A layered left-to-right layout of a lineage subgraph: pure, deterministic.

Nodes are integers (their index in the report's sorted node list) and the
layout depends only on the node set and the edges among them, so the same
view always gets the same picture. `report.js` carries a line-for-line port
of `layered()` for the parts of the graph a reader expands in the browser;
a browser test checks that both give the same positions.

The steps are the classic Sugiyama ones, kept cheap:

1. layers: longest path from the sources (Kahn's order; when only cycles
   are left, the node with the fewest unplaced inputs is placed and its
   remaining inputs become back edges), then each source is pulled right
   next to its nearest reader so that a raw table does not sit far away;
2. order within a layer: four sweeps of the barycentre heuristic;
3. coordinates: one column per layer, each column centred vertically.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

NODE_W = 200
NODE_H = 46
GAP_X = 64
GAP_Y = 16
MARGIN = 24
SWEEPS = 4


@dataclass
class Layout:
    """Positions (top-left corners) of the nodes, and the edges between them."""

    pos: dict[int, tuple[int, int]] = field(default_factory=dict)
    layer: dict[int, int] = field(default_factory=dict)
    edges: list[tuple[int, int]] = field(default_factory=list)
    width: int = 0
    height: int = 0


def _adjacency(
    nodes: list[int], edges: Iterable[tuple[int, int]]
) -> tuple[dict[int, list[int]], dict[int, list[int]], list[tuple[int, int]]]:
    inside = set(nodes)
    pairs = sorted({(s, t) for s, t in edges if s != t and s in inside and t in inside})
    succ: dict[int, list[int]] = {n: [] for n in nodes}
    pred: dict[int, list[int]] = {n: [] for n in nodes}
    for s, t in pairs:
        succ[s].append(t)
        pred[t].append(s)
    return succ, pred, pairs


def assign_layers(
    nodes: list[int], succ: dict[int, list[int]], pred: dict[int, list[int]]
) -> tuple[dict[int, int], list[int]]:
    """Layer of each node, and the order they were placed in (a topological order)."""
    indeg = {n: len(pred[n]) for n in nodes}
    ready = [n for n in nodes if indeg[n] == 0]
    heapq.heapify(ready)
    layer: dict[int, int] = {}
    order: list[int] = []
    remaining = set(nodes)
    while remaining:
        if not ready:  # only cycles left: break one at its weakest node
            best = min(remaining, key=lambda n: (indeg[n], n))
            heapq.heappush(ready, best)
        n = heapq.heappop(ready)
        if n not in remaining:
            continue
        remaining.discard(n)
        order.append(n)
        layer[n] = max((layer[p] + 1 for p in pred[n] if p in layer), default=0)
        for s in succ[n]:
            indeg[s] -= 1
            if indeg[s] == 0 and s in remaining:
                heapq.heappush(ready, s)
    for n in reversed(order):
        if not pred[n] and succ[n]:
            ahead = [layer[s] for s in succ[n] if layer[s] > layer[n]]
            if ahead:
                layer[n] = min(ahead) - 1
    dense = {v: i for i, v in enumerate(sorted(set(layer.values())))}
    return {n: dense[v] for n, v in layer.items()}, order


def _barycentre(neighbours: list[int], rank: dict[int, int]) -> float | None:
    placed = [rank[m] for m in neighbours if m in rank]
    if not placed:
        return None
    total = 0.0
    for r in placed:
        total += r
    return total / len(placed)


def order_layers(
    layer: dict[int, int], succ: dict[int, list[int]], pred: dict[int, list[int]]
) -> list[list[int]]:
    """Nodes of each layer, top to bottom, after barycentre sweeps."""
    count = max(layer.values(), default=-1) + 1
    columns: list[list[int]] = [[] for _ in range(count)]
    for n in sorted(layer):
        columns[layer[n]].append(n)
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        indices = range(1, count) if down else range(count - 2, -1, -1)
        for i in indices:
            rank = {n: r for c in columns for r, n in enumerate(c)}
            keyed = []
            for r, n in enumerate(columns[i]):
                near = [m for m in (pred[n] if down else succ[n]) if layer[m] != i]
                b = _barycentre(near, rank)
                keyed.append((b if b is not None else float(r), n))
            keyed.sort()
            columns[i] = [n for _, n in keyed]
    return columns


def layered(nodes: Iterable[int], edges: Iterable[tuple[int, int]]) -> Layout:
    """Lay out `nodes` left to right; only edges between them count."""
    ordered = sorted(set(nodes))
    succ, pred, pairs = _adjacency(ordered, edges)
    layer, _ = assign_layers(ordered, succ, pred)
    columns = order_layers(layer, succ, pred)
    tallest = max((len(c) for c in columns), default=0)
    height = tallest * (NODE_H + GAP_Y) - GAP_Y if tallest else 0
    out = Layout(layer=layer, edges=pairs)
    for i, column in enumerate(columns):
        top = MARGIN + (height - (len(column) * (NODE_H + GAP_Y) - GAP_Y)) // 2
        for r, n in enumerate(column):
            out.pos[n] = (MARGIN + i * (NODE_W + GAP_X), top + r * (NODE_H + GAP_Y))
    out.width = 2 * MARGIN + len(columns) * (NODE_W + GAP_X) - GAP_X if columns else 2 * MARGIN
    out.height = 2 * MARGIN + height
    return out


def edge_path(source: tuple[int, int], target: tuple[int, int]) -> str:
    """The SVG path of an edge from the right side of `source` to the left of `target`."""
    x1, y1 = source[0] + NODE_W, source[1] + NODE_H // 2
    x2, y2 = target[0], target[1] + NODE_H // 2
    if x2 > x1:
        bend = max(40, (x2 - x1) // 2)
        return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
    # A back edge (a cycle) or one within a column: loop out and come back in.
    drop = NODE_H if y2 >= y1 else -NODE_H
    return f"M{x1},{y1} C{x1 + 80},{y1 + drop} {x2 - 80},{y2 + drop} {x2},{y2}"
