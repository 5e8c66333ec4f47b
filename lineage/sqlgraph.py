"""Lineage walks answered in the database, without loading the graph.

`SqlGraph` answers what `LineageGraph` answers (upstream, downstream, path)
with recursive SQL on PostgreSQL and SQLite, reading only the part of the
catalog a walk reaches. The answers are the in-memory graph's, the same
nodes, distances, edges and `partial` flags (a property test holds the two
together over generated graphs).

A walk with a depth limit runs one `WITH RECURSIVE` over (node, hop) rows:
`UNION` drops a row seen before and the depth ends cycles. A node may come
back at several hops (cycles, or two paths of different lengths), so the
rows are capped (`WORK` per node of the limit); a walk that reaches the cap,
or has no depth limit, runs instead over nodes alone (`UNION` on the node id
visits each node once, whatever the cycles) and stops after `limit + 1`
nodes; the hops of those nodes are then counted from the edges between
them. Both queries rely on reading a recursion's rows in the order it makes
them, hop after hop, as both engines do. `path` asks whether the target is
reached at all (nodes alone), then the hops to it, doubling the depth.

The node limit keeps whole hops: an answer holds every node of its first
hops and none of the hop that would pass the limit (and says so).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.exc import OperationalError

from catalog.errors import NotFound
from catalog.models import Asset, key_hash
from lineage.graph import EdgeInfo, Node, Walk

ASSET = Asset.__table__  # type: ignore[attr-defined]

#: Nodes an upstream or downstream answer holds at most, unless told.
DEFAULT_LIMIT = 10_000
#: Recursion rows allowed per node of the limit before the walk goes node by node.
WORK = 1
#: ... and when there is no limit.
WORK_UNLIMITED = 20_000

#: The edges a walk follows: catalog edges, and model -> index edges of the bindings.
_BOUND = (
    "SELECT DISTINCT m.id AS source_id, b.asset_id AS target_id"
    " FROM model_binding b JOIN asset m ON m.name = b.model AND m.kind = 'embedding_model'"
)
_DIRECTED = {
    "downstream": (
        "SELECT source_id AS near, target_id AS far FROM edge",
        f"SELECT source_id AS near, target_id AS far FROM ({_BOUND}) bound",
    ),
    "upstream": (
        "SELECT target_id AS near, source_id AS far FROM edge",
        f"SELECT target_id AS near, source_id AS far FROM ({_BOUND}) bound",
    ),
}
#: Marquez's lineage graph: lineage edges either way, not the field-level ones.
EITHER_WAY = (
    "SELECT source_id AS near, target_id AS far FROM edge WHERE kind <> 'column_lineage'",
    "SELECT target_id AS near, source_id AS far FROM edge WHERE kind <> 'column_lineage'",
)
_LIVE = "JOIN asset a ON a.id = l.far AND NOT a.deleted"


@dataclass(frozen=True)
class Links:
    """Which edges a walk follows (each arm a `near, far` select), and whether it
    skips deleted assets."""

    arms: tuple[str, ...]
    live_only: bool

    @property
    def far_filter(self) -> str:
        return _LIVE if self.live_only else ""

    def steps(self, conn: Connection, row: str, table: str, where: str = "") -> str:
        """The recursive term(s) from `table`, each arm read through its index:
        SQLite takes one recursive term per arm, PostgreSQL one over all arms, each
        arm joined laterally (a plain join over the arms may scan every edge)."""
        if conn.dialect.name == "sqlite":
            return " UNION ".join(
                f"SELECT {row} FROM {table} w JOIN ({arm}) l ON l.near = w.id"
                f" {self.far_filter} {where}"
                for arm in self.arms
            )
        lateral = " UNION ALL ".join(
            f"SELECT x.near, x.far FROM ({arm}) x WHERE x.near = w.id" for arm in self.arms
        )
        return (
            f"SELECT {row} FROM {table} w CROSS JOIN LATERAL ({lateral}) l"
            f" {self.far_filter} {where}"
        )


def _ball_sql(conn: Connection, links: Links) -> str:
    """Every node within `:depth` hops of `:start`, with its hop: at most `:work` rows."""
    steps = links.steps(conn, "l.far, w.hop + 1", "walk", "WHERE w.hop < :depth")
    return f"""
WITH RECURSIVE walk(id, hop) AS (
    SELECT CAST(:start AS INTEGER), 0
    UNION {steps}
), capped AS (SELECT id, hop FROM walk LIMIT :work)
SELECT c.id, MIN(c.hop) AS hop, COUNT(*) AS n
FROM capped c GROUP BY c.id
"""


def _reach_sql(conn: Connection, links: Links, where: str = "", limit: str = "") -> str:
    """The nodes reached from `:start` (itself first), each once, hop after hop."""
    steps = links.steps(conn, "l.far", "reach")
    return f"""
WITH RECURSIVE reach(id) AS (
    SELECT CAST(:start AS INTEGER)
    UNION {steps}
)
SELECT id FROM reach {where} {limit}
"""


@dataclass(frozen=True)
class Neighbourhood:
    """The live assets within some hops of one, either way (ids), and whether the node
    limit cut a direction short (`cut`: its reason, else None)."""

    start: int
    uri: str
    ids: list[int]
    cut: str | None


@dataclass
class Ball:
    """The nodes a walk reached (id -> hop) and whether the node limit cut it."""

    hops: dict[int, int]
    cut: bool


class SqlGraph:
    """What feeds what, asked of the catalog's tables one walk at a time."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- names ------------------------------------------------------------------

    def canonical(self, uri: str) -> str:
        """The URI an alias stands for (aliases of deleted assets stand for nothing)."""
        row = self.conn.execute(
            text(
                "SELECT a.uri FROM alias x JOIN asset a ON a.id = x.asset_id"
                " WHERE x.key_hash = :key AND NOT a.deleted"
            ),
            {"key": key_hash(uri)},
        ).first()
        return str(row[0]) if row else uri

    def live_ids(self, uris: Collection[str]) -> list[int]:
        """The ids of the live assets of these URIs (others are left out)."""
        found: list[int] = []
        hashes = sorted({key_hash(u) for u in uris})
        for i in range(0, len(hashes), 500):
            found += [
                int(row[0])
                for row in self.conn.execute(
                    select(ASSET.c.id).where(
                        ASSET.c.key_hash.in_(hashes[i : i + 500]), ASSET.c.deleted.is_(False)
                    )
                )
            ]
        return sorted(found)

    def _live_id(self, uri: str) -> tuple[int, str]:
        uri = self.canonical(uri)
        row = self.conn.execute(
            text("SELECT id FROM asset WHERE key_hash = :key AND NOT deleted"),
            {"key": key_hash(uri)},
        ).first()
        if row is None:
            raise NotFound(f"no live asset {uri!r} in the lineage graph")
        return int(row[0]), uri

    # -- walks ------------------------------------------------------------------

    def upstream(
        self,
        uri: str,
        depth: int | None = None,
        budget: float | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Walk:
        """Everything that feeds `uri`, nearest first."""
        return self._walk(uri, "upstream", depth, budget, limit)

    def downstream(
        self,
        uri: str,
        depth: int | None = None,
        budget: float | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Walk:
        """Everything `uri` feeds, nearest first."""
        return self._walk(uri, "downstream", depth, budget, limit)

    def _walk(
        self, uri: str, direction: str, depth: int | None, budget: float | None, limit: int
    ) -> Walk:
        start, start_uri = self._live_id(uri)
        walk = Walk(start_uri, direction)
        links = Links(_DIRECTED[direction], live_only=True)
        try:
            with self._budget(budget):
                ball = hops_within(self.conn, links, start, depth, limit)
                near = [i for i, h in ball.hops.items() if depth is None or h < depth]
                edges = self._edges(direction, near)
                kept = set(ball.hops)
                if ball.cut:
                    walk.partial, walk.reason = True, f"node limit {limit} reached"
                elif depth is not None:
                    last = [i for i, h in ball.hops.items() if h == depth]
                    if has_links(self.conn, links, last):
                        walk.partial, walk.reason = True, f"depth limit {depth} reached"
                nodes = self._nodes(sorted(kept - {start}))
        except _OutOfTime:
            return Walk(
                start_uri, direction, partial=True, reason=f"time budget of {budget} s reached"
            )
        uris = {start: start_uri, **{i: n.uri for i, n in nodes.items()}}
        walk.nodes = sorted(
            ((nodes[i], ball.hops[i]) for i in nodes), key=lambda item: (item[1], item[0].uri)
        )
        walk.edges = sorted(
            (
                EdgeInfo(uris[s], uris[t], kind, fields, how)
                for (s, t, kind), (fields, how) in edges.items()
                if s in uris and t in uris
            ),
            key=lambda e: (e.source, e.target, e.kind),
        )
        return walk

    def neighbourhood(self, uri: str, depth: int, limit: int = DEFAULT_LIMIT) -> Neighbourhood:
        """The live assets within `depth` hops of `uri` upstream and downstream (itself
        included): the nodes of `upstream` and `downstream` with that depth and limit,
        by id, without reading anything else about them."""
        start, start_uri = self._live_id(uri)
        ids, cut = {start}, []
        for direction in ("upstream", "downstream"):
            links = Links(_DIRECTED[direction], live_only=True)
            ball = hops_within(self.conn, links, start, depth, limit)
            ids.update(ball.hops)
            if ball.cut:
                cut.append(f"{direction}: node limit {limit} reached")
        return Neighbourhood(start, start_uri, sorted(ids), "; ".join(cut) or None)

    def path(self, source: str, target: str) -> list[str] | None:
        """The shortest path of edges from `source` to `target`, or None.

        Of several shortest paths, the one whose URIs come first in order."""
        s, s_uri = self._live_id(source)
        t, _ = self._live_id(target)
        if s == t:
            return [s_uri]
        down = Links(_DIRECTED["downstream"], live_only=True)
        up = Links(_DIRECTED["upstream"], live_only=True)
        if not reaches(self.conn, down, s, t):
            return None
        # Hops to the target, for every node up to the source's.
        depth = 1
        while s not in (to_target := hops_within(self.conn, up, t, depth, None).hops):
            depth *= 2
        found, current = [s_uri], s
        while current != t:
            step = to_target[current] - 1
            nearer = [
                v for _, _, v in link_rows(self.conn, down, [current]) if to_target.get(v) == step
            ]
            node = min(self._nodes(sorted(set(nearer))).items(), key=lambda item: item[1].uri)
            current = node[0]
            found.append(node[1].uri)
        return found

    # -- reading ----------------------------------------------------------------

    def _nodes(self, ids: list[int]) -> dict[int, Node]:
        out: dict[int, Node] = {}
        for part in _chunks(ids):
            rows = self.conn.execute(
                text(
                    "SELECT id, uri, kind, current_version, deleted, unresolved FROM asset"
                    f" WHERE id {_among(self.conn)}"
                ),
                {"ids": _param(self.conn, part)},
            )
            for i, uri, kind, version, deleted, unresolved in rows:
                out[i] = Node(uri, kind, version, bool(deleted), bool(unresolved))
        return out

    def _edges(
        self, direction: str, near: list[int]
    ) -> dict[tuple[int, int, str], tuple[dict[str, list[str]], dict[str, Any]]]:
        """The edges out of (downstream) or into (upstream) `near`, merged as the graph
        merges them: one per source, target and kind."""
        column = "source_id" if direction == "downstream" else "target_id"
        other = "target_id" if direction == "downstream" else "source_id"
        merged: dict[tuple[int, int, str], tuple[dict[str, list[str]], dict[str, Any]]] = {}
        rows: list[Any] = []
        for part in _chunks(near):
            rows += self.conn.execute(
                text(
                    "SELECT e.id, e.source_id, e.target_id, e.kind,"
                    " CAST(e.fields AS TEXT), CAST(e.transformations AS TEXT)"
                    f" FROM edge e JOIN asset a ON a.id = e.{other} AND NOT a.deleted"
                    f" WHERE e.{column} {_among(self.conn)}"
                ),
                {"ids": _param(self.conn, part)},
            ).all()
        rows.sort(key=lambda r: r[0])
        for _, s, t, kind, fields, kinds in rows:
            parsed = json.loads(fields) if fields and fields not in ("{}", "null") else {}
            if (s, t, kind) in merged:
                merged[s, t, kind][0].update(parsed)
            else:
                merged[s, t, kind] = (parsed, {})
            if kinds and kinds not in ("{}", "null"):
                merged[s, t, kind][1].update(json.loads(kinds))
        for part in _chunks(near):
            bound = self.conn.execute(
                text(
                    f"SELECT b.source_id, b.target_id FROM ({_BOUND}) b"
                    f" JOIN asset a ON a.id = b.{other} AND NOT a.deleted"
                    f" WHERE b.{column} {_among(self.conn)}"
                ),
                {"ids": _param(self.conn, part)},
            )
            for s, t in bound:
                how = (
                    merged[s, t, "embedded_by_model"][1]
                    if (s, t, "embedded_by_model") in merged
                    else {}
                )
                merged[s, t, "embedded_by_model"] = ({}, how)
        return merged

    @contextmanager
    def _budget(self, budget: float | None) -> Iterator[None]:
        """Stop the walk's statements once `budget` seconds have passed (PostgreSQL's
        statement timeout, SQLite's progress handler); `_OutOfTime` if they did."""
        if not budget:
            yield
            return
        deadline = time.monotonic() + budget
        conn = self.conn
        if conn.dialect.name == "postgresql":
            before = conn.exec_driver_sql("SHOW statement_timeout").scalar()
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(budget * 1000))}")
            try:
                yield
            except OperationalError as err:
                if "statement timeout" not in str(err):
                    raise
                conn.rollback()
                raise _OutOfTime from err
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{before}'")
        else:
            raw: Any = conn.connection.driver_connection
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                yield
            except OperationalError as err:
                if "interrupted" not in str(err):
                    raise
                raise _OutOfTime from err
            finally:
                raw.set_progress_handler(None, 0)
        if time.monotonic() > deadline:
            raise _OutOfTime


class _OutOfTime(Exception):
    pass


def hops_within(
    conn: Connection, links: Links, start: int, depth: int | None, limit: int | None
) -> Ball:
    """The nodes within `depth` hops of `start` (all if None) and their hops, whole hops
    only up to `limit` nodes besides the start (no limit if None)."""
    return _whole_hops(_reached(conn, links, start, depth, limit), start, limit)


def nearest(
    conn: Connection, links: Links, start: int, depth: int, count: int
) -> tuple[dict[int, int], bool]:
    """The `count` nodes nearest `start` within `depth` hops (itself first), by hop
    and then id (within the last hop, by id among those the walk reached first);
    whether more were within reach."""
    hops = _reached(conn, links, start, depth, max(count - 1, 0))
    kept = sorted(hops.items(), key=lambda item: (item[1], item[0]))[:count]
    return dict(kept), len(hops) > count


def _reached(
    conn: Connection, links: Links, start: int, depth: int | None, limit: int | None
) -> dict[int, int]:
    """Every node within `depth` hops and its hop; or, where the hops would take too
    many rows, the first `limit + 1` nodes reached besides the start (all the nodes
    of the hops before the last of them)."""
    hops: dict[int, int] | None = None
    if depth is not None:
        work = WORK * (limit + 2) if limit is not None else WORK_UNLIMITED
        rows = conn.execute(
            text(_ball_sql(conn, links)), {"start": start, "depth": depth, "work": work}
        ).all()
        if sum(r.n for r in rows) < work:
            hops = {int(r.id): int(r.hop) for r in rows}
    if hops is None:
        hops = _hops_by_node(conn, links, start, limit)
        if depth is not None:
            hops = {i: h for i, h in hops.items() if h <= depth}
    return hops


def _hops_by_node(conn: Connection, links: Links, start: int, limit: int | None) -> dict[int, int]:
    """The first `limit + 1` nodes reached besides the start, each with its hop,
    counted from the edges between them."""
    sql = _reach_sql(conn, links, limit="" if limit is None else "LIMIT :count")
    params = {"start": start, "count": (limit or 0) + 2}
    found = [int(r[0]) for r in conn.execute(text(sql), params)]
    inside = set(found)
    succ: dict[int, list[int]] = defaultdict(list)
    for _, near, far in link_rows(conn, links, found):
        if far in inside:
            succ[near].append(far)
    hops = {start: 0}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for other in succ[current]:
            if other not in hops:
                hops[other] = hops[current] + 1
                queue.append(other)
    return hops


def _whole_hops(hops: dict[int, int], start: int, limit: int | None) -> Ball:
    if limit is None or len(hops) - 1 <= limit:
        return Ball(hops, False)
    per_hop: dict[int, int] = defaultdict(int)
    for i, h in hops.items():
        if i != start:
            per_hop[h] += 1
    total, last = 0, 0
    for h in sorted(per_hop):
        if total + per_hop[h] > limit:
            break
        total, last = total + per_hop[h], h
    return Ball({i: h for i, h in hops.items() if h <= last}, True)


def reaches(conn: Connection, links: Links, start: int, target: int) -> bool:
    """Whether `target` is reached from `start` (the walk stops once it is)."""
    sql = _reach_sql(conn, links, where="WHERE id = :target", limit="LIMIT 1")
    return conn.execute(text(sql), {"start": start, "target": target}).first() is not None


def has_links(conn: Connection, links: Links, ids: list[int]) -> bool:
    """Whether any of `ids` has an edge to follow."""
    for arm in links.arms:
        for part in _chunks(ids):
            row = conn.execute(
                text(
                    f"SELECT 1 FROM ({arm}) l {links.far_filter}"
                    f" WHERE l.near {_among(conn)} LIMIT 1"
                ),
                {"ids": _param(conn, part)},
            ).first()
            if row is not None:
                return True
    return False


def link_rows(conn: Connection, links: Links, ids: list[int]) -> Iterator[tuple[int, int, int]]:
    """(arm, near, far) of the links out of `ids`."""
    for n, arm in enumerate(links.arms):
        for part in _chunks(ids):
            rows = conn.execute(
                text(
                    f"SELECT l.near, l.far FROM ({arm}) l {links.far_filter}"
                    f" WHERE l.near {_among(conn)}"
                ),
                {"ids": _param(conn, part)},
            )
            for near, far in rows:
                yield n, int(near), int(far)


def _among(conn: Connection) -> str:
    """`IN` a list of ids passed as one parameter (no statement per list length)."""
    if conn.dialect.name == "postgresql":
        return "= ANY(:ids)"
    return "IN (SELECT value FROM json_each(:ids))"


def _param(conn: Connection, ids: list[int]) -> Any:
    return ids if conn.dialect.name == "postgresql" else json.dumps(ids)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    """All the ids at once, or nothing for none."""
    if ids:
        yield ids
