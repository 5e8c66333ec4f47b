"""The graph the page opens on: which nodes, laid out where, drawn how.

Pure functions over node indexes (a node's index is its URI's rank in the
report), shared by the context builder; the page's script redraws the same
picture when the reader expands it (`report.js` mirrors `label`, `meta`
and the classes).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from reports import layout

SEVERITY_CLASSES = ("", "s-info", "s-warning", "s-error")
#: Kinds and edge kinds the stylesheet has colours for; others share one style.
KNOWN_KINDS = (
    "table",
    "view",
    "materialized_view",
    "collection",
    "feature_set",
    "feature_service",
    "model",
    "embedding_model",
    "dataset",
    "job",
)
KNOWN_EDGE_KINDS = (
    "reads",
    "writes",
    "column_lineage",
    "view_dependency",
    "embedded_from",
    "embedded_by_model",
    "feature_source",
    "feature_input",
)
#: Nodes drawn when the page opens; the rest is a search or a click away.
MAX_VIEW = 250
LABEL_CHARS = 23


def label(text: str) -> str:
    """A name cut to fit a node: a path keeps its end (the file), anything else its start."""
    if len(text) <= LABEL_CHARS:
        return text
    if "/" in text:
        return "\u2026" + text[-(LABEL_CHARS - 1) :]
    return text[: LABEL_CHARS - 1] + "\u2026"


def kind_class(kind: str) -> str:
    return "k-" + kind if kind in KNOWN_KINDS else "k-other"


def edge_class(kind: str) -> str:
    return "e-" + kind if kind in KNOWN_EDGE_KINDS else "e-other"


def meta(kind: str, version: int, unresolved: bool) -> str:
    parts = [kind.replace("_", " ")]
    if unresolved:
        parts.append("unresolved")
    elif version:
        parts.append(f"v{version}")
    return " \u00b7 ".join(parts)


# -- the view the page opens on -------------------------------------------------------


def _walk(
    starts: Iterable[int],
    adjacency: Callable[[int], list[int]],
    depth: int,
    limit: int,
    seen: dict[int, int],
) -> None:
    """Breadth-first from `starts` over `adjacency`, adding to `seen` (node -> order)."""
    queue = deque((s, 0) for s in starts)
    while queue and len(seen) < limit:
        node, distance = queue.popleft()
        if distance >= depth:
            continue
        for other in adjacency(node):
            if other not in seen and len(seen) < limit:
                seen[other] = len(seen)
                queue.append((other, distance + 1))


def initial_view(
    count: int,
    succ: list[list[int]],
    pred: list[list[int]],
    seeds: list[int],
    paths: list[list[int]],
    focus: int | None,
    depth: int,
    limit: int = MAX_VIEW,
) -> list[int]:
    """The nodes drawn when the page opens, sorted."""
    seen: dict[int, int] = {}
    if focus is not None:
        seen[focus] = 0
        _walk([focus], pred.__getitem__, depth, limit, seen)
        _walk([focus], succ.__getitem__, depth, limit, seen)
        return sorted(seen)
    if not seeds:
        if count <= limit:
            return list(range(count))
        degree = sorted(range(count), key=lambda n: (-(len(succ[n]) + len(pred[n])), n))
        seeds = degree[:10]
    for node in seeds:
        if len(seen) < limit:
            seen.setdefault(node, len(seen))
    for path in paths:
        for node in path:
            if len(seen) < limit:
                seen.setdefault(node, len(seen))
    _walk(seeds, lambda n: sorted(set(succ[n]) | set(pred[n])), depth, limit, seen)
    return sorted(seen)


def draw(
    view: list[int],
    nodes: list[list[Any]],
    edges: list[list[int]],
    edge_kinds: list[str],
    kinds: list[str],
    neighbours: list[set[int]],
    risk_paths: list[list[int]],
) -> dict[str, Any]:
    """The SVG of the view, laid out here (the page redraws it the same way)."""
    shown = set(view)
    risky = {(p[i - 1], p[i]) for p in risk_paths for i in range(1, len(p))}
    inside = [(s, t, k) for s, t, k in edges if s in shown and t in shown]
    placed = layout.layered(view, [(s, t) for s, t, _ in inside])
    drawn_edges = []
    seen_pairs: set[tuple[int, int]] = set()
    for s, t, k in inside:
        if s == t or (s, t) in seen_pairs:
            continue  # one line per pair (the page shows every kind in the details)
        seen_pairs.add((s, t))
        drawn_edges.append(
            {
                "s": s,
                "t": t,
                "css": edge_class(edge_kinds[k]) + (" risk" if (s, t) in risky else ""),
                "d": layout.edge_path(placed.pos[s], placed.pos[t]),
            }
        )
    drawn_nodes = []
    for n in view:
        uri, name, kind, sev, risk, unresolved, version = nodes[n]
        x, y = placed.pos[n]
        classes = [kind_class(kinds[kind])]
        if sev:
            classes.append(SEVERITY_CLASSES[sev])
        if risk:
            classes.append("at-risk")
        if unresolved:
            classes.append("unresolved")
        drawn_nodes.append(
            {
                "i": n,
                "x": x,
                "y": y,
                "uri": uri,
                "label": label(name),
                "meta": meta(kinds[kind], version, bool(unresolved)),
                "css": " ".join(classes),
                "hidden": len(neighbours[n] - shown),
            }
        )
    return {
        "nodes": drawn_nodes,
        "edges": drawn_edges,
        "width": placed.width,
        "height": placed.height,
        "node_w": layout.NODE_W,
        "node_h": layout.NODE_H,
    }
