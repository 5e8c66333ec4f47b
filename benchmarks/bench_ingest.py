"""OpenLineage ingestion: file ingest and the HTTP server, in events per second.

A seeded generator writes realistic RunEvents (START + COMPLETE pairs, 2 to 5
inputs and outputs with schema facets, about 5,000 datasets and 1,000 jobs)
to an NDJSON file. Figures:

- baseline: `json.loads` of every line and `executemany` of the run, job,
  dataset and edge rows into SQLite, in one transaction;
- `steward ingest` of the same file (raw log, dedupe, all projections);
- the server (`steward serve` in its own process, timed once it answers):
  single POSTs from 8 concurrent clients, and the batch endpoint.

`python -m benchmarks ingest [--events N] [--server-events N] [--repeat N]`; `--repeat` runs the
baseline and the file ingest N times each, alternated, and prints the median share.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import report, timed

if TYPE_CHECKING:
    from benchmarks.load import Server

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/client/python"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
SCHEMA_FACET = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"
TYPES = ("integer", "bigint", "text", "varchar", "timestamp", "boolean", "numeric", "date")


def generate(path: Path, events: int, seed: int = 7, datasets: int = 5000, jobs: int = 1000) -> int:
    """Write `events` events (START/COMPLETE pairs) as NDJSON; returns how many."""
    rng = random.Random(seed)
    names = [f"warehouse.schema_{i % 40}.table_{i}" for i in range(datasets)]
    namespaces = ["postgres://db.internal:5432", "s3://lake-bucket", "bigquery"]
    schemas = [
        [{"name": f"col_{j}", "type": rng.choice(TYPES)} for j in range(rng.randint(3, 8))]
        for _ in range(datasets)
    ]
    job_io = []
    for _ in range(jobs):
        picked = rng.sample(range(datasets), rng.randint(4, 10))
        cut = rng.randint(2, min(5, len(picked) - 2))
        job_io.append((picked[:cut], picked[cut : cut + 5]))
    start = datetime(2024, 6, 1, tzinfo=UTC)

    def dataset(i: int, output: bool, complete: bool) -> dict[str, Any]:
        facets: dict[str, Any] = {
            "schema": {"_producer": PRODUCER, "_schemaURL": SCHEMA_FACET, "fields": schemas[i]}
        }
        item: dict[str, Any] = {
            "namespace": namespaces[i % len(namespaces)],
            "name": names[i],
            "facets": facets,
        }
        if output and complete:
            item["outputFacets"] = {
                "outputStatistics": {
                    "_producer": PRODUCER,
                    "_schemaURL": SCHEMA_FACET,
                    "rowCount": rng.randint(1, 10**6),
                }
            }
        return item

    written = 0
    with path.open("w", encoding="utf-8") as out:
        for n in range(events // 2):
            job = rng.randrange(jobs)
            inputs, outputs = job_io[job]
            run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            when = start + timedelta(seconds=n * 7)
            for kind, offset in (("START", 0), ("COMPLETE", 45)):
                complete = kind == "COMPLETE"
                event = {
                    "eventType": kind,
                    "eventTime": (when + timedelta(seconds=offset)).isoformat(),
                    "producer": PRODUCER,
                    "schemaURL": SCHEMA_URL,
                    "run": {"runId": run_id, "facets": {}},
                    "job": {"namespace": "airflow-prod", "name": f"dag_{job // 10}.task_{job}"},
                    "inputs": [dataset(i, False, complete) for i in inputs],
                    "outputs": [dataset(i, True, complete) for i in outputs],
                }
                out.write(json.dumps(event) + "\n")
                written += 1
    return written


def baseline(path: Path, db: Path) -> int:
    """json.loads + executemany of runs, jobs, datasets and edges, one transaction."""
    conn = sqlite3.connect(db)
    conn.executescript(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        "CREATE TABLE job(ns TEXT, name TEXT, PRIMARY KEY(ns, name));"
        "CREATE TABLE dataset(ns TEXT, name TEXT, fields TEXT, PRIMARY KEY(ns, name));"
        "CREATE TABLE run(id TEXT PRIMARY KEY, job TEXT, state TEXT, at TEXT);"
        "CREATE TABLE edge(src TEXT, dst TEXT, kind TEXT, PRIMARY KEY(src, dst, kind));"
    )
    runs, jobs, datasets, edges = [], [], [], []
    count = 0
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            e = json.loads(line)
            count += 1
            job = (e["job"]["namespace"], e["job"]["name"])
            jobs.append(job)
            runs.append((e["run"]["runId"], "/".join(job), e["eventType"], e["eventTime"]))
            for direction in ("inputs", "outputs"):
                for d in e[direction]:
                    key = f"{d['namespace']}/{d['name']}"
                    fields = json.dumps(d.get("facets", {}).get("schema", {}).get("fields", []))
                    datasets.append((d["namespace"], d["name"], fields))
                    pair = (key, "/".join(job)) if direction == "inputs" else ("/".join(job), key)
                    edges.append((*pair, direction))
    with conn:
        conn.executemany("INSERT OR REPLACE INTO job VALUES (?, ?)", jobs)
        conn.executemany("INSERT OR REPLACE INTO dataset VALUES (?, ?, ?)", datasets)
        conn.executemany("INSERT OR REPLACE INTO run VALUES (?, ?, ?, ?)", runs)
        conn.executemany("INSERT OR IGNORE INTO edge VALUES (?, ?, ?)", edges)
    conn.close()
    return count


def file_ingest(path: Path, url: str, chunk_bytes: int | None = None) -> int:
    from catalog.db import Store
    from lineage.ingest import CHUNK_BYTES, Ingester

    store = Store(url)
    summary = Ingester(store, chunk_bytes=chunk_bytes or CHUNK_BYTES).ingest_path(str(path))
    store.dispose()
    if summary.rejected:
        raise SystemExit(f"benchmark events rejected: {summary.reasons}")
    return summary.accepted


def _serve(url: str) -> tuple[Server, int]:
    """`steward serve` in its own process (as deployed), on a free loopback port."""
    from benchmarks.load import Server

    server = Server(url).start()
    return server, server.port


def _stop(server: Server) -> None:
    server.stop()


def server_single(lines: list[str], url: str, clients: int = 8) -> float:
    """Seconds to POST every line, one event a request, from `clients` threads
    (the server started beforehand: its start-up is not counted)."""
    import httpx

    server, port = _serve(url)
    parts = [lines[i::clients] for i in range(clients)]
    failures: list[int] = []

    def post(part: list[str]) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for line in part:
                response = client.post(
                    "/api/v1/lineage",
                    content=line,
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code != 201:
                    failures.append(response.status_code)

    threads = [threading.Thread(target=post, args=(p,)) for p in parts]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    _stop(server)
    if failures:
        raise SystemExit(f"{len(failures)} POSTs failed, e.g. {failures[0]}")
    return elapsed


def server_batch(lines: list[str], url: str, size: int = 500) -> float:
    """Seconds to POST every line in batches of `size` (start-up not counted)."""
    import httpx

    server, port = _serve(url)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        start = time.perf_counter()
        for first in range(0, len(lines), size):
            body = "[" + ",".join(lines[first : first + size]) + "]"
            response = client.post(
                "/api/v1/lineage/batch",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            if response.status_code != 200 or response.json()["summary"]["rejected"]:
                raise SystemExit(f"batch failed: {response.status_code} {response.text[:200]}")
        elapsed = time.perf_counter() - start
    _stop(server)
    return elapsed


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks ingest")
    parser.add_argument("--events", type=int, default=40_000, help="light events")
    parser.add_argument("--heavy-events", type=int, default=10_000, help="heavy events")
    parser.add_argument("--server-events", type=int, default=20_000)
    parser.add_argument("--part", choices=("all", "file", "server"), default="all")
    parser.add_argument("--mix", choices=("both", "light", "heavy"), default="both")
    parser.add_argument("--chunk-size", type=int, default=0, help="bytes (steward's default: 0)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="file ingest: run the baseline and steward this many times each, alternated, "
        "and report the median share (one run swings by a fifth on a busy machine)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: at least 1")
    from benchmarks import heavy

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events_file = root / "events.ndjson"
        for mix, make, events in (
            ("light", generate, args.events),
            ("heavy", heavy.generate, args.heavy_events),
        ):
            if args.mix not in ("both", mix):
                continue
            count = make(events_file, events)
            size_mb = events_file.stat().st_size / 1e6
            print(f"{mix} mix: {count} events, {size_mb:.0f} MB NDJSON", flush=True)
            if args.part != "server":
                _file_figures(events_file, root, count, mix, args.chunk_size, args.repeat)
            if args.part != "file" and mix == "light":
                _server_figures(events_file, root, args.server_events)


def _file_figures(
    events_file: Path, root: Path, count: int, mix: str, chunk: int = 0, repeat: int = 1
) -> None:
    """The baseline and steward's file ingest, `repeat` times each, alternated (each run
    into a new catalog); with more than one, the median share of the baseline."""
    shares: list[float] = []
    for run in range(repeat):
        for old in root.glob(f"*{mix}.db*"):
            old.unlink()  # each run starts from an empty catalog, as the first did
        tag = f" (run {run + 1} of {repeat})" if repeat > 1 else ""
        base_s, _ = timed(lambda: baseline(events_file, root / f"baseline-{mix}.db"))
        report(
            f"{mix}: baseline json.loads + executemany (SQLite){tag}",
            base_s,
            note=f"{count / base_s:,.0f} ev/s",
        )
        ours_s, accepted, peak = ingest_measured(
            events_file, f"sqlite:///{root / f'{mix}.db'}", chunk
        )
        report(
            f"{mix}: steward ingest FILE (SQLite, all projections){tag}",
            ours_s,
            base_s,
            note=f"{accepted / ours_s:,.0f} ev/s, {base_s / ours_s:.2f} of baseline ev/s, "
            f"peak memory {peak / 1e6:.0f} MB (PSS, writer + reader)",
        )
        shares.append(base_s / ours_s)
    if repeat > 1:
        shown = ", ".join(f"{s:.2f}" for s in shares)
        print(
            f"{mix}: median {statistics.median(shares):.2f} of baseline ev/s over {repeat} "
            f"runs ({shown})",
            flush=True,
        )


#: Seconds between two samples of an ingest's memory (`ingest_measured`).
SAMPLE_EVERY = 0.5


def _tree_memory(pid: int) -> int:
    """Proportional resident bytes (PSS: shared pages split between their sharers, so a
    forked reader's pages are not counted twice) of a process and its children (Linux
    /proc); 0 once it is gone."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        return 0
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def ingest_measured(path: Path, url: str, chunk: int = 0) -> tuple[float, int, int]:
    """`file_ingest` in a process of its own: seconds inside it (start-up not counted),
    events accepted, and the peak memory of it and its reading process, sampled every
    `SAMPLE_EVERY` seconds.

    A sample is not free: reading a process's PSS walks its memory map, some 18 ms
    of the machine's time for an ingest's two processes (measured). Sampled every
    100 ms, the sampling took 3.7 s of CPU beside a 100,000-event ingest and the
    ingest took 8% longer than sampled every 500 ms; the peak read was the same
    (272 to 274 MB both ways), since an ingest's memory grows to a plateau and
    stays there.
    """
    import subprocess
    import sys

    # The modules `file_ingest` imports are imported before the clock starts (half a
    # second here): they are the process's start-up, not the ingest's work.
    code = (
        "import sys, time; from pathlib import Path; from benchmarks.bench_ingest import "
        "file_ingest; import catalog.db, lineage.ingest; t = time.perf_counter(); "
        "n = file_ingest(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]));"
        " print(time.perf_counter() - t, n)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path), url, str(chunk)], stdout=subprocess.PIPE, text=True
    )
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_memory(child.pid))
        time.sleep(SAMPLE_EVERY)
    out = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"ingest failed ({child.returncode})")
    seconds, accepted = out.split()
    return float(seconds), int(accepted), peak


def _server_figures(events_file: Path, root: Path, server_events: int) -> None:
    with events_file.open(encoding="utf-8") as stream:
        lines = [line.strip() for _, line in zip(range(server_events), stream, strict=False)]
    n = len(lines)
    single_s = server_single(lines, f"sqlite:///{root / 'b.db'}")
    report("server: single POSTs, 8 clients (SQLite)", single_s, note=f"{n / single_s:,.0f} ev/s")
    batch_s = server_batch(lines, f"sqlite:///{root / 'c.db'}")
    report("server: batch endpoint, 500/batch (SQLite)", batch_s, note=f"{n / batch_s:,.0f} ev/s")
