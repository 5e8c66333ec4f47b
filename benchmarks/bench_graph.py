"""Build the lineage graph of a 100,000-asset, 300,000-edge catalog and query it.

Baseline, measured in the same run: fetching the same asset and edge rows
from the catalog without building anything. The catalog is written with a
bare executemany (this benchmark is about the graph, not about apply).

    python -m benchmarks graph [--nodes N] [--edges M]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from benchmarks.common import report, timed
from catalog.db import Store
from catalog.models import key_hash
from lineage.graph import ASSET, EDGE, LineageGraph


def populate(store: Store, nodes: int, edges: int, seed: int = 0) -> None:
    """A layered DAG: 10 layers, each edge from a layer to a later one."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None)
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


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks graph")
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'graph.db'}")
        populate(store, args.nodes, args.edges)
        baseline, _ = timed(lambda: fetch_only(store))
        built, graph = timed(lambda: build(store))
        store.dispose()
    assert len(graph) == args.nodes and graph.edge_count == args.edges
    report(f"baseline: fetch {args.nodes:,} assets + {args.edges:,} edges", baseline)
    report("build LineageGraph from the catalog", built, baseline)
    rng = random.Random(1)
    starts = [f"bench://h:1/n{rng.randrange(args.nodes // 10)}" for _ in range(args.queries)]
    times, sizes = [], []
    for uri in starts:
        t0 = time.perf_counter()
        walk = graph.downstream(uri, depth=5)
        times.append(time.perf_counter() - t0)
        sizes.append(len(walk.nodes))
    times.sort()
    p50, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
    print(
        f"downstream depth 5 ({args.queries} queries from layer-0 nodes): "
        f"median {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms, "
        f"median {statistics.median(sizes):,.0f} nodes reached",
        flush=True,
    )
