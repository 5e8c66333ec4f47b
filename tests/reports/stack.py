"""A small but realistic AI stack, built through steward's real write paths.

Postgres-like tables and a view (the table later drops a column the view
reads), a Qdrant collection embedded from the view with an older revision of
the model queries use now, a RAG app reading it, a native feature set whose
online side computes a feature differently and whose samples have drifted,
a churn model trained on it, one OpenLineage run, then `steward check`.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.embeddings import bind, register_model, use_model
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
from lineage.findings import check, record
from lineage.ingest import Ingester, read_path
from lineage.rules import Finding

PG = "postgres://db.internal:5432"
QDRANT = "qdrant://qdrant.internal:6333"
MLFLOW = "mlflow://mlflow.internal:5000"
HOSTILE = ("<script>alert(1)</script>", "</script><img src=x onerror=alert(1)>")

FEATURES = """
[entities.user_id]
join_keys = ["user_id"]

[feature_sets.user_activity]
entities = ["user_id"]
source = "postgres://db.internal:5432/shop.public.events"
owner = "ml-platform"
description = "Activity aggregates per user"

[feature_sets.user_activity.features.clicks_7d]
dtype = "int64"
offline = "count(*) FILTER (WHERE kind = 'click' AND ts > now() - interval '7 days')"
online = "count(*) FILTER (WHERE kind = 'click' AND ts > now() - interval '7 days')"

[feature_sets.user_activity.features.country]
dtype = "string"
offline = "coalesce(country, 'unknown')"
online = "coalesce(country, '')"

[models.churn]
features = ["user_activity"]
trained_on = { user_activity = 1 }
"""


def _table(name: str, *columns: tuple[str, str], **kw: object) -> AssetSpec:
    return AssetSpec(
        namespace=PG,
        name=name,
        kind=str(kw.pop("kind", "table")),
        fields=[FieldSpec(name=n, type=t) for n, t in columns],
        **kw,
    )


def documents(version: int) -> AssetSpec:
    columns = [("id", "bigint"), ("title", "text"), ("body", "text"), ("lang", "text")]
    if version > 1:
        columns = [c for c in columns if c[0] != "lang"] + [("updated_at", "timestamptz")]
    return _table("shop.public.documents", *columns, description="Help-centre articles")


def steward(store: Store, *args: str) -> None:
    result = CliRunner().invoke(cli, ["--catalog", store.url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _events(path: Path) -> Path:
    def event(kind: str, when: str, outputs: bool) -> dict[str, object]:
        out: dict[str, object] = {
            "eventType": kind,
            "eventTime": when,
            "producer": "https://example.com/airflow",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": "3f1c8a52-6a4e-4c1e-9a53-0c2b8d1e7f01"},
            "job": {"namespace": "airflow", "name": "rag.embed_documents"},
            "inputs": [{"namespace": PG, "name": "shop.public.documents_clean"}],
            "outputs": [{"namespace": QDRANT, "name": "docs_chunks"}] if outputs else [],
        }
        return out

    path.write_text(
        "\n".join(
            json.dumps(e)
            for e in (
                event("START", "2026-11-20T02:00:00Z", False),
                event("COMPLETE", "2026-11-20T02:04:10Z", True),
            )
        )
        + "\n"
    )
    return path


def build_stack(store: Store, tmp: Path, hostile: bool = False) -> None:
    """Write the demo stack into `store` and run the rules over it."""
    view = _table(
        "shop.public.documents_clean",
        ("id", "bigint"),
        ("body", "text"),
        ("lang", "text"),
        kind="view",
        edges=[
            EdgeSpec(
                source_namespace=PG,
                source_name="shop.public.documents",
                kind="view_dependency",
                fields={"id": ["id"], "body": ["body"], "lang": ["lang"]},
            )
        ],
    )
    events = _table("shop.public.events", ("user_id", "bigint"), ("kind", "text"), ("ts", "ts"))
    collection = AssetSpec(
        namespace=QDRANT,
        name="docs_chunks",
        kind="collection",
        fields=[
            FieldSpec(name="id", type="uuid"),
            FieldSpec(
                name="dense",
                type="vector(384)",
                attributes={"vector": True, "dim": 384, "distance": "cosine"},
            ),
            FieldSpec(name="text", type="keyword"),
        ],
        properties={"shard_number": 1},
        observed={"points": 48210},
        edges=[
            EdgeSpec(
                source_namespace=PG,
                source_name="shop.public.documents_clean",
                kind="embedded_from",
            )
        ],
    )
    rag = AssetSpec(
        namespace=MLFLOW,
        name="support-rag",
        kind="model",
        description="Support assistant: retrieves help articles for answers",
        edges=[EdgeSpec(source_namespace=QDRANT, source_name="docs_chunks", kind="reads")],
    )
    apply(store, [documents(1), view, events], origin=f"scan {PG}")
    register_model(store, "all-MiniLM-L6-v2", "1", 384, "cosine")
    register_model(store, "all-MiniLM-L6-v2", "2", 384, "cosine")
    apply(store, [collection], origin=f"scan {QDRANT}")
    apply(store, [rag], origin=f"scan {MLFLOW}")
    bind(store, "docs_chunks", "all-MiniLM-L6-v2@1")
    use_model(store, "all-MiniLM-L6-v2", "2")
    apply(store, [documents(2)], origin=f"scan {PG}")
    # Native feature definitions with value samples that disagree.
    repo = tmp / "features.toml"
    repo.write_text(FEATURES)
    steward(store, "scan", str(repo))
    offline, online = tmp / "offline.csv", tmp / "online.ndjson"
    offline.write_text(
        "user_id,clicks_7d,country\n"
        + "".join(f"{i},{3 + i % 7},{'de' if i % 3 else 'fr'}\n" for i in range(300))
    )
    online.write_text(
        "".join(
            json.dumps({"user_id": i, "clicks_7d": 0 if i % 2 else 3 + i % 7, "country": ""}) + "\n"
            for i in range(300)
        )
    )
    steward(
        store,
        "features",
        "sample",
        "user_activity",
        "--offline",
        str(offline),
        "--online",
        str(online),
    )
    Ingester(store).ingest_stream(read_path(str(_events(tmp / "events.ndjson"))), lambda r, s: None)
    if hostile:
        add_hostile(store)
    check(store)
    if hostile:
        add_hostile_finding(store)


def add_hostile(store: Store) -> None:
    """Assets whose names, fields and properties are markup."""
    a, b = HOSTILE
    specs = [
        AssetSpec(
            namespace=PG,
            name=name,
            kind="table",
            description=other,
            fields=[FieldSpec(name=other, type=name)],
            properties={other: name},
            edges=[EdgeSpec(source_namespace=PG, source_name="shop.public.documents")],
        )
        for name, other in ((a, b), (b, a))
    ]
    apply(store, specs, origin=a)


def add_hostile_finding(store: Store) -> None:
    a, b = HOSTILE
    uris = [f"{PG}/{a}", f"{PG}/{b}"]
    finding = Finding(
        rule="breaking_schema_change",
        severity="error",
        assets=uris,
        title=f"{a} {b}",
        evidence={a: b, "readers": [b]},
        remedy=f"{b} {a}",
        key=a,
    )
    with store.write() as conn:
        record(conn, [finding], [])
