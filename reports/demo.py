"""`steward demo`: a small but realistic AI stack, built and checked end to end.

Everything is deterministic and local: a synthetic embedding model (a fixed
random map seeded by its name and revision: no download), two Qdrant
collections in local storage (one built with `demo-embed@1` while `@2` is
in use: stale), a native feature file with skew planted in it, the
OpenLineage events of the pipelines that tie them together (ingested through
the same code as `steward ingest`), and, when a PostgreSQL server answers,
a source schema scanned like any other. Then the rules run and the report is
written. Running it again in the same folder changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from catalog.db import Store
from catalog.embeddings import register_model, use_model
from catalog.errors import SourceUnavailable, StewardError
from connectors.scanning import run_scan

MODEL = "demo-embed"
DIM = 64
DOCS_PER_COLLECTION = 1500
JOB_NAMESPACE = "demo-pipelines"
EPOCH = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
TOPICS = ("billing", "login", "shipping", "returns", "privacy", "pricing", "api", "mobile")
WORDS = (
    "error",
    "refund",
    "invoice",
    "password",
    "parcel",
    "delay",
    "discount",
    "token",
    "account",
    "update",
    "crash",
    "export",
    "limit",
    "plan",
    "address",
    "warranty",
)


@dataclass
class DemoResult:
    directory: Path
    report: Path
    catalog_url: str
    findings: list[dict[str, Any]]
    postgres: str | None
    skipped: list[str] = field(default_factory=list)
    fresh: bool = True


class DemoEmbedder:
    """A deterministic stand-in for an embedding model: no weights, no download.

    A text is the sum of its tokens' fixed random vectors plus a shared
    direction (so unrelated texts have cosine about 0.3, as real models do),
    mapped through a matrix seeded by the model name; a revision perturbs
    that matrix slightly (the same text under revisions 1 and 2 has cosine
    about 0.98).
    """

    def __init__(self, name: str, revision: str, dim: int = DIM) -> None:
        self.dim = dim
        self._tokens: dict[str, Any] = {}
        base = np.random.default_rng(_seed(name))
        self.common = base.standard_normal(dim)
        self.matrix = np.eye(dim) + 0.05 * base.standard_normal((dim, dim))
        if revision != "1":
            tweak = np.random.default_rng(_seed(f"{name}@{revision}"))
            self.matrix = self.matrix + 0.2 * tweak.standard_normal((dim, dim)) / np.sqrt(dim)

    def token(self, word: str) -> Any:
        vector = self._tokens.get(word)
        if vector is None:  # a small vocabulary: each word's generator runs once
            vector = np.random.default_rng(_seed(word)).standard_normal(self.dim)
            self._tokens[word] = vector
        return vector

    def embed(self, text: str) -> Any:
        tokens = re.findall(r"\w+", text.lower())
        raw = sum((self.token(t) for t in tokens), np.zeros(self.dim)) / max(len(tokens), 1)
        vector = self.matrix @ (raw + 0.9 * self.common)
        return vector / np.linalg.norm(vector)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def documents(kind: str, count: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(_seed(kind))
    out = []
    for i in range(count):
        topic = TOPICS[int(rng.integers(len(TOPICS)))]
        words = " ".join(WORDS[int(w)] for w in rng.integers(len(WORDS), size=6))
        out.append({"id": i, "topic": topic, "text": f"{kind} {topic} {words}"})
    return out


# -- the parts of the stack ------------------------------------------------------------------


def build_collections(
    path: Path, chunks_uri: str, say: Callable[[str], None] = lambda _: None
) -> None:
    """support_docs built with demo-embed@1 (stale), product_docs with @2 (clean).

    Qdrant's local mode commits each point to its SQLite file on its own,
    which waits on the disk about three times per point. The demo's
    collections are new files: they are created in SQLite's WAL mode (kept
    in the file) and written without a sync per commit, so the 3,000
    points cost one write each instead of three disk flushes.
    """
    from qdrant_client import QdrantClient
    from qdrant_client.models import Distance, PointStruct, VectorParams

    for name, _ in COLLECTIONS:
        _prepare_storage(path / "collection" / name)
    client = QdrantClient(path=str(path))
    try:
        for name, revision in COLLECTIONS:
            if client.collection_exists(name):
                continue
            model = DemoEmbedder(MODEL, revision)
            client.create_collection(
                name,
                vectors_config=VectorParams(size=DIM, distance=Distance.COSINE),
                metadata={
                    "embedding_model": MODEL,
                    "embedding_revision": revision,
                    "embedding_source": chunks_uri,
                },
            )
            _fewer_syncs(client, name)
            docs = documents(name, DOCS_PER_COLLECTION)
            points = [
                PointStruct(
                    id=d["id"],
                    vector=model.embed(d["text"]).tolist(),
                    payload={"topic": d["topic"], "text": d["text"]},
                )
                for d in docs
            ]
            for start in range(0, len(points), UPSERT_BATCH):
                batch = points[start : start + UPSERT_BATCH]
                client.upsert(name, batch, wait=True)
                say(f"  {name}: {start + len(batch):,} of {len(points):,} points written")
    finally:
        client.close()


#: The demo's collections: name, the revision of demo-embed that built it.
COLLECTIONS = (("support_docs", "1"), ("product_docs", "2"))
UPSERT_BATCH = 500


def _prepare_storage(directory: Path) -> None:
    """A new collection's SQLite file, in WAL mode (a setting the file keeps)."""
    storage = directory / "storage.sqlite"
    if storage.exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(storage)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()


def _fewer_syncs(client: Any, name: str) -> None:
    """No disk sync per committed point (WAL with synchronous NORMAL stays consistent
    after a crash; the demo can be built again). The local client keeps its
    SQLite connection private: when its shape differs, points are written
    the slower, default way."""
    collection = getattr(getattr(client, "_client", None), "collections", {}).get(name)
    conn = getattr(getattr(collection, "storage", None), "storage", None)
    if isinstance(conn, sqlite3.Connection):
        conn.execute("PRAGMA synchronous = NORMAL")


def feature_file(source: str, clicks_online: str, sessions: str, trained: int) -> str:
    return f"""# steward demo: two feature sets and the two models that read them.

[entities.user]
join_keys = ["user_id"]

[feature_sets.user_activity]
entities = ["user"]
source = "{source}"
owner = "ml-platform"
description = "What each user did in the last week"

[feature_sets.user_activity.features.clicks_7d]
dtype = "int64"
offline = "coalesce(count(*) FILTER (WHERE kind = 'click'), 0)"
online = "{clicks_online}"

[feature_sets.user_activity.features.sessions_7d]
dtype = "int64"
offline = "{sessions}"
online = "{sessions}"

[feature_sets.user_profile]
entities = ["user"]
source = "{source}"
owner = "ml-platform"

[feature_sets.user_profile.features.country]
dtype = "string"
offline = "coalesce(country, 'unknown')"
online = "coalesce(country, 'unknown')"

[models.churn]
features = ["user_activity", "user_profile"]
trained_on = {{ user_activity = {trained}, user_profile = 1 }}
owner = "growth-ml"

[models.ltv]
features = ["user_profile"]
trained_on = {{ user_profile = 1 }}
owner = "finance-ml"
"""


CLICKS = "coalesce(count(*) FILTER (WHERE kind = 'click'), 0)"
CLICKS_SKEWED = "coalesce(count(*) FILTER (WHERE kind = 'click'), -1)"
SESSIONS_V1 = "count(DISTINCT session_id)"
SESSIONS_V2 = "count(DISTINCT session_id) FILTER (WHERE duration > interval '10 seconds')"


def feature_samples(directory: Path) -> tuple[Path, Path]:
    """Offline and online samples of user_activity: serving fills missing clicks with -1."""
    rng = np.random.default_rng(7)
    clicks = rng.poisson(3, 400)
    sessions = rng.poisson(5, 400)
    offline, online = directory / "training_sample.csv", directory / "serving_sample.csv"
    offline.write_text(
        "user_id,clicks_7d,sessions_7d\n"
        + "".join(f"{i},{c},{s}\n" for i, (c, s) in enumerate(zip(clicks, sessions, strict=True)))
    )
    online.write_text(
        "user_id,clicks_7d,sessions_7d\n"
        + "".join(
            f"{i},{-1 if c == 0 else c},{s}\n"
            for i, (c, s) in enumerate(zip(clicks, sessions, strict=True))
        )
    )
    return offline, online


PRODUCER = "https://github.com/steward/demo"
SCHEMA_FACET = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"


def _dataset(namespace: str, name: str, schema: list[tuple[str, str]]) -> dict[str, Any]:
    item: dict[str, Any] = {"namespace": namespace, "name": name}
    if schema:
        fields = [{"name": n, "type": t} for n, t in schema]
        item["facets"] = {
            "schema": {"_producer": PRODUCER, "_schemaURL": SCHEMA_FACET, "fields": fields}
        }
    return item


def lineage_events(
    directory: Path,
    qdrant: str,
    features_ns: str,
    documents_uri: tuple[str, str],
    events_uri: tuple[str, str],
) -> list[dict[str, Any]]:
    """START and COMPLETE of each pipeline, at fixed times, with stable run ids."""
    data = f"file://{directory / 'data'}"
    chunks = ("file", str(directory / "data" / "chunks.parquet"))
    raw = ("file", str(directory / "data" / "documents.parquet"))
    chunk_schema = [("chunk_id", "bigint"), ("document_id", "bigint"), ("text", "text")]
    jobs: list[tuple[str, list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]]
    jobs = [
        (
            "ingest_documents",
            [documents_uri],
            [raw],
            [("document_id", "bigint"), ("title", "text"), ("body", "text")],
        ),
        ("chunk_documents", [raw], [chunks], chunk_schema),
        ("embed_support_docs", [chunks], [(qdrant, "support_docs")], []),
        ("embed_product_docs", [chunks], [(qdrant, "product_docs")], []),
        (
            "compute_user_features",
            [events_uri],
            [(features_ns, "user_activity"), (features_ns, "user_profile")],
            [],
        ),
        (
            "train_churn",
            [(features_ns, "user_activity"), (features_ns, "user_profile")],
            [(features_ns, "churn")],
            [],
        ),
    ]
    out = []
    for i, (job, inputs, outputs, schema) in enumerate(jobs):
        run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{data}/{job}"))
        start = EPOCH + timedelta(minutes=10 * i)
        for event_type, at in (("START", start), ("COMPLETE", start + timedelta(minutes=4))):
            with_schema = schema if event_type == "COMPLETE" else []
            out.append(
                {
                    "eventType": event_type,
                    "eventTime": at.isoformat().replace("+00:00", "Z"),
                    "run": {"runId": run_id},
                    "job": {"namespace": JOB_NAMESPACE, "name": job},
                    "inputs": [_dataset(ns, n, []) for ns, n in inputs],
                    "outputs": [_dataset(ns, n, with_schema) for ns, n in outputs],
                    "producer": PRODUCER,
                    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                }
            )
    return out


POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON TABLE documents IS 'Help-center articles: the texts behind the support index';
CREATE TABLE IF NOT EXISTS events (
    user_id bigint NOT NULL, session_id uuid NOT NULL, kind text NOT NULL,
    duration interval, country text, ts timestamptz NOT NULL);
CREATE OR REPLACE VIEW daily_clicks AS
    SELECT user_id, date_trunc('day', ts) AS day, count(*) AS clicks
    FROM events WHERE kind = 'click' GROUP BY 1, 2;
"""


def prepare_postgres(admin_url: str, database: str) -> str:
    """Create the demo's own database and its small source schema; its scan URL."""
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{database}"')
        info = psycopg.conninfo.conninfo_to_dict(admin_url)
        target = psycopg.conninfo.make_conninfo(admin_url, dbname=database)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(POSTGRES_SCHEMA)
    except psycopg.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceUnavailable(f"PostgreSQL: {first}") from None
    user = info.get("user") or "postgres"
    host = info.get("host") or "127.0.0.1"
    port = info.get("port") or "5432"
    return f"postgres://{user}@{host}:{port}/{database}"


# -- the whole demo -----------------------------------------------------------------------


def run_demo(
    directory: Path,
    postgres: str | None,
    render: Callable[[Store, Path], object],
    say: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    """Build the stack in `directory`, scan and ingest it, check it and write the report."""
    from lineage.findings import check
    from lineage.ingest import Ingester

    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    catalog_url = f"sqlite:///{directory / 'steward.db'}"
    say(f"opening the catalog {directory / 'steward.db'}")
    store = Store(catalog_url)
    fresh = not (directory / ".built").exists()
    skipped: list[str] = []

    pg_url: str | None = None
    if postgres:
        say("preparing the source database steward_demo in PostgreSQL")
        try:
            pg_url = prepare_postgres(postgres, "steward_demo")
        except StewardError as err:
            skipped.append(f"PostgreSQL part skipped: {err}")
    else:
        skipped.append("PostgreSQL part skipped: no server given (--postgres URL)")
    if pg_url:
        ns = "postgres://" + pg_url.rsplit("@", 1)[1].rsplit("/", 1)[0]
        documents_uri = (ns, "steward_demo.public.documents")
        events_uri = (ns, "steward_demo.public.events")
        say(f"scanning {pg_url}")
        run_scan(lambda: store, pg_url)
    else:
        documents_uri = ("file", str(directory / "data" / "help_center.jsonl"))
        events_uri = ("file", str(directory / "data" / "events.parquet"))
    source_uri = (
        f"{events_uri[0]}/{events_uri[1]}" if events_uri[0] != "file" else f"file://{events_uri[1]}"
    )

    say("registering the embedding model demo-embed@1 and @2 (in use: @2)")
    for revision in ("1", "2"):  # registering a known revision again is a no-op
        register_model(store, MODEL, revision, DIM, "cosine", True, "local")
    use_model(store, MODEL, "2")

    qdrant_path = directory / "qdrant"
    chunks_uri = f"file://{directory / 'data' / 'chunks.parquet'}"
    say("building two Qdrant collections in local storage")
    build_collections(qdrant_path, chunks_uri, say)
    say("scanning them (configuration, provenance, a baseline sample of vectors)")
    run_scan(lambda: store, f"qdrant+local://{qdrant_path}")

    features = directory / "features.toml"
    if fresh:
        say("writing feature definitions (v1, then v2)")
        features.write_text(feature_file(source_uri, CLICKS, SESSIONS_V1, 1))
        run_scan(lambda: store, str(features))
    features.write_text(feature_file(source_uri, CLICKS_SKEWED, SESSIONS_V2, 1))
    run_scan(lambda: store, str(features))
    features_ns = f"features://{features}"
    if fresh:
        from catalog.queries import resolve
        from catalog.samples import feature_set_version, save_feature_samples
        from connectors.sample_files import read_sample

        offline, online = feature_samples(directory / "data")
        with store.session() as session:
            asset = resolve(session, f"{features_ns}/user_activity")
            version = feature_set_version(session, asset)
        keys, names = ["user_id"], ["clicks_7d", "sessions_7d"]
        with store.write() as conn:
            save_feature_samples(
                conn,
                asset,
                version,
                [
                    read_sample(offline, "offline", keys, names),
                    read_sample(online, "online", keys, names),
                ],
            )

    from reports.demo_mlflow import build_registry

    registry = build_registry(directory, source_uri, say)
    if registry is None:
        skipped.append("MLflow part skipped: pip install 'ai-steward[mlflow]'")
    else:
        say(f"scanning {registry} (models, experiments, runs)")
        run_scan(lambda: store, registry)

    say("ingesting the pipelines' OpenLineage events")
    events_file = directory / "events" / "pipelines.ndjson"
    events_file.parent.mkdir(exist_ok=True)
    events = lineage_events(
        directory, f"qdrant+local://{qdrant_path}", features_ns, documents_uri, events_uri
    )
    events_file.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
    Ingester(store).ingest_path(str(events_file))

    say("running the checks")
    found = [f.to_json() for f in check(store)]
    report = directory / "report.html"
    say(f"writing the report, {report}")
    render(store, report)
    (directory / ".built").write_text("steward demo\n")
    store.dispose()
    return DemoResult(directory, report, catalog_url, found, pg_url, skipped, fresh)
