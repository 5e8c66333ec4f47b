"""From rows of PostgreSQL's catalog to asset specs: pure functions, no I/O.

`build_specs(snapshot)` turns what the queries of `queries.py` returned into
one `AssetSpec` per table, partitioned table, partition, view, materialized
view and foreign table. Definitions (columns, keys, indexes, view SQL,
vector settings, embedding provenance) are fingerprinted; estimated rows,
size and owner are observations.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from catalog.errors import InvalidInput
from catalog.provenance import split_dataset_uri
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
from connectors.postgres.collections import add_contents, dim_attributes
from connectors.postgres.contents import Group
from connectors.postgres.layouts import Match
from connectors.postgres.nodetree import NodeTreeError, column_sources

log = logging.getLogger(__name__)

Row = dict[str, Any]

KINDS = {"r": "table", "p": "table", "f": "table", "v": "view", "m": "materialized_view"}

#: Edge kind of a view's or materialized view's read of its sources.
VIEW_EDGE = "view_dependency"
#: Edge kind from the dataset a vector column was embedded from (comment convention).
EMBEDDED_FROM_EDGE = "embedded_from"

#: pgvector operator class (by suffix) -> distance.
DISTANCES = {
    "_cosine_ops": "cosine",
    "_l2_ops": "l2",
    "_ip_ops": "inner_product",
    "_l1_ops": "l1",
    "_hamming_ops": "hamming",
    "_jaccard_ops": "jaccard",
}
VECTOR_METHODS = ("hnsw", "ivfflat")
ELEMENTS = {"vector": "float32", "halfvec": "float16", "sparsevec": "sparse"}

_IDENTITY = {"a": "always", "d": "by default"}
_FK_ACTIONS = {
    "a": "no action",
    "r": "restrict",
    "c": "cascade",
    "n": "set null",
    "d": "set default",
}
_PROVENANCE = re.compile(
    r"\b(embedding_model|embedding_revision|embedding_source)\s*=\s*([^\s;,]+)", re.IGNORECASE
)


@dataclass
class Snapshot:
    """Everything one scan read, as rows (dicts) of each catalog query."""

    namespace: str
    database: str
    relations: list[Row]
    columns: list[Row] = field(default_factory=list)
    constraints: list[Row] = field(default_factory=list)
    indexes: list[Row] = field(default_factory=list)
    view_dependencies: list[Row] = field(default_factory=list)
    view_queries: list[Row] = field(default_factory=list)
    #: pgvector type oid -> type name (vector, halfvec, sparsevec).
    vector_types: dict[int, str] = field(default_factory=dict)
    #: Asset name -> the vector-store layout its table fits.
    matches: dict[str, Match] = field(default_factory=dict)
    #: (asset name, vector column) -> what its data says (`contents.read_groups`).
    groups: dict[tuple[str, str], list[Group]] = field(default_factory=dict)


def distance_of(opclass: str) -> str | None:
    """The distance a pgvector operator class ranks by, e.g. vector_cosine_ops -> cosine."""
    for suffix, distance in DISTANCES.items():
        if opclass.endswith(suffix):
            return distance
    return None


def parse_provenance(comment: str | None) -> dict[str, str]:
    """Embedding provenance from a column comment.

    The convention: `embedding_model=NAME@REVISION` (or `embedding_model=NAME`
    with `embedding_revision=REVISION`) and optionally `embedding_source=URI`,
    anywhere in the comment, separated by spaces, commas or semicolons.
    """
    if not comment:
        return {}
    found = {key.lower(): value for key, value in _PROVENANCE.findall(comment)}
    model = found.get("embedding_model")
    if model and "embedding_revision" not in found and "@" in model.strip("@"):
        name, _, revision = model.rpartition("@")
        found["embedding_model"], found["embedding_revision"] = name, revision
    return found


class _Builder:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.warnings: list[str] = []
        self.relations = {row["oid"]: row for row in snap.relations}
        self.columns: dict[int, list[Row]] = defaultdict(list)
        for row in snap.columns:
            self.columns[row["oid"]].append(row)
        self.constraints: dict[int, list[Row]] = defaultdict(list)
        for row in snap.constraints:
            self.constraints[row["oid"]].append(row)
        self.indexes: dict[int, list[Row]] = defaultdict(list)
        for row in snap.indexes:
            self.indexes[row["oid"]].append(row)
        self.partitions: dict[int, list[Row]] = defaultdict(list)
        for row in snap.relations:
            if row["parent_oid"] is not None:
                self.partitions[row["parent_oid"]].append(row)
        self.view_edge_map = self.view_edges()
        self.field_cache: dict[tuple[Any, ...], FieldSpec] = {}

    def name(self, schema: str, relation: str) -> str:
        return f"{self.snap.database}.{schema}.{relation}"

    def spec(self, rel: Row) -> AssetSpec:
        oid = rel["oid"]
        kind = KINDS[rel["relkind"]]
        name = self.name(rel["schema"], rel["name"])
        fields = [self.field(col, oid) for col in self.columns.get(oid, [])]
        edges = [e for col in self.columns.get(oid, []) for e in self.embedding_edges(name, col)]
        edges += self.view_edge_map.get(oid, [])
        return AssetSpec(
            namespace=self.snap.namespace,
            name=name,
            kind=kind,
            description=rel["description"],
            fields=fields,
            properties=self.properties(rel),
            observed=self.observed(rel),
            edges=edges,
        )

    def field(self, col: Row, oid: int) -> FieldSpec:
        attributes: dict[str, Any] = {}
        default = col["default_expr"]
        if col["identity"]:
            attributes["identity"] = _IDENTITY.get(col["identity"], col["identity"])
        if col["generated"]:
            attributes["generated"] = "stored" if col["generated"] == "s" else col["generated"]
            attributes["expression"] = default
            default = None
        vector_type = self.snap.vector_types.get(col["type_oid"])
        if vector_type:
            attributes.update(self.vector_attributes(col, oid, vector_type))
            return self._field(col, default, attributes)
        # FieldSpecs are frozen values: columns defined alike (`id bigint NOT NULL`,
        # `created_at timestamptz`) share one, validated once.
        key = (col["name"], col["type"], col["not_null"], default, col["description"])
        key += tuple(attributes.items())
        found = self.field_cache.get(key)
        if found is None:
            found = self.field_cache[key] = self._field(col, default, attributes)
        return found

    @staticmethod
    def _field(col: Row, default: str | None, attributes: dict[str, Any]) -> FieldSpec:
        return FieldSpec(
            name=col["name"],
            type=col["type"],
            nullable=not col["not_null"],
            default=default,
            description=col["description"],
            attributes=attributes,
        )

    def vector_attributes(self, col: Row, oid: int, vector_type: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "vector": True,
            "vector_type": vector_type,
            "element": ELEMENTS.get(vector_type, vector_type),
            "dim": col["typmod"] if col["typmod"] and col["typmod"] > 0 else None,
        }
        found = []
        for index in self.indexes.get(oid, []):
            if index["method"] not in VECTOR_METHODS:
                continue
            for position, attnum in enumerate(index["keys"]):
                if attnum != col["attnum"] or position >= len(index["opclasses"]):
                    continue
                opclass = index["opclasses"][position]
                found.append(
                    {
                        "name": index["name"],
                        "method": index["method"],
                        "opclass": opclass,
                        "distance": distance_of(opclass),
                        "options": dict(option.split("=", 1) for option in index["options"] or ()),
                    }
                )
        if found:
            first = found[0]
            out.update(
                index=first["name"],
                method=first["method"],
                opclass=first["opclass"],
                distance=first["distance"],
                index_options=first["options"],
            )
            if len(found) > 1:
                out["indexes"] = found
        out.update(parse_provenance(col["description"]))
        return out

    def embedding_edges(self, name: str, col: Row) -> list[EdgeSpec]:
        if col["type_oid"] not in self.snap.vector_types:
            return []
        source = parse_provenance(col["description"]).get("embedding_source")
        if not source:
            return []
        try:
            key = split_dataset_uri(source)
        except InvalidInput as err:
            self.warnings.append(f"{name}.{col['name']}: {err}; no lineage edge recorded")
            return []
        return [
            EdgeSpec(source_namespace=key.namespace, source_name=key.name, kind=EMBEDDED_FROM_EDGE)
        ]

    def properties(self, rel: Row) -> dict[str, Any]:
        props: dict[str, Any] = {}
        if rel["view_definition"] is not None:
            props["definition"] = rel["view_definition"].strip()
        by_type: dict[str, list[Row]] = defaultdict(list)
        for con in self.constraints.get(rel["oid"], []):
            by_type[con["type"]].append(con)
        if by_type["p"]:
            props["primary_key"] = list(by_type["p"][0]["columns"])
        if by_type["u"]:
            props["unique"] = [
                {"name": c["name"], "columns": list(c["columns"])} for c in by_type["u"]
            ]
        if by_type["f"]:
            props["foreign_keys"] = [self.foreign_key(c) for c in by_type["f"]]
        if by_type["c"]:
            props["checks"] = {c["name"]: c["definition"] for c in by_type["c"]}
        if by_type["x"]:
            props["exclusions"] = {c["name"]: c["definition"] for c in by_type["x"]}
        indexes = self.indexes.get(rel["oid"], [])
        if indexes:
            props["indexes"] = {i["name"]: i["definition"] for i in indexes}
        if rel["relkind"] == "p":
            props["partitioned"] = True
            props["partition_key"] = rel["partition_key"]
            props["partitions"] = sorted(
                self.name(p["schema"], p["name"]) for p in self.partitions.get(rel["oid"], [])
            )
        if rel["relispartition"]:
            parent = self.relations.get(rel["parent_oid"])
            if parent is not None:
                props["partition_of"] = self.name(parent["schema"], parent["name"])
            props["partition_bound"] = rel["partition_bound"]
        if rel["relkind"] == "f":
            props["foreign_server"] = rel["foreign_server"]
        return props

    def foreign_key(self, con: Row) -> dict[str, Any]:
        return {
            "name": con["name"],
            "columns": list(con["columns"]),
            "references": self.name(con["ref_schema"], con["ref_table"]),
            "referenced_columns": list(con["ref_columns"]),
            "on_update": _FK_ACTIONS.get(con["on_update"], con["on_update"]),
            "on_delete": _FK_ACTIONS.get(con["on_delete"], con["on_delete"]),
        }

    def observed(self, rel: Row) -> dict[str, Any]:
        rows = rel["reltuples"]
        size = rel["size_bytes"]
        if rel["relkind"] == "p":
            parts = self.partitions.get(rel["oid"], [])
            known = [p["reltuples"] for p in parts if (p["reltuples"] or -1) >= 0]
            rows = sum(known) if known else None
            size = sum(p["size_bytes"] or 0 for p in parts) if parts else None
        out: dict[str, Any] = {"owner": rel["owner"]}
        if rows is not None and rows >= 0 and rel["relkind"] in ("r", "p", "m"):
            out["rows_estimate"] = int(rows)
        if size is not None:
            out["size_bytes"] = int(size)
        return out

    def view_edges(self) -> dict[int, list[EdgeSpec]]:
        """Lineage edges into each view: one per source relation, with column mapping."""
        reads: dict[int, dict[int, Row]] = defaultdict(dict)
        attnames: dict[tuple[int, int], str] = {}
        for dep in self.snap.view_dependencies:
            reads[dep["view_oid"]].setdefault(dep["source_oid"], dep)
            if dep["attnum"] and dep["attname"] is not None:
                attnames[(dep["source_oid"], dep["attnum"])] = dep["attname"]
        mapping: dict[int, dict[int, dict[str, list[str]]]] = {}
        for row in self.snap.view_queries:
            view = row["view_oid"]
            try:
                sources = column_sources(row["action"])
            except NodeTreeError as err:
                rel = self.relations[view]
                log.debug("no column lineage for %s.%s: %s", rel["schema"], rel["name"], err)
                continue
            per_source: dict[int, dict[str, list[str]]] = defaultdict(dict)
            for column, found in sources.items():
                by_source: dict[int, set[str]] = defaultdict(set)
                for source_oid, attnum in found:
                    attname = attnames.get((source_oid, attnum))
                    if attname is not None and source_oid != view:
                        by_source[source_oid].add(attname)
                for source_oid, names in by_source.items():
                    per_source[source_oid][column] = sorted(names)
            mapping[view] = per_source
        out: dict[int, list[EdgeSpec]] = {}
        for view, read in reads.items():
            out[view] = [
                EdgeSpec(
                    source_namespace=self.snap.namespace,
                    source_name=self.name(dep["source_schema"], dep["source_name"]),
                    kind=VIEW_EDGE,
                    fields=mapping.get(view, {}).get(source_oid, {}),
                )
                for source_oid, dep in sorted(
                    read.items(), key=lambda s: (s[1]["source_schema"], s[1]["source_name"])
                )
            ]
        return out


def build_specs(snap: Snapshot) -> tuple[list[AssetSpec], list[str]]:
    """One spec per relation of the snapshot, and warnings about what was left out."""
    builder = _Builder(snap)
    specs = [builder.spec(rel) for rel in snap.relations]
    specs = add_contents(specs, snap.matches, snap.groups, builder.warnings)
    return specs, builder.warnings


#: pgvector types a sample reads (dense ones).
SAMPLED_TYPES = ("vector", "halfvec")


@dataclass(frozen=True)
class VectorRelation:
    """A table (or materialized view) with dense vector columns: what a sample reads."""

    schema: str
    name: str
    #: The primary key's columns (empty without one).
    key: tuple[str, ...]
    #: Dense vector columns with a known dimension (declared, or read from the data),
    #: in column order.
    columns: tuple[tuple[str, int], ...]
    #: Rows (PostgreSQL's estimate, -1 or 0 when never analysed; a collection's count).
    rows_estimate: float
    #: Columns whose dimension was read from the data: vectors of another one are left out.
    untyped: frozenset[str] = frozenset()
    #: (column, its type, value): only the rows of one logical collection.
    collection: tuple[str, str, str] | None = None


def _data_dim(snap: Snapshot, name: str, column: str) -> int | None:
    groups = snap.groups.get((name, column)) or []
    return dim_attributes(groups[0].dims).get("dim") if len(groups) == 1 else None


def vector_relations(snap: Snapshot) -> dict[str, VectorRelation]:
    """Asset name -> the relation's (or collection's) dense vector columns, for sampling."""
    names = {rel["oid"]: f"{snap.database}.{rel['schema']}.{rel['name']}" for rel in snap.relations}
    columns: dict[int, list[tuple[str, int]]] = defaultdict(list)
    untyped: dict[int, set[str]] = defaultdict(set)
    for col in snap.columns:
        if snap.vector_types.get(col["type_oid"]) not in SAMPLED_TYPES:
            continue
        dim = col["typmod"] if (col["typmod"] or 0) > 0 else None
        if dim is None and col["oid"] in names:
            dim = _data_dim(snap, names[col["oid"]], col["name"])
            untyped[col["oid"]].add(col["name"])
        if dim is not None:
            columns[col["oid"]].append((col["name"], int(dim)))
    keys = {con["oid"]: tuple(con["columns"]) for con in snap.constraints if con["type"] == "p"}
    out = {}
    for rel in snap.relations:
        oid, name = rel["oid"], names[rel["oid"]]
        if rel["relkind"] not in ("r", "p", "m"):
            continue
        match = snap.matches.get(name)
        if match is not None and match.split:
            out.update(_collections(snap, rel, keys.get(oid, ()), match))
            continue
        if oid not in columns:
            continue
        out[name] = VectorRelation(
            rel["schema"],
            rel["name"],
            keys.get(oid, ()),
            tuple(columns[oid]),
            float(rel["reltuples"] if rel["reltuples"] is not None else -1),
            frozenset(untyped[oid]),
        )
    return out


def _collections(
    snap: Snapshot, rel: Row, key: tuple[str, ...], match: Match
) -> dict[str, VectorRelation]:
    """One relation per logical collection of a table that holds several."""
    name = f"{snap.database}.{rel['schema']}.{rel['name']}"
    column = match.vector.name
    typed = match.vector.typmod > 0
    out = {}
    for group in snap.groups.get((name, column), []):
        dim = match.vector.typmod if typed else dim_attributes(group.dims).get("dim")
        if dim is None or group.key is None or match.layout.collection is None:
            continue
        out[f"{name}/{group.name}"] = VectorRelation(
            rel["schema"],
            rel["name"],
            key,
            ((column, int(dim)),),
            float(group.rows or 0),
            frozenset() if typed else frozenset({column}),
            (match.layout.collection, match.key_type, group.key),
        )
    return out
