"""The embedding-model registry: register, use, list, bind; provenance conventions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models
from sqlmodel import select

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.embeddings import (
    bind,
    effective_bindings,
    in_use_revision,
    list_models,
    parse_model_ref,
    register_model,
    sync_detected_bindings,
    use_model,
)
from catalog.errors import InvalidInput, NotFound
from catalog.identity import AssetKey
from catalog.models import Asset, AssetVersion, ModelBinding
from catalog.provenance import provenance_from_metadata, provenance_from_payloads, split_dataset_uri
from catalog.specs import AssetSpec, FieldSpec
from connectors.qdrant import QdrantConfig, QdrantConnector, payload_keys

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
) | st.sampled_from(["m", "m2", 1, 2.5])


def run(catalog: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog, *args])


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.db'}"


def collection(name: str = "docs") -> AssetSpec:
    return AssetSpec(
        namespace="qdrant://vectors:6333",
        name=name,
        kind="collection",
        fields=[
            FieldSpec(name="text", type="vector(8)", attributes={"vector": True, "dim": 8}),
            FieldSpec(name="sparse", type="sparse_vector", attributes={"sparse": True}),
        ],
    )


# --- conventions (pure) ----------------------------------------------------------


def test_model_refs() -> None:
    assert parse_model_ref("minilm@2") == ("minilm", "2")
    assert parse_model_ref("org/model@v1.5") == ("org/model", "v1.5")
    for bad in ("minilm", "@2", "minilm@", " "):
        with pytest.raises(InvalidInput):
            parse_model_ref(bad)


def test_dataset_uris_split_into_namespace_and_name() -> None:
    assert split_dataset_uri("postgres://DB:5432/shop.public.docs") == AssetKey(
        "postgres://db:5432", "shop.public.docs"
    )
    assert split_dataset_uri("s3://bucket/path/to/file.parquet") == AssetKey(
        "s3://bucket", "path/to/file.parquet"
    )
    assert split_dataset_uri({"namespace": "kafka://b:9092", "name": "t"}) == AssetKey(
        "kafka://b:9092", "t"
    )
    for bad in ("no-scheme", "s3://bucket", 42):
        with pytest.raises(InvalidInput):
            split_dataset_uri(bad)


def test_metadata_provenance_and_its_warnings() -> None:
    warnings: list[str] = []
    prov = provenance_from_metadata(
        {"embedding_model": "m", "embedding_revision": 3, "embedding_source": "nonsense"},
        warnings,
        "c",
    )
    assert prov is not None
    assert prov.properties() == {"origin": "metadata", "models": [{"model": "m", "revision": "3"}]}
    assert len(warnings) == 1 and "embedding_source" in warnings[0]
    assert provenance_from_metadata({"team": "x"}, warnings) is None
    assert provenance_from_metadata({"embedding_model": {"a": 1}}, warnings) is None


def test_payload_shares_count_points_without_provenance() -> None:
    payloads = [
        {"embedding_model": "m", "embedding_revision": "1"},
        {"embedding_model": "m", "embedding_revision": "2"},
        {"embedding_model": "m", "embedding_revision": "2"},
        {"other": True},
    ]
    prov = provenance_from_payloads(payloads, [])
    assert prov is not None
    assert [(m.revision, m.share) for m in prov.models] == [("2", 0.5), ("1", 0.25)]
    assert prov.sampled == 4
    assert provenance_from_payloads([{}, {"x": 1}], []) is None


# --- the registry, on both catalog backends ------------------------------------


def test_revisions_are_versions_and_immutable(store: Store) -> None:
    first = register_model(store, "minilm", "1", 384, "cosine", provider="HuggingFace")
    assert first == {"uri": "model://huggingface/minilm", "revision": "1", "created": True}
    assert register_model(store, "minilm", "1", 384, "cosine", provider="huggingface") == {
        **first,
        "created": False,
    }
    register_model(store, "minilm", "2", 384, "cosine", provider="huggingface")
    # re-registering an older revision does not make a new version
    register_model(store, "minilm", "1", 384, "cosine", provider="huggingface")
    with pytest.raises(InvalidInput, match="cannot change"):
        register_model(store, "minilm", "1", 768, "cosine", provider="huggingface")
    with store.session() as session:
        asset = session.exec(select(Asset).where(Asset.name == "minilm")).one()
        versions = session.exec(select(AssetVersion).where(AssetVersion.asset_id == asset.id)).all()
    assert asset.kind == "embedding_model"
    assert sorted(v.definition["properties"]["revision"] for v in versions) == ["1", "2"]
    assert asset.current_version == 2


def test_use_requires_a_registered_revision(store: Store) -> None:
    register_model(store, "m", "1", 8, "dot")
    register_model(store, "m", "2", 8, "dot")
    with pytest.raises(NotFound, match="no registered revision '9'"):
        use_model(store, "m", "9")
    with pytest.raises(NotFound, match="no embedding model"):
        use_model(store, "unknown", "1")
    use_model(store, "m", "1")
    use_model(store, "m", "2")
    with store.session() as session:
        assert in_use_revision(session, "m") == "2"
        [listed] = list_models(session)
    assert listed["in_use"] == "2"
    assert [r["revision"] for r in listed["revisions"]] == ["1", "2"]


def test_bind_checks_asset_part_and_model(store: Store) -> None:
    apply(store, [collection()])
    register_model(store, "m", "1", 8, "cosine")
    with pytest.raises(InvalidInput, match="no vector field 'sparse'"):
        bind(store, "docs", "m@1", part="sparse")
    with pytest.raises(NotFound):
        bind(store, "nope", "m@1")
    with pytest.raises(NotFound):
        bind(store, "docs", "m@7")
    bind(store, "docs", "m@1", part="text")
    register_model(store, "m", "2", 8, "cosine")
    bind(store, "docs", "m@2", part="text")  # replaces the earlier manual binding
    with store.session() as session:
        asset = session.exec(select(Asset).where(Asset.name == "docs")).one()
        assert asset.id is not None
        rows = session.exec(select(ModelBinding).where(ModelBinding.asset_id == asset.id)).all()
        assert [(b.part, b.revision, b.origin) for b in rows] == [("text", "2", "manual")]


def test_detected_provenance_takes_precedence_over_manual(store: Store) -> None:
    spec = collection()
    apply(store, [spec])
    register_model(store, "m", "1", 8, "cosine")
    bind(store, "docs", "m@1")
    detected = spec.model_copy(
        update={
            "properties": {
                "embedding": {"origin": "metadata", "models": [{"model": "m", "revision": "3"}]}
            }
        }
    )
    apply(store, [detected])
    with store.write() as conn:
        sync_detected_bindings(conn, [detected])
    with store.session() as session:
        asset = session.exec(select(Asset).where(Asset.name == "docs")).one()
        assert asset.id is not None
        assert [(b.revision, b.origin) for b in effective_bindings(session, asset.id)] == [
            ("3", "metadata")
        ]
    # the metadata key goes away: the manual binding is what is left
    apply(store, [spec])
    with store.write() as conn:
        sync_detected_bindings(conn, [spec])
    with store.session() as session:
        assert [(b.revision, b.origin) for b in effective_bindings(session, asset.id)] == [
            ("1", "manual")
        ]


# --- the CLI -------------------------------------------------------------------


def test_models_cli_round_trip(catalog: str, tmp_path: Path) -> None:
    assert run(catalog, "models", "register", "m", "--revision", "1", "--dim", "8",
               "--distance", "cosine").exit_code == 0  # fmt: skip
    result = run(catalog, "models", "register", "m", "--revision", "2", "--dim", "8",
                 "--distance", "COSINE", "--not-normalized")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "model://local/m@2: registered" in result.stderr
    assert run(catalog, "models", "use", "m", "2").exit_code == 0

    # a collection built with m@1 while m@2 is the revision in use
    path = tmp_path / "qdrant"
    client = QdrantClient(path=str(path))
    client.create_collection(
        "docs",
        vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE),
        metadata={"embedding_model": "m", "embedding_revision": "1"},
    )
    client.create_collection(
        "notes", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE)
    )
    client.close()
    scanned = run(catalog, "scan", f"qdrant+local://{path}")
    assert scanned.exit_code == 0, scanned.output
    bound = run(catalog, "models", "bind", "notes", "m@2", "--part", "vector")
    assert bound.exit_code == 0, bound.output

    listed = run(catalog, "models", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [model] = json.loads(listed.stdout)
    assert model["uri"] == "model://local/m"
    assert model["in_use"] == "2"
    assert [(r["revision"], r["normalized"]) for r in model["revisions"]] == [
        ("1", True),
        ("2", False),
    ]
    assert {(b["asset"].rsplit("/", 1)[1], b["revision"], b["origin"]) for b in
            model["bindings"]} == {("docs", "1", "metadata"), ("notes", "2", "manual")}  # fmt: skip

    table = run(catalog, "models", "list")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "REVISION", "DIM", "DISTANCE", "IN", "USE", "BOUND"]
    assert lines[2].split() == ["model://local/m", "2", "8", "cosine", "*", "1"]

    shown = json.loads(run(catalog, "show", "docs", "--json").stdout)
    assert shown["properties"]["embedding"]["models"] == [{"model": "m", "revision": "1"}]


def test_models_cli_errors_are_one_line(catalog: str) -> None:
    bad = run(catalog, "models", "use", "ghost", "1")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("Error: no embedding model 'ghost'")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert run(catalog, "models", "register", "m", "--revision", "1", "--dim", "0",
               "--distance", "cosine").exit_code == 2  # fmt: skip
    assert run(catalog, "models", "register", "m", "--revision", "1", "--dim", "4",
               "--distance", "hamming").exit_code == 2  # fmt: skip
    ref = run(catalog, "models", "bind", "x", "no-revision")
    assert ref.exit_code == 2 and "MODEL@REVISION" in ref.stderr


def test_every_models_command_has_help(catalog: str) -> None:
    top = run(catalog, "--help")
    assert "models" in top.stdout
    for sub in ("register", "use", "list", "bind"):
        result = run(catalog, "models", sub, "--help")
        assert result.exit_code == 0
        assert len(result.stdout.splitlines()) > 3


def test_connector_provenance_matches_the_in_use_check(store: Store) -> None:
    """Done-when: a collection built with m@1 while m@2 is current is recorded as m@1."""
    register_model(store, "m", "1", 8, "cosine")
    register_model(store, "m", "2", 8, "cosine")
    use_model(store, "m", "2")
    client = QdrantClient(":memory:")
    client.create_collection(
        "docs",
        vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE),
        metadata={"embedding_model": "m", "embedding_revision": "1"},
    )
    with QdrantConnector(QdrantConfig(url="qdrant+local:///mem"), client=client) as connector:
        scan = connector.scan()
    client.close()
    apply(store, scan.specs, scan.scopes)
    with store.write() as conn:
        sync_detected_bindings(conn, scan.specs)
    with store.session() as session:
        docs = session.exec(select(Asset).where(Asset.name == "docs")).one()
        assert docs.id is not None
        [binding] = effective_bindings(session, docs.id)
        assert (binding.model, binding.revision, binding.origin) == ("m", "1", "metadata")
        assert in_use_revision(session, binding.model) == "2"


def test_vector_columns_naming_their_model_are_bound_by_comment(store: Store) -> None:
    spec = AssetSpec(
        namespace="postgres://db:5432",
        name="shop.public.items",
        kind="table",
        fields=[
            FieldSpec(name="id", type="integer"),
            FieldSpec(
                name="embedding",
                type="vector(8)",
                attributes={
                    "vector": True,
                    "dim": 8,
                    "embedding_model": "m",
                    "embedding_revision": "4",
                },
            ),
        ],
    )
    apply(store, [spec])
    with store.write() as conn:
        assert sync_detected_bindings(conn, [spec]) == 1
    with store.session() as session:
        asset = session.exec(select(Asset).where(Asset.name == "shop.public.items")).one()
        assert asset.id is not None
        [binding] = effective_bindings(session, asset.id)
    assert (binding.part, binding.model, binding.revision, binding.origin) == (
        "embedding",
        "m",
        "4",
        "comment",
    )


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.dictionaries(st.text(max_size=20), JSON, max_size=4), max_size=30))
def test_payload_provenance_and_key_stats_never_crash(payloads: list[dict[str, Any]]) -> None:
    warnings: list[str] = []
    prov = provenance_from_payloads(payloads, warnings)
    if prov is not None:
        assert 0 < sum(m.share for m in prov.models) <= 1.0 + 1e-9
        assert len({(m.model, m.revision) for m in prov.models}) == len(prov.models)
    keys = payload_keys(payloads)
    assert all(0 < k["share"] <= 1 for k in keys.values())


def test_query_bindings_refuse_bad_input_in_one_line_and_write_nothing(
    catalog: str, tmp_path: Path
) -> None:
    store = Store(catalog)
    try:
        apply(store, [collection()], origin="test")
        register_model(store, "m", "1", 8, "cosine")
    finally:
        store.dispose()
    cases = [
        (["models", "use", "m", "1", "--part", "text"], "--part needs --index"),
        (["models", "use", "m", "1", "--index", "docs", "--purpose", "p"], "not both"),
        (["models", "use", "m", "1", "--purpose", "no spaces"], "is not a plain name"),
        (["models", "use", "m", "9", "--purpose", "p"], "no registered revision '9'"),
        (["models", "use", "m", "1", "--index", "docs", "--part", "nope"], "no vector field"),
        (["models", "assign", "docs", "p", "--part", "sparse"], "no vector field 'sparse'"),
        (["models", "rebaseline", "docs"], "has no vector sample"),
    ]
    for args, message in cases:
        result = run(catalog, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
    listed = run(catalog, "models", "queries", "--json")
    assert json.loads(listed.stdout) == []
    # and what is right is recorded, with who
    assert run(catalog, "models", "use", "m", "1", "--purpose", "p", "--by", "bo").exit_code == 0
    assert run(catalog, "models", "assign", "docs", "p", "--part", "text").exit_code == 0
    listed = json.loads(run(catalog, "models", "queries", "--json").stdout)
    assert listed == [
        {"purpose": "p", "queries": "m@1", "indexes": 1},
        {"asset": "qdrant://vectors:6333/docs", "part": "text", "purpose": "p"},
    ]
