"""Each rule fires on a real scenario built with the real connectors, and not on its twin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams

from catalog.cli import cli
from tests.connectors.pg_helpers import execute
from tests.pg import database_url, temporary_database


class Catalog:
    """A catalog in a temp dir, driven through the CLI as a user would."""

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path / 'catalog.db'}"

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--catalog", self.url, *args], catch_exceptions=False)

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result

    def check(self, *rules: str) -> list[dict[str, Any]]:
        args = [a for r in rules for a in ("--rule", r)]
        result = self.run("check", "--json", "--fail-on", "info", *args)
        assert result.exit_code in (0, 1), result.output
        findings: list[dict[str, Any]] = json.loads(result.stdout)
        assert (result.exit_code == 1) == bool(findings)
        return findings


@pytest.fixture
def steward(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path)


def collection(
    path: Path,
    name: str,
    vectors: np.ndarray,
    metadata: dict[str, Any] | None = None,
    payloads: list[dict[str, Any]] | None = None,
    size: int | None = None,
    on_disk: bool | None = None,
) -> None:
    client = QdrantClient(path=str(path))
    try:
        if client.collection_exists(name):
            client.delete_collection(name)
        client.create_collection(
            name,
            vectors_config=VectorParams(
                size=size or vectors.shape[1], distance=Distance.COSINE, on_disk=on_disk
            ),
            metadata=metadata,
        )
        client.upsert(
            name,
            [
                PointStruct(id=i, vector=v.tolist(), payload=(payloads or [{}] * len(vectors))[i])
                for i, v in enumerate(vectors)
            ],
        )
    finally:
        client.close()


def vectors(n: int = 300, d: int = 16, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d)) + 1.0
    base[:, 0] += shift
    return base.astype(np.float32)


def models(steward: Catalog, dim: int = 16) -> None:
    for revision in ("1", "2"):
        steward.ok(
            "models",
            "register",
            "m",
            "--revision",
            revision,
            "--dim",
            str(dim),
            "--distance",
            "cosine",
        )
    steward.ok("models", "use", "m", "2")


# -- stale embeddings and mismatch: Qdrant local mode + the model registry ------------------


def test_stale_embeddings(steward: Catalog, tmp_path: Path) -> None:
    store = tmp_path / "qdrant"
    collection(store, "old", vectors(), {"embedding_model": "m", "embedding_revision": "1"})
    collection(store, "fresh", vectors(), {"embedding_model": "m", "embedding_revision": "2"})
    models(steward)
    steward.ok("scan", f"qdrant+local://{store}")
    findings = steward.check("stale_embeddings")
    assert [f["assets"][0] for f in findings] == [f"qdrant+local://{store}/old"]  # not "fresh"
    (f,) = findings
    assert f["severity"] == "error"
    assert f["evidence"]["in_use"] == "2" and f["evidence"]["built_with"] == ["m@1"]
    assert "Re-embed old with m@2" in f["remedy"]
    # The graph knows which model built the index.
    up = json.loads(steward.ok("lineage", "upstream", "old", "--json").stdout)
    assert [(e["source"], e["kind"]) for e in up["edges"]] == [
        (f["assets"][1], "embedded_by_model")
    ]


def test_partial_reindex_reports_the_share(steward: Catalog, tmp_path: Path) -> None:
    store = tmp_path / "qdrant"
    payloads = [
        {"embedding_model": "m", "embedding_revision": "2" if i % 4 else "1"} for i in range(200)
    ]
    collection(store, "docs", vectors(200), payloads=payloads)
    models(steward)
    steward.ok("scan", f"qdrant+local://{store}")
    (f,) = steward.check("stale_embeddings")
    assert f["evidence"]["partial_reindex"] is True
    assert f["evidence"]["share_in_use"] == pytest.approx(0.75, abs=0.01)


def test_dimension_mismatch(steward: Catalog, tmp_path: Path) -> None:
    store = tmp_path / "qdrant"
    collection(store, "docs", vectors(d=16), {"embedding_model": "m", "embedding_revision": "2"})
    models(steward, dim=16)
    steward.ok("scan", f"qdrant+local://{store}")
    assert steward.check("embedding_mismatch") == []  # the clean twin: 16 = 16
    steward.ok("models", "register", "m", "--revision", "3", "--dim", "32", "--distance", "cosine")
    collection(store, "docs", vectors(d=16), {"embedding_model": "m", "embedding_revision": "3"})
    steward.ok("scan", f"qdrant+local://{store}")
    (f,) = steward.check("embedding_mismatch")
    assert f["evidence"]["dimension"] == {"index": 16, "model": 32}


# -- distribution drift: baseline samples from scans ---------------------------------------


def test_embedding_drift(steward: Catalog, tmp_path: Path) -> None:
    store = tmp_path / "qdrant"
    collection(store, "docs", vectors(400, seed=1))
    steward.ok("scan", f"qdrant+local://{store}")
    collection(store, "docs", vectors(400, seed=2))  # same distribution, new vectors
    steward.ok("scan", f"qdrant+local://{store}", "--profile")
    assert steward.check("embedding_drift") == []
    collection(store, "docs", vectors(400, shift=3.0, seed=3))  # the content moved
    steward.ok("scan", f"qdrant+local://{store}", "--profile")
    (f,) = steward.check("embedding_drift")
    assert f["severity"] in ("warning", "error")
    assert f["evidence"]["p_value"] < 0.01


def test_drift_says_what_the_new_version_changed(steward: Catalog, tmp_path: Path) -> None:
    """The diff of a drifting index's version is read for it alone (a check keeps no
    diff of versions that break nothing)."""
    store = tmp_path / "qdrant"
    collection(store, "docs", vectors(400, seed=1))
    steward.ok("scan", f"qdrant+local://{store}", "--profile")
    collection(store, "docs", vectors(400, shift=3.0, seed=3), on_disk=True)
    steward.ok("scan", f"qdrant+local://{store}", "--profile")
    (f,) = steward.check("embedding_drift")
    assert f["evidence"]["baseline_version"] == 1 and f["evidence"]["current_version"] == 2
    assert f["evidence"]["version_changes"].startswith("vector.on_disk: False -> True")
    assert "v2 changed" in f["title"]


# -- source newer than index: a PostgreSQL table and the collection embedded from it ----------


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database("steward_rules") as name:
        execute(name, "CREATE TABLE docs (id int PRIMARY KEY, body text, amount numeric)")
        yield name


def test_source_newer_than_index(steward: Catalog, tmp_path: Path, database: str) -> None:
    pg = database_url(database, "postgres")
    source = f"{pg.rsplit('@', 1)[1].split('/')[0]}"
    store = tmp_path / "qdrant"
    steward.ok("scan", pg)
    collection(
        store,
        "docs",
        vectors(),
        {
            "embedding_model": "m",
            "embedding_revision": "2",
            "embedding_source": f"postgres://{source}/{database}.public.docs",
        },
    )
    steward.ok("scan", f"qdrant+local://{store}")
    assert steward.check("source_newer_than_index") == []
    execute(database, "ALTER TABLE docs ADD COLUMN title text")
    steward.ok("scan", pg)
    (f,) = steward.check("source_newer_than_index")
    assert f["assets"][1].endswith(f"{database}.public.docs")
    assert f["evidence"]["source_version"] == 2


def test_breaking_schema_change_reaches_a_feature_reading_the_column(
    steward: Catalog, tmp_path: Path, database: str
) -> None:
    pg = database_url(database, "postgres")
    host = pg.rsplit("@", 1)[1].split("/")[0]
    features = tmp_path / "features.toml"
    features.write_text(f"""
[feature_sets.spend]
entities = ["id"]
source = "postgres://{host}/{database}.public.docs"
[feature_sets.spend.features.total]
dtype = "float64"
offline = "sum(amount)"
online = "sum(amount)"
""")
    steward.ok("scan", pg)
    steward.ok("scan", str(features))
    execute(database, "ALTER TABLE docs DROP COLUMN body")  # nobody reads body
    steward.ok("scan", pg)
    assert steward.check("breaking_schema_change") == []
    execute(database, "ALTER TABLE docs DROP COLUMN amount")  # the feature reads amount
    steward.ok("scan", pg)
    (f,) = steward.check("breaking_schema_change")
    assert f["evidence"]["broken_fields"] == {"amount": "removed"}
    assert f["evidence"]["readers"][0]["uri"].endswith("features.toml/spend")


# -- feature skew and unresolved references: native feature files ----------------------------

FEATURES = """
[feature_sets.activity]
entities = ["user_id"]
source = "postgres://db.internal:5432/shop.public.events"
[feature_sets.activity.features.clicks]
dtype = "int64"
offline = "coalesce(count(*), 0)"
online = "coalesce(count(*), 0)"

[models.churn]
features = ["activity"]
trained_on = { activity = 1 }
"""


def test_feature_definition_skew(steward: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "features.toml"
    path.write_text(FEATURES)
    steward.ok("scan", str(path))
    assert steward.check("feature_definition_skew") == []
    path.write_text(
        FEATURES.replace('online = "coalesce(count(*), 0)"', 'online = "coalesce(count(*), -1)"')
    )
    steward.ok("scan", str(path))
    found = {
        f["evidence"].get("feature") or "version": f
        for f in steward.check("feature_definition_skew")
    }
    assert set(found) == {"clicks", "version"}
    assert found["version"]["evidence"]["changed_features"] == ["clicks"]
    assert found["version"]["evidence"]["trained_on_version"] == 1
    assert "-1" in found["clicks"]["evidence"]["online"]
    # The model is put at risk by the skew of what it reads.
    assert any(r["uri"].endswith("features.toml/churn") for r in found["clicks"]["at_risk"])


def test_feature_value_skew(steward: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "features.toml"
    path.write_text(FEATURES)
    steward.ok("scan", str(path))
    rng = np.random.default_rng(0)
    clicks = rng.poisson(5, 500)
    offline = tmp_path / "offline.csv"
    offline.write_text("user_id,clicks\n" + "".join(f"{i},{c}\n" for i, c in enumerate(clicks)))
    same = tmp_path / "same.csv"
    same.write_text(offline.read_text())
    steward.ok("features", "sample", "activity", "--offline", str(offline), "--online", str(same))
    assert steward.check("feature_value_skew") == []
    # Serving fills missing values with -1 where training counted 0.
    filled = tmp_path / "filled.csv"
    filled.write_text(
        "user_id,clicks\n"
        + "".join(f"{i},{-1 if c == 0 or i % 3 == 0 else c}\n" for i, c in enumerate(clicks))
    )
    steward.ok("features", "sample", "activity", "--offline", str(offline), "--online", str(filled))
    (f,) = steward.check("feature_value_skew")
    assert f["evidence"]["feature"] == "clicks" and f["severity"] == "warning"
    assert f["evidence"]["mismatch_share"] > 0.3


def test_unresolved_reference(steward: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "features.toml"
    path.write_text(FEATURES)
    steward.ok("scan", str(path))
    (f,) = steward.check("unresolved_reference")
    assert f["assets"] == ["postgres://db.internal:5432/shop.public.events"]
    assert f["severity"] == "info"
    path.write_text(
        FEATURES.replace('source = "postgres://db.internal:5432/shop.public.events"\n', "")
    )
    steward.ok("scan", str(path))
    assert steward.check("unresolved_reference") == []


def test_findings_are_resolved_when_fixed_and_check_gates(steward: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "features.toml"
    path.write_text(FEATURES.replace('online = "coalesce(count(*), 0)"', 'online = "count(*)"'))
    steward.ok("scan", str(path))
    gate = steward.run("check", "--rule", "feature_definition_skew")
    assert gate.exit_code == 1
    assert (
        steward.run("check", "--fail-on", "error", "--rule", "unresolved_reference").exit_code == 0
    )
    # Fixed, and the model retrained on the fixed version: only the info finding is left.
    path.write_text(FEATURES.replace("activity = 1", "activity = 2"))
    steward.ok("scan", str(path))
    assert steward.run("check").exit_code == 0
    history = json.loads(steward.ok("findings", "--all", "--json").stdout)
    resolved = [f for f in history if f["status"] == "resolved"]
    assert resolved and all(f["resolved_at"] for f in resolved)
    open_ = json.loads(steward.ok("findings", "--json").stdout)
    assert [f["rule"] for f in open_] == ["unresolved_reference"]


def test_unknown_rule_is_a_usage_error(steward: Catalog) -> None:
    result = steward.run("check", "--rule", "nope")
    assert result.exit_code == 2


# -- OpenLineage events: a breaking change reaching a reader through column lineage ----------


def _event(
    run: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], minute: int
) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": f"2026-01-01T00:{minute:02d}:00Z",
        "run": {"runId": run},
        "job": {"namespace": "etl", "name": "build_orders_summary"},
        "inputs": inputs,
        "outputs": outputs,
        "producer": "https://example.com/etl",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def _dataset(
    name: str, fields: list[str], lineage: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    facets: dict[str, Any] = {"schema": {"fields": [{"name": f, "type": "int"} for f in fields]}}
    if lineage:
        facets["columnLineage"] = {
            "fields": {
                target: {
                    "inputFields": [
                        {"namespace": "s3://lake", "name": "orders", "field": f} for f in sources
                    ]
                }
                for target, sources in lineage.items()
            }
        }
    return {"namespace": "s3://lake", "name": name, "facets": facets}


def test_breaking_change_through_openlineage_column_lineage(
    steward: Catalog, tmp_path: Path
) -> None:
    summary = _dataset("orders_summary", ["total"], {"total": ["amount"]})
    first = [
        _event(
            "11111111-1111-4111-8111-111111111111",
            [_dataset("orders", ["id", "amount", "note"])],
            [summary],
            1,
        )
    ]
    events = tmp_path / "events.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in first))
    steward.ok("ingest", str(events))
    # The producer drops a column nobody reads: not breaking for anyone downstream.
    later = [
        _event(
            "22222222-2222-4222-8222-222222222222",
            [_dataset("orders", ["id", "amount"])],
            [summary],
            2,
        )
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in later))
    steward.ok("ingest", str(events))
    assert steward.check("breaking_schema_change") == []
    # Then the column the summary is computed from.
    last = [
        _event("33333333-3333-4333-8333-333333333333", [_dataset("orders", ["id"])], [summary], 3)
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in last))
    steward.ok("ingest", str(events))
    (f,) = steward.check("breaking_schema_change")
    assert f["assets"][0] == "s3://lake/orders"
    assert f["evidence"]["broken_fields"] == {"amount": "removed"}
    readers = {r["uri"]: r["fields"] for r in f["evidence"]["readers"]}
    assert readers.get("s3://lake/orders_summary") == ["amount"]
