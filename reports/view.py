"""The graph the page opens on: which nodes, and the classes they are drawn with.

Pure functions over node indexes (a node's index is its URI's rank in the
report). The page's script lays the view out and draws it (with dagre, the
one layout implementation), and redraws it when the reader expands it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

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
    "trained_on",
)
#: Nodes drawn when the page opens, few enough to read once fitted; the rest is a
#: search or a click away.
MAX_VIEW = 100
#: Without findings, a large catalog opens on its most connected assets.
HUBS = 3


def kind_class(kind: str) -> str:
    return "k-" + kind if kind in KNOWN_KINDS else "k-other"


def edge_class(kind: str) -> str:
    return "e-" + kind if kind in KNOWN_EDGE_KINDS else "e-other"


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
        # Each way on its own: a node upstream may also be downstream (a cycle), and
        # the walk downstream must still go on through it.
        seen[focus] = 0
        _walk([focus], pred.__getitem__, depth, limit, seen)
        below = {focus: 0}
        _walk([focus], succ.__getitem__, depth, limit, below)
        for node in below:
            if len(seen) < limit:
                seen.setdefault(node, len(seen))
        return sorted(seen)
    if not seeds:
        if count <= limit:
            return list(range(count))
        degree = sorted(range(count), key=lambda n: (-(len(succ[n]) + len(pred[n])), n))
        seeds = degree[:HUBS]
    for node in seeds:
        if len(seen) < limit:
            seen.setdefault(node, len(seen))
    for path in paths:
        for node in path:
            if len(seen) < limit:
                seen.setdefault(node, len(seen))
    _walk(seeds, lambda n: sorted(set(succ[n]) | set(pred[n])), depth, limit, seen)
    return sorted(seen)
