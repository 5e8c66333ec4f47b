"""Qdrant local storage: scan and baseline sample vs one full scroll.

A local collection of 100,000 x 384 vectors is built once into
`benchmarks/.data/qdrant-100k` (gitignored; writing it takes minutes) and
reused. Figures, each including opening the client:

- baseline: one plain full `scroll` of the collection with its vectors;
- `steward scan` of the storage (config, payload sample, provenance);
- scan plus the 2,000-vector baseline sample, as `steward scan --profile` does
  (applied to a fresh SQLite catalog, sample stored).

Opening local storage unpickles every point, so it dominates every figure;
the time each figure spent opening is measured too, to show what each step
adds beyond it.
`python -m benchmarks qdrant --build-only` only builds the collection.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import report, timed

DATA = Path(__file__).resolve().parent / ".data" / "qdrant-100k"
COLLECTION = "bench_docs"
POINTS = 100_000
DIM = 384
BATCH = 5_000


def build(path: Path = DATA, points: int = POINTS, dim: int = DIM) -> Path:
    """Write the benchmark collection once; a finished build is marked and reused."""
    from qdrant_client import QdrantClient, models

    done = path / ".complete"
    if done.exists():
        return path
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    rng = np.random.default_rng(20240601)
    client = QdrantClient(path=str(path))
    try:
        client.create_collection(
            COLLECTION,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            metadata={
                "embedding_model": "all-MiniLM-L6-v2",
                "embedding_revision": "2",
                "embedding_source": "postgres://db.internal:5432/shop.public.documents",
            },
        )
        started = time.perf_counter()
        for start in range(0, points, BATCH):
            ids = list(range(start, min(start + BATCH, points)))
            vectors = rng.standard_normal((len(ids), dim), dtype=np.float32)
            payloads = [
                {"doc_id": f"doc-{i // 4}", "chunk": i % 4, "lang": "en" if i % 3 else "de"}
                for i in ids
            ]
            client.upsert(
                COLLECTION,
                models.Batch(ids=ids, vectors=vectors.tolist(), payloads=payloads),  # type: ignore[arg-type]
            )
            print(
                f"  built {ids[-1] + 1:,}/{points:,} points "
                f"({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        client.close()
    done.write_text("ok\n")
    return path


def full_scroll(path: Path) -> tuple[int, float]:
    """Open the client and scroll every point with its vector: the baseline.

    Returns the points seen and the seconds opening took.
    """
    from qdrant_client import QdrantClient

    started = time.perf_counter()
    client = QdrantClient(path=str(path))
    opened = time.perf_counter() - started
    try:
        seen = 0
        offset: Any = None
        while True:
            records, offset = client.scroll(
                COLLECTION, limit=10_000, offset=offset, with_payload=True, with_vectors=True
            )
            seen += len(records)
            if offset is None:
                return seen, opened
    finally:
        client.close()


def scan_only(path: Path) -> float:
    """`steward scan` without writing: returns the seconds opening took."""
    from connectors.qdrant import QdrantConfig, QdrantConnector

    with QdrantConnector(QdrantConfig(url=f"qdrant+local://{path}")) as connector:
        connector.scan()
        return connector.open_seconds


def scan_and_sample(path: Path, catalog: Path, size: int) -> tuple[list[dict[str, Any]], float]:
    """What `steward scan --profile` does: scan, apply, record bindings, keep the sample."""
    from catalog.db import Store
    from connectors.qdrant import QdrantConfig, QdrantConnector
    from connectors.sampling import after_apply
    from connectors.scanning import write_scan

    store = Store(f"sqlite:///{catalog}")
    try:
        connector = QdrantConnector(
            QdrantConfig(url=f"qdrant+local://{path}", profile=True, sample_size=size)
        )
        result = connector.scan()
        plan = write_scan(store, result)
        return after_apply(store, connector, result, plan), connector.open_seconds
    finally:
        store.dispose()


def main(argv: list[str]) -> None:
    import tempfile
    import warnings

    warnings.simplefilter("ignore")  # local mode warns about collections over 20,000 points
    path = build()
    if "--build-only" in argv:
        return
    print(f"local collection: {POINTS:,} x {DIM} float32, {path}", flush=True)
    base, (seen, base_open) = timed(lambda: full_scroll(path))
    report("baseline: open + full scroll (vectors, payload)", base, note=f"{seen:,} points")
    scanned, scan_open = timed(lambda: scan_only(path))
    report("steward scan (open, config, payload sample)", scanned, base)
    with tempfile.TemporaryDirectory() as tmp:
        took, (samples, open_s) = timed(lambda: scan_and_sample(path, Path(tmp) / "c.db", 2000))
    shown = ", ".join(
        f"{s['vectors']} of {s['population']:,} sampled in {s['seconds']:.2f} s" for s in samples
    )
    report("steward scan --profile (+ 2,000-vector baseline)", took, base, note=shown)
    print("beyond opening the client (which each figure includes once):", flush=True)
    report("  baseline: full scroll", base - base_open, note=f"(open took {base_open:.1f} s)")
    report(
        "  scan",
        scanned - scan_open,
        base - base_open,
        note=f"(open took {scan_open:.1f} s)",
    )
    report(
        "  scan + sample + store",
        took - open_s,
        base - base_open,
        note=f"(open took {open_s:.1f} s)",
    )
