"""What table data adds to the specs: dimensions read from data, logical collections.

Pure functions over what `contents.read_groups` counted:

- an unsized vector column gets `dim` (the most common dimension of the
  sample), `dim_from: data`, and `dims` (every dimension seen) when the
  sample mixes several; the share of each is observed (`vector_dims`);
- a table that is one collection of a layout (LlamaIndex's `data_NAME`) gets
  `layout`, `collection` and the provenance its rows' metadata names;
- a table that holds several (LangChain's `langchain_pg_embedding`) gets
  `layout` and a count of its collections, and each collection becomes an
  asset of kind `collection`, named `DB.SCHEMA.TABLE/COLLECTION`, with the
  vector field as the table declares it (dimension from the collection's own
  rows when unsized), its rows, and provenance from the collection's
  metadata (or, with shares, from its rows' metadata).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from catalog.provenance import (
    MODEL_KEY,
    REVISION_KEY,
    SOURCE_KEY,
    Provenance,
    provenance_from_metadata,
    provenance_from_payloads,
)
from catalog.specs import AssetSpec, FieldSpec
from connectors.postgres.contents import Group
from connectors.postgres.layouts import Match
from connectors.qdrant.mapping import KIND, record_provenance, single_model

#: Attributes that say which model built a vector field (replaced by a layout's provenance).
PROVENANCE_ATTRIBUTES = (MODEL_KEY, REVISION_KEY, SOURCE_KEY)


def dim_attributes(dims: Counter[int]) -> dict[str, Any]:
    """`dim` (the most common dimension), `dim_from` and, when several, `dims`."""
    if not dims:
        return {}
    ordered = sorted(dims.items(), key=lambda kv: (-kv[1], kv[0]))
    out: dict[str, Any] = {"dim": ordered[0][0], "dim_from": "data"}
    if len(dims) > 1:
        out["dims"] = sorted(dims)
    return out


def dim_shares(dims: Counter[int]) -> dict[str, float]:
    total = sum(dims.values())
    return {str(d): round(n / total, 4) for d, n in sorted(dims.items())} if total else {}


def provenance_of(group: Group, warnings: list[str], where: str) -> Provenance | None:
    """From the collection's metadata, else from its rows' metadata (with shares)."""
    payloads = [
        {MODEL_KEY: model, REVISION_KEY: revision, SOURCE_KEY: source}
        for (model, revision, source), n in sorted(
            group.payloads.items(), key=lambda kv: tuple(x or "" for x in kv[0])
        )
        for _ in range(n)
    ]
    return provenance_from_metadata(group.metadata, warnings, where) or provenance_from_payloads(
        payloads, warnings, where
    )


def _vector_field(
    field: FieldSpec, group: Group, provenance: Provenance | None, retype: bool = False
) -> FieldSpec:
    """The field with the group's dimension (when undeclared) and provenance.

    `retype`: show the dimension in the type too (`vector(384)`), for a
    collection; a table's column keeps the type PostgreSQL prints.
    """
    attributes = dict(field.attributes)
    if provenance is not None:
        for key in PROVENANCE_ATTRIBUTES:
            attributes.pop(key, None)
        attributes.update(single_model(provenance))
    kind = attributes.get("vector_type", "vector")
    if group.dims and (attributes.get("dim") is None or attributes.get("dim_from") == "data"):
        attributes.update(dim_attributes(group.dims))
    dim = attributes.get("dim")
    shown = f"{kind}({dim})" if dim and retype else field.type
    return field.model_copy(update={"type": shown, "attributes": attributes})


def collection_spec(table: AssetSpec, match: Match, group: Group, warnings: list[str]) -> AssetSpec:
    """One logical collection of a table laid out by a vector store."""
    name = f"{table.name}/{group.name}"
    provenance = provenance_of(group, warnings, f"{table.namespace}/{name}")
    field = next(f for f in table.fields if f.name == match.vector.name)
    properties: dict[str, Any] = {"layout": match.layout.name, "table": table.name}
    observed: dict[str, Any] = {"rows": group.rows or 0, "sampled": group.sampled}
    if group.dims:
        observed["vector_dims"] = {field.name: dim_shares(group.dims)}
    if group.key is not None:
        observed["collection_key"] = group.key
    if group.metadata:
        observed["metadata"] = group.metadata
    edges = record_provenance(provenance, properties, observed)
    return AssetSpec(
        namespace=table.namespace,
        name=name,
        kind=KIND,
        fields=[_vector_field(field, group, provenance, retype=True)],
        properties=properties,
        observed=observed,
        edges=edges,
        breaking_properties=frozenset({"embedding"}),
    )


def add_contents(
    specs: list[AssetSpec],
    matches: Mapping[str, Match],
    groups: Mapping[tuple[str, str], list[Group]],
    warnings: list[str],
) -> list[AssetSpec]:
    """The table specs with what their data says, and one spec per logical collection.

    `matches`: asset name -> the layout its table fits; `groups`: (asset name,
    vector column) -> what was read of it.
    """
    out = []
    for spec in specs:
        match = matches.get(spec.name)
        if match is not None and match.split:
            found = groups.get((spec.name, match.vector.name), [])
            spec.properties["layout"] = match.layout.name
            spec.observed["collections"] = len(found)
            out.append(spec)
            out.extend(collection_spec(spec, match, g, warnings) for g in found)
            continue
        fields, shares = [], {}
        for field in spec.fields:
            read = groups.get((spec.name, field.name))
            if not read:
                fields.append(field)
                continue
            (group,) = read
            provenance = None
            if match is not None and field.name == match.vector.name:
                provenance = provenance_of(group, warnings, spec.uri)
                spec.properties["layout"] = match.layout.name
                spec.properties["collection"] = match.single_name
                spec.edges.extend(record_provenance(provenance, spec.properties, spec.observed))
            fields.append(_vector_field(field, group, provenance))
            if group.dims and field.attributes.get("dim") is None:
                shares[field.name] = dim_shares(group.dims)
        if shares:
            spec.observed["vector_dims"] = shares
        spec.fields = fields
        out.append(spec)
    return out
