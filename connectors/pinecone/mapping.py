"""Pinecone index descriptions -> asset specs: pure functions over plain JSON data.

An index is described to the catalog exactly as a Qdrant collection is (kind
`collection`, one vector field with `dim` and `distance`, `properties
["embedding"]` for the provenance, `embedded_from` edges), so every rule that
reads a collection reads a Pinecone index the same way. What defines the
index (dimension, metric, vector type, spec, deletion protection, integrated
embedding, provenance) is fingerprinted; record counts per namespace, tags,
status, host and the metadata keys of the sample are observations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from catalog.errors import InvalidInput
from catalog.identity import AssetKey
from catalog.provenance import (
    MAX_PAYLOAD_SOURCES,
    MODEL_KEY,
    REVISION_KEY,
    SOURCE_KEY,
    ModelShare,
    Provenance,
    provenance_from_metadata,
    provenance_from_payloads,
    split_dataset_uri,
    text_value,
)
from catalog.specs import AssetSpec, FieldSpec
from connectors.qdrant.mapping import KIND, payload_keys, record_provenance, single_model

#: Pinecone's metric names -> the distance names the other vector stores use.
METRICS = {"cosine": "cosine", "dotproduct": "dot", "euclidean": "euclid"}
#: The read capacity and scaling of a spec: observed, not part of the definition.
SCALING_KEYS = frozenset({"read_capacity", "replicas", "shards", "pods"})


def deployment(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprinted part of an index's `spec`: where and on what it runs.

    Serverless: cloud and region (and the source collection, metadata schema);
    pod-based: environment and pod type (replicas, shards and pods scale, they
    are observed); BYOC: its environment.
    """
    out: dict[str, Any] = {}
    for kind in ("serverless", "pod", "byoc"):
        part = spec.get(kind)
        if isinstance(part, Mapping):
            out[kind] = {k: v for k, v in sorted(part.items()) if k not in SCALING_KEYS}
    return out


def scaling(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The observed part of an index's `spec`: read capacity, replicas, shards, pods."""
    out: dict[str, Any] = {}
    for part in spec.values():
        if isinstance(part, Mapping):
            out.update({k: v for k, v in part.items() if k in SCALING_KEYS})
    return out


def integrated_provenance(
    embed: Mapping[str, Any], tags: Mapping[str, str], warnings: list[str], where: str
) -> Provenance | None:
    """Provenance given by Pinecone itself: the hosted model of an integrated index.

    Hosted models have no revision in Pinecone's answer: the `embedding_revision`
    tag gives one when set. The `embedding_source` tag gives the dataset.
    """
    model = text_value(embed.get("model"))
    if model is None:
        return None
    tagged = text_value(tags.get(MODEL_KEY))
    if tagged is not None and tagged != model:
        warnings.append(
            f"{where}: tag {MODEL_KEY}={tagged} differs from the integrated model {model};"
            " the integrated model is used"
        )
    sources = []
    if tags.get(SOURCE_KEY):
        try:
            sources.append(split_dataset_uri(tags[SOURCE_KEY]))
        except InvalidInput as err:
            warnings.append(f"{where}: {err}")
    revision = text_value(tags.get(REVISION_KEY)) or ""
    return Provenance("metadata", [ModelShare(model, revision)], sources)


def index_provenance(
    index: Mapping[str, Any],
    metadatas: Sequence[Mapping[str, Any] | None],
    warnings: list[str],
    where: str,
) -> Provenance | None:
    """Integrated embedding first, then the index's tags, then sampled record metadata.

    The dataset embedded from (`embedding_source`) comes from the tags, else
    from the records' metadata, as Pinecone's tag values cannot hold a URI.
    """
    tags = dict(index.get("tags") or {})
    embed = index.get("embed")
    found = integrated_provenance(embed, tags, warnings, where) if embed else None
    found = found or provenance_from_metadata(tags, warnings, where)
    if found is None:
        return provenance_from_payloads(metadatas, warnings, where)
    if not found.sources:
        # Tag values cannot hold a URI (no ':' or '/'): the source may be in the records.
        found.sources = record_sources(metadatas, warnings, where)
    return found


def record_sources(
    metadatas: Sequence[Mapping[str, Any] | None], warnings: list[str], where: str
) -> list[AssetKey]:
    """The datasets the sampled records name as their `embedding_source`."""
    raw = sorted({m[SOURCE_KEY] for m in metadatas if m and isinstance(m.get(SOURCE_KEY), str)})
    if len(raw) > MAX_PAYLOAD_SOURCES:
        warnings.append(
            f"{where}: records name more than {MAX_PAYLOAD_SOURCES} embedding_source values;"
            " no lineage edges made from them"
        )
        return []
    out = []
    for uri in raw:
        try:
            out.append(split_dataset_uri(uri))
        except InvalidInput as err:
            warnings.append(f"{where}: {err}")
    return out


def vector_fields(index: Mapping[str, Any], provenance: Provenance | None) -> list[FieldSpec]:
    """One field, `vector` (dense) or `sparse`, with the attributes a collection's carry."""
    metric = str(index.get("metric") or "")
    if (index.get("vector_type") or "dense") == "sparse":
        return [
            FieldSpec(
                name="sparse",
                type="sparse_vector",
                nullable=True,
                attributes={"sparse": True, "distance": METRICS.get(metric, metric)},
            )
        ]
    dim = index.get("dimension")
    attributes: dict[str, Any] = {
        "vector": True,
        "dim": dim,
        "distance": METRICS.get(metric, metric),
        "element": "float32",
    }
    attributes.update(single_model(provenance))
    return [FieldSpec(name="vector", type=f"vector({dim})", nullable=False, attributes=attributes)]


def index_spec(
    namespace: str,
    index: Mapping[str, Any],
    stats: Mapping[str, Any],
    metadatas: Sequence[Mapping[str, Any] | None],
    warnings: list[str] | None = None,
) -> AssetSpec:
    """The spec of one index from `describe_index`, `describe_index_stats` and a sample.

    `index` and `stats` are the API's answers as JSON (`describe_index`'s
    snake_case keys; the stats' camelCase ones); `metadatas` the metadata of
    a uniform sample of records.
    """
    warnings = warnings if warnings is not None else []
    name = str(index["name"])
    where = f"{namespace}/{name}"
    provenance = index_provenance(index, metadatas, warnings, where)
    spec = dict(index.get("spec") or {})
    properties: dict[str, Any] = {
        "dimension": index.get("dimension"),
        "metric": index.get("metric"),
        "vector_type": index.get("vector_type") or "dense",
        "spec": deployment(spec),
        "deletion_protection": index.get("deletion_protection") or "disabled",
    }
    embed = index.get("embed")
    if embed:
        properties["integrated_embedding"] = {
            k: embed[k]
            for k in ("model", "field_map", "read_parameters", "write_parameters")
            if embed.get(k) is not None
        }
    namespaces = {
        ns: {"records": int((summary or {}).get("vectorCount") or 0)}
        for ns, summary in sorted((stats.get("namespaces") or {}).items())
    }
    status = index.get("status") or {}
    observed: dict[str, Any] = {
        "points": int(stats.get("totalVectorCount") or 0),
        "namespaces": namespaces,
        "status": status.get("state"),
        "ready": status.get("ready"),
        "host": index.get("host"),
        "payload_sample": len(metadatas),
        "payload_keys": payload_keys([m or {} for m in metadatas]),
    }
    if index.get("tags"):
        observed["tags"] = dict(sorted(index["tags"].items()))
    if scaling(spec):
        observed["scaling"] = scaling(spec)
    if stats.get("indexFullness"):
        observed["fullness"] = stats["indexFullness"]
    edges = record_provenance(provenance, properties, observed)
    return AssetSpec(
        namespace=namespace,
        name=name,
        kind=KIND,
        fields=vector_fields(index, provenance),
        properties=properties,
        observed=observed,
        edges=edges,
        breaking_properties=frozenset({"embedding", "integrated_embedding"}),
    )
