"""Embedding provenance conventions: which model built an index, from what.

Pipelines say which embedding model built a vector index with the keys
`embedding_model`, `embedding_revision` and `embedding_source` (the dataset
the texts came from), in a collection's metadata or in each point's payload.
These pure functions read them; any connector can use them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalog.errors import InvalidInput
from catalog.identity import AssetKey, parse_uri

MODEL_KEY, REVISION_KEY, SOURCE_KEY = "embedding_model", "embedding_revision", "embedding_source"
MAX_NAME = 255
#: More distinct `embedding_source` values than this in a payload sample are not edges.
MAX_PAYLOAD_SOURCES = 20


@dataclass(frozen=True)
class ModelShare:
    """One model@revision and the share of the sampled points it built."""

    model: str
    revision: str
    share: float = 1.0

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.revision}" if self.revision else self.model


@dataclass
class Provenance:
    """Which embedding model(s) built an index, and what it was embedded from."""

    origin: str
    models: list[ModelShare]
    sources: list[AssetKey] = field(default_factory=list)
    #: Points the shares were computed over (payload origin).
    sampled: int = 0

    def properties(self) -> dict[str, Any]:
        """The fingerprinted form: origin, models and sources (shares are observations)."""
        out: dict[str, Any] = {
            "origin": self.origin,
            "models": [{"model": m.model, "revision": m.revision} for m in self.models],
        }
        if self.sources:
            out["sources"] = sorted(k.uri for k in self.sources)
        return out

    def observed(self) -> dict[str, Any]:
        """The per-scan form: each model@revision with its share of the sample."""
        out: dict[str, Any] = {
            "origin": self.origin,
            "shares": [
                {"model": m.model, "revision": m.revision, "share": m.share} for m in self.models
            ],
        }
        if self.sampled:
            out["sampled"] = self.sampled
        return out


def split_dataset_uri(value: Any) -> AssetKey:
    """The asset key of an `embedding_source`: a URI or {"namespace", "name"}.

    `postgres://db:5432/shop.public.docs` -> (`postgres://db:5432`, `shop.public.docs`),
    `s3://bucket/path/file` -> (`s3://bucket`, `path/file`), and for URIs without a
    host (`file:///data/docs.parquet`) the name is the absolute path.
    """
    if isinstance(value, Mapping):
        namespace, name = value.get("namespace"), value.get("name")
        if isinstance(namespace, str) and isinstance(name, str):
            return AssetKey.of(namespace, name)
        raise InvalidInput("embedding_source must have string 'namespace' and 'name'")
    if not isinstance(value, str):
        raise InvalidInput(f"embedding_source {value!r} is not a dataset URI (SCHEME://...)")
    try:
        return parse_uri(value)
    except InvalidInput:
        raise InvalidInput(
            f"embedding_source {value!r} is not a dataset URI",
            hint="write SCHEME://HOST:PORT/NAME or file:///PATH",
        ) from None


def text_value(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text[:MAX_NAME] if text else None
    return None


def provenance_from_metadata(
    metadata: Mapping[str, Any] | None, warnings: list[str], where: str = ""
) -> Provenance | None:
    """Provenance from a collection's metadata keys, or None if it names no model."""
    if not metadata:
        return None
    model = text_value(metadata.get(MODEL_KEY))
    if model is None:
        if MODEL_KEY in metadata:
            warnings.append(f"{where}: metadata {MODEL_KEY} is not a string; ignored")
        return None
    revision = text_value(metadata.get(REVISION_KEY)) or ""
    sources: list[AssetKey] = []
    if metadata.get(SOURCE_KEY) is not None:
        try:
            sources.append(split_dataset_uri(metadata[SOURCE_KEY]))
        except InvalidInput as err:
            warnings.append(f"{where}: {err}")
    return Provenance("metadata", [ModelShare(model, revision)], sources)


def provenance_from_payloads(
    payloads: Sequence[Mapping[str, Any] | None], warnings: list[str], where: str = ""
) -> Provenance | None:
    """Provenance from sampled point payloads, with each model@revision's share."""
    counts: Counter[tuple[str, str]] = Counter()
    raw_sources: set[str] = set()
    for payload in payloads:
        if not payload:
            continue
        model = text_value(payload.get(MODEL_KEY))
        if model is None:
            continue
        counts[(model, text_value(payload.get(REVISION_KEY)) or "")] += 1
        source = payload.get(SOURCE_KEY)
        if isinstance(source, str) and len(raw_sources) <= MAX_PAYLOAD_SOURCES:
            raw_sources.add(source)
    if not counts:
        return None
    total = len(payloads)
    models = [
        ModelShare(model, revision, round(n / total, 4))
        for (model, revision), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    sources: list[AssetKey] = []
    if len(raw_sources) > MAX_PAYLOAD_SOURCES:
        warnings.append(
            f"{where}: points name more than {MAX_PAYLOAD_SOURCES} embedding_source values;"
            " no lineage edges made from them"
        )
    else:
        for raw in sorted(raw_sources):
            try:
                sources.append(split_dataset_uri(raw))
            except InvalidInput as err:
                warnings.append(f"{where}: {err}")
    return Provenance("payload", models, sources, sampled=total)
