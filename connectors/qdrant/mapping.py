"""Qdrant collection info -> asset specs: pure functions over qdrant-client models.

Per collection, the vector configuration (dense, named, multi and sparse
vectors, HNSW, quantization) and the embedding provenance are fingerprinted;
the point count, payload statistics, metadata and aliases are observations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from catalog.provenance import Provenance, provenance_from_metadata, provenance_from_payloads
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec

KIND = "collection"
EMBEDDED_FROM = "embedded_from"
#: Payload keys reported per collection (the most frequent ones).
MAX_PAYLOAD_KEYS = 100
DISTANCES = {"Cosine": "cosine", "Dot": "dot", "Euclid": "euclid", "Manhattan": "manhattan"}


def _plain(model: Any) -> Any:
    """A qdrant-client model as plain JSON data, without unset (None) values."""
    if model is None:
        return None
    if hasattr(model, "model_dump"):
        return model.model_dump(mode="json", exclude_none=True)
    return model


def _vector_params(info: Any) -> dict[str, Any]:
    """Name -> VectorParams; the single unnamed vector is named ''."""
    vectors = info.config.params.vectors
    if vectors is None:
        return {}
    if isinstance(vectors, Mapping):
        return dict(vectors)
    return {"": vectors}


def dense_vector_dims(info: Any) -> dict[str, int]:
    """Dense (not multi) vectors and their sizes."""
    return {
        name: params.size
        for name, params in _vector_params(info).items()
        if params.multivector_config is None
    }


def dense_vector_names(info: Any) -> list[str]:
    return sorted(dense_vector_dims(info))


def vector_field(name: str, params: Any, provenance: dict[str, Any]) -> FieldSpec:
    """One field per vector, with the attributes pgvector columns carry too."""
    distance = getattr(params.distance, "value", params.distance)
    datatype = getattr(params.datatype, "value", params.datatype) or "float32"
    attributes: dict[str, Any] = {
        "vector": True,
        "dim": params.size,
        "distance": DISTANCES.get(distance, str(distance).lower()),
        "element": datatype,
        "on_disk": bool(params.on_disk),
    }
    kind = "vector"
    if params.multivector_config is not None:
        kind = "multivector"
        attributes["multivector"] = _plain(params.multivector_config)
    if params.hnsw_config is not None:
        attributes["hnsw"] = _plain(params.hnsw_config)
    if params.quantization_config is not None:
        attributes["quantization"] = _plain(params.quantization_config)
    attributes.update(provenance)
    return FieldSpec(
        name=name or "vector",
        type=f"{kind}({params.size})",
        nullable=bool(name),
        attributes=attributes,
    )


def sparse_field(name: str, params: Any) -> FieldSpec:
    attributes: dict[str, Any] = {"sparse": True}
    if params is not None:
        if params.modifier is not None:
            attributes["modifier"] = getattr(params.modifier, "value", params.modifier)
        if params.index is not None:
            attributes["index"] = _plain(params.index)
    return FieldSpec(name=name, type="sparse_vector", nullable=True, attributes=attributes)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def payload_keys(payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Top-level payload keys seen in a sample: the JSON types and the share of points."""
    seen: dict[str, dict[str, int]] = {}
    present: dict[str, int] = {}
    for payload in payloads:
        for key, value in payload.items():
            seen.setdefault(key, {})
            kind = _json_type(value)
            seen[key][kind] = seen[key].get(kind, 0) + 1
            present[key] = present.get(key, 0) + 1
    top = sorted(seen, key=lambda k: (-present[k], k))[:MAX_PAYLOAD_KEYS]
    total = len(payloads) or 1
    return {
        key: {"types": sorted(seen[key]), "share": round(present[key] / total, 4)}
        for key in sorted(top)
    }


def single_model(provenance: Provenance | None) -> dict[str, Any]:
    """The vector field attributes of an index built by one model (none for a mix)."""
    if provenance is None or len(provenance.models) != 1:
        return {}
    only = provenance.models[0]
    out = {"embedding_model": only.model, "embedding_revision": only.revision}
    if provenance.sources:
        out["embedding_source"] = provenance.sources[0].uri
    return out


def record_provenance(
    provenance: Provenance | None, properties: dict[str, Any], observed: dict[str, Any]
) -> list[EdgeSpec]:
    """Put the provenance into a vector index's spec; returns its `embedded_from` edges.

    Models and sources are fingerprinted (`properties["embedding"]`), each
    model's share is observed; every source is an `embedded_from` edge.
    """
    if provenance is None:
        return []
    properties["embedding"] = provenance.properties()
    observed["embedding"] = provenance.observed()
    return [
        EdgeSpec(source_namespace=k.namespace, source_name=k.name, kind=EMBEDDED_FROM)
        for k in provenance.sources
    ]


def collection_spec(
    namespace: str,
    name: str,
    info: Any,
    payloads: Sequence[Mapping[str, Any]],
    aliases: Sequence[str] = (),
    warnings: list[str] | None = None,
) -> AssetSpec:
    """The spec of one collection from its `CollectionInfo` and a payload sample."""
    warnings = warnings if warnings is not None else []
    where = f"{namespace}/{name}"
    config = info.config
    metadata = dict(config.metadata or {})
    provenance = provenance_from_metadata(metadata, warnings, where) or provenance_from_payloads(
        payloads, warnings, where
    )
    single = single_model(provenance)
    vectors = _vector_params(info)
    sparse = dict(config.params.sparse_vectors or {})
    fields = [vector_field(n, p, single) for n, p in sorted(vectors.items())]
    fields += [sparse_field(n, p) for n, p in sorted(sparse.items())]
    properties: dict[str, Any] = {
        "vectors": {n or "": _plain(p) for n, p in sorted(vectors.items())},
        "named_vectors": not (len(vectors) == 1 and "" in vectors),
    }
    if sparse:
        properties["sparse_vectors"] = {n: _plain(p) or {} for n, p in sorted(sparse.items())}
    if config.hnsw_config is not None:
        properties["hnsw"] = _plain(config.hnsw_config)
    if config.quantization_config is not None:
        properties["quantization"] = _plain(config.quantization_config)
    if config.params.on_disk_payload is not None:
        properties["on_disk_payload"] = config.params.on_disk_payload
    observed: dict[str, Any] = {
        "points": info.points_count or 0,
        "indexed_vectors": info.indexed_vectors_count or 0,
        "status": getattr(info.status, "value", str(info.status)),
        "payload_sample": len(payloads),
        "payload_keys": payload_keys(payloads),
    }
    if info.segments_count is not None:
        observed["segments"] = info.segments_count
    if info.payload_schema:
        observed["payload_schema"] = {
            field: {
                "type": getattr(index.data_type, "value", str(index.data_type)),
                "points": index.points or 0,
            }
            for field, index in sorted(info.payload_schema.items())
        }
    if metadata:
        observed["metadata"] = metadata
    if aliases:
        observed["aliases"] = list(aliases)
    edges = record_provenance(provenance, properties, observed)
    return AssetSpec(
        namespace=namespace,
        name=name,
        kind=KIND,
        fields=fields,
        properties=properties,
        observed=observed,
        edges=edges,
        breaking_properties=frozenset({"embedding"}),
    )
