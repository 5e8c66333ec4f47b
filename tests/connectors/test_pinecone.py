"""The Pinecone connector: the real SDK against a stand-in checked against Pinecone's API documents.

No Pinecone service is reachable here. `PineconeStandIn` answers the SDK on
127.0.0.1 and every request and answer is validated against Pinecone's
OpenAPI documents (`tests/fixtures/external/pinecone-api`); the fixture fails
a test whose exchanges do not conform.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sqlmodel import select

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.models import Asset
from catalog.profiles import samples_of
from connectors.pinecone import PineconeConfig, PineconeConnector
from tests.connectors.pinecone_standin import (
    PineconeStandIn,
    Record,
    openapi,
    pod,
    serverless,
    validate,
)

KEY = "pcsk_standin_secret_key"
DIM = 8


def vectors(n: int, dim: int = DIM, seed: int = 0) -> list[list[float]]:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32).tolist()


@pytest.fixture
def pinecone() -> Iterator[PineconeStandIn]:
    standin = PineconeStandIn(KEY)
    yield standin
    standin.close()
    assert standin.problems == [], standin.problems[:5]


def fill(standin: PineconeStandIn) -> None:
    """Four indexes: tagged, integrated embedding, metadata provenance (pod), sparse."""
    standin.add_index(
        "docs",
        DIM,
        tags={
            "embedding_model": "minilm",
            "embedding_revision": "1",
            "team": "search",
        },
        deletion_protection="enabled",
    )
    # tag values cannot hold a URI: the records name the source
    source = "postgres://DB.internal:5432/shop.public.documents"
    standin.upsert("docs", vectors(150), [{"n": i, "embedding_source": source} for i in range(150)])
    standin.upsert("docs", vectors(30, seed=1), namespace="archive", prefix="old-")
    standin.add_index(
        "hosted",
        1024,
        spec=serverless("gcp", "europe-west4"),
        embed={
            "model": "multilingual-e5-large",
            "metric": "cosine",
            "dimension": 1024,
            "vector_type": "dense",
            "field_map": {"text": "chunk_text"},
            "read_parameters": {"input_type": "query", "truncate": "END"},
            "write_parameters": {"input_type": "passage", "truncate": "END"},
        },
        tags={"embedding_revision": "2024-10"},
    )
    standin.add_index("products", 4, metric="dotproduct")
    standin.upsert(
        "products",
        vectors(40, 4, 2),
        [
            {"embedding_model": "minilm", "embedding_revision": "2" if i < 10 else "1"}
            for i in range(40)
        ],
    )
    keywords = standin.add_index(
        "keywords", None, metric="dotproduct", vector_type="sparse", spec=pod()
    )
    keywords.namespaces[""] = {f"k{i}": Record(sparse=([1, 7 + i], [0.5, 0.25])) for i in range(3)}


def scan_of(standin: PineconeStandIn) -> dict[str, Any]:
    with PineconeConnector(PineconeConfig(url=standin.url, api_key=KEY)) as connector:
        scan = connector.scan()
    return {spec.name: spec for spec in scan.specs} | {"_warnings": scan.warnings}


def test_indexes_are_described_like_collections(pinecone: PineconeStandIn) -> None:
    fill(pinecone)
    specs = scan_of(pinecone)
    assert sorted(k for k in specs if not k.startswith("_")) == [
        "docs",
        "hosted",
        "keywords",
        "products",
    ]
    docs = specs["docs"]
    assert docs.namespace == f"pinecone://127.0.0.1:{pinecone.port}"
    assert docs.kind == "collection"
    [field] = docs.fields
    assert field.name == "vector" and field.type == "vector(8)"
    assert field.attributes["dim"] == DIM and field.attributes["distance"] == "cosine"
    assert field.attributes["embedding_model"] == "minilm"
    assert docs.properties["spec"] == {"serverless": {"cloud": "aws", "region": "us-east-1"}}
    assert docs.properties["deletion_protection"] == "enabled"
    assert docs.properties["embedding"] == {
        "origin": "metadata",
        "models": [{"model": "minilm", "revision": "1"}],
        "sources": ["postgres://db.internal:5432/shop.public.documents"],
    }
    assert [(e.source_namespace, e.source_name, e.kind) for e in docs.edges] == [
        ("postgres://db.internal:5432", "shop.public.documents", "embedded_from")
    ]
    assert docs.observed["namespaces"] == {"": {"records": 150}, "archive": {"records": 30}}
    assert docs.observed["points"] == 180
    assert docs.observed["tags"]["team"] == "search"
    assert docs.observed["payload_keys"]["n"]["types"] == ["integer"]

    products = specs["products"]
    assert products.fields[0].attributes["distance"] == "dot"

    keywords = specs["keywords"]
    assert [(f.name, f.type) for f in keywords.fields] == [("sparse", "sparse_vector")]
    assert keywords.properties["spec"] == {
        "pod": {"environment": "us-east1-gcp", "pod_type": "p1.x1"}
    }
    assert keywords.observed["scaling"] == {"pods": 1, "replicas": 1, "shards": 1}
    # a pod-based index cannot list its ids: said, and no sample
    assert any("keywords: record ids cannot be listed" in w for w in specs["_warnings"])


def test_integrated_embedding_is_provenance_given_by_pinecone(pinecone: PineconeStandIn) -> None:
    fill(pinecone)
    hosted = scan_of(pinecone)["hosted"]
    assert hosted.properties["embedding"] == {
        "origin": "metadata",
        "models": [{"model": "multilingual-e5-large", "revision": "2024-10"}],
    }
    assert hosted.properties["integrated_embedding"]["field_map"] == {"text": "chunk_text"}
    assert hosted.properties["integrated_embedding"]["model"] == "multilingual-e5-large"
    assert hosted.properties["spec"]["serverless"]["region"] == "europe-west4"
    assert hosted.fields[0].attributes["dim"] == 1024


def test_record_metadata_gives_each_revision_its_share(pinecone: PineconeStandIn) -> None:
    fill(pinecone)
    products = scan_of(pinecone)["products"]
    assert products.properties["embedding"]["origin"] == "payload"
    shares = {s["revision"]: s["share"] for s in products.observed["embedding"]["shares"]}
    assert shares == {"1": 0.75, "2": 0.25}
    assert "embedding_model" not in products.fields[0].attributes


def test_record_count_is_observed_and_a_tag_revision_is_a_breaking_version(
    pinecone: PineconeStandIn, store: Store
) -> None:
    fill(pinecone)
    config = PineconeConfig(url=pinecone.url, api_key=KEY)
    with PineconeConnector(config) as connector:
        first = connector.scan()
        apply(store, first.specs, first.scopes)
        pinecone.upsert("docs", vectors(5, seed=7), prefix="new-")
        second = connector.scan()
        assert apply(store, second.specs, second.scopes).summary()["changed"] == 0
        pinecone.indexes["docs"].description["tags"]["embedding_revision"] = "2"
        third = connector.scan()
    plan = apply(store, third.specs, third.scopes)
    [change] = plan.pending
    assert change.uri.endswith("/docs") and change.action == "update"
    assert change.diff is not None and change.diff["breaking"] is True
    with store.session() as session:
        docs = session.exec(select(Asset).where(Asset.name == "docs")).one()
    assert docs.current_version == 2 and docs.observed["points"] == 185


def test_samples_are_uniform_over_namespaces_and_reproducible(pinecone: PineconeStandIn) -> None:
    fill(pinecone)
    config = PineconeConfig(url=pinecone.url, api_key=KEY)
    with PineconeConnector(config) as connector:
        connector.scan()
        [a] = connector.sample_vectors("docs", 60, seed=5)
        [b] = connector.sample_vectors("docs", 60, seed=5)
        [c] = connector.sample_vectors("docs", 60, seed=6)
        assert connector.sample_vectors("keywords", 10, seed=1) == []  # sparse: no dense sample
    assert a.vectors.shape == (60, DIM) and a.population == 180 and a.method == "ids"
    assert np.array_equal(a.vectors, b.vectors) and not np.array_equal(a.vectors, c.vectors)
    stored = np.asarray(vectors(150) + vectors(30, seed=1), dtype=np.float32)
    nearest = np.abs(a.vectors[:, None, :] - stored[None, :, :]).max(axis=2).min(axis=1)
    assert nearest.max() < 1e-6  # every sampled vector is a stored one


def test_ids_are_listed_page_by_page(pinecone: PineconeStandIn) -> None:
    pinecone.add_index("big", DIM)
    pinecone.upsert("big", vectors(250))
    with PineconeConnector(PineconeConfig(url=pinecone.url, api_key=KEY)) as connector:
        connector.scan()
        [sample] = connector.sample_vectors("big", 250, seed=1)
    assert sample.vectors.shape == (250, DIM)
    lists = [e for e in pinecone.exchanges if e.path == "/vectors/list"]
    assert len(lists) == 3  # 100 + 100 + 50
    assert sum(1 for e in lists if dict(e.query).get("paginationToken")) == 2


def test_the_sdk_speaks_an_api_version_whose_documents_are_kept(pinecone: PineconeStandIn) -> None:
    fill(pinecone)
    scan_of(pinecone)
    versions = {e.version for e in pinecone.exchanges}
    assert versions == {"2025-10"}
    assert {e.headers.get("X-Pinecone-Api-Version") for e in pinecone.exchanges} == {"2025-10"}
    paths = {(e.plane, e.method, e.path.split("?")[0]) for e in pinecone.exchanges}
    assert ("control", "GET", "/indexes") in paths
    assert ("data", "POST", "/describe_index_stats") in paths
    assert ("data", "GET", "/vectors/fetch") in paths


def test_every_answer_also_conforms_to_the_newer_api_version(pinecone: PineconeStandIn) -> None:
    fill(pinecone)
    scan_of(pinecone)
    assert pinecone.exchanges
    problems = [p for e in pinecone.exchanges for p in validate(e, "2026-04")]
    assert problems == []


def test_the_check_catches_an_answer_the_api_would_not_give(pinecone: PineconeStandIn) -> None:
    """The validation can fail: a description without `host` and with a bad spec."""
    fill(pinecone)
    scan_of(pinecone)
    [listing] = [e for e in pinecone.exchanges if e.path == "/indexes"]
    answer = json.loads(listing.answer)
    del answer["indexes"][0]["host"]
    answer["indexes"][1]["spec"] = {"serverless": {"cloud": "aws"}}
    listing.answer = json.dumps(answer).encode()
    problems = validate(listing)
    assert problems and "answer 200 to GET /indexes" in problems[0]
    [stats] = [e for e in pinecone.exchanges if e.path == "/describe_index_stats"][:1]
    stats.answer = json.dumps({"namespaces": {"": {"vectorCount": "many"}}}).encode()
    assert validate(stats)
    assert openapi("data", "2025-10") is openapi("data", "2025-10")  # loaded once


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    return CliRunner().invoke(cli, ["--catalog", catalog, "scan", *args], env=env)


def test_scan_and_baseline_through_the_cli(pinecone: PineconeStandIn, tmp_path: Path) -> None:
    fill(pinecone)
    env = {"STEWARD_PINECONE_API_KEY": KEY}
    result = run(tmp_path, pinecone.url, "--json", env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["summary"]["created"] == 4
    baselines = {b["uri"].rsplit("/", 1)[1]: b for b in out["samples"]}
    assert {b["role"] for b in baselines.values()} == {"baseline"}
    assert sorted(baselines) == ["docs", "products"]  # dense and with records
    assert baselines["docs"]["vectors"] == 180 and baselines["docs"]["population"] == 180
    assert KEY not in result.output
    # the baseline reuses the records the scan fetched: each record (of docs' 180 and
    # products' 40) was fetched once
    fetched = [
        (e.host, v)
        for e in pinecone.exchanges
        if e.path == "/vectors/fetch"
        for k, v in e.query
        if k == "ids"
    ]
    assert len(fetched) == len(set(fetched)) == 220
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with store.session() as session:
            docs = session.exec(select(Asset).where(Asset.name == "docs")).one()
            assert docs.id is not None
            [sample] = samples_of(session, docs.id)
            assert sample.vectors.shape == (180, DIM)
    finally:
        store.dispose()
    assert KEY.encode() not in (tmp_path / "c.db").read_bytes()
    again = run(tmp_path, pinecone.url, "--json", env=env)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["summary"]["changed"] == 0
    # unchanged: every scan samples again, but an equal sample writes nothing
    checks = json.loads(again.stdout)["samples"]
    assert len(checks) == 2
    assert {(b["role"], b["stored"]) for b in checks} == {("check", False)}


def test_wrong_key_is_one_line_without_the_key(pinecone: PineconeStandIn, tmp_path: Path) -> None:
    result = run(tmp_path, pinecone.url, "--api-key", "wrong-secret-key")
    assert result.exit_code == 2
    assert "refused the API key (HTTP 401)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "wrong-secret-key" not in result.output
    assert not (tmp_path / "c.db").exists()


def test_missing_key_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEWARD_PINECONE_API_KEY", raising=False)
    monkeypatch.setenv("PINECONE_API_KEY", "the-sdk-would-read-this")
    result = run(tmp_path, "pinecone://my-project")
    assert result.exit_code == 2
    assert "no Pinecone API key" in result.stderr and "--api-key" in result.stderr


def test_unreachable_host_is_one_line(tmp_path: Path) -> None:
    url = f"pinecone+http://127.0.0.1:{_unused_port()}"
    result = run(tmp_path, url, env={"STEWARD_PINECONE_API_KEY": KEY})
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot reach Pinecone at pinecone+http://127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert KEY not in result.output
    assert not (tmp_path / "c.db").exists()


def test_url_forms_and_identity() -> None:
    project = PineconeConfig(url="pinecone://My-Project", api_key="k")
    assert project.namespace == "pinecone://my-project"
    assert project.control_plane == "https://api.pinecone.io"
    host = PineconeConfig(url="pinecone://pinecone.internal:8443", api_key="k")
    assert host.control_plane == "https://pinecone.internal:8443"
    local = PineconeConfig(url="pinecone+http://localhost:5080", api_key="k")
    assert local.control_plane == "http://localhost:5080"
    assert local.namespace == "pinecone://localhost:5080"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("pinecone://user:hunter2@my-project", "credentials do not belong"),
        ("pinecone://", "name the project"),
        ("pinecone://my-project/docs", "name the project"),
        ("pinecone://host:port", "port"),
    ],
)
def test_malformed_urls_are_refused(url: str, said: str, tmp_path: Path) -> None:
    result = run(tmp_path, url, "--api-key", "k")
    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert "hunter2" not in result.output


def test_a_deleted_index_is_marked_deleted(pinecone: PineconeStandIn, store: Store) -> None:
    fill(pinecone)
    with PineconeConnector(PineconeConfig(url=pinecone.url, api_key=KEY)) as connector:
        first = connector.scan()
        apply(store, first.specs, first.scopes)
        pinecone.drop_index("products")
        second = connector.scan()
    plan = apply(store, second.specs, second.scopes)
    assert [(c.action, c.uri.rsplit("/", 1)[1]) for c in plan.pending] == [("delete", "products")]
