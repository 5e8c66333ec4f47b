"""The response schemas of steward's own read API, for its OpenAPI document.

The routes answer what the CLI's `--json` prints (from the same functions);
these models only describe it, field for field, so that a client can rely on
the document and the property-based test (`tests/lineage/test_api_schema.py`)
can check every answer against it. Optional keys are those the CLI leaves
out when empty.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AssetField(Shape):
    name: str
    type: str
    nullable: bool
    default: str | None = None
    description: str | None = None
    attributes: dict[str, Any] | None = None


class AssetSummary(Shape):
    """An asset as `steward assets --json` lists it."""

    uri: str
    namespace: str
    name: str
    kind: str
    version: int = Field(description="Current version; 0 while unresolved.")
    fingerprint: str | None
    deleted: bool
    unresolved: bool
    fields: list[AssetField]


class AssetPage(Shape):
    schema_version: int
    assets: list[AssetSummary]
    totalCount: int


class SourceField(Shape):
    name: str
    type: str


class Evidence(Shape):
    """What one source (a scan, an OpenLineage producer, the CLI) said about the asset."""

    source: str
    declared: bool = Field(description="A declared source (scan, registry, CLI), not an event.")
    asserted_at: str
    recorded_at: str | None
    kind: str | None = None
    fields: list[SourceField] | None = None
    observed: list[str] | None = Field(None, description="Names of what it observed.")
    description: str | None = None


class Link(Shape):
    uri: str
    kind: str


class Merged(Shape):
    uri: str
    merged_at: str | None


class AssetDetail(AssetSummary):
    """One asset as `steward show --json` prints it, with its evidence (`sources`)."""

    schema_version: int
    description: str | None
    properties: dict[str, Any]
    observed: dict[str, Any]
    observed_at: str | None
    origin: str | None
    created_at: str | None
    updated_at: str | None
    aliases: list[str]
    merged: list[Merged]
    sources: list[Evidence]
    upstream: list[Link]
    downstream: list[Link]


class Version(Shape):
    version: int
    fingerprint: str
    valid_from: str | None
    created_at: str | None
    current: bool
    origin: str | None
    restored: bool
    diff: dict[str, Any]


class VersionList(Shape):
    schema_version: int
    versions: list[Version]


class Diff(Shape):
    """`steward diff --json`: fields added and removed, other changes, whether breaking."""

    uri: str
    from_: int = Field(alias="from")
    to: int
    added: list[SourceField]
    removed: list[SourceField]
    changed: list[dict[str, Any]]
    breaking: bool


class Acknowledgement(Shape):
    reason: str
    by: str
    at: str | None
    until: str | None


class EndedAcknowledgement(Shape):
    reason: str
    by: str
    at: str | None
    ended_at: str | None
    ended_because: str | None


class Finding(Shape):
    """A finding as `steward findings --json` prints it, with its acknowledgement."""

    id: str
    rule: str
    severity: Literal["info", "warning", "error"]
    status: Literal["open", "resolved"]
    title: str
    assets: list[str]
    evidence: dict[str, Any]
    remedy: str
    at_risk: list[Any] = Field(
        description="Of an error: the nearest assets it puts at risk downstream (50 at most,"
        " nearest first), each `{uri, path}` with a shortest path from what it is about."
    )
    at_risk_count: int = Field(
        description="How many assets it puts at risk in all (`at_risk` lists the nearest)."
    )
    first_seen: str | None
    last_seen: str | None
    resolved_at: str | None
    acknowledged: Acknowledgement | None = Field(
        description="The acknowledgement in force (`steward findings ack`), if any."
    )
    last_acknowledgement: EndedAcknowledgement | None = Field(
        description="When none is in force: the last one that ended, and why."
    )


class FindingList(Shape):
    findings: list[Finding]
    totalCount: int


class Revision(Shape):
    revision: str
    version: int
    dim: int | None
    distance: str | None
    normalized: bool | None
    registered_at: str


class Binding(Shape):
    asset: str
    part: str
    model: str
    revision: str
    origin: str
    share: float


class EmbeddingModel(Shape):
    """An embedding model as `steward models list --json` prints it."""

    uri: str
    provider: str
    name: str
    in_use: str | None
    in_use_since: str | None
    revisions: list[Revision]
    bindings: list[Binding]


class ModelList(Shape):
    models: list[EmbeddingModel]
    totalCount: int


class QueryBinding(Shape):
    """One row of `steward models queries --json`: a purpose with its model, an index's
    own query model, or an index assigned to a purpose."""

    purpose: str | None = None
    queries: str | None = None
    indexes: int | None = None
    asset: str | None = None
    part: str | None = None


class QueryBindingList(Shape):
    queries: list[QueryBinding]
    totalCount: int


class Coverage(Shape):
    kind: str
    assets: int
    with_upstream: int
    share: float | None


class CoverageList(Shape):
    coverage: list[Coverage]


class KindCoverage(Shape):
    """One kind's lineage coverage (`steward check --json --coverage`)."""

    assets: int
    traced: int
    percent: float
    untraced: list[str]


class CoveragePoint(Shape):
    at: str
    assets: int
    traced: int
    percent: float


class LineageCoverage(Shape):
    """The coverage figures by kind, now and at each check that changed them."""

    coverage: dict[str, KindCoverage]
    trend: dict[str, list[CoveragePoint]]


class Error(Shape):
    """Every refusal: the status again, one line, and the parameter at fault."""

    code: int
    message: str
    field: str | None = None
    error: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Error, "description": what}
    for status, what in (
        (400, "A parameter is not what the route takes."),
        (401, "A token is set and the request does not carry it."),
        (404, "No such asset (or version)."),
        (409, "The reference names more than one asset."),
    )
}
