"""`steward demo`: writing its two 1,500-point Qdrant collections, and the whole demo.

Figures (each in a fresh temporary directory, opening the client included):

- baseline: the same 3,000 points written the local client's default way
  (one `upsert` per collection: SQLite in rollback-journal mode, a commit
  and its disk flushes per point);
- `build_collections` as the demo writes them (WAL mode kept in the new
  files, no disk sync per commit, batches of 500 with progress);
- the whole `steward demo --no-postgres` as a user runs it (a subprocess).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import report, timed


def default_way(path: Path) -> None:
    from qdrant_client import QdrantClient
    from qdrant_client.models import Distance, PointStruct, VectorParams

    from reports.demo import COLLECTIONS, DIM, DOCS_PER_COLLECTION, MODEL, DemoEmbedder, documents

    client = QdrantClient(path=str(path))
    try:
        for name, revision in COLLECTIONS:
            model = DemoEmbedder(MODEL, revision)
            client.create_collection(name, VectorParams(size=DIM, distance=Distance.COSINE))
            points = [
                PointStruct(id=d["id"], vector=model.embed(d["text"]).tolist(), payload=d)
                for d in documents(name, DOCS_PER_COLLECTION)
            ]
            client.upsert(name, points, wait=True)
    finally:
        client.close()


def main(argv: list[str]) -> None:
    import qdrant_client  # noqa: F401  (imported once, outside every figure)

    from reports.demo import build_collections

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        baseline, _ = timed(lambda: default_way(root / "default"))
        report("baseline: the client's default way", baseline)
        fast, _ = timed(lambda: build_collections(root / "demo", "file:///chunks"))
        report("build_collections", fast, baseline)
        steward = str(Path(sys.executable).with_name("steward"))
        command = [steward, "demo", str(root / "whole"), "--no-postgres"]
        whole, _ = timed(lambda: subprocess.run(command, check=True, capture_output=True))
        report("steward demo --no-postgres (whole)", whole, baseline)
