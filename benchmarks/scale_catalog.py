"""A generated PostgreSQL catalog of any size, written with COPY, for `bench_scale`.

The schema is steward's own (`Store(url)` runs the migrations); the rows are
then COPYed in, shaped like what OpenLineage ingestion leaves:

- assets: a fifth jobs (`airflow-prod`, `spark-prod`), the rest datasets in
  five namespaces (PostgreSQL, S3, BigQuery, Snowflake, Kafka) on 8 layers;
  one dataset in 1,000 deleted;
- one version each (its definition and diff shaped as apply writes them,
  a stand-in fingerprint) and the fields of each dataset (3 to 8);
- edges as the projection writes them: `dataset -reads-> job` and
  `job -writes-> dataset`, declared by the job; a job on layer k writes a
  third of its edges into layer k and reads from earlier layers (70% from
  layer k-1), so lineage is a layered DAG;
- raw events: OpenLineage RunEvents (START / COMPLETE pairs of the
  catalog's jobs: run id, job, up to 2 inputs and 2 outputs, a schema facet
  on the first output, a nominal-time facet), received over the last 90
  days, about 1 KB each (10,000,000 take 18 GB with their indexes); bodies are the
  canonical JSON whose SHA-256 is the digest (as `openlineage.digest_of`
  computes it); 2% are duplicates of an earlier accepted event, 0.5%
  rejected; each digest is accepted once (migration 0007's unique index).

Secondary indexes are dropped during the COPY and created again after it,
and foreign keys are not checked row by row (`session_replication_role =
replica`; the rows are consistent by construction): the usual bulk load.
Runs are not generated.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from catalog.identity import asset_uri, job_uri

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/1.14.0"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_URL = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"
NOMINAL_URL = "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json"
DATASET_NAMESPACES = (
    "postgres://warehouse.internal:5432",
    "s3://lake-bucket",
    "bigquery",
    "snowflake://acme.eu-west-1",
    "kafka://broker.internal:9092",
)
JOB_NAMESPACES = ("airflow-prod", "spark-prod")
TYPES = ("integer", "bigint", "text", "varchar", "timestamp", "boolean", "numeric", "date")
LAYERS = 8
BATCH = 20_000
#: Tables filled, in order (foreign keys: asset first).
TABLES = ("asset", "asset_version", "asset_field", "edge", "raw_event")


@dataclass
class Shape:
    """What was generated: ids of datasets by layer, jobs' inputs and outputs."""

    assets: int
    datasets: int
    jobs: int
    edges: int = 0
    events: int = 0
    layer_of: list[int] = field(default_factory=list)
    fields_of: list[list[tuple[str, str]]] = field(default_factory=list)
    #: job index -> (input dataset indexes, output dataset indexes)
    job_io: list[tuple[list[int], list[int]]] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)

    def dataset_id(self, i: int) -> int:
        return i + 1

    def job_id(self, j: int) -> int:
        return self.datasets + j + 1

    def dataset_uri(self, i: int) -> str:
        return asset_uri(*dataset_key(i))

    def job_uri(self, j: int) -> str:
        return job_uri(*job_key(j))


def dataset_key(i: int) -> tuple[str, str]:
    return DATASET_NAMESPACES[i % len(DATASET_NAMESPACES)], f"analytics.schema_{i % 200}.table_{i}"


def job_key(j: int) -> tuple[str, str]:
    return JOB_NAMESPACES[j % len(JOB_NAMESPACES)], f"dag_{j // 10}.task_{j}"


def plan(assets: int, edges: int, seed: int = 0) -> Shape:
    """Decide the DAG: layers, fields, each job's inputs and outputs (exactly `edges`)."""
    if assets < 50:
        raise SystemExit("--assets: at least 50")
    rng = random.Random(seed)
    jobs = assets // 5
    datasets = assets - jobs
    if edges < 2 * jobs:
        raise SystemExit(f"--edges: at least 2 per job ({2 * jobs:,} for {assets:,} assets)")
    shape = Shape(assets=assets, datasets=datasets, jobs=jobs)
    shape.layer_of = [i * LAYERS // datasets for i in range(datasets)]
    by_layer: list[list[int]] = [[] for _ in range(LAYERS)]
    for i, layer in enumerate(shape.layer_of):
        by_layer[layer].append(i)
    for _ in range(datasets):
        count = rng.randint(3, 8)
        shape.fields_of.append([(f"col_{k}", rng.choice(TYPES)) for k in range(count)])
    shape.deleted = set(range(7, datasets, 1000))
    base, extra = divmod(edges, jobs)
    for j in range(jobs):
        n = base + (1 if j < extra else 0)
        writes = max(1, n // 3)
        reads = n - writes
        layer = 1 + j % (LAYERS - 1)
        outputs = rng.sample(by_layer[layer], min(writes, len(by_layer[layer])))
        inputs: set[int] = set()
        while len(inputs) < reads:
            near = rng.random() < 0.7
            pool = by_layer[layer - 1] if near else by_layer[rng.randrange(0, layer)]
            inputs.add(rng.choice(pool))
        shape.job_io.append((sorted(inputs), outputs))
        shape.edges += len(inputs) + len(outputs)
    return shape


def _text(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    s = str(value)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: Iterator[tuple]) -> int:
    count = 0
    buf = io.StringIO()
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            buf.write("\t".join(map(_text, row)))
            buf.write("\n")
            count += 1
            if count % BATCH == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())
    return count


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _asset_rows(shape: Shape, now: datetime) -> Iterator[tuple]:
    for i in range(shape.datasets):
        ns, name = dataset_key(i)
        uri = asset_uri(ns, name)
        yield (
            i + 1, _sha(uri), ns, name, uri, "dataset", 1, _sha(f"v1 {uri}"),
            i in shape.deleted, False, "openlineage " + "/".join(job_key(i % shape.jobs)),
            '{"openlineage": {}}', now, now, now,
        )  # fmt: skip
    for j in range(shape.jobs):
        ns, name = job_key(j)
        uri = job_uri(ns, name)
        yield (
            shape.job_id(j), _sha(uri), ns, name, uri, "job", 1, _sha(f"v1 {uri}"),
            False, False, "openlineage", "{}", now, now, now,
        )  # fmt: skip


def dataset_definition(fields: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "kind": "dataset",
        "fields": [{"name": n, "type": t, "nullable": True} for n, t in fields],
        "properties": {},
    }


def _version_rows(shape: Shape, now: datetime) -> Iterator[tuple]:
    for i in range(shape.datasets):
        fields = shape.fields_of[i]
        added = [{"name": n, "type": t} for n, t in fields]
        diff = {"added": added, "removed": [], "changed": [], "breaking": False}
        yield (
            i + 1, i + 1, 1, _sha(f"v1 {shape.dataset_uri(i)}"),
            json.dumps(dataset_definition(fields)), json.dumps(diff), False, False,
            "openlineage", now, now,
        )  # fmt: skip
    for j in range(shape.jobs):
        inputs, outputs = shape.job_io[j]
        definition = {
            "kind": "job",
            "fields": [],
            "properties": {
                "inputs": [shape.dataset_uri(i) for i in inputs[:5]],
                "outputs": [shape.dataset_uri(i) for i in outputs[:5]],
            },
        }
        yield (
            shape.job_id(j), shape.job_id(j), 1, _sha(f"v1 {shape.job_uri(j)}"),
            json.dumps(definition), "{}", False, False, "openlineage", now, now,
        )  # fmt: skip


def _field_rows(shape: Shape) -> Iterator[tuple]:
    n = 0
    for i in range(shape.datasets):
        for position, (name, kind) in enumerate(shape.fields_of[i]):
            n += 1
            yield (n, i + 1, i + 1, position, name, kind, True, "{}")


def _edge_rows(shape: Shape, now: datetime) -> Iterator[tuple]:
    n = 0
    for j, (inputs, outputs) in enumerate(shape.job_io):
        job = shape.job_id(j)
        for i in inputs:
            n += 1
            yield (n, i + 1, job, "reads", job, "{}", now)
        for i in outputs:
            n += 1
            yield (n, job, i + 1, "writes", job, "{}", now)


def event_body(shape: Shape, j: int, kind: str, run_id: str, when: datetime) -> str:
    """One OpenLineage RunEvent of job `j`, as canonical JSON (sorted keys, no spaces)."""
    inputs, outputs = shape.job_io[j]
    ns, name = job_key(j)

    def dataset(i: int, schema: bool) -> dict[str, object]:
        dns, dname = dataset_key(i)
        item: dict[str, object] = {"namespace": dns, "name": dname}
        if schema:
            fields = [{"name": n, "type": t} for n, t in shape.fields_of[i][:4]]
            item["facets"] = {
                "schema": {"_producer": PRODUCER, "_schemaURL": FACET_URL, "fields": fields}
            }
        return item

    event = {
        "eventType": kind,
        "eventTime": when.isoformat(),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {
            "runId": run_id,
            "facets": {
                "nominalTime": {
                    "_producer": PRODUCER,
                    "_schemaURL": NOMINAL_URL,
                    "nominalStartTime": when.replace(minute=0, second=0).isoformat(),
                }
            },
        },
        "job": {"namespace": ns, "name": name},
        "inputs": [dataset(i, False) for i in inputs[:2]],
        "outputs": [dataset(i, k == 0) for k, i in enumerate(outputs[:2])],
    }
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()


def _event_rows(shape: Shape, events: int, now: datetime, seed: int) -> Iterator[tuple]:
    rng = random.Random(seed + 1)
    start = now - timedelta(days=90)
    step = timedelta(days=90) / max(events, 1)
    accepted: list[tuple[str, str]] = []
    n = 0
    while n < events:
        j = rng.randrange(shape.jobs)
        run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for kind in ("START", "COMPLETE"):
            if n >= events:
                break
            n += 1
            received = start + step * n
            roll = rng.random()
            if roll < 0.02 and accepted:
                digest, body = accepted[rng.randrange(len(accepted))]
                yield (n, digest, received, body, "duplicate", None, "[]", "http")
                continue
            if roll < 0.025:
                body = '{"eventType": "START", "job": {"namespace": "airflow-prod"}}'
                error = "job.name: is required (a non-empty string)"
                yield (n, _sha(body), received, body, "rejected", error, "[]", "http")
                continue
            body = event_body(shape, j, kind, run_id, received)
            digest = _sha(body)
            if len(accepted) < 10_000:
                accepted.append((digest, body))
            yield (n, digest, received, body, "accepted", None, "[]", "http")


def _secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(name, definition) of the indexes on the filled tables that back no constraint."""
    rows = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)"
        " FROM pg_index i WHERE i.indrelid::regclass::text = ANY(%s)"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        (list(TABLES),),
    ).fetchall()
    return [(str(name), str(ddl)) for name, ddl in rows]


def build(
    url: str,
    assets: int,
    edges: int,
    events: int,
    seed: int = 0,
    say: Callable[[str, float], None] | None = None,
) -> Shape:
    """Fill the (migrated, empty) catalog at `url`; timings per step in `shape.timings`."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    t0 = time.perf_counter()
    shape = plan(assets, edges, seed)
    shape.events = events
    shape.timings["plan"] = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = _secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("SET session_replication_role = replica")
        steps: list[tuple[str, str, str, Callable[[], Iterator[tuple]]]] = [
            (
                "asset",
                "asset",
                "id, key_hash, namespace, name, uri, kind, current_version, fingerprint,"
                " deleted, unresolved, origin, observed, observed_at, created_at, updated_at",
                lambda: _asset_rows(shape, now),
            ),
            (
                "asset_version",
                "asset_version",
                "id, asset_id, version, fingerprint, definition, diff, breaking, restored,"
                " origin, valid_from, created_at",
                lambda: _version_rows(shape, now),
            ),
            (
                "asset_field",
                "asset_field",
                "id, version_id, asset_id, position, name, type, nullable, attributes",
                lambda: _field_rows(shape),
            ),
            (
                "edge",
                "edge",
                "id, source_id, target_id, kind, origin_id, fields, created_at",
                lambda: _edge_rows(shape, now),
            ),
            (
                "raw_event",
                "raw_event",
                "id, digest, received_at, body, status, error, warnings, source",
                lambda: _event_rows(shape, events, now, seed),
            ),
        ]
        for label, table, columns, rows in steps:
            t = time.perf_counter()
            count = _copy(conn, table, columns, rows())
            shape.timings[label] = time.perf_counter() - t
            if say:
                say(f"build: COPY {count:,} rows into {table}", shape.timings[label])
        conn.execute("SET session_replication_role = origin")
        conn.execute("SET maintenance_work_mem = '256MB'")
        t = time.perf_counter()
        for _, ddl in indexes:
            conn.execute(ddl)
        for table in TABLES:  # the ids go on from where the COPY left them
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        shape.timings["indexes"] = time.perf_counter() - t
        if say:
            say(f"build: {len(indexes)} secondary indexes created again", shape.timings["indexes"])
        t = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        shape.timings["analyze"] = time.perf_counter() - t
    return shape
