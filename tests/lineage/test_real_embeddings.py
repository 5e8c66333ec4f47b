"""Stale embeddings and drift on real embeddings, in Qdrant's local mode, through the CLI.

The vectors are real: 160 paragraphs of the Python standard library's
documentation embedded by all-MiniLM-L6-v2 and by multilingual-e5-small,
both 384-d (tests/fixtures/embeddings, made by `python -m
benchmarks.real_corpus fixture`). Each case has a clean twin that stays silent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams

from tests.lineage.test_rules import Catalog

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "embeddings" / "real384.npz"
MINILM, E5 = "all-MiniLM-L6-v2", "multilingual-e5-small"
#: The revisions of the two models on their hub (any string would do).
MINILM_REV, E5_REV = "c9745ed", "fd1525a"


@pytest.fixture(scope="module")
def real() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {MINILM: data[MINILM].astype(np.float32), E5: data[E5].astype(np.float32)}


@pytest.fixture
def steward(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path)
    for name, revision in ((MINILM, MINILM_REV), (E5, E5_REV)):
        catalog.ok(
            "models", "register", name, "--revision", revision, "--dim", "384", "--distance",
            "cosine",
        )  # fmt: skip
    return catalog


def build(
    path: Path,
    name: str,
    vectors: np.ndarray,
    metadata: dict[str, Any] | None = None,
    payloads: list[dict[str, Any]] | None = None,
) -> None:
    """(Re)create a collection the way a pipeline would: drop, create, upsert."""
    client = QdrantClient(path=str(path))
    try:
        if client.collection_exists(name):
            client.delete_collection(name)
        client.create_collection(
            name, vectors_config=VectorParams(size=384, distance=Distance.COSINE), metadata=metadata
        )
        client.upsert(
            name,
            [
                PointStruct(id=i, vector=v.tolist(), payload=payloads[i] if payloads else {})
                for i, v in enumerate(vectors)
            ],
        )
    finally:
        client.close()


def provenance(model: str, revision: str) -> dict[str, str]:
    return {"embedding_model": model, "embedding_revision": revision}


def by_asset(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["assets"][0].rsplit("/", 1)[1]: f for f in findings}


def test_a_change_of_model_name_is_stale_in_either_direction(
    steward: Catalog, tmp_path: Path, real: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "qdrant"
    build(store, "minilm_docs", real[MINILM], provenance(MINILM, MINILM_REV))
    build(store, "e5_docs", real[E5], provenance(E5, E5_REV))  # the clean twin
    steward.ok("scan", f"qdrant+local://{store}")
    # nothing says what queries them yet: neither is stale
    assert steward.check("stale_embeddings") == []
    steward.ok("models", "use", E5, E5_REV, "--purpose", "docs-search")
    steward.ok("models", "assign", "minilm_docs", "docs-search")
    steward.ok("models", "assign", "e5_docs", "docs-search")
    found = by_asset(steward.check("stale_embeddings"))
    assert list(found) == ["minilm_docs"]
    f = found["minilm_docs"]
    assert f["severity"] == "error"
    assert f"is built with {MINILM}@{MINILM_REV}; queries use {E5}@{E5_REV}" in f["title"]
    assert f["evidence"]["queries_via"] == "purpose docs-search"
    # the other direction: an index binding outranks the purpose
    steward.ok("models", "use", MINILM, MINILM_REV, "--index", "e5_docs")
    found = by_asset(steward.check("stale_embeddings"))
    assert sorted(found) == ["e5_docs", "minilm_docs"]
    assert (
        f"is built with {E5}@{E5_REV}; queries use {MINILM}@{MINILM_REV}"
        in (found["e5_docs"]["title"])
    )
    # the legacy per-name registry still works for an index bound to nothing
    build(store, "legacy", real[MINILM], provenance(MINILM, "old"))
    steward.ok(
        "models", "register", MINILM, "--revision", "old", "--dim", "384", "--distance", "cosine"
    )
    steward.ok("models", "use", MINILM, MINILM_REV)
    steward.ok("scan", f"qdrant+local://{store}")
    legacy = by_asset(steward.check("stale_embeddings"))["legacy"]
    assert f"built with {MINILM}@old; queries use {MINILM}@{MINILM_REV}" in legacy["title"]
    assert legacy["evidence"]["queries_via"] == "in use"


def test_a_mixed_index_is_stale_with_its_shares(
    steward: Catalog, tmp_path: Path, real: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "qdrant"
    n = len(real[MINILM])
    mixed_from = [E5 if i % 10 == 0 else MINILM for i in range(n)]
    mixed = np.stack([real[m][i] for i, m in enumerate(mixed_from)])
    revs = {MINILM: MINILM_REV, E5: E5_REV}
    build(store, "mixed", mixed, payloads=[provenance(m, revs[m]) for m in mixed_from])
    build(store, "single", real[MINILM], payloads=[provenance(MINILM, MINILM_REV)] * n)
    steward.ok("scan", f"qdrant+local://{store}")
    # mixed is stale even before anything says what queries it; single is not
    (f,) = steward.check("stale_embeddings")
    assert f["assets"][0].endswith("/mixed")
    assert f["evidence"]["shares"] == {f"{MINILM}@{MINILM_REV}": 0.9, f"{E5}@{E5_REV}": 0.1}
    assert "90% all-MiniLM-L6-v2@c9745ed, 10% multilingual-e5-small@fd1525a" in f["title"]
    assert "no model is bound to its queries" in f["title"]
    steward.ok("models", "use", MINILM, MINILM_REV, "--purpose", "docs-search")
    for name in ("mixed", "single"):
        steward.ok("models", "assign", name, "docs-search")
    (f,) = steward.check("stale_embeddings")
    assert f["assets"][0].endswith("/mixed")
    assert f["evidence"]["partial_reindex"] is True
    assert f["evidence"]["share_in_use"] == pytest.approx(0.9)
    assert f"queries use {MINILM}@{MINILM_REV}" in f["title"]


def test_a_silent_rebuild_is_caught_by_a_plain_scan_and_rebaselining_clears_it(
    steward: Catalog, tmp_path: Path, real: dict[str, np.ndarray]
) -> None:
    store, url = tmp_path / "qdrant", f"qdrant+local://{tmp_path / 'qdrant'}"
    even, odd = slice(0, None, 2), slice(1, None, 2)
    build(store, "docs", real[MINILM][even])  # no provenance anywhere
    build(store, "twin", real[MINILM][even])
    first = json.loads(steward.ok("scan", url, "--json").stdout)
    assert {s["role"] for s in first["samples"]} == {"baseline"}
    # docs is rebuilt with the other model; twin re-embeds other texts with the same one
    build(store, "docs", real[E5][even])
    build(store, "twin", real[MINILM][odd])
    again = json.loads(steward.ok("scan", url, "--json").stdout)  # a plain scan
    assert again["summary"]["changed"] == 0  # nothing in the definitions says so
    assert {(s["role"], s["stored"]) for s in again["samples"]} == {("check", True)}
    found = by_asset(steward.check("embedding_drift"))
    assert list(found) == ["docs"]  # the twin stays silent
    f = found["docs"]
    assert f["severity"] == "error"
    assert f["evidence"]["effect_size"] > 0.5
    assert "centroid moved" in f["title"]
    assert "steward models rebaseline docs" in f["remedy"]

    out = steward.ok("models", "rebaseline", "docs", "--by", "alice")
    assert "set by alice" in out.stderr and "resolved 1 drift finding" in out.stderr
    assert steward.check("embedding_drift") == []
    steward.ok("scan", url)  # unchanged since: still silent
    assert steward.check("embedding_drift") == []


def test_the_sample_size_setting(
    steward: Catalog, tmp_path: Path, real: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, url = tmp_path / "qdrant", f"qdrant+local://{tmp_path / 'qdrant'}"
    build(store, "docs", real[MINILM])
    monkeypatch.setenv("STEWARD_SAMPLE_SIZE", "many")
    bad = steward.run("scan", url)
    assert bad.exit_code == 2 and "$STEWARD_SAMPLE_SIZE is 'many'" in bad.output
    assert json.loads(steward.ok("assets", "--kind", "collection", "--json").stdout) == []
    monkeypatch.setenv("STEWARD_SAMPLE_SIZE", "40")
    [sample] = json.loads(steward.ok("scan", url, "--json").stdout)["samples"]
    assert (sample["vectors"], sample["population"]) == (40, len(real[MINILM]))
    [sample] = json.loads(steward.ok("scan", url, "--json", "--sample-size", "30").stdout)[
        "samples"
    ]
    assert sample["vectors"] == 30
