"""Every table of the catalog, in one metadata.

Versions, fields and raw events are append-only; so are profiles, except the
routine vector samples of which only the newest is kept. Assets carry their
current state (current version, deleted flag, latest observations) so that the
common questions are one indexed lookup. Schema changes go through Alembic
migrations in `catalog/migrations/`.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from datetime import UTC, datetime
from typing import Any

import zstandard
from sqlalchemy import (
    JSON,
    DateTime,
    Index,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC, always read back timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def key_hash(uri: str) -> str:
    """Unique-index key of a URI (URIs can be longer than an index entry allows)."""
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()


class Asset(SQLModel, table=True):
    """Anything with an identity: table, view, collection, feature set, model, job."""

    __tablename__ = "asset"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True)
    namespace: str = Field(sa_type=Text, index=True)
    name: str = Field(sa_type=Text)
    uri: str = Field(sa_type=Text)
    kind: str = Field(max_length=64, index=True)
    description: str | None = Field(default=None, sa_type=Text)
    #: 0 while the asset is an unresolved reference that nothing has described.
    current_version: int = 0
    fingerprint: str | None = Field(default=None, max_length=64)
    deleted: bool = False
    unresolved: bool = False
    #: What last registered it (`scan postgres://...`, `openlineage`, `spec`).
    origin: str | None = Field(default=None, sa_type=Text)
    observed: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    observed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AssetVersion(SQLModel, table=True):
    """One version of an asset's definition; a new row only when it changes."""

    __tablename__ = "asset_version"
    __table_args__ = (UniqueConstraint("asset_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(foreign_key="asset.id", index=True)
    version: int
    fingerprint: str = Field(max_length=64)
    definition: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    diff: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    breaking: bool = False
    #: True for the version that records the asset coming back after deletion.
    restored: bool = False
    origin: str | None = Field(default=None, sa_type=Text)
    #: When it became true (its source's time: the event's, the scan's).
    valid_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: When the catalog learned it.
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AssetField(SQLModel, table=True):
    """A field of one asset version, in order."""

    __tablename__ = "asset_field"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="asset_version.id", index=True)
    asset_id: int = Field(foreign_key="asset.id", index=True)
    position: int
    name: str = Field(sa_type=Text)
    type: str = Field(default="", sa_type=Text)
    nullable: bool = True
    default: str | None = Field(default=None, sa_type=Text)
    description: str | None = Field(default=None, sa_type=Text)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class Alias(SQLModel, table=True):
    """Another name of an asset (OpenLineage `symlinks`): one thing, two names."""

    __tablename__ = "alias"

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(foreign_key="asset.id", index=True)
    key_hash: str = Field(max_length=64, unique=True)
    namespace: str = Field(sa_type=Text)
    name: str = Field(sa_type=Text)
    uri: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: When this name was an asset of its own, merged into this one (`catalog.merge`).
    merged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AssetEvidence(SQLModel, table=True):
    """One source's latest assertion about an asset (see `catalog.evidence`).

    `definition` is NULL when it equals the definition of the asset's version
    with this `fingerprint` (the common case: one source), so that a scan
    does not store every definition twice.
    """

    __tablename__ = "asset_evidence"
    __table_args__ = (UniqueConstraint("asset_id", "source_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(foreign_key="asset.id", index=True)
    #: `scan postgres://HOST:PORT/DB`, `openlineage NAMESPACE/JOB`, `spec`, ...
    source: str = Field(sa_type=Text)
    source_hash: str = Field(max_length=64)
    #: Fingerprint of the definition this source asserts ('' for none).
    fingerprint: str = Field(default="", max_length=64)
    definition: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    observed: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    description: str | None = Field(default=None, sa_type=Text)
    #: When the source asserted it (the event's time, the scan's time).
    asserted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: When the catalog learned it.
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Edge(SQLModel, table=True):
    """A lineage edge `source -> target`, declared by `origin` (an asset or job)."""

    __tablename__ = "edge"
    __table_args__ = (UniqueConstraint("source_id", "target_id", "kind", "origin_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="asset.id", index=True)
    target_id: int = Field(foreign_key="asset.id", index=True)
    kind: str = Field(max_length=64)
    origin_id: int = Field(foreign_key="asset.id", index=True)
    #: Field-level mapping: target field -> source fields.
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    #: How each target field comes from each source field (OpenLineage column lineage
    #: `transformations`: type, subtype, description, masking): target -> source -> list.
    transformations: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


#: The columns of an edge but its id, as rows written straight to the driver give
#: them (`catalog.writes.add_edges`); its JSON columns.
EDGE_COLUMNS = (
    "source_id",
    "target_id",
    "kind",
    "origin_id",
    "fields",
    "transformations",
    "created_at",
)
EDGE_JSON = frozenset({"fields", "transformations"})


class Run(SQLModel, table=True):
    """One run of a job, with its state ordered by event time."""

    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    run_uuid: str = Field(max_length=64, unique=True)
    job_id: int = Field(foreign_key="asset.id", index=True)
    state: str = Field(max_length=32)
    state_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    parent_run_uuid: str | None = Field(default=None, max_length=64, index=True)
    facets: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RunDataset(SQLModel, table=True):
    """A dataset a run read (input) or wrote (output), at its schema version."""

    __tablename__ = "run_dataset"
    __table_args__ = (UniqueConstraint("run_id", "asset_id", "direction"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    asset_id: int = Field(foreign_key="asset.id", index=True)
    version_id: int | None = Field(default=None, foreign_key="asset_version.id")
    direction: str = Field(max_length=8)
    facets: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


#: The body of an accepted raw event after `steward gc` dropped it (its digest is kept).
COLLECTED = ""
#: The unique index on `raw_event.digest` over accepted events.
ACCEPTED_DIGEST_INDEX = "ux_raw_event_accepted_digest"


#: zstd's default level: an OpenLineage event's text to about a sixth (6.3 times smaller
#: for the heavy benchmark's events, where zlib's fastest level made them 5.9), some
#: five times faster than that zlib level (0.23 s against 1.05 s for 110 MB, measured).
BODY_LEVEL = 3
#: How a zstd frame begins; a body packed before revision 0014 is a zlib stream,
#: which begins with 0x78.
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: Each thread's own (de)compressor: one may not be used by two threads at once.
_codecs = threading.local()


def pack_body(body: str) -> bytes | str:
    """A raw body as a SQLite catalog stores it: its UTF-8 text, zstd-compressed; a text
    that is not UTF-8 (a lone surrogate) as it is, for the write to refuse it as it
    refuses any such text."""
    try:
        data = body.encode("utf-8")
    except UnicodeEncodeError:
        return body
    packer = getattr(_codecs, "packer", None)
    if packer is None:
        packer = _codecs.packer = zstandard.ZstdCompressor(level=BODY_LEVEL)
    return packer.compress(data)


def unpack_body(packed: bytes) -> str:
    """The text of a packed body: zstd (`pack_body`), or zlib as revision 0013 packed it."""
    if packed[:4] != ZSTD_MAGIC:
        return zlib.decompress(packed).decode("utf-8")
    unpacker = getattr(_codecs, "unpacker", None)
    if unpacker is None:
        unpacker = _codecs.unpacker = zstandard.ZstdDecompressor()
    return unpacker.decompress(packed).decode("utf-8")


class RawBody(TypeDecorator[str]):
    """`raw_event.body`: the event's text, read back as text whatever its stored form.

    SQLite does not compress, so there a body is stored zstd-compressed (a BLOB
    in the TEXT column: `pack_body`; zlib before revision 0014), about six times
    smaller; PostgreSQL keeps it as text and compresses it itself (TOAST). Bodies
    written as text by a release before 0013 are read as they are. Written through
    this type, a text is packed on SQLite; the bulk writers pack it themselves
    (`lineage.ingest`) and pass bytes through. The empty body of an event `steward gc` collected
    (`COLLECTED`) stays the empty text, so it compares as before.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and isinstance(value, str) and value != COLLECTED:
            return pack_body(value)
        return value

    def process_result_value(self, value: str | bytes | None, dialect: Dialect) -> str | None:
        if isinstance(value, bytes):
            return unpack_body(value)
        return value


class RawEvent(SQLModel, table=True):
    """Every event received, as received: valid or not, nothing is lost.

    A digest is `accepted` at most once, whichever process received it: the
    partial unique index is what the ingester's `INSERT ... ON CONFLICT DO
    NOTHING` claims an event against (`lineage.ingest`). Duplicates and
    rejections are logged beside it as often as they come.
    """

    __tablename__ = "raw_event"
    __table_args__ = (
        Index(
            ACCEPTED_DIGEST_INDEX,
            "digest",
            unique=True,
            sqlite_where=text("status = 'accepted'"),
            postgresql_where=text("status = 'accepted'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64)  # looked up by the unique index on accepted ones
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: The text as received (credentials masked); stored compressed on SQLite (`RawBody`).
    body: str = Field(sa_type=RawBody)
    #: accepted | rejected | duplicate
    status: str = Field(max_length=16)
    error: str | None = Field(default=None, sa_type=Text)
    warnings: list[str] = Field(default_factory=list, sa_type=JSON)
    source: str | None = Field(default=None, sa_type=Text)


class Finding(SQLModel, table=True):
    """A rule's finding, with its evidence; resolved when no longer found."""

    __tablename__ = "finding"

    id: str = Field(primary_key=True, max_length=64)
    rule: str = Field(max_length=64, index=True)
    severity: str = Field(max_length=16)
    status: str = Field(default="open", max_length=16, index=True)
    title: str = Field(default="", sa_type=Text)
    assets: list[str] = Field(default_factory=list, sa_type=JSON)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    remedy: str = Field(default="", sa_type=Text)
    #: The nearest assets an error puts at risk, with a path each (a bounded list).
    at_risk: list[Any] = Field(default_factory=list, sa_type=JSON)
    #: How many assets it puts at risk in all.
    at_risk_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FindingAck(SQLModel, table=True):
    """Someone accepted a finding for a while: who, when, why, until, on what evidence.

    One row per acknowledgement; it ends (`ended_at`, `end_reason`) when it is
    withdrawn, expires, or the finding's evidence changes. Rows are kept.
    """

    __tablename__ = "finding_ack"

    id: int | None = Field(default=None, primary_key=True)
    finding_id: str = Field(foreign_key="finding.id", max_length=64, index=True)
    reason: str = Field(sa_type=Text)
    acked_by: str = Field(max_length=128)
    acked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: SHA-256 of the finding's severity and evidence when it was acknowledged.
    evidence_digest: str = Field(max_length=64)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_by: str | None = Field(default=None, max_length=128)
    end_reason: str | None = Field(default=None, sa_type=Text)


class Profile(SQLModel, table=True):
    """A stored sample with its statistics (vector baselines, feature samples)."""

    __tablename__ = "profile"

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(foreign_key="asset.id", index=True)
    version_id: int | None = Field(default=None, foreign_key="asset_version.id")
    #: vector_sample | offline_sample | online_sample | ...
    kind: str = Field(max_length=32)
    #: The named vector or feature the sample is of ('' for the asset itself).
    part: str = Field(default="", sa_type=Text)
    stats: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    data: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ModelBinding(SQLModel, table=True):
    """Which embedding model (and revision) built a collection or vector column."""

    __tablename__ = "model_binding"
    __table_args__ = (UniqueConstraint("asset_id", "part", "origin", "model", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(foreign_key="asset.id", index=True)
    #: The vector column or named vector ('' for the whole asset).
    part: str = Field(default="", max_length=255)
    model: str = Field(max_length=255)
    revision: str = Field(max_length=255)
    #: metadata | payload | manual | comment
    origin: str = Field(max_length=16)
    #: Share of sampled points carrying this model and revision (payload origin).
    share: float = 1.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ModelInUse(SQLModel, table=True):
    """The revision of an embedding model that queries are embedded with now."""

    __tablename__ = "model_in_use"

    model_id: int = Field(foreign_key="asset.id", primary_key=True)
    revision: str = Field(max_length=255)
    set_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QueryModel(SQLModel, table=True):
    """Which model@revision embeds the queries of an index (one vector part) or of a purpose.

    A row names either an asset (and part; '' for all its vectors) or a purpose
    (a name such as `docs-search` that indexes are assigned to), never both.
    """

    __tablename__ = "query_model"

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int | None = Field(default=None, foreign_key="asset.id", index=True)
    part: str = Field(default="", max_length=255)
    purpose: str = Field(default="", max_length=255, index=True)
    model: str = Field(max_length=255)
    revision: str = Field(max_length=255)
    set_by: str = Field(default="", max_length=255)
    set_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IndexPurpose(SQLModel, table=True):
    """The purpose an index (or one vector part of it) serves, e.g. `docs-search`."""

    __tablename__ = "index_purpose"

    asset_id: int = Field(foreign_key="asset.id", primary_key=True)
    part: str = Field(default="", max_length=255, primary_key=True)
    purpose: str = Field(max_length=255)
    set_by: str = Field(default="", max_length=255)
    set_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CoverageFigure(SQLModel, table=True):
    """A check's lineage coverage of one kind of asset (`catalog.coverage`), for the trend."""

    __tablename__ = "coverage_figure"

    id: int | None = Field(default=None, primary_key=True)
    checked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    #: model | collection | vector_column | feature_set
    kind: str = Field(max_length=32)
    assets: int = 0
    traced: int = 0


class CheckChange(SQLModel, table=True):
    """What changed since the last check: written by triggers on the tables the rules
    read (migration 0008), consumed by `check` (`lineage.incremental`).

    A row names an asset (and, when it was renamed or deleted, its former name and
    URI), or is about something wider: `what` is `embedding` (which model queries an
    index or a purpose; its `asset_id` is 0). Name and URI are '' when none. A check
    first marks the rows it reads `claimed`; a unique index over the unclaimed ones
    keeps one row per pending change (`catalog.changelog`).
    """

    __tablename__ = "check_change"

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int | None = Field(default=None)
    name: str | None = Field(default=None, sa_type=Text)
    uri: str | None = Field(default=None, sa_type=Text)
    what: str = Field(max_length=16)
    claimed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class CheckState(SQLModel, table=True):
    """What the last check that ran every rule saw, so the next one can be incremental."""

    __tablename__ = "check_state"

    id: int = Field(default=1, primary_key=True)
    #: The settings it ran with (an incremental check needs the same).
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    #: Assets whose definition names what they were trained on: asset id -> the URIs.
    trained_on: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    checked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: A digest of what the rules saw of runs (`lineage.incremental.run_fingerprint`).
    runs: str | None = Field(default=None, sa_type=Text)
    #: Why the next check must run in full although the settings match (`steward gc`).
    forgotten: str | None = Field(default=None, sa_type=Text)
