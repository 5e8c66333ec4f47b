"""The read APIs on a generated catalog of 100,000 assets, on SQLite and PostgreSQL.

Each query is asked through the app (FastAPI in process, over its ASGI
interface: routing, parsing, shaping, JSON) and, as the baseline, as the
same `catalog.reads` calls issued directly against the catalog (no HTTP, no
shaping). Figures are p50/p95 over `--queries` requests each, after `GET /health`:
what any request costs (client, routing, middleware), part of every API figure:

- list: a page of 100 datasets of a namespace (`/api/v1/namespaces/NS/datasets`)
- search: Marquez's `/api/v1/search?q=...` and steward's `/api/steward/v1/assets?q=...`
- dataset + versions: `/namespaces/NS/datasets/NAME` and `.../versions`
- lineage depth 5: `/api/v1/lineage?nodeId=dataset:NS:NAME&depth=5` (baseline: the
  walk's edge reads and the reads that describe its nodes)

    python -m benchmarks api [--assets N] [--queries Q] [--backend sqlite|postgresql|both]

The catalog: 80% datasets (1 to 3 versions of 3 fields each) in 10
namespaces and 20% jobs, each with one completed run reading two datasets
of one layer and writing one of the next (10 layers).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import insert

from benchmarks.common import scratch_catalog
from catalog import reads
from catalog.db import Store
from catalog.identity import asset_uri, job_uri
from catalog.models import key_hash
from catalog.queries import count_assets, list_assets
from lineage.server import create_app

NAMESPACES = 10
LAYERS = 10
FIELDS = 3
PAGE = 100


def _namespace(i: int) -> str:
    return f"postgres://bench{i % NAMESPACES}:5432"


def populate(store: Store, assets: int, seed: int = 0) -> list[tuple[str, str]]:
    """Write the catalog with plain multi-row inserts; the datasets' keys."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    datasets = assets * 4 // 5
    jobs = assets - datasets
    asset_rows: list[dict[str, Any]] = []
    version_rows: list[dict[str, Any]] = []
    field_rows: list[dict[str, Any]] = []
    keys = []
    version_id = 0
    for i in range(datasets):
        namespace, name = _namespace(i), f"shop.public.table_{i}"
        keys.append((namespace, name))
        count = 1 + i % 3
        uri = asset_uri(namespace, name)
        asset_rows.append(_asset(i + 1, namespace, name, uri, "table", count, now))
        for v in range(1, count + 1):
            version_id += 1
            version_rows.append(
                {
                    "id": version_id,
                    "asset_id": i + 1,
                    "version": v,
                    "fingerprint": f"{i:032x}{v:032x}",
                    "definition": {"kind": "table", "fields": []},
                    "diff": {"added": [], "removed": [], "changed": []} if v > 1 else {},
                    "breaking": False,
                    "restored": False,
                    "origin": "bench",
                    "created_at": now,
                }
            )
            field_rows += [
                {
                    "version_id": version_id,
                    "asset_id": i + 1,
                    "position": p,
                    "name": f"col_{p}" if p < v + 1 else f"extra_{p}",
                    "type": "integer",
                    "nullable": True,
                    "attributes": {},
                }
                for p in range(FIELDS)
            ]
    layer_of = [rng.randrange(LAYERS) for _ in range(datasets)]
    by_layer: list[list[int]] = [[] for _ in range(LAYERS)]
    for i, layer in enumerate(layer_of):
        by_layer[layer].append(i + 1)
    edge_rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    io_rows: list[dict[str, Any]] = []
    for j in range(jobs):
        job_id = datasets + j + 1
        namespace, name = f"bench-jobs-{j % NAMESPACES}", f"etl.job_{j}"
        asset_rows.append(_asset(job_id, namespace, name, job_uri(namespace, name), "job", 1, now))
        version_id += 1
        version_rows.append(
            {
                "id": version_id,
                "asset_id": job_id,
                "version": 1,
                "fingerprint": f"{job_id:064x}",
                "definition": {"kind": "job", "fields": []},
                "diff": {},
                "breaking": False,
                "restored": False,
                "origin": "bench",
                "created_at": now,
            }
        )
        layer = rng.randrange(LAYERS - 1)
        inputs = rng.sample(by_layer[layer], 2)
        output = rng.choice(by_layer[layer + 1])
        edge_rows += [_edge(s, job_id, "reads", job_id, now) for s in inputs]
        edge_rows.append(_edge(job_id, output, "writes", job_id, now))
        run_rows.append(
            {
                "id": j + 1,
                "run_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "job_id": job_id,
                "state": "COMPLETE",
                "state_time": now,
                "started_at": now,
                "ended_at": now,
                "facets": {},
                "created_at": now,
                "updated_at": now,
            }
        )
        for direction, dataset in [*(("input", s) for s in inputs), ("output", output)]:
            io_rows.append(
                {
                    "run_id": j + 1,
                    "asset_id": dataset,
                    "version_id": None,
                    "direction": direction,
                    "facets": {},
                }
            )
    with store.write(checked=False) as conn:
        for table, rows in (
            (reads.ASSET, asset_rows),
            (reads.VERSION, version_rows),
            (reads.FIELD, field_rows),
            (reads.EDGE, edge_rows),
            (reads.RUN, run_rows),
            (reads.RUN_DATASET, io_rows),
        ):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:  # statistics kept: ANALYZE in a committed transaction
            conn.exec_driver_sql("ANALYZE")
    return keys


def _asset(
    i: int, namespace: str, name: str, uri: str, kind: str, version: int, now: datetime
) -> dict[str, Any]:
    return {
        "id": i,
        "key_hash": key_hash(uri),
        "namespace": namespace,
        "name": name,
        "uri": uri,
        "kind": kind,
        "current_version": version,
        "fingerprint": f"{i:064x}",
        "deleted": False,
        "unresolved": False,
        "origin": "bench",
        "observed": {},
        "created_at": now,
        "updated_at": now,
    }


def _edge(source: int, target: int, kind: str, origin: int, now: datetime) -> dict[str, Any]:
    return {
        "source_id": source,
        "target_id": target,
        "kind": kind,
        "origin_id": origin,
        "fields": {},
        "created_at": now,
    }


def _times(fn: Callable[[int], object], queries: int) -> list[float]:
    fn(0)  # warm: statement caches, first connection
    out = []
    for i in range(queries):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def _line(label: str, api: list[float], base: list[float] | None) -> None:
    def p(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    figures = f"  {label:<34} api p50 {p(api, 0.5):7.1f} ms  p95 {p(api, 0.95):7.1f} ms"
    if base is not None:
        figures += (
            f"   baseline p50 {p(base, 0.5):6.1f} ms  p95 {p(base, 0.95):6.1f} ms"
            f"   ({statistics.median(api) / max(statistics.median(base), 1e-9):.1f}x)"
        )
    print(figures, flush=True)


def measure(store: Store, keys: list[tuple[str, str]], queries: int, seed: int = 1) -> None:
    # A local Host: without a token the server answers only names of this machine.
    # Opened once, as a server runs: one event loop for every request (a client used
    # without `with` starts a thread and a loop for each request, and that was timed).
    with TestClient(create_app(store), base_url="http://127.0.0.1") as client:
        _measure(store, keys, queries, client, seed)


def _measure(
    store: Store, keys: list[tuple[str, str]], queries: int, client: TestClient, seed: int
) -> None:
    rng = random.Random(seed)
    picks = [rng.randrange(len(keys)) for _ in range(queries + 1)]
    words = [f"table_{rng.randrange(len(keys))}" for _ in range(queries + 1)]
    per_namespace = len(keys) // NAMESPACES
    offsets = [rng.randrange(max(per_namespace - PAGE, 1)) for _ in range(queries + 1)]

    def get(path: str, **params: Any) -> Any:
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text[:300]
        return response.json()

    def seg(text: str) -> str:
        return quote(text, safe="")

    # What every request costs whatever it asks (client, routing, middleware):
    # part of each figure below, not of its baseline.
    _line("GET /health (fixed cost)", _times(lambda i: get("/health"), queries), None)

    # list: a page of datasets of one namespace
    def api_list(i: int) -> None:
        ns = _namespace(picks[i])
        get(f"/api/v1/namespaces/{seg(ns)}/datasets", limit=PAGE, offset=offsets[i])

    def base_list(i: int) -> None:
        with store.engine.connect() as conn:
            rows, _ = reads.assets_page(
                conn, jobs=False, namespace=_namespace(picks[i]), limit=PAGE, offset=offsets[i]
            )
            reads.current_fields(conn, [r.id for r in rows])
            reads.last_modified(conn, [r.id for r in rows])

    _line("list 100 datasets (Marquez)", _times(api_list, queries), _times(base_list, queries))

    def api_search(i: int) -> None:
        get("/api/v1/search", q=words[i], limit=10)

    def search_reads(conn: Any, i: int) -> None:
        reads.search(
            conn,
            f"%{words[i]}%",
            jobs=None,
            namespace=None,
            before=None,
            after=None,
            by_updated=False,
            limit=10,
        )

    def base_search(i: int) -> None:
        with store.engine.connect() as conn:
            search_reads(conn, i)

    _line("search (Marquez)", _times(api_search, queries), _times(base_search, queries))

    def scan_search(i: int) -> None:
        with store.engine.connect() as conn, _without_search_index(conn):
            search_reads(conn, i)

    _line(
        "  the same reads, index / scan",
        _times(base_search, queries),
        _times(scan_search, queries),
    )

    def api_assets(i: int) -> None:
        get("/api/steward/v1/assets", q=words[i], limit=PAGE)

    def base_assets(i: int) -> None:
        with store.session() as session:
            list_assets(session, query=words[i], limit=PAGE)
            count_assets(session, query=words[i])

    _line("search assets (steward)", _times(api_assets, queries), _times(base_assets, queries))

    def api_dataset(i: int) -> None:
        ns, name = keys[picks[i]]
        get(f"/api/v1/namespaces/{seg(ns)}/datasets/{seg(name)}")
        get(f"/api/v1/namespaces/{seg(ns)}/datasets/{seg(name)}/versions")

    def base_dataset(i: int) -> None:
        ns, name = keys[picks[i]]
        with store.engine.connect() as conn:
            row = reads.asset_by_key(conn, ns, name, job=False)
            assert row is not None
            reads.current_fields(conn, [row.id])
            reads.last_modified(conn, [row.id])
            versions, _ = reads.versions(conn, row.id, PAGE, 0)
            reads.version_fields(conn, [v.id for v in versions])
            reads.creating_runs(conn, row.id, [v.id for v in versions])

    _line("dataset + its versions", _times(api_dataset, queries), _times(base_dataset, queries))

    def api_lineage(i: int) -> None:
        ns, name = keys[picks[i]]
        get("/api/v1/lineage", nodeId=f"dataset:{ns}:{name}", depth=5)

    def base_lineage(i: int) -> None:
        ns, name = keys[picks[i]]
        with store.engine.connect() as conn:
            row = reads.asset_by_key(conn, ns, name, job=False)
            assert row is not None
            seen = frontier = {row.id}
            for _ in range(5):
                edges = reads.edges_around(conn, sorted(frontier), field_level=False)
                found = {e.source_id for e in edges} | {e.target_id for e in edges}
                frontier = found - seen
                seen = seen | frontier
            # the reads that describe the nodes: datasets' fields and last writes,
            # jobs' inputs and outputs, latest runs with what they read and wrote
            assets = reads.assets_by_id(conn, sorted(seen))
            datasets = [i for i, a in assets.items() if a.kind != "job"]
            jobs = [i for i, a in assets.items() if a.kind == "job"]
            reads.current_fields(conn, datasets)
            reads.last_modified(conn, datasets)
            reads.job_io(conn, jobs)
            runs = reads.latest_runs(conn, jobs)
            reads.run_datasets(conn, [r.id for r in runs.values()])
            reads.all_versions(conn, jobs)

    _line("lineage depth 5", _times(api_lineage, queries), _times(base_lineage, queries))


@contextmanager
def _without_search_index(conn: Any) -> Iterator[None]:
    """Searches on this connection scan the assets, as they did before the search index."""
    if conn.dialect.name == "sqlite":
        conn.info["steward_search_index"] = {"present": False}
        try:
            yield
        finally:
            conn.info.pop("steward_search_index")
        return
    conn.exec_driver_sql("SET enable_bitmapscan = off")
    try:
        yield
    finally:
        conn.exec_driver_sql("RESET enable_bitmapscan")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks api", description=__doc__)
    parser.add_argument("--assets", type=int, default=100_000, help="Assets in the catalog.")
    parser.add_argument("--queries", type=int, default=200, help="Requests per figure.")
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
            scratch_catalog(backend, Path(tmp), "api") as store,
        ):
            start = time.perf_counter()
            keys = populate(store, args.assets)
            print(
                f"{backend}: {args.assets:,} assets written in "
                f"{time.perf_counter() - start:.1f} s; {args.queries} requests per figure",
                flush=True,
            )
            measure(store, keys, args.queries)
