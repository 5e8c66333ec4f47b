"""The vector-index rules read a Pinecone index as they read a Qdrant collection.

The scenarios of `test_rules` with a Pinecone index (the real SDK against the
API-checked stand-in) in place of the Qdrant collection, each with its clean twin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.connectors.pg_helpers import execute
from tests.connectors.pinecone_standin import PineconeStandIn
from tests.lineage.test_rules import Catalog, database, models, vectors  # noqa: F401

KEY = "pcsk_rules_key"


@pytest.fixture
def steward(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path)


@pytest.fixture
def pinecone(monkeypatch: pytest.MonkeyPatch) -> Iterator[PineconeStandIn]:
    monkeypatch.setenv("STEWARD_PINECONE_API_KEY", KEY)
    standin = PineconeStandIn(KEY)
    yield standin
    standin.close()
    assert standin.problems == [], standin.problems[:5]


def index(
    standin: PineconeStandIn,
    name: str,
    rows: np.ndarray,
    tags: dict[str, str] | None = None,
    metadata: list[dict[str, Any]] | None = None,
    embed: dict[str, Any] | None = None,
) -> None:
    standin.add_index(name, rows.shape[1], tags=tags, embed=embed)
    standin.upsert(name, rows.tolist(), metadata)


def test_stale_embeddings(steward: Catalog, pinecone: PineconeStandIn) -> None:
    index(pinecone, "old", vectors(), {"embedding_model": "m", "embedding_revision": "1"})
    index(pinecone, "fresh", vectors(), {"embedding_model": "m", "embedding_revision": "2"})
    models(steward)
    steward.ok("scan", pinecone.url)
    findings = steward.check("stale_embeddings")
    namespace = f"pinecone://127.0.0.1:{pinecone.port}"
    assert [f["assets"][0] for f in findings] == [f"{namespace}/old"]  # not "fresh"
    (f,) = findings
    assert f["severity"] == "error"
    assert f["evidence"]["in_use"] == "2" and f["evidence"]["built_with"] == ["m@1"]
    assert "Re-embed old with m@2" in f["remedy"]
    up = json.loads(steward.ok("lineage", "upstream", f"{namespace}/old", "--json").stdout)
    assert [(e["source"], e["kind"]) for e in up["edges"]] == [
        (f["assets"][1], "embedded_by_model")
    ]


def test_stale_integrated_embedding(steward: Catalog, pinecone: PineconeStandIn) -> None:
    """Pinecone's hosted model is the provenance; the tag gives the revision."""
    hosted = {"model": "m", "metric": "cosine", "dimension": 16, "field_map": {"text": "body"}}
    index(pinecone, "old", vectors(), {"embedding_revision": "1"}, embed=hosted)
    index(pinecone, "fresh", vectors(), {"embedding_revision": "2"}, embed=hosted)
    models(steward)
    steward.ok("scan", pinecone.url)
    findings = steward.check("stale_embeddings")
    assert [f["assets"][0].rsplit("/", 1)[1] for f in findings] == ["old"]


def test_partial_reindex_reports_the_share(steward: Catalog, pinecone: PineconeStandIn) -> None:
    metadata = [
        {"embedding_model": "m", "embedding_revision": "2" if i % 4 else "1"} for i in range(200)
    ]
    index(pinecone, "docs", vectors(200), metadata=metadata)
    models(steward)
    steward.ok("scan", pinecone.url)
    (f,) = steward.check("stale_embeddings")
    assert f["evidence"]["partial_reindex"] is True
    assert f["evidence"]["share_in_use"] == pytest.approx(0.75, abs=0.01)


def test_dimension_mismatch(steward: Catalog, pinecone: PineconeStandIn) -> None:
    tags = {"embedding_model": "m", "embedding_revision": "2"}
    index(pinecone, "docs", vectors(d=16), tags)
    models(steward, dim=16)
    steward.ok("scan", pinecone.url)
    assert steward.check("embedding_mismatch") == []  # the clean twin: 16 = 16
    steward.ok("models", "register", "m", "--revision", "3", "--dim", "32", "--distance", "cosine")
    index(pinecone, "docs", vectors(d=16), {"embedding_model": "m", "embedding_revision": "3"})
    steward.ok("scan", pinecone.url)
    (f,) = steward.check("embedding_mismatch")
    assert f["evidence"]["dimension"] == {"index": 16, "model": 32}


def test_embedding_drift(steward: Catalog, pinecone: PineconeStandIn) -> None:
    index(pinecone, "docs", vectors(400, seed=1))
    steward.ok("scan", pinecone.url)
    index(pinecone, "docs", vectors(400, seed=2))  # same distribution, new vectors
    steward.ok("scan", pinecone.url, "--profile")
    assert steward.check("embedding_drift") == []
    index(pinecone, "docs", vectors(400, shift=3.0, seed=3))  # the content moved
    steward.ok("scan", pinecone.url, "--profile")
    (f,) = steward.check("embedding_drift")
    assert f["evidence"]["p_value"] < 0.01


def test_source_newer_than_index(
    steward: Catalog,
    pinecone: PineconeStandIn,
    database: str,  # noqa: F811
) -> None:
    from tests.pg import database_url

    pg = database_url(database, "postgres")
    source = pg.rsplit("@", 1)[1].split("/")[0]
    steward.ok("scan", pg)
    tags = {"embedding_model": "m", "embedding_revision": "2"}
    # tag values cannot hold a URI: the records name the source
    origin = [{"embedding_source": f"postgres://{source}/{database}.public.docs"}] * 300
    index(pinecone, "docs", vectors(), tags, origin)
    steward.ok("scan", pinecone.url)
    assert steward.check("source_newer_than_index") == []
    execute(database, "ALTER TABLE docs ADD COLUMN title text")
    steward.ok("scan", pg)
    (f,) = steward.check("source_newer_than_index")
    assert f["assets"][1].endswith(f"{database}.public.docs")
