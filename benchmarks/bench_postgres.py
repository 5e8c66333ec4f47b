"""PostgreSQL connector: scan and apply 1,000 tables.

Creates a database with 10 schemas of 100 tables each (5 to 30 columns,
foreign keys between neighbours, 5 views per schema), then times, into a
fresh SQLite catalog: the first scan + apply, an unchanged re-scan, and a
re-scan after altering 10 tables. The baseline is the same catalog queries
run alone (connect, one transaction, fetch every row), measured in this run.

    python -m benchmarks postgres [--keep-catalog DIR]

Goals: first scan + apply < 3 s, unchanged re-scan < 1.5 s.
"""

from __future__ import annotations

import random
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner

from benchmarks.common import report, timed
from catalog.apply import Plan, apply
from catalog.cli import cli
from catalog.db import Store
from connectors.postgres import queries
from connectors.registry import for_url

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
ADMIN = f"host={HOST} port={PORT} user={USER} dbname=postgres"
SCHEMAS, TABLES_PER_SCHEMA, VIEWS_PER_SCHEMA = 10, 100, 5
TYPES = ["integer", "bigint", "text", "varchar(80)", "numeric(12,2)", "timestamptz", "boolean"]


def build_ddl(seed: int = 7) -> str:
    rnd = random.Random(seed)
    out: list[str] = []
    for s in range(SCHEMAS):
        schema = f"s{s:02d}"
        out.append(f"CREATE SCHEMA {schema};")
        for t in range(TABLES_PER_SCHEMA):
            cols = ["id bigint PRIMARY KEY"]
            if t > 0 and rnd.random() < 0.4:
                cols.append(f"parent_id bigint REFERENCES {schema}.t{t - 1:03d}(id)")
            width = rnd.randint(5, 30)
            number = 1
            while len(cols) < width:
                nullable = "" if rnd.random() < 0.7 else " NOT NULL"
                cols.append(f"c{number:02d} {rnd.choice(TYPES)}{nullable}")
                number += 1
            out.append(f"CREATE TABLE {schema}.t{t:03d} ({', '.join(cols)});")
            if rnd.random() < 0.2:
                out.append(f"COMMENT ON TABLE {schema}.t{t:03d} IS 'table {t} of {schema}';")
        for v in range(VIEWS_PER_SCHEMA):
            a, b = 2 * v, 2 * v + 1
            out.append(
                f"CREATE VIEW {schema}.v{v} AS SELECT x.id, x.c01, y.c02 AS other "
                f"FROM {schema}.t{a:03d} x JOIN {schema}.t{b:03d} y ON y.id = x.id;"
            )
    return "\n".join(out)


def catalog_queries_alone(url: str) -> int:
    """The baseline: the connector's catalog queries, run and fetched, nothing else."""
    with psycopg.connect(url, autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            conn.execute("SET LOCAL search_path TO public")
            conn.execute(queries.DATABASE).fetchall()
            conn.execute(queries.VECTOR_TYPES).fetchall()
            schemas = [r[0] for r in conn.execute(queries.SCHEMAS).fetchall() if r[2]]
            args: dict[str, Any] = {"schemas": schemas, "relkinds": queries.RELKINDS}
            relations = conn.execute(queries.RELATIONS, args).fetchall()
            rows = len(relations)
            for query in (queries.COLUMNS, queries.CONSTRAINTS, queries.INDEXES):
                rows += len(conn.execute(query, args).fetchall())
            views = [r[0] for r in relations if r[3] in ("v", "m")]
            view_args = {"views": views, "relkinds": queries.RELKINDS}
            rows += len(conn.execute(queries.VIEW_DEPENDENCIES, view_args).fetchall())
            rows += len(conn.execute(queries.VIEW_QUERIES, view_args).fetchall())
    return rows


def scan_and_apply(url: str, store: Store) -> tuple[float, float, Plan]:
    scan_seconds, result = timed(lambda: for_url(url).scan())
    apply_seconds, outcome = timed(
        lambda: apply(store, result.specs, result.scopes, origin=result.origin)
    )
    return scan_seconds, apply_seconds, outcome


def main(argv: list[str]) -> None:
    name = f"steward_bench_{uuid.uuid4().hex[:10]}"
    url = f"postgresql://{USER}@{HOST}:{PORT}/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            seconds, _ = timed(lambda: conn.execute(build_ddl()))  # type: ignore[arg-type]
            conn.execute("ANALYZE")
        report(f"setup: {SCHEMAS * TABLES_PER_SCHEMA} tables + views created", seconds)
        catalog_queries_alone(url)  # warm the server's caches like a second scan would
        baseline, rows = timed(lambda: catalog_queries_alone(url))
        report(f"baseline: catalog queries alone ({rows} rows)", baseline)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{Path(tmp) / 'catalog.db'}")
            runs = [("first scan + apply", None), ("unchanged re-scan + apply", None)]
            runs.append(
                (
                    "re-scan + apply after altering 10 tables",
                    [f"ALTER TABLE s{i:02d}.t050 ADD COLUMN added_{i} text" for i in range(10)],
                )
            )
            for label, alter in runs:
                if alter:
                    with psycopg.connect(url, autocommit=True) as conn:
                        for statement in alter:
                            conn.execute(statement)  # type: ignore[arg-type]
                scan_s, apply_s, outcome = scan_and_apply(url, store)
                counts = ", ".join(f"{n} {k}" for k, n in outcome.summary().items())
                report(label, scan_s + apply_s, baseline, note=counts)
                report("  of which scan (queries + specs)", scan_s, baseline)
                report("  of which apply", apply_s, baseline)
            # The whole command as a user runs it (also syncs model bindings after applying).
            catalog = f"sqlite:///{Path(tmp) / 'catalog.db'}"
            seconds, run = timed(
                lambda: CliRunner().invoke(cli, ["--catalog", catalog, "-q", "scan", url])
            )
            if run.exit_code != 0:
                raise SystemExit(f"steward scan failed: {run.output}")
            report("`steward scan` unchanged (CLI, in-process)", seconds, baseline)
            store.dispose()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1:])
