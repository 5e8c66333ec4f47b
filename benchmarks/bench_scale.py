"""steward on a large PostgreSQL catalog: lineage, check, report and gc.

    python -m benchmarks scale [--assets N] [--edges M] [--events R]
                               [--keep NAME | --reuse NAME] [--starts S] [--timeout SEC]
                               [--steps lineage,check,incremental,report,gc]

Builds a catalog of 1,000,000 assets, 3,000,000 edges and 10,000,000 raw
events by default (`benchmarks.scale_catalog`: steward's migrations, then
COPY; raw event bodies ~1 KB, 21 GB on disk in all) and prints how
long that took. The figures are measured on a copy of it (CREATE DATABASE
... TEMPLATE), so a kept catalog (`--keep NAME`: built once, then reused;
`--reuse NAME`: must exist) stays as built across runs:

1. lineage depth 5, downstream and upstream of S random datasets: p50/p95
   of steward's lineage code path (`lineage.sqlgraph`, recursive SQL; and
   one `steward lineage downstream` as a user runs it); baseline: a bare
   recursive CTE;
2. a full `steward check` (subprocess, wall time and peak RSS; each CLI
   command's address space is capped, `--memory-limit`, 9 GB); baseline:
   SQL counts over the tables it reads;
3. `steward check --incremental` after 100 assets changed (a breaking
   version each), where the CLI has the flag ("not available" otherwise);
   baseline: those assets' downstream (depth 5) in SQL;
4. `steward report --focus ASSET`; baseline: that asset's neighbourhood
   (versions, fields, edges and neighbours at the report's depth) in SQL;
5. the database and `raw_event` on disk before and after `steward gc
   --keep-days 30 --vacuum`, and after VACUUM FULL; baseline for gc's time:
   one scan choosing the same events in SQL.

`--steps` runs some of them (the incremental check needs the full one before it).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from benchmarks.common import report, timed
from benchmarks.scale_catalog import build

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
ADMIN = f"host={HOST} port={PORT} user={USER} dbname=postgres"
CLI = "from catalog.cli import main; main()"
CHANGED = 100
DEPTH = 5
KEEP_DAYS = 30
#: Seconds of graph building past which one CLI lineage call is not also run.
SLOW = 120
STEPS = ("lineage", "check", "incremental", "report", "gc")

CTE = {
    "downstream": """
        WITH RECURSIVE walk(id, depth) AS (
            SELECT %(start)s::int, 0
            UNION
            SELECT e.target_id, w.depth + 1 FROM walk w JOIN edge e ON e.source_id = w.id
            WHERE w.depth < %(depth)s
        )
        SELECT a.uri, min(w.depth) FROM walk w JOIN asset a ON a.id = w.id
        WHERE NOT a.deleted GROUP BY a.uri""",
    "upstream": """
        WITH RECURSIVE walk(id, depth) AS (
            SELECT %(start)s::int, 0
            UNION
            SELECT e.source_id, w.depth + 1 FROM walk w JOIN edge e ON e.target_id = w.id
            WHERE w.depth < %(depth)s
        )
        SELECT a.uri, min(w.depth) FROM walk w JOIN asset a ON a.id = w.id
        WHERE NOT a.deleted GROUP BY a.uri""",
}


#: Everything below an asset, at any depth, counted: what an error about it puts at risk.
REACH = """
    WITH RECURSIVE walk(id) AS (
        SELECT %(start)s::int
        UNION
        SELECT e.target_id FROM walk w JOIN edge e ON e.source_id = w.id
    )
    SELECT count(*) FROM walk w JOIN asset a ON a.id = w.id
    WHERE NOT a.deleted AND w.id <> %(start)s"""


def url_of(name: str) -> str:
    return f"postgresql://{USER}@{HOST}:{PORT}/{name}"


def admin(sql: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def exists(name: str) -> bool:
    with psycopg.connect(ADMIN) as conn:
        return bool(
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        )


@dataclass
class Run:
    """A CLI command run in a subprocess: wall time, peak memory, exit code, output."""

    seconds: float
    peak_mb: float
    code: int | None
    stdout: str
    stderr: str

    @property
    def note(self) -> str:
        if self.code is None:
            return "did not finish (timeout)"
        if "MemoryError" in self.stderr:
            return f"out of memory (limit {MEMORY_LIMIT[0] / 2**30:.0f} GB, --memory-limit)"
        return f"exit {self.code}, peak RSS {self.peak_mb:,.0f} MB"


#: Address space a CLI command may take (bytes; `--memory-limit`): the machine is shared.
MEMORY_LIMIT = [9 * 2**30]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT[0], MEMORY_LIMIT[0]))


def steward(url: str, args: list[str], timeout: float) -> Run:
    """`steward --catalog URL -q ARGS` in a subprocess, under /usr/bin/time -v."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", CLI, "--catalog", url, "-q", *args]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=_limit_memory
        )
    except subprocess.TimeoutExpired:
        return Run(time.perf_counter() - start, 0.0, None, "", "")
    seconds = time.perf_counter() - start
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    peak = int(found.group(1)) / 1024 if found else 0.0
    return Run(seconds, peak, done.returncode, done.stdout, done.stderr)


def failed(run: Run, what: str) -> bool:
    if run.code not in (0, 1) or "Traceback" in run.stderr:
        tail = "\n".join(run.stderr.strip().splitlines()[-25:])
        print(f"{what}: failed after {run.seconds:,.1f} s: {run.note}\n{tail}", flush=True)
        return True
    return False


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


# -- 1. lineage ---------------------------------------------------------------


def lineage_engine(url: str, probe: str) -> tuple[str, Callable[[str, str, int], int], float]:
    """(name, walk(direction, uri, depth) -> nodes reached, seconds spent preparing it):
    `lineage.sqlgraph.SqlGraph`, the recursive SQL every `steward lineage` command and
    the Marquez lineage endpoint use (nothing to prepare)."""
    from catalog.db import Store
    from lineage.sqlgraph import SqlGraph

    store = Store(url)
    conn = store.engine.connect()
    graph = SqlGraph(conn)

    def walk_sql(direction: str, uri: str, depth: int) -> int:
        return len(getattr(graph, direction)(uri, depth=depth).nodes)

    walk_sql("downstream", probe, DEPTH)
    return "lineage.sqlgraph (recursive SQL)", walk_sql, 0.0


def bench_lineage(url: str, starts: list[tuple[int, str]], timeout: float) -> None:
    name, walk, prepared = lineage_engine(url, starts[0][1])
    print(f"lineage code path: {name}", flush=True)
    if prepared:
        report("lineage: build LineageGraph (once a process)", prepared)
    with psycopg.connect(url) as conn:
        for direction in ("downstream", "upstream"):
            base, ours, reached = [], [], []
            for asset_id, uri in starts:
                args = {"start": asset_id, "depth": DEPTH}
                t0 = time.perf_counter()
                conn.execute(CTE[direction], args).fetchall()
                t1 = time.perf_counter()
                reached.append(walk(direction, uri, DEPTH))
                base.append(t1 - t0)
                ours.append(time.perf_counter() - t1)
            b50, b95 = percentiles(base)
            o50, o95 = percentiles(ours)
            report(
                f"lineage {direction} depth {DEPTH}: baseline CTE p95",
                b95,
                note=f"p50 {ms(b50)}",
            )
            report(
                f"lineage {direction} depth {DEPTH}: steward p95",
                o95,
                b95,
                note=f"p50 {ms(o50)} ({o50 / b50:.2f}x); {len(starts)} starts, "
                f"median {statistics.median(reached):,.0f} nodes, max {max(reached):,}",
            )
    if prepared > SLOW:
        print(
            f"`steward lineage downstream --depth 5` (CLI): not run; each call builds the graph "
            f"({prepared:,.0f} s above) after the CLI's start-up",
            flush=True,
        )
        return
    run = steward(
        url, ["lineage", "downstream", starts[0][1], "--depth", str(DEPTH), "--json"], timeout
    )
    if not failed(run, "steward lineage downstream"):
        report("`steward lineage downstream --depth 5` (CLI)", run.seconds, note=run.note)


# -- 2. and 3. check ----------------------------------------------------------

COUNTS = """
    SELECT (SELECT count(*) FROM asset a LEFT JOIN asset_version v
              ON v.asset_id = a.id AND v.version = a.current_version WHERE NOT a.deleted),
           (SELECT count(*) FROM edge),
           (SELECT count(*) FROM alias)"""


def bench_check(url: str, timeout: float) -> float:
    with psycopg.connect(url) as conn:
        baseline, row = timed(lambda: conn.execute(COUNTS).fetchone())
    assert row is not None
    report(
        "check: baseline SQL counts (assets+versions, edges)",
        baseline,
        note=f"{row[0]:,} / {row[1]:,}",
    )
    run = steward(url, ["check", "--json"], timeout)
    if failed(run, "steward check"):
        return baseline
    found = run.stdout.count('"rule":')
    report(
        "`steward check` (full, CLI)", run.seconds, baseline, note=f"{run.note}; {found:,} findings"
    )
    print(f"check: {risk_summary(run.stdout)}", flush=True)
    return baseline


def risk_summary(output: str) -> str:
    """What the errors of a `check --json` put at risk, and the size of that output."""
    try:
        findings = json.loads(output)
    except ValueError:
        return f"{mb(len(output))} of --json (not a JSON list)"
    errors = [f for f in findings if f["severity"] == "error"]
    counts = [f.get("at_risk_count", len(f["at_risk"])) for f in errors]
    listed = sum(len(f["at_risk"]) for f in errors)
    return (
        f"{len(errors):,} errors put {sum(counts):,} assets at risk in all (largest "
        f"{max(counts, default=0):,}), {listed:,} of them listed with a path; "
        f"{mb(len(output.encode()))} of --json"
    )


def change_assets(url: str, count: int) -> list[int]:
    """A breaking new version of `count` random live datasets: their last field dropped."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(0.7)")
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM asset WHERE kind = 'dataset' AND NOT deleted"
                " ORDER BY random() LIMIT %s",
                (count,),
            )
        ]
        conn.execute(
            """
            WITH old AS (
                SELECT a.id, v.version, v.definition::jsonb AS d FROM asset a
                JOIN asset_version v ON v.asset_id = a.id AND v.version = a.current_version
                WHERE a.id = ANY(%(ids)s)
            )
            INSERT INTO asset_version (asset_id, version, fingerprint, definition, diff,
                                       breaking, restored, origin, valid_from, created_at)
            SELECT id, version + 1, md5(d::text) || md5(id::text),
                   jsonb_set(d, '{fields}', (d->'fields') - -1)::json,
                   json_build_object('added', '[]'::json,
                                     'removed', json_build_array(d->'fields'->-1),
                                     'changed', '[]'::json, 'breaking', true),
                   true, false, 'openlineage', now() at time zone 'utc', now() at time zone 'utc'
            FROM old""",
            {"ids": ids},
        )
        conn.execute(
            """
            UPDATE asset a SET current_version = v.version, fingerprint = v.fingerprint,
                   updated_at = now() at time zone 'utc'
            FROM asset_version v WHERE v.asset_id = a.id AND v.version = a.current_version + 1
              AND a.id = ANY(%(ids)s)""",
            {"ids": ids},
        )
        conn.execute(
            """
            INSERT INTO asset_field (version_id, asset_id, position, name, type, nullable,
                                     attributes)
            SELECT v.id, f.asset_id, f.position, f.name, f.type, f.nullable, f.attributes
            FROM asset a JOIN asset_version v ON v.asset_id = a.id AND v.version = a.current_version
            JOIN asset_version p ON p.asset_id = a.id AND p.version = a.current_version - 1
            JOIN asset_field f ON f.version_id = p.id
            WHERE a.id = ANY(%(ids)s)
              AND f.position < (SELECT max(position) FROM asset_field g
                                WHERE g.version_id = p.id)""",
            {"ids": ids},
        )
    return ids


def bench_incremental(url: str, timeout: float) -> None:
    ids = change_assets(url, CHANGED)
    with psycopg.connect(url) as conn:

        def neighbourhood() -> int:
            n = 0
            for asset_id in ids:
                args = {"start": asset_id, "depth": DEPTH}
                n += len(conn.execute(CTE["downstream"], args).fetchall())
            return n

        baseline, reached = timed(neighbourhood)
    report(
        f"incremental: baseline {CHANGED} changed assets' downstream in SQL",
        baseline,
        note=f"{reached:,} rows",
    )
    with psycopg.connect(url) as conn:
        whole, below = timed(
            lambda: sum(conn.execute(REACH, {"start": i}).fetchone()[0] for i in ids)  # type: ignore[index]
        )
    report(
        f"incremental: {CHANGED} changed assets' whole downstream counted in SQL",
        whole,
        note=f"{below:,} assets in all (what their errors put at risk: every depth)",
    )
    helped = steward(url, ["check", "--help"], timeout)
    report("CLI start-up alone (`steward check --help`)", helped.seconds, note=helped.note)
    if "--incremental" not in helped.stdout:
        print(
            f"incremental check after {CHANGED} changed assets: not available "
            "(`steward check --help` has no --incremental); today that is the full check above",
            flush=True,
        )
        return
    run = steward(url, ["check", "--incremental", "--json"], timeout)
    if not failed(run, "steward check --incremental"):
        found = run.stdout.count('"rule":')
        report(
            f"`steward check --incremental` after {CHANGED} changed (CLI)",
            run.seconds,
            baseline,
            note=f"{run.note}; {found:,} findings",
        )


# -- 4. report ----------------------------------------------------------------

NEIGHBOURHOOD = """
    WITH near AS (
        SELECT %(id)s::int AS id
        UNION SELECT target_id FROM edge WHERE source_id = %(id)s
        UNION SELECT source_id FROM edge WHERE target_id = %(id)s
    )
    SELECT a.uri, a.kind, v.version, v.definition, v.diff,
           (SELECT json_agg(f.name ORDER BY f.position) FROM asset_field f
             WHERE f.version_id = v.id)
    FROM near JOIN asset a ON a.id = near.id
    JOIN asset_version v ON v.asset_id = a.id"""


def bench_report(url: str, focus: tuple[int, str], timeout: float) -> None:
    with psycopg.connect(url) as conn:
        baseline, rows = timed(lambda: conn.execute(NEIGHBOURHOOD, {"id": focus[0]}).fetchall())
    report("report: baseline focus neighbourhood in SQL", baseline, note=f"{len(rows)} rows")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        run = steward(url, ["report", "--focus", focus[1], "-o", str(out)], timeout)
        if not failed(run, "steward report"):
            size = out.stat().st_size if out.exists() else 0
            report(
                "`steward report --focus ASSET` (CLI)",
                run.seconds,
                baseline,
                note=f"{run.note}; {mb(size)} of HTML",
            )


# -- 5. gc --------------------------------------------------------------------

SIZES = "SELECT pg_database_size(current_database()), pg_total_relation_size('raw_event')"
CHOSEN = (
    "SELECT count(*), sum(octet_length(body)) FROM raw_event"
    " WHERE body <> '' AND received_at < (now() at time zone 'utc') - make_interval(days => %s)"
)


def sizes(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(SIZES).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def bench_gc(url: str, timeout: float) -> None:
    db, raw = sizes(url)
    print(f"gc: before: database {mb(db)}, raw_event with indexes {mb(raw)}", flush=True)
    with psycopg.connect(url) as conn:
        baseline, row = timed(lambda: conn.execute(CHOSEN, (KEEP_DAYS,)).fetchone())
    assert row is not None
    report(
        f"gc: baseline SQL scan choosing the events older than {KEEP_DAYS} days",
        baseline,
        note=f"{row[0]:,} events, {mb(row[1] or 0)} of bodies",
    )
    run = steward(url, ["gc", "--keep-days", str(KEEP_DAYS), "--vacuum", "--json"], timeout)
    if failed(run, "steward gc"):
        return
    db2, raw2 = sizes(url)
    done = json.loads(run.stdout)
    report(
        f"`steward gc --keep-days {KEEP_DAYS} --vacuum` (CLI)",
        run.seconds,
        baseline,
        note=f"{run.note}; {done['bodies']:,} bodies dropped, {done['deleted']:,} rows "
        f"deleted, {mb(done['freed_bytes'])} of bodies freed",
    )
    print(f"gc: after gc + VACUUM: database {mb(db2)}, raw_event {mb(raw2)}", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        seconds, _ = timed(lambda: conn.execute("VACUUM FULL raw_event"))
    db3, raw3 = sizes(url)
    report(
        "gc: VACUUM FULL raw_event (SQL)",
        seconds,
        note=f"database {mb(db3)}, raw_event {mb(raw3)} ({raw / max(raw3, 1):.1f}x smaller)",
    )


# -- the run --------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> tuple[str, bool]:
    """The catalog to measure on (a copy of the kept one, or a new one) and whether it is a copy."""
    kept = args.reuse or args.keep
    if args.reuse and not exists(args.reuse):
        raise SystemExit(f"--reuse {args.reuse}: no such database")
    name = kept or f"steward_scale_{uuid.uuid4().hex[:10]}"
    if not exists(name):
        from catalog.db import Store

        admin(f'CREATE DATABASE "{name}"')
        Store(url_of(name)).dispose()  # steward's own migrations make the schema
        print(
            f"building {args.assets:,} assets, {args.edges:,} edges, {args.events:,} raw "
            "events (bodies ~1 KB) with COPY",
            flush=True,
        )
        seconds, _ = timed(
            lambda: build(
                url_of(name),
                args.assets,
                args.edges,
                args.events,
                say=lambda label, s: report(label, s),
            )
        )
        db, raw = sizes(url_of(name))
        report(
            "build: the whole catalog (COPY, indexes, ANALYZE)",
            seconds,
            note=f"database {mb(db)}, raw_event {mb(raw)}; "
            f"{args.events / seconds:,.0f} events/s overall",
        )
    if not kept:
        return name, False
    copy = f"{name}_run_{uuid.uuid4().hex[:6]}"
    seconds, _ = timed(
        lambda: admin(f'CREATE DATABASE "{copy}" TEMPLATE "{name}" STRATEGY FILE_COPY')
    )
    report(f"copy of the kept catalog {name} (CREATE DATABASE TEMPLATE)", seconds)
    return copy, True


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks scale")
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=3_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--keep", metavar="NAME", help="Build into database NAME (unless it exists) and keep it."
    )
    group.add_argument(
        "--reuse", metavar="NAME", help="Measure on a copy of the kept database NAME."
    )
    parser.add_argument("--starts", type=int, default=50, help="Start assets of the lineage walks.")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="Seconds a CLI command may take."
    )
    parser.add_argument(
        "--memory-limit", type=float, default=9, help="GB of address space a CLI command may take."
    )
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"The measurements to run, comma-separated (default: {','.join(STEPS)}).",
    )
    args = parser.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"--steps: unknown step {unknown[0]!r}; steps: {', '.join(STEPS)}")
    if "incremental" in steps and "check" not in steps:
        parser.error("--steps: incremental needs check (the full check it starts from)")
    MEMORY_LIMIT[0] = int(args.memory_limit * 2**30)
    name, _ = prepare(args)
    url = url_of(name)
    try:
        with psycopg.connect(url) as conn:
            conn.execute("SELECT setseed(0.42)")
            starts = [
                (int(r[0]), str(r[1]))
                for r in conn.execute(
                    "SELECT id, uri FROM asset WHERE kind = 'dataset' AND NOT deleted"
                    " ORDER BY random() LIMIT %s",
                    (args.starts,),
                )
            ]
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM asset), (SELECT count(*) FROM edge),"
                " (SELECT count(*) FROM raw_event)"
            ).fetchone()
        assert counts is not None
        print(
            f"catalog {name}: {counts[0]:,} assets, {counts[1]:,} edges, {counts[2]:,} raw events",
            flush=True,
        )
        if "lineage" in steps:
            bench_lineage(url, starts, args.timeout)
        if "check" in steps:
            bench_check(url, args.timeout)
        if "incremental" in steps:
            bench_incremental(url, args.timeout)
        if "report" in steps:
            bench_report(url, starts[0], args.timeout)
        if "gc" in steps:
            bench_gc(url, args.timeout)
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(sys.argv[1:])
