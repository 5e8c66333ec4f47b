"""What connectors and ingesters hand to the catalog: plain, validated specs.

These are not tables (those live in `catalog.models`). An `AssetSpec` says
what an asset *is* (its definition, which is fingerprinted and versioned) and
what was *observed* about it (row counts, sizes, owners: kept, not versioned).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog.identity import AssetKey, asset_uri, kind_uri, read_namespace

#: Asset kinds the catalog knows. Connectors may use others; these are the
#: ones the lineage rules and reports understand.
KINDS = (
    "table",
    "view",
    "materialized_view",
    "collection",
    "feature_set",
    "model",
    "embedding_model",
    "dataset",
    "job",
)


class FieldSpec(BaseModel):
    """One field (column, payload key, feature, signature input) of an asset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    type: str = ""
    nullable: bool = True
    default: str | None = None
    description: str | None = None
    #: Definition details beyond the type (vector dimension, distance, index).
    attributes: dict[str, Any] = Field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """The canonical, fingerprinted form of the field."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.default is not None:
            out["default"] = self.default
        if self.description:
            out["description"] = self.description
        if self.attributes:
            out["attributes"] = self.attributes
        return out


class EdgeSpec(BaseModel):
    """A lineage edge into the asset that declares it, from `source`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_namespace: str
    source_name: str = Field(min_length=1)
    kind: str = "reads"
    #: Field-level mapping: target field -> the source fields it is derived from.
    fields: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("source_namespace")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return read_namespace(value)[0]

    @property
    def source(self) -> AssetKey:
        return AssetKey(self.source_namespace, self.source_name)


class AssetSpec(BaseModel):
    """A full description of one asset as its source sees it now."""

    model_config = ConfigDict(extra="forbid")

    namespace: str
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    description: str | None = None
    fields: list[FieldSpec] = Field(default_factory=list)
    #: Definition beyond the fields (vector config, transformations, keys).
    properties: dict[str, Any] = Field(default_factory=dict)
    #: Observations, not versioned: row counts, sizes, owner, point counts.
    observed: dict[str, Any] = Field(default_factory=dict)
    #: Upstream lineage edges this asset's definition declares.
    edges: list[EdgeSpec] = Field(default_factory=list)
    #: Other names of the same asset (OpenLineage `symlinks`).
    aliases: list[AssetKey] = Field(default_factory=list)
    #: Property keys whose change breaks consumers (e.g. a vector's size).
    breaking_properties: frozenset[str] = frozenset()

    @field_validator("namespace")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return read_namespace(value)[0]

    @field_validator("aliases")
    @classmethod
    def _normalise_aliases(cls, value: list[AssetKey]) -> list[AssetKey]:
        return [AssetKey(read_namespace(key.namespace)[0], key.name) for key in value]

    @property
    def key(self) -> AssetKey:
        return AssetKey(self.namespace, self.name)

    @property
    def uri(self) -> str:
        """Its URI: a job's is `job:NAMESPACE/NAME` (a key space of its own)."""
        return kind_uri(self.namespace, self.name, self.kind)

    def definition(self) -> dict[str, Any]:
        """Everything that defines the asset; its fingerprint is taken over this.

        The asset's description is documentation, not definition: a changed
        description is updated in place, like an observation.
        """
        out: dict[str, Any] = {
            "kind": self.kind,
            "fields": [field.definition() for field in self.fields],
            "properties": self.properties,
        }
        if self.breaking_properties:
            out["breaking_properties"] = sorted(self.breaking_properties)
        if self.edges:
            out["upstream"] = sorted(
                (
                    {
                        "source": asset_uri(e.source_namespace, e.source_name),
                        "kind": e.kind,
                        **({"fields": e.fields} if e.fields else {}),
                    }
                    for e in self.edges
                ),
                key=lambda item: (item["source"], item["kind"]),
            )
        return out


class RunIOSpec(BaseModel):
    """A dataset (or feature set, or model) a run read or wrote, and what it saw of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str
    name: str = Field(min_length=1)
    #: The kind a placeholder gets when nothing has described the asset yet.
    kind: str = "dataset"
    facets: dict[str, Any] = Field(default_factory=dict)

    @field_validator("namespace")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return read_namespace(value)[0]

    @property
    def key(self) -> AssetKey:
        return AssetKey(self.namespace, self.name)


class RunSpec(BaseModel):
    """One run of a job as a tracking system reports it (an MLflow run, ...).

    The same rows as OpenLineage's runs (`run`, `run_dataset`), so the same
    views, API and report serve both.
    """

    model_config = ConfigDict(extra="forbid")

    run_uuid: str = Field(min_length=1, max_length=64)
    job_namespace: str
    job_name: str = Field(min_length=1)
    #: OpenLineage's run states: START, RUNNING, COMPLETE, ABORT, FAIL, OTHER.
    state: str = "OTHER"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    facets: dict[str, Any] = Field(default_factory=dict)
    inputs: list[RunIOSpec] = Field(default_factory=list)
    outputs: list[RunIOSpec] = Field(default_factory=list)

    @field_validator("job_namespace")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return read_namespace(value)[0]

    @property
    def job(self) -> AssetKey:
        return AssetKey(self.job_namespace, self.job_name)
