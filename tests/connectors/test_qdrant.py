"""The Qdrant connector against qdrant-client's real local mode (on disk and in memory)."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from qdrant_client import QdrantClient, models
from sqlmodel import col, select

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.embeddings import effective_bindings, sync_detected_bindings
from catalog.models import Asset, Edge, ModelBinding
from catalog.profiles import samples_of
from connectors.qdrant import QdrantConfig, QdrantConnector, collection_spec
from connectors.registry import for_url

DIM = 8


def _vectors(n: int, dim: int = DIM, seed: int = 0) -> list[list[float]]:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32).tolist()


def fill(client: QdrantClient) -> None:
    """Three collections: plain with metadata, named + sparse with mixed payloads, bare."""
    client.create_collection(
        "docs",
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        metadata={
            "embedding_model": "minilm",
            "embedding_revision": "1",
            "embedding_source": "postgres://DB.internal:5432/shop.public.documents",
            "team": "search",
        },
    )
    client.upsert(
        "docs",
        [
            models.PointStruct(id=i, vector=v, payload={"title": f"t{i}", "n": i})
            for i, v in enumerate(_vectors(60))
        ],
    )
    client.create_collection(
        "products",
        vectors_config={
            "text": models.VectorParams(size=4, distance=models.Distance.DOT),
            "image": models.VectorParams(
                size=3, distance=models.Distance.EUCLID, datatype=models.Datatype.FLOAT16
            ),
        },
        sparse_vectors_config={"keywords": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    text, image = _vectors(40, 4, 1), _vectors(40, 3, 2)
    client.upsert(
        "products",
        [
            models.PointStruct(
                id=i,
                vector={
                    "text": text[i],
                    "image": image[i],
                    "keywords": models.SparseVector(indices=[1, 7], values=[0.5, 0.25]),
                },
                # a partial reindex: a quarter of the points re-embedded with revision 2
                payload={"embedding_model": "minilm", "embedding_revision": "2" if i < 10 else "1"},
            )
            for i in range(40)
        ],
    )
    client.create_collection(
        "bare", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID)
    )


def filled_storage(tmp_path: Path) -> Path:
    """A local-mode Qdrant storage folder holding the collections of `fill`."""
    path = tmp_path / "qdrant"
    client = QdrantClient(path=str(path))
    try:
        fill(client)
    finally:
        client.close()
    return path


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return filled_storage(tmp_path)


@pytest.fixture
def memory() -> Iterator[QdrantClient]:
    client = QdrantClient(":memory:")
    fill(client)
    yield client
    client.close()


def by_name(scan: Any) -> dict[str, Any]:
    return {spec.name: spec for spec in scan.specs}


def test_in_memory_collections_are_described(memory: QdrantClient) -> None:
    config = QdrantConfig(url="qdrant+local:///memory/test")
    with QdrantConnector(config, client=memory) as connector:
        scan = connector.scan()
    specs = by_name(scan)
    assert sorted(specs) == ["bare", "docs", "products"]
    assert {s.namespace for s in scan.specs} == {"qdrant+local:///memory/test"}

    docs = specs["docs"]
    assert docs.kind == "collection"
    [field] = docs.fields
    assert field.type == "vector(8)"
    assert field.attributes["dim"] == DIM
    assert field.attributes["distance"] == "cosine"
    assert field.attributes["embedding_revision"] == "1"
    assert docs.properties["embedding"]["origin"] == "metadata"
    assert docs.properties["embedding"]["models"] == [{"model": "minilm", "revision": "1"}]
    assert [(e.source_namespace, e.source_name, e.kind) for e in docs.edges] == [
        ("postgres://db.internal:5432", "shop.public.documents", "embedded_from")
    ]
    assert docs.observed["points"] == 60
    assert docs.observed["metadata"]["team"] == "search"
    assert docs.observed["payload_keys"]["n"] == {"types": ["integer"], "share": 1.0}

    products = specs["products"]
    fields = {f.name: f for f in products.fields}
    assert fields["text"].attributes["distance"] == "dot"
    assert fields["image"].attributes["element"] == "float16"
    assert fields["image"].attributes["dim"] == 3
    assert fields["keywords"].type == "sparse_vector"
    assert fields["keywords"].attributes == {"sparse": True, "modifier": "idf"}
    assert products.properties["named_vectors"] is True
    assert "keywords" in products.properties["sparse_vectors"]

    bare = specs["bare"]
    assert "embedding" not in bare.properties
    assert bare.edges == []
    assert bare.observed["points"] == 0


def test_payload_provenance_records_the_share_of_each_revision(memory: QdrantClient) -> None:
    with QdrantConnector(QdrantConfig(url="qdrant+local:///m"), client=memory) as connector:
        products = by_name(connector.scan())["products"]
    assert products.properties["embedding"] == {
        "origin": "payload",
        "models": [
            {"model": "minilm", "revision": "1"},
            {"model": "minilm", "revision": "2"},
        ],
    }
    shares = {s["revision"]: s["share"] for s in products.observed["embedding"]["shares"]}
    assert shares == {"1": 0.75, "2": 0.25}
    # with two models, no single model is written into the vector fields
    assert all("embedding_model" not in f.attributes for f in products.fields)


def test_point_count_is_observed_not_versioned(memory: QdrantClient, store: Store) -> None:
    config = QdrantConfig(url="qdrant+local:///m")
    with QdrantConnector(config, client=memory) as connector:
        first = connector.scan()
        apply(store, first.specs, first.scopes)
        memory.upsert(
            "docs", [models.PointStruct(id=1000, vector=_vectors(1)[0], payload={"n": 1})]
        )
        second = connector.scan()
    plan = apply(store, second.specs, second.scopes)
    assert plan.summary() == {"created": 0, "changed": 0, "unchanged": 3, "deleted": 0}
    with store.session() as session:
        docs = session.exec(select(Asset).where(Asset.name == "docs")).one()
    assert docs.current_version == 1
    assert docs.observed["points"] == 61


def test_a_new_revision_in_metadata_is_a_new_breaking_version(
    memory: QdrantClient, store: Store
) -> None:
    config = QdrantConfig(url="qdrant+local:///m")
    with QdrantConnector(config, client=memory) as connector:
        first = connector.scan()
        apply(store, first.specs, first.scopes)
        memory.update_collection("docs", metadata={"embedding_revision": "2"})
        second = connector.scan()
    plan = apply(store, second.specs, second.scopes)
    [change] = plan.pending
    assert change.uri.endswith("/docs") and change.action == "update"
    assert change.diff is not None and change.diff["breaking"] is True
    keys = {c.get("key") for c in change.diff["changed"]}
    assert "embedding" in keys


def test_scan_and_sample_local_storage_through_the_cli(storage: Path, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    url = f"qdrant+local://{storage}"
    runner = CliRunner()
    result = runner.invoke(cli, ["--catalog", catalog, "scan", url, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["summary"]["created"] == 3
    baselines = {(b["uri"].rsplit("/", 1)[1], b["part"]): b for b in out["samples"]}
    # a baseline for every dense vector of every collection with points, with its cost
    assert set(baselines) == {("docs", ""), ("products", "image"), ("products", "text")}
    assert baselines[("docs", "")]["vectors"] == 60
    assert {b["role"] for b in baselines.values()} == {"baseline"}
    assert all(b["stored"] and b["seconds"] >= 0 for b in baselines.values())

    store = Store(catalog)
    try:
        with store.session() as session:
            docs = session.exec(select(Asset).where(Asset.name == "docs")).one()
            assert docs.id is not None
            [sample] = samples_of(session, docs.id)
            assert sample.version == 1
            assert sample.stats["shape"] == [60, DIM]
            assert sample.stats["population"] == 60
            assert sample.vectors.shape == (60, DIM)
            # the stats describe the stored vectors (up to float16 rounding)
            norms = np.linalg.norm(sample.vectors, axis=1)
            assert sample.stats["norm"]["mean"] == pytest.approx(norms.mean(), rel=1e-3)
            assert sample.stats["mean"] == pytest.approx(sample.vectors.mean(axis=0), abs=1e-3)
            source = session.exec(
                select(Asset)
                .join(Edge, col(Edge.source_id) == col(Asset.id))
                .where(Edge.target_id == docs.id)
            ).one()
            assert source.uri == "postgres://db.internal:5432/shop.public.documents"
            assert source.unresolved
            bindings = session.exec(
                select(ModelBinding).where(ModelBinding.asset_id == docs.id)
            ).all()
            assert [(b.model, b.revision, b.origin) for b in bindings] == [
                ("minilm", "1", "metadata")
            ]
    finally:
        store.dispose()

    # unchanged: every scan samples again, but an equal sample writes nothing
    again = runner.invoke(cli, ["--catalog", catalog, "scan", url, "--json"])
    assert again.exit_code == 0, again.output
    checks = json.loads(again.stdout)["samples"]
    assert len(checks) == 3
    assert {(b["role"], b["stored"]) for b in checks} == {("check", False)}
    forced = runner.invoke(
        cli, ["--catalog", catalog, "scan", url, "--json", "--profile", "--sample-size", "7"]
    )
    assert forced.exit_code == 0, forced.output
    sizes = {b["vectors"] for b in json.loads(forced.stdout)["samples"]}
    assert sizes == {7}

    # the collection created empty gets its baseline once it has points
    client = QdrantClient(path=str(storage))
    client.upsert(
        "bare", [models.PointStruct(id=i, vector=v) for i, v in enumerate(_vectors(5, seed=9))]
    )
    client.close()
    filled = runner.invoke(cli, ["--catalog", catalog, "scan", url, "--json"])
    assert filled.exit_code == 0, filled.output
    out = json.loads(filled.stdout)
    assert out["summary"]["changed"] == 0
    firsts = [(b["uri"].rsplit("/", 1)[1], b["vectors"]) for b in out["samples"]]
    assert ("bare", 5) in firsts
    roles = {b["uri"].rsplit("/", 1)[1]: b["role"] for b in out["samples"]}
    assert roles == {"bare": "baseline", "docs": "check", "products": "check"}


def test_samples_are_reproducible_and_uniform(storage: Path) -> None:
    config = QdrantConfig(url=f"qdrant+local://{storage}")
    with QdrantConnector(config) as connector:
        connector.scan()
        [a] = connector.sample_vectors("docs", 20, seed=5)
        [b] = connector.sample_vectors("docs", 20, seed=5)
        [c] = connector.sample_vectors("docs", 20, seed=6)
    assert a.vectors.shape == (20, DIM)
    assert np.array_equal(a.vectors, b.vectors)
    assert not np.array_equal(a.vectors, c.vectors)
    assert a.population == 60 and a.method == "ids"


def test_deleted_collection_is_marked_deleted(storage: Path, store: Store) -> None:
    url = f"qdrant+local://{storage}"
    with for_url(url) as connector:  # type: ignore[attr-defined]
        first = connector.scan()
    apply(store, first.specs, first.scopes)
    client = QdrantClient(path=str(storage))
    client.delete_collection("bare")
    client.close()
    with for_url(url) as connector:  # type: ignore[attr-defined]
        second = connector.scan()
    plan = apply(store, second.specs, second.scopes)
    assert [(c.action, c.uri.rsplit("/", 1)[1]) for c in plan.pending] == [("delete", "bare")]
    with store.session() as session:
        bare = session.exec(select(Asset).where(Asset.name == "bare")).one()
    assert bare.deleted


def test_detected_bindings_follow_the_scan(memory: QdrantClient, store: Store) -> None:
    with QdrantConnector(QdrantConfig(url="qdrant+local:///m"), client=memory) as connector:
        scan = connector.scan()
        apply(store, scan.specs, scan.scopes)
        with store.write() as conn:
            sync_detected_bindings(conn, scan.specs)
        with store.session() as session:
            products = session.exec(select(Asset).where(Asset.name == "products")).one()
            assert products.id is not None
            found = {(b.revision, b.share) for b in effective_bindings(session, products.id)}
        assert found == {("1", 0.75), ("2", 0.25)}
        # the reindex finishes: every point now carries revision 2
        for i in range(40):
            memory.set_payload("products", {"embedding_revision": "2"}, points=[i])
        scan = connector.scan()
    apply(store, scan.specs, scan.scopes)
    with store.write() as conn:
        sync_detected_bindings(conn, scan.specs)
    with store.session() as session:
        found = {(b.revision, b.share) for b in effective_bindings(session, products.id)}
    assert found == {("2", 1.0)}


def test_storage_path_without_qdrant_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    catalog = tmp_path / "c.db"
    result = CliRunner().invoke(
        cli, ["--catalog", f"sqlite:///{catalog}", "scan", f"qdrant+local://{empty}"]
    )
    assert result.exit_code == 2
    assert "no Qdrant local storage" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(empty.iterdir()) == []  # nothing created there
    assert not catalog.exists()


@pytest.mark.parametrize("url", ["qdrant+local://rel/path", "qdrant+local:rel/path"])
def test_relative_local_path_is_refused(url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--catalog", f"sqlite:///{tmp_path / 'c.db'}", "scan", url])
    assert result.exit_code == 2
    assert "absolute path" in result.stderr


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_that_does_not_answer_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    catalog = tmp_path / "c.db"
    result = CliRunner().invoke(
        cli,
        ["--catalog", f"sqlite:///{catalog}", "scan", f"qdrant://127.0.0.1:{_unused_port()}"],
        env={"STEWARD_QDRANT_API_KEY": "very-secret-key"},
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot reach Qdrant at qdrant://127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "very-secret-key" not in result.output
    assert not catalog.exists()


class _KeyCheckingQdrant(BaseHTTPRequestHandler):
    """A stand-in HTTP server that answers like Qdrant does to a wrong or right api-key."""

    key = "right-key"

    def do_GET(self) -> None:
        if self.headers.get("api-key") != self.key:
            body, status = b'{"status":{"error":"Invalid api-key"},"time":0.0}', 401
        elif self.path.startswith("/collections"):
            result: dict[str, Any] = {"collections": []}
            if self.path.startswith("/collections/aliases") or self.path.startswith("/aliases"):
                result = {"aliases": []}
            body = json.dumps({"result": result, "status": "ok", "time": 0.0}).encode()
            status = 200
        elif self.path.startswith("/aliases"):
            body = b'{"result":{"aliases":[]},"status":"ok","time":0.0}'
            status = 200
        else:
            body, status = b'{"status":{"error":"not found"},"time":0.0}', 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _KeyCheckingQdrant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_wrong_api_key_is_one_line_without_the_key(fake_server: int, tmp_path: Path) -> None:
    """A stand-in for a server's 401: the real rejection needs a Qdrant server with a key."""
    catalog = tmp_path / "c.db"
    url = f"qdrant://127.0.0.1:{fake_server}"
    result = CliRunner().invoke(
        cli, ["--catalog", f"sqlite:///{catalog}", "scan", url, "--api-key", "wrong-key"]
    )
    assert result.exit_code == 2
    assert "refused the API key (HTTP 401)" in result.stderr
    assert "wrong-key" not in result.output
    assert not catalog.exists()

    ok = CliRunner().invoke(
        cli,
        ["--catalog", f"sqlite:///{catalog}", "scan", url, "--json"],
        env={"STEWARD_QDRANT_API_KEY": "right-key"},
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["source"] == f"scan qdrant://127.0.0.1:{fake_server}"
    assert "right-key" not in ok.output


def test_server_namespace_is_normalised_and_tls_keeps_identity() -> None:
    plain = QdrantConfig(url="qdrant://Vectors.Example.com")
    tls = QdrantConfig(url="qdrants://vectors.example.com:6333")
    flag = QdrantConfig(url="qdrant://vectors.example.com", https=True)
    assert plain.namespace == tls.namespace == flag.namespace == "qdrant://vectors.example.com:6333"
    assert tls.tls and flag.tls and not plain.tls


def test_credentials_in_the_url_are_refused_without_echoing_them(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--catalog", f"sqlite:///{tmp_path / 'c.db'}", "scan", "qdrant://u:hunter2@host:6333"],
    )
    assert result.exit_code == 2
    assert "hunter2" not in result.output
    assert "--api-key" in result.stderr


@pytest.mark.parametrize("url", ["qdrant://", "qdrant://host:notaport"])
def test_malformed_server_urls_are_refused(url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--catalog", f"sqlite:///{tmp_path / 'c.db'}", "scan", url])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ")


def test_plan_writes_nothing_and_releases_the_storage(storage: Path, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    url = f"qdrant+local://{storage}"
    result = CliRunner().invoke(cli, ["--catalog", catalog, "scan", url, "--plan", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["applied"] is False
    assert out["summary"]["created"] == 3
    assert out["samples"] == []
    store = Store(catalog)
    try:
        with store.session() as session:
            assert session.exec(select(Asset)).all() == []
            assert session.exec(select(ModelBinding)).all() == []
    finally:
        store.dispose()
    # the scan closed its client: the storage can be opened again (qdrant-client locks it)
    QdrantClient(path=str(storage)).close()


def test_a_collection_dropped_before_sampling_is_skipped(storage: Path, store: Store) -> None:
    from catalog.profiles import take_baselines

    with QdrantConnector(QdrantConfig(url=f"qdrant+local://{storage}")) as connector:
        scan = connector.scan()
        apply(store, scan.specs, scan.scopes)
        assert connector._client is not None
        connector._client.delete_collection("products")
        taken = take_baselines(store, connector, scan.specs, 10)
    assert sorted(t["uri"].rsplit("/", 1)[1] for t in taken) == ["docs"]
    with store.session() as session:
        docs = session.exec(select(Asset).where(Asset.name == "docs")).one()
        assert docs.id is not None
        [sample] = samples_of(session, docs.id, part="")
    assert sample.vectors.shape == (10, DIM) and sample.vectors.dtype == np.float32
    assert sample.stats["count"] == 10 and sample.stats["seed"] > 0


def test_paged_id_listing_and_mixed_ids_give_the_same_sample() -> None:
    client = QdrantClient(":memory:")
    client.create_collection(
        "mixed", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    ids: list[int | str] = [*range(30), *(str(uuid.UUID(int=i + 1)) for i in range(20))]
    client.upsert(
        "mixed",
        [models.PointStruct(id=i, vector=v) for i, v in zip(ids, _vectors(50, 4, 3), strict=True)],
    )
    config = QdrantConfig(url="qdrant+local:///m")
    with QdrantConnector(config, client=client) as whole:
        whole.scan()
        [one_call] = whole.sample_vectors("mixed", 12, seed=3)
    with QdrantConnector(config, client=client) as paged:
        paged.id_page = 7  # as on a server: several scroll requests with offsets
        paged.scan()
        [in_pages] = paged.sample_vectors("mixed", 12, seed=3)
        assert paged._ids["mixed"][:2] == [0, 1]
        assert isinstance(paged._ids["mixed"][-1], str)
        assert len(paged._ids["mixed"]) == 50
    assert np.array_equal(one_call.vectors, in_pages.vectors)
    # above the listing limit, Qdrant's own random sample is used (and said so)
    with QdrantConnector(config, client=client) as big:
        big.max_listed_ids = 10
        spec = big.scan().specs[0]
        [drawn] = big.sample_vectors("mixed", 12, seed=3)
    assert spec.observed["payload_sample"] == 50
    assert drawn.method == "random" and drawn.vectors.shape == (12, 4)
    client.close()


def test_multivectors_are_fields_but_not_sampled() -> None:
    client = QdrantClient(":memory:")
    client.create_collection(
        "late",
        vectors_config={
            "colbert": models.VectorParams(
                size=4,
                distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
            "dense": models.VectorParams(size=4, distance=models.Distance.COSINE),
        },
    )
    vectors = _vectors(6, 4, 4)
    client.upsert(
        "late",
        [
            models.PointStruct(id=i, vector={"colbert": [v, v], "dense": v})
            for i, v in enumerate(vectors)
        ],
    )
    with QdrantConnector(QdrantConfig(url="qdrant+local:///m"), client=client) as connector:
        [spec] = connector.scan().specs
        samples = connector.sample_vectors("late", 10, seed=1)
    fields = {f.name: f for f in spec.fields}
    assert fields["colbert"].type == "multivector(4)"
    assert fields["colbert"].attributes["multivector"] == {"comparator": "max_sim"}
    assert [s.part for s in samples] == ["dense"]
    assert samples[0].vectors.shape == (6, 4)
    client.close()


def test_server_settings_map_into_the_fingerprinted_properties() -> None:
    """A server's CollectionInfo (local mode has fixed HNSW and no quantization)."""
    info = models.CollectionInfo(
        status=models.CollectionStatus.GREEN,
        optimizer_status=models.OptimizersStatusOneOf.OK,
        indexed_vectors_count=90,
        points_count=100,
        segments_count=2,
        payload_schema={
            "lang": models.PayloadIndexInfo(data_type=models.PayloadSchemaType.KEYWORD, points=100)
        },
        config=models.CollectionConfig(
            params=models.CollectionParams(
                vectors=models.VectorParams(
                    size=384, distance=models.Distance.COSINE, on_disk=True
                ),
                on_disk_payload=True,
            ),
            hnsw_config=models.HnswConfig(m=32, ef_construct=200, full_scan_threshold=10000),
            optimizer_config=models.OptimizersConfig(
                deleted_threshold=0.2,
                vacuum_min_vector_number=1000,
                default_segment_number=0,
                flush_interval_sec=5,
            ),
            wal_config=models.WalConfig(wal_capacity_mb=32, wal_segments_ahead=0),
            quantization_config=models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99)
            ),
        ),
    )
    spec = collection_spec("qdrant://h:6333", "docs", info, [{"lang": "en"}])
    assert spec.properties["hnsw"]["m"] == 32
    assert spec.properties["quantization"] == {"scalar": {"type": "int8", "quantile": 0.99}}
    assert spec.properties["on_disk_payload"] is True
    [field] = spec.fields
    assert field.attributes["on_disk"] is True
    assert spec.observed["payload_schema"] == {"lang": {"type": "keyword", "points": 100}}
    assert spec.observed["indexed_vectors"] == 90
    # the settings are the definition; counts are not
    busier = info.model_copy(update={"points_count": 5000, "indexed_vectors_count": 4000})
    again = collection_spec("qdrant://h:6333", "docs", busier, [{"lang": "de"}])
    assert again.definition() == spec.definition()
    m16 = info.model_copy(deep=True)
    m16.config.hnsw_config.m = 16
    assert collection_spec("qdrant://h:6333", "docs", m16, []).definition() != spec.definition()


def test_storage_held_by_another_client_is_one_line(storage: Path, tmp_path: Path) -> None:
    holder = QdrantClient(path=str(storage))
    try:
        result = CliRunner().invoke(
            cli,
            ["--catalog", f"sqlite:///{tmp_path / 'c.db'}", "scan", f"qdrant+local://{storage}"],
        )
    finally:
        holder.close()
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: cannot open qdrant+local://{storage}")
    assert len(result.stderr.strip().splitlines()) == 1
