"""What a scan reads from table data (not the catalog): dimensions, collections, provenance.

Two cases need data:

- an unsized `vector` column (LangChain's default) declares no dimension: it
  is read from the vectors themselves (`vector_dims`) over a sample, with the
  share of each dimension;
- a table laid out by a vector store (`layouts`): its logical collections
  (rows per collection, the collection table's name and metadata) and the
  `embedding_*` keys of a sample of the rows' JSON metadata.

The sample is PostgreSQL's `TABLESAMPLE BERNOULLI (p) REPEATABLE (seed)`,
with `p` from the row count so that about `SAMPLE_ROWS` rows are read, and
the seed fixed per table, so that unchanged data gives the same figures.
Collections too small to be drawn are then read in full. Everything runs
in the scan's read-only transaction; a table the user may not read is
skipped with a warning (each read is its own savepoint).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from catalog.profiles import sample_seed
from catalog.provenance import MODEL_KEY, REVISION_KEY, SOURCE_KEY
from connectors.postgres.layouts import Column, Layout, Match, match_layouts

#: Rows a sample of dimensions and metadata reads (about).
SAMPLE_ROWS = 20_000

Conn = psycopg.Connection[dict[str, Any]]
PROVENANCE_KEYS = (MODEL_KEY, REVISION_KEY, SOURCE_KEY)


@dataclass
class Group:
    """The rows of one logical collection (or of a whole table: `key` None)."""

    key: str | None
    name: str
    #: Rows in the collection (None: not counted, the table's estimate stands).
    rows: int | None = None
    #: Vectors read, and how many of each dimension.
    sampled: int = 0
    dims: Counter[int] = field(default_factory=Counter)
    #: (embedding_model, embedding_revision, embedding_source) of the rows read -> rows.
    payloads: Counter[tuple[str | None, str | None, str | None]] = field(default_factory=Counter)
    #: The collection table's metadata of this collection.
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Source:
    """One vector column to read: its table, and the layout it fits (if any)."""

    schema: str
    table: str
    column: Column
    #: PostgreSQL's row estimate (negative: never analysed).
    estimate: float
    match: Match | None = None


def _ident(*names: str) -> sql.Composable:
    return sql.SQL(".").join(sql.Identifier(n) for n in names)


def read_groups(conn: Conn, source: Source, seed_name: str) -> list[Group]:
    """The groups of one vector column: its collections, or the table as one group."""
    table = _ident(source.schema, source.table)
    layout = source.match.layout if source.match is not None else None
    split = layout is not None and layout.collection is not None
    groups: dict[str | None, Group] = {}
    if split:
        assert layout is not None and layout.collection is not None
        key: sql.Composable = sql.SQL("{}::text").format(sql.Identifier(layout.collection))
        for row in conn.execute(
            sql.SQL("SELECT {} AS key, count(*) AS n FROM {} GROUP BY 1").format(key, table)
        ):
            groups[row["key"]] = Group(row["key"], row["key"] or "", rows=row["n"])
        if layout.collections is not None:
            _describe(conn, source, groups)
        total = sum(g.rows or 0 for g in groups.values())
    else:
        key = sql.SQL("NULL::text")
        groups[None] = Group(None, source.table)
        total = int(source.estimate)
        if source.estimate < 0:
            counted = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(table)).fetchone()
            total = int(counted["n"]) if counted else 0
    percent = 100.0 if total <= SAMPLE_ROWS else 100.0 * SAMPLE_ROWS / total
    _sample(conn, source, key, groups, sql.SQL(""), percent, sample_seed(seed_name))
    missed = [k for k, g in groups.items() if k is not None and g.sampled == 0 and g.rows]
    if split and missed:  # too small to be drawn: read in full
        assert layout is not None and layout.collection is not None
        only = sql.SQL(" AND {}::text = ANY(%(missed)s)").format(sql.Identifier(layout.collection))
        _sample(conn, source, key, groups, only, 100.0, 0, {"missed": missed})
    if split:  # rows of no collection belong to none
        groups.pop(None, None)
    return sorted(groups.values(), key=lambda g: (g.name, g.key or ""))


def _describe(conn: Conn, source: Source, groups: dict[str | None, Group]) -> None:
    """Names and metadata of the collections, from the layout's collection table."""
    layout = source.match.layout if source.match is not None else None
    assert layout is not None and layout.collections is not None
    meta = layout.collection_metadata
    query = sql.SQL("SELECT {}::text AS key, {}::text AS name, {} AS metadata FROM {}").format(
        sql.Identifier(layout.collection_key),
        sql.Identifier(layout.collection_name or layout.collection_key),
        sql.SQL("{}::text").format(sql.Identifier(meta)) if meta else sql.SQL("NULL::text"),
        _ident(source.schema, layout.collections),
    )
    for row in conn.execute(query):
        group = groups.setdefault(row["key"], Group(row["key"], "", rows=0))
        group.name = row["name"] if row["name"] is not None else (row["key"] or "")
        try:
            metadata = json.loads(row["metadata"]) if row["metadata"] else None
        except ValueError:
            metadata = None
        group.metadata = metadata if isinstance(metadata, dict) else None


def _sample(
    conn: Conn,
    source: Source,
    key: sql.Composable,
    groups: dict[str | None, Group],
    where: sql.Composable,
    percent: float,
    seed: int,
    params: dict[str, Any] | None = None,
) -> None:
    """Dimensions and provenance keys of the sampled rows, counted per group."""
    layout = source.match.layout if source.match is not None else None
    vector = sql.Identifier(source.column.name)
    typed = source.column.typmod > 0
    dim = sql.SQL("NULL::int") if typed else sql.SQL("vector_dims({})").format(vector)
    if layout is not None and layout.metadata is not None:
        meta = sql.Identifier(layout.metadata)
        keys: list[sql.Composable] = [
            sql.SQL("{} ->> {}").format(meta, sql.Literal(k)) for k in PROVENANCE_KEYS
        ]
    else:
        keys = [sql.SQL("NULL::text")] * len(PROVENANCE_KEYS)
    drawn = (
        sql.SQL(" TABLESAMPLE BERNOULLI ({}) REPEATABLE ({})").format(
            sql.Literal(percent), sql.Literal(seed)
        )
        if percent < 100.0
        else sql.SQL("")
    )
    query = sql.SQL(
        "SELECT {key} AS key, {dim} AS dim, {m} AS model, {r} AS revision, {s} AS source,"
        " count(*) AS n FROM {table}{drawn} WHERE {vector} IS NOT NULL{where}"
        " GROUP BY 1, 2, 3, 4, 5"
    ).format(
        key=key,
        dim=dim,
        m=keys[0],
        r=keys[1],
        s=keys[2],
        table=_ident(source.schema, source.table),
        drawn=drawn,
        vector=vector,
        where=where,
    )
    for row in conn.execute(query, params or {}):
        group = groups.setdefault(row["key"], Group(row["key"], row["key"] or "", rows=0))
        n = int(row["n"])
        group.sampled += n
        if row["dim"] is not None:
            group.dims[int(row["dim"])] += n
        elif typed:
            group.dims[source.column.typmod] += n
        group.payloads[(row["model"], row["revision"], row["source"])] += n


def read_contents(
    conn: Conn,
    database: str,
    relations: list[dict[str, Any]],
    columns: list[dict[str, Any]],
    vector_types: dict[int, str],
    layouts: Sequence[Layout],
    warnings: list[str],
) -> tuple[dict[str, Match], dict[tuple[str, str], list[Group]]]:
    """The tables that fit a layout, and the groups of every column that needs data.

    Keys are asset names (`DB.SCHEMA.TABLE`). Read: every table a layout fits,
    and every unsized dense vector column of the other tables.
    """
    tables = {r["oid"]: r for r in relations if r["relkind"] in ("r", "p", "m")}
    by_schema: dict[str, dict[str, dict[str, Column]]] = {}
    described: dict[int, dict[str, Column]] = {}
    for col in columns:
        rel = tables.get(col["oid"])
        if rel is None:
            continue
        column = Column(col["name"], vector_types.get(col["type_oid"]), col["type"], col["typmod"])
        described.setdefault(col["oid"], {})[col["name"]] = column
        by_schema.setdefault(rel["schema"], {}).setdefault(rel["name"], {})[col["name"]] = column
    found = match_layouts(layouts, by_schema)
    matched = {(m.schema, m.table): m for m in found}
    sources: list[Source] = []
    for oid, rel in tables.items():
        estimate = float(rel["reltuples"] if rel["reltuples"] is not None else -1)
        match = matched.get((rel["schema"], rel["name"]))
        if match is not None:
            sources.append(Source(rel["schema"], rel["name"], match.vector, estimate, match))
            continue
        for column in described.get(oid, {}).values():
            if column.vector_type in ("vector", "halfvec") and column.typmod <= 0:
                sources.append(Source(rel["schema"], rel["name"], column, estimate))
    matches = {f"{database}.{m.schema}.{m.table}": m for m in found}
    groups: dict[tuple[str, str], list[Group]] = {}
    for source in sorted(sources, key=lambda s: (s.schema, s.table, s.column.name)):
        name = f"{database}.{source.schema}.{source.table}"
        try:
            with conn.transaction():
                groups[(name, source.column.name)] = read_groups(conn, source, name)
        except psycopg.errors.InsufficientPrivilege:
            warnings.append(
                f"permission denied for table {source.schema}.{source.table}: the dimension "
                f"and collections of {source.column.name!r} are not read (GRANT SELECT)"
            )
    return matches, groups
