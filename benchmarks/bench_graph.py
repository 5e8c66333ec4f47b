"""Lineage walks on a 100,000-asset, 300,000-edge catalog, SQLite and PostgreSQL.

Building the lineage graph, baseline measured in the same run: fetching the
same asset and edge rows without building anything. Depth-5 downstream walks
(p50/p95) by recursive SQL (`SqlGraph`) and on the loaded graph, baseline: one
bare indexed query per walk (the edges out of its start). The catalog is
written with a bare executemany or COPY (this benchmark is about the graph,
not about apply).

    python -m benchmarks graph [--nodes N] [--edges M] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from benchmarks.common import report, scratch_catalog, timed
from catalog.db import Store
from catalog.models import key_hash
from lineage.graph import ASSET, EDGE, LineageGraph
from lineage.sqlgraph import SqlGraph


def populate(store: Store, nodes: int, edges: int, seed: int = 0) -> None:
    """A layered DAG: 10 layers, each edge from a layer to a later one."""
    rng = random.Random(seed)
    now: Any = datetime.now(UTC).replace(tzinfo=None)
    if store.engine.dialect.name != "postgresql":
        # As the catalog stores it on SQLite: text, whatever adapter for datetimes another
        # library registered with the driver (Feast's SQLite store registers epoch seconds).
        now = now.isoformat(" ", "microseconds")
    layer = [i * 10 // nodes for i in range(nodes)]
    assets = [
        (
            i + 1,
            key_hash(f"bench://h:1/n{i}"),
            "bench://h:1",
            f"n{i}",
            f"bench://h:1/n{i}",
            "dataset",
            1,
            "0" * 64,
            False,
            False,
            "{}",
            now,
            now,
        )
        for i in range(nodes)
    ]
    by_layer: list[list[int]] = [[] for _ in range(10)]
    for i, lay in enumerate(layer):
        by_layer[lay].append(i)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < edges:
        target = rng.randrange(nodes // 10, nodes)
        source = rng.choice(by_layer[rng.randrange(0, layer[target])])
        pairs.add((source + 1, target + 1))
    rows = [(s, t, "reads", t, "{}", now) for s, t in sorted(pairs)]
    raw = store.engine.raw_connection()
    if store.engine.dialect.name == "postgresql":
        try:
            _copy(raw, assets, rows)
        finally:
            raw.close()
        return
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        cur.executemany(
            "INSERT INTO asset (id, key_hash, namespace, name, uri, kind, current_version,"
            " fingerprint, deleted, unresolved, observed, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            assets,
        )
        cur.executemany(
            "INSERT INTO edge (source_id, target_id, kind, origin_id, fields, created_at)"
            " VALUES (?,?,?,?,?,?)",
            rows,
        )
        cur.execute("COMMIT")
    finally:
        raw.close()


def _copy(raw: Any, assets: list[tuple[Any, ...]], edges: list[tuple[Any, ...]]) -> None:
    """The same rows into PostgreSQL, by COPY."""
    cur = raw.cursor()
    with cur.copy(
        "COPY asset (id, key_hash, namespace, name, uri, kind, current_version, fingerprint,"
        " deleted, unresolved, observed, created_at, updated_at) FROM STDIN"
    ) as copy:
        for row in assets:
            copy.write_row(row)
    with cur.copy(
        "COPY edge (source_id, target_id, kind, origin_id, fields, created_at) FROM STDIN"
    ) as copy:
        for row in edges:
            copy.write_row(row)
    cur.execute("SELECT setval('asset_id_seq', (SELECT max(id) FROM asset))")
    cur.execute("ANALYZE asset")
    cur.execute("ANALYZE edge")
    raw.commit()


def fetch_only(store: Store) -> int:
    with store.engine.connect() as conn:
        a = conn.execute(
            select(
                ASSET.c.id,
                ASSET.c.uri,
                ASSET.c.kind,
                ASSET.c.current_version,
                ASSET.c.deleted,
                ASSET.c.unresolved,
            )
        ).all()
        e = conn.execute(
            select(EDGE.c.source_id, EDGE.c.target_id, EDGE.c.kind, EDGE.c.fields)
        ).all()
    return len(a) + len(e)


def build(store: Store) -> LineageGraph:
    with store.engine.connect() as conn:
        return LineageGraph.from_connection(conn)


def percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[max(int(len(times) * 0.95) - 1, 0)]


def figure(label: str, times: list[float], baseline: tuple[float, float] | None) -> None:
    p50, p95 = percentiles(times)
    ratio = f"  ({p50 / baseline[0]:.1f}x / {p95 / baseline[1]:.1f}x baseline)" if baseline else ""
    print(f"{label:<52} p50 {p50 * 1000:8.2f} ms  p95 {p95 * 1000:8.2f} ms{ratio}", flush=True)


def measure(store: Store, nodes: int, edges: int, queries: int) -> None:
    """Depth-5 downstream walks: by recursive SQL, and on the graph loaded in memory;
    the baseline is one bare indexed query (the edges out of the start)."""
    baseline, _ = timed(lambda: fetch_only(store))
    built, graph = timed(lambda: build(store))
    assert len(graph) == nodes and graph.edge_count == edges
    report(f"baseline: fetch {nodes:,} assets + {edges:,} edges", baseline)
    report("build LineageGraph from the catalog", built, baseline)
    rng = random.Random(1)
    starts = [rng.randrange(nodes // 10) for _ in range(queries)]
    bare, in_sql, in_memory, sizes = [], [], [], []
    with store.engine.connect() as conn:
        sql = SqlGraph(conn)
        for i in starts:
            uri = f"bench://h:1/n{i}"
            t0 = time.perf_counter()
            conn.execute(
                text("SELECT target_id FROM edge WHERE source_id = :i"), {"i": i + 1}
            ).all()
            t1 = time.perf_counter()
            walk = sql.downstream(uri, depth=5)
            t2 = time.perf_counter()
            loaded = graph.downstream(uri, depth=5)
            t3 = time.perf_counter()
            assert walk.to_json(True) == loaded.to_json(True)
            bare.append(t1 - t0)
            in_sql.append(t2 - t1)
            in_memory.append(t3 - t2)
            sizes.append(len(walk.nodes))
    base = percentiles(bare)
    print(
        f"downstream depth 5, {queries} walks from layer-0 nodes, "
        f"median {statistics.median(sizes):,.0f} nodes reached (same answers both ways)",
        flush=True,
    )
    figure("baseline: one bare SQL query (edges out of the start)", bare, None)
    figure("walk by recursive SQL (SqlGraph)", in_sql, base)
    figure("walk on the loaded graph (LineageGraph)", in_memory, base)
    once = [built + t for t in in_memory]
    figure("load the graph, then walk (what one CLI call did)", once, base)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks graph")
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="both",
        help="The catalog's database.",
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with (
            tempfile.TemporaryDirectory() as tmp,
            scratch_catalog(backend, Path(tmp), "graph") as store,
        ):
            populate(store, args.nodes, args.edges)
            print(f"{backend}: {args.nodes:,} assets, {args.edges:,} edges", flush=True)
            measure(store, args.nodes, args.edges, args.queries)
