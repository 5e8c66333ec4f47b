"""Vector stores that lay logical collections out in tables: which tables, which columns.

RAG frameworks keep their vectors in PostgreSQL in layouts of their own:

- LangChain's `PGVector` (langchain-postgres): one table `langchain_pg_embedding`
  holds every collection, a row's `collection_id` refers to
  `langchain_pg_collection(uuid)`, whose `name` and `cmetadata` (JSON) describe
  the collection; `embedding` is an unsized `vector` unless the store was given
  `embedding_length`.
- LlamaIndex's `PGVectorStore` (llama-index-vector-stores-postgres): one table
  `data_NAME` per store, `embedding vector(N)`, each node's metadata in
  `metadata_` (JSON).

A `Layout` says which table holds the vectors, which column names the
collection (and the table describing collections, if any) and which JSON
columns hold embedding provenance (the `embedding_*` keys). The two above are
built in; others are declared in steward.toml (`[[postgres.layouts]]`).
Matching is pure: a table matches when its name fits and every column the
layout names is there with the right kind of type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Types a provenance column may have (read with `->>`).
JSON_TYPES = ("json", "jsonb")


class Layout(BaseModel):
    """Where a vector store keeps its logical collections in a table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: What the layout is called in the catalog (`properties.layout`), e.g. `langchain`.
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    #: The table holding the vectors; `*` matches any characters (`data_*`), and what
    #: it matches names the collection when no column does.
    table: str = Field(min_length=1)
    #: The vector column.
    vector: str = "embedding"
    #: The column naming each row's collection (none: the table is one collection).
    collection: str | None = None
    #: A table of the same schema with one row per collection, which `collection` refers to.
    collections: str | None = None
    #: That table's column `collection` refers to.
    collection_key: str = "id"
    #: That table's column holding the collection's name (default: the key).
    collection_name: str | None = None
    #: That table's JSON column with the collection's metadata (embedding provenance).
    collection_metadata: str | None = None
    #: The vector table's JSON column with each row's metadata (provenance, with shares).
    metadata: str | None = None
    #: Other columns the vector table must have to be recognised.
    requires: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Layout:
        if self.collections is not None and self.collection is None:
            raise ValueError("'collections' needs 'collection' (the column that refers to it)")
        described = (self.collection_name, self.collection_metadata)
        if self.collections is None and any(v is not None for v in described):
            raise ValueError(
                "'collection_name' and 'collection_metadata' need 'collections' (their table)"
            )
        return self

    def pattern(self) -> re.Pattern[str]:
        parts = (re.escape(p) for p in self.table.split("*"))
        return re.compile("^" + "(.*)".join(parts) + "$", re.DOTALL)


LANGCHAIN = Layout(
    name="langchain",
    table="langchain_pg_embedding",
    collection="collection_id",
    collections="langchain_pg_collection",
    collection_key="uuid",
    collection_name="name",
    collection_metadata="cmetadata",
    metadata="cmetadata",
    requires=("id", "document"),
)
LLAMA_INDEX = Layout(
    name="llama_index",
    table="data_*",
    metadata="metadata_",
    requires=("text", "node_id"),
)
BUILT_IN = (LANGCHAIN, LLAMA_INDEX)


@dataclass(frozen=True)
class Column:
    name: str
    #: pgvector type (`vector`, `halfvec`) or None.
    vector_type: str | None
    #: The type as PostgreSQL prints it.
    type: str
    typmod: int


@dataclass(frozen=True)
class Match:
    """A table recognised as a layout's vector table."""

    layout: Layout
    schema: str
    table: str
    vector: Column
    #: The collection's name when the table is one collection (what `*` matched).
    single_name: str | None = None
    #: The type of the collection column, as PostgreSQL prints it (`uuid`).
    key_type: str = "text"

    @property
    def split(self) -> bool:
        """Whether the table holds several collections (one asset each)."""
        return self.layout.collection is not None


def _fits(layout: Layout, table: Mapping[str, Column], tables: Mapping[str, Any]) -> bool:
    vector = table.get(layout.vector)
    if vector is None or vector.vector_type not in ("vector", "halfvec"):
        return False
    named = [layout.collection, *layout.requires]
    if any(c is not None and c not in table for c in named):
        return False
    if layout.metadata is not None and (
        layout.metadata not in table or table[layout.metadata].type not in JSON_TYPES
    ):
        return False
    if layout.collections is None:
        return True
    described = tables.get(layout.collections)
    if described is None:
        return False
    wanted = [layout.collection_key, layout.collection_name]
    if any(c is not None and c not in described for c in wanted):
        return False
    meta = layout.collection_metadata
    return meta is None or (meta in described and described[meta].type in JSON_TYPES)


def match_layouts(
    layouts: Sequence[Layout], schemas: Mapping[str, Mapping[str, Mapping[str, Column]]]
) -> list[Match]:
    """The tables that fit a layout (the first that fits wins), in schema and name order.

    `schemas`: schema -> table -> column name -> column (tables and
    materialized views only).
    """
    out = []
    for schema in sorted(schemas):
        tables = schemas[schema]
        for name in sorted(tables):
            for layout in layouts:
                found = layout.pattern().match(name)
                if found is None or not _fits(layout, tables[name], tables):
                    continue
                single, key_type = None, "text"
                if layout.collection is None:
                    single = next((g for g in found.groups() if g), name)
                else:
                    key_type = tables[name][layout.collection].type
                vector = tables[name][layout.vector]
                out.append(Match(layout, schema, name, vector, single, key_type))
                break
    return out
