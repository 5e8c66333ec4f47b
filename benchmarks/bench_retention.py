"""The raw event log: what compression saves, and what `steward gc` frees.

For each mix (light: `bench_ingest.generate`, ~4 KB an event; heavy:
`benchmarks.heavy`, ~11 KB) the events are ingested into a PostgreSQL
catalog of their own. Figures: the bodies' text size, the size PostgreSQL
stores them in (`pg_column_size`: after TOAST compression, pglz by default,
and lz4 when the server has it), the whole `raw_event` table with its
indexes; then `steward gc` dropping every body, and the table after a
VACUUM FULL (what the freed space amounts to). Then the same events into a
SQLite catalog, which packs each body itself (`catalog.models.pack_body`):
the bodies' text size beside their stored size, and the catalog file's.

`python -m benchmarks retention [--events N]`
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import uuid
from pathlib import Path

import psycopg

from benchmarks.common import report, timed

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
ADMIN = f"host={HOST} port={PORT} user={USER} dbname=postgres"
SIZES = (
    "SELECT sum(octet_length(body)), sum(pg_column_size(body)), count(*),"
    " pg_total_relation_size('raw_event') FROM raw_event"
)


def _mb(value: float) -> str:
    return f"{value / 1e6:.1f} MB"


def measure(path: Path, mix: str, compression: str) -> None:
    from catalog.db import Store
    from lineage.ingest import Ingester
    from lineage.retention import collect

    name = f"steward_bench_{uuid.uuid4().hex[:10]}"
    url = f"postgresql://{USER}@{HOST}:{PORT}/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        store = Store(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE raw_event ALTER COLUMN body SET COMPRESSION {compression}")
        Ingester(store).ingest_path(str(path))
        with psycopg.connect(url, autocommit=True) as conn:
            text_size, stored, count, table = conn.execute(SIZES).fetchone()  # type: ignore[misc]
        report(
            f"{mix}: raw log, TOAST {compression}",
            0,
            note=f"{count} events: bodies {_mb(text_size)} as text, stored {_mb(stored)} "
            f"({text_size / stored:.1f}x smaller), table + indexes {_mb(table)}",
        )
        seconds, done = timed(lambda: collect(store, keep_bytes=1))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM FULL raw_event")
            after = conn.execute("SELECT pg_total_relation_size('raw_event')").fetchone()[0]  # type: ignore[index]
        report(
            f"{mix}: steward gc of every body ({compression})",
            seconds,
            note=f"{done.bodies} bodies dropped; table + indexes {_mb(table)} -> {_mb(after)} "
            f"after VACUUM FULL ({after / done.bodies:.0f} B an event kept)",
        )
        store.dispose()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure_sqlite(path: Path, mix: str) -> None:
    from catalog.db import Store
    from catalog.models import unpack_body
    from lineage.ingest import Ingester

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "catalog.db"
        store = Store(f"sqlite:///{db}")
        Ingester(store).ingest_path(str(path))
        store.dispose()
        conn = sqlite3.connect(db)
        try:
            stored = text_size = count = 0
            for (body,) in conn.execute("SELECT body FROM raw_event"):
                count += 1
                stored += len(body)
                text_size += len(unpack_body(body).encode() if isinstance(body, bytes) else body)
        finally:
            conn.close()
        report(
            f"{mix}: raw log, SQLite (zstd)",
            0,
            note=f"{count} events: bodies {_mb(text_size)} as text, stored {_mb(stored)} "
            f"({text_size / stored:.1f}x smaller); catalog file {_mb(db.stat().st_size)}",
        )


def main(argv: list[str]) -> None:
    from benchmarks import heavy
    from benchmarks.bench_ingest import generate

    parser = argparse.ArgumentParser(prog="python -m benchmarks retention")
    parser.add_argument("--events", type=int, default=4000)
    args = parser.parse_args(argv)
    with psycopg.connect(ADMIN) as conn:
        lz4 = "lz4" in str(conn.execute("SELECT pg_config()::text").fetchall()).lower()
    with tempfile.TemporaryDirectory() as tmp:
        for mix, make in (("light", generate), ("heavy", heavy.generate)):
            path = Path(tmp) / f"{mix}.ndjson"
            make(path, args.events)
            for compression in ("pglz", "lz4") if lz4 else ("pglz",):
                measure(path, mix, compression)
            measure_sqlite(path, mix)
