"""Samples of pgvector columns, for the drift rule (the connector's `VectorSampler` ability).

A uniform, reproducible sample per dense vector column (`vector`, `halfvec`):

- a table with a one-column primary key and at most `MAX_LISTED_IDS` rows:
  its keys are listed in order, a seeded uniform choice of them is drawn
  (the same `choose` as for Qdrant's point ids) and only those rows are read;
- otherwise PostgreSQL's `TABLESAMPLE BERNOULLI (p) REPEATABLE (seed)`, with
  `p` from the row estimate (a count when the table was never analysed) and
  a little over, then a seeded uniform choice of the size among the rows drawn.

Vectors are read in pgvector's text form (`[1,2,3]`), in one read-only
transaction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from catalog.profiles import VectorSample, choose
from connectors.postgres.mapping import VectorRelation

#: Above this many rows (estimated), keys are not listed: rows are drawn by TABLESAMPLE.
MAX_LISTED_IDS = 2_000_000
#: Oversampling of the Bernoulli percentage, so that a sample rarely falls short.
OVERSAMPLE = 1.3


def parse_vectors(texts: list[str], dim: int) -> np.ndarray:
    """pgvector's text form of each vector as one float32 matrix."""
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    flat = ",".join(t.strip()[1:-1] for t in texts)
    matrix = np.array(flat.split(","), dtype=np.float32)
    return matrix.reshape(len(texts), dim)


def _table(rel: VectorRelation) -> sql.Composable:
    return sql.SQL("{}.{}").format(sql.Identifier(rel.schema), sql.Identifier(rel.name))


def _wanted(rel: VectorRelation) -> sql.Composable:
    """Each vector column in text form; one whose dimension came from the data only
    when the vector has that dimension (others are left out, as NULLs are)."""
    out = []
    for i, (name, dim) in enumerate(rel.columns):
        column = sql.Identifier(name)
        value = (
            sql.SQL("CASE WHEN vector_dims({}) = {} THEN {}::text END").format(
                column, sql.Literal(dim), column
            )
            if name in rel.untyped
            else sql.SQL("{}::text").format(column)
        )
        out.append(sql.SQL("{} AS {}").format(value, sql.Identifier(f"v{i}")))
    return sql.SQL(", ").join(out)


def _only(rel: VectorRelation, joiner: str) -> tuple[sql.Composable, list[Any]]:
    """The condition that keeps one logical collection's rows (none for a whole table)."""
    if rel.collection is None:
        return sql.SQL(""), []
    column, type_name, value = rel.collection
    # Compared as the column's own type (printed by PostgreSQL), so an index on it serves.
    condition = sql.SQL(" {} {} = CAST(%s AS {})").format(
        sql.SQL(joiner), sql.Identifier(column), sql.SQL(type_name)
    )
    return condition, [value]


def sample_relation(
    conn: psycopg.Connection[dict[str, Any]], rel: VectorRelation, size: int, seed: int
) -> list[VectorSample]:
    """One sample per dense vector column of `rel` (rows whose vector is NULL left out)."""
    table = _table(rel)
    wanted = _wanted(rel)
    if len(rel.key) == 1 and rel.rows_estimate <= MAX_LISTED_IDS:
        key = sql.Identifier(rel.key[0])
        where, args = _only(rel, "WHERE")
        ids = [
            r["k"]
            for r in conn.execute(
                sql.SQL("SELECT {} AS k FROM {}{} ORDER BY 1").format(key, table, where), args
            )
        ]
        chosen = [ids[i] for i in np.sort(choose(len(ids), size, seed))]
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s) ORDER BY {}").format(
                wanted, table, key, key
            ),
            [chosen],
        ).fetchall()
        population, method, extra = len(ids), "ids", {}
    else:
        estimate = rel.rows_estimate
        where, args = _only(rel, "WHERE")
        if estimate <= 0:  # never analysed: count
            counted = conn.execute(
                sql.SQL("SELECT count(*) AS n FROM {}{}").format(table, where), args
            ).fetchone()
            estimate = float(counted["n"]) if counted else 0.0
        percent = 100.0 if estimate <= 0 else min(100.0, 100.0 * size * OVERSAMPLE / estimate)
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {} TABLESAMPLE BERNOULLI (%s) REPEATABLE (%s){}").format(
                wanted, table, where
            ),
            [percent, seed, *args],
        ).fetchall()
        if len(rows) > size:  # a uniform choice among the drawn rows, not the first ones
            rows = [rows[i] for i in np.sort(choose(len(rows), size, seed))]
        population = max(int(estimate), len(rows))
        method, extra = "tablesample", {"percent": round(percent, 4)}
    out: list[VectorSample] = []
    for i, (name, dim) in enumerate(rel.columns):
        texts = [r[f"v{i}"] for r in rows if r[f"v{i}"] is not None]
        out.append(VectorSample(name, parse_vectors(texts, dim), population, seed, method, extra))
    return out
