"""The in-memory state of one chunk of events: assets, runs, and how they are loaded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    Connection,
    bindparam,
    select,
)

from catalog.db import CHUNK
from catalog.evidence import Assertion
from catalog.models import (
    Alias,
    Asset,
    AssetVersion,
    Edge,
    Run,
    RunDataset,
    key_hash,
)
from catalog.specs import AssetSpec, EdgeSpec
from lineage.lru import ByteLRU
from lineage.openlineage import (
    DatasetRef,
    canonical,
)

ORIGIN = "openlineage"
ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
RUN_DATASET = RunDataset.__table__  # type: ignore[attr-defined]


def _any(column: Any) -> Any:
    """`column IN (:keys)`, the list bound at execution (`{"keys": [...]}`)."""
    return column.in_(bindparam("keys", expanding=True))


# The chunk's lookups, built once: a server writes many small chunks, and
# building (and keying) each statement again cost more than running it.
_ASSET_COLUMNS = (
    ASSET.c.id,
    ASSET.c.key_hash,
    ASSET.c.uri,
    ASSET.c.namespace,
    ASSET.c.name,
    ASSET.c.kind,
    ASSET.c.current_version,
    ASSET.c.fingerprint,
    ASSET.c.origin,
    ASSET.c.deleted,
)
ASSETS_BY_HASH = select(*_ASSET_COLUMNS).where(_any(ASSET.c.key_hash))
ASSETS_BY_ID = select(*_ASSET_COLUMNS).where(_any(ASSET.c.id))
ALIASES_BY_HASH = select(ALIAS.c.key_hash, ALIAS.c.asset_id).where(_any(ALIAS.c.key_hash))
CURRENT_DEFINITIONS = (
    select(VERSION.c.asset_id, VERSION.c.definition, VERSION.c.fingerprint)
    .join(ASSET, ASSET.c.id == VERSION.c.asset_id)
    .where(_any(VERSION.c.asset_id))
    .where(VERSION.c.version == ASSET.c.current_version)
)
RUNS_BY_UUID = (
    select(RUN, ASSET.c.uri).join(ASSET, ASSET.c.id == RUN.c.job_id).where(_any(RUN.c.run_uuid))
)
ALIAS_HASHES = select(ALIAS.c.key_hash).where(_any(ALIAS.c.key_hash))
OBSERVED_BY_ID = select(ASSET.c.id, ASSET.c.observed).where(_any(ASSET.c.id))
#: Version ids by fingerprint (the latest of equal ones: a restore repeats one).
VERSION_IDS = (
    select(VERSION.c.id, VERSION.c.asset_id, VERSION.c.fingerprint)
    .where(_any(VERSION.c.asset_id))
    .order_by(VERSION.c.id)
)
LINKS_BY_RUN = (
    select(RUN_DATASET, ASSET.c.uri)
    .join(ASSET, ASSET.c.id == RUN_DATASET.c.asset_id)
    .where(_any(RUN_DATASET.c.run_id))
)


def run_facets(ref: DatasetRef) -> dict[str, Any]:
    """What a run saw of a dataset: its facets but those that define it (schema, ...)."""
    if not ref.io_facets:
        return ref.described
    return {**ref.described, **ref.io_facets}


def named_by(props: dict[str, Any]) -> frozenset[str]:
    """The assets a job's properties name: its inputs, its outputs and its column
    lineage's sources."""
    named: set[str] = set()
    named.update(props.get("inputs", []), props.get("outputs", []))
    for mapping in (props.get("columnLineage") or {}).values():
        for sources in mapping.values():
            named.update(src for src, _ in sources)
    for mapping in (props.get("columnTransformations") or {}).values():
        for sources in mapping.values():
            named.update(src for src, _, _ in sources)
    return frozenset(named)


def chunks(items: list[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True, eq=False)
class AssetState:
    uri: str
    namespace: str
    name: str
    kind: str
    id: int | None = None
    version: int = 0
    fingerprint: str | None = None
    origin: str | None = None
    #: Facets to merge into `observed["openlineage"]`, in event order.
    facets: dict[str, Any] = field(default_factory=dict)
    #: The merged observations, once computed at write time.
    observed: dict[str, Any] | None = None
    props: dict[str, Any] | None = None
    props_json: str | None = None
    #: Its sources' latest assertions (`catalog.evidence`); None until loaded.
    evidence: dict[str, Assertion] | None = None
    #: Source -> fingerprint of the schema it sent last in this chunk (told cheaply).
    said: dict[str, str] = field(default_factory=dict)
    #: True once an event dropped it (`lifecycleStateChange: DROP`), False once one wrote
    #: it after that, None while no event of the chunk said either.
    dropped: bool | None = None
    #: Whether the catalog had it deleted when the chunk loaded it.
    deleted: bool = False
    #: A job's `props` with its inputs and outputs as sets (`lineage.project._same_job`).
    io_sets: tuple[dict[str, Any], set[str], set[str]] | None = None

    @property
    def ours(self) -> bool:
        return self.version == 0 or (self.origin or "").startswith(ORIGIN)


@dataclass(slots=True)
class RunLink:
    asset: AssetState
    direction: str
    #: The fingerprint of the dataset's version the run saw (None: none yet).
    fingerprint: str | None = None
    version_id: int | None = None
    facets: dict[str, Any] = field(default_factory=dict)
    row_id: int | None = None
    dirty: bool = True


@dataclass(slots=True, eq=False)
class RunState:
    uuid: str
    job: AssetState
    id: int | None = None
    state: str = "NEW"
    state_time: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    parent: str | None = None
    facets: dict[str, Any] = field(default_factory=dict)
    io: dict[tuple[str, str], RunLink] = field(default_factory=dict)
    dirty: bool = True


class AssetRow(NamedTuple):
    """An asset's row as a chunk loads it (`_ASSET_COLUMNS`)."""

    id: int
    key_hash: str
    uri: str
    namespace: str
    name: str
    kind: str
    current_version: int
    fingerprint: str | None
    origin: str | None
    deleted: bool = False


class KnownRows:
    """The asset rows a file ingest's chunks read and wrote, kept for its next chunks
    while nothing else has written to the catalog meanwhile.

    Loading the rows of every asset a chunk names was a tenth of a file
    ingest: chunks are small (their memory is bounded) and name the same
    assets again and again. Kept only where "nothing else wrote" can be told
    for sure: on a SQLite catalog, within one process writing alone
    (`enabled` by `Ingester.ingest_path`), the same connection from chunk to
    chunk with no change committed by any other connection (`PRAGMA
    data_version`, read inside the chunk's write transaction) nor made on
    this one by anything else (`total_changes`). Anything else starts afresh
    from the catalog, as every chunk did before.
    """

    def __init__(self, budget: int) -> None:
        #: By the name a chunk used (an alias's row is its asset's).
        self.rows: ByteLRU[str, AssetRow] = ByteLRU(budget)
        self.enabled = False
        self._stamp: tuple[int, int, int] | None = None

    def begin(self, conn: Connection) -> tuple[Any, int] | None:
        """At a chunk's start, in its transaction: forget the rows unless they are still
        the catalog's; what `commit` needs (None: keep nothing of this chunk)."""
        stamp, self._stamp = self._stamp, None  # nothing is kept while a chunk is in flight
        if not self.enabled or conn.dialect.name != "sqlite":
            self.rows.clear()
            return None
        driver: Any = conn.connection.driver_connection
        version = driver.execute("PRAGMA data_version").fetchone()[0]
        if stamp != (id(driver), version, driver.total_changes):
            self.rows.clear()
        return driver, version

    def commit(self, begun: tuple[Any, int] | None, rows: dict[str, AssetRow] | None) -> None:
        """Once the chunk has committed: keep its rows (None: it renamed or merged assets,
        keep nothing)."""
        if begun is None or rows is None:
            self.rows.clear()
            return
        driver, version = begun
        for uri, row in rows.items():
            size = len(uri) + len(row.uri) + len(row.name) + len(row.namespace) + 300
            self.rows.put(uri, row, size)
        self._stamp = (id(driver), version, driver.total_changes)

    def clear(self) -> None:
        self.rows.clear()
        self._stamp = None


class Caches(Protocol):
    """What a chunk keeps between chunks: facts that never change, and `known` rows."""

    version_ids: ByteLRU[tuple[int, str], int]
    fingerprints: ByteLRU[Any, str]
    known: KnownRows
    job_definitions: ByteLRU[str, tuple[dict[str, Any], str, frozenset[str]]]
    column_lineage: ByteLRU[tuple[int, int], tuple[Any, ...]]


class ChunkState:
    """The assets and runs a chunk touches, loaded in a few set-wise queries."""

    def __init__(
        self, projector: Caches, conn: Connection, begun: tuple[Any, int] | None = None
    ) -> None:
        self.projector = projector
        self.conn = conn
        self.assets: dict[str, AssetState] = {}
        self.runs: dict[str, RunState] = {}
        self.pending: list[tuple[AssetState, str, dict[str, Any]]] = []
        self.aliases: dict[str, tuple[AssetState, str, str]] = {}
        self.new_version_ids: dict[tuple[int, str], int] = {}
        #: (event, dataset URI) -> the fingerprint a late event's schema had at its time.
        self.seen_then: dict[tuple[int, str], str] = {}
        #: (asset id, source) -> (fingerprint, time): jobs that write a dataset as it is
        #: defined, not yet known as its sources (`lineage.project._Chunk._restated`).
        self.restatements: dict[tuple[int, str], tuple[str, datetime]] = {}
        #: The (asset id, source) pairs `_restated` has looked at; events' sources by id.
        self.restating: set[tuple[int, str]] = set()
        self.event_sources: dict[int, str] = {}
        #: What `KnownRows.begin` said at the transaction's start (None: keep no rows).
        self.begun = begun
        #: Assets renamed or merged in this chunk: no row of it is kept.
        self.reshaped = False
        #: The names whose rows came from `KnownRows` (kept there already).
        self.from_known: set[str] = set()
        #: Version ids found in this chunk, by (asset id, fingerprint).
        self.chunk_version_ids: dict[tuple[int, str], int] = {}
        #: What a `schema` facet alone gives, fingerprinted in this chunk, by (URI, schema).
        self.own_fingerprints: dict[tuple[str, Any], str] = {}
        #: Refs (by id) whose `schema` facet says what their asset's current version is,
        #: while no assertion of the chunk has been played for it (`evidence` is None).
        self.agrees: dict[int, AssetState] = {}
        #: An output ref's column lineage as job properties hold it, by its maps' ids
        #: (`lineage.project._Chunk._column_lineage`).
        self.column_lineage_built: dict[tuple[int, int], tuple[Any, ...]] = {}

    def _load_assets(self, uris: set[str]) -> None:
        by_id: dict[int, AssetState] = {}

        def make(row: Any) -> AssetState:
            found = by_id.get(row.id)
            if found is None:
                found = AssetState(
                    row.uri,
                    row.namespace,
                    row.name,
                    row.kind,
                    row.id,
                    row.current_version,
                    row.fingerprint,
                    row.origin,
                    deleted=bool(row.deleted),
                )
                by_id[row.id] = found
                self.assets.setdefault(row.uri, found)
            return found

        known = self.projector.known.rows
        hashes: dict[str, str] = {}
        for uri in uris:
            row = known.get(uri)
            if row is None:
                hashes[key_hash(uri)] = uri
            else:
                self.assets[uri] = make(row)
                self.from_known.add(uri)
        unknown = list(hashes)
        for part in chunks(unknown):
            for row in self.conn.execute(ASSETS_BY_HASH, {"keys": part}):
                self.assets[hashes[row.key_hash]] = make(row)
        missing = [h for h, uri in hashes.items() if uri not in self.assets]
        alias_of: dict[str, int] = {}
        for part in chunks(missing):
            rows = self.conn.execute(ALIASES_BY_HASH, {"keys": part})
            alias_of.update({hashes[r.key_hash]: r.asset_id for r in rows})
        wanted = sorted(set(alias_of.values()) - set(by_id))
        for part in chunks(wanted):
            for row in self.conn.execute(ASSETS_BY_ID, {"keys": part}):
                make(row)
        for uri, asset_id in alias_of.items():
            self.assets[uri] = by_id[asset_id]

    def _load_job_props(self) -> None:
        jobs = {
            a.id: a
            for a in self.assets.values()
            if a.kind == "job" and a.version > 0 and a.props is None
        }
        # A definition never changes: known by its fingerprint, it is not read again (its
        # properties are never changed in place: a new version builds new ones).
        known = self.projector.job_definitions
        unread = {}
        # The assets the current versions name (inputs, outputs, column lineage's
        # sources): needed to re-version these jobs. Kept with a definition, as they
        # were gathered again for every job of every chunk (2% of a heavy ingest's
        # writing process).
        named: set[str] = set()
        for job_id, job in jobs.items():
            found = known.get(job.fingerprint) if job.fingerprint else None
            if found is None:
                unread[job_id] = job
            else:
                job.props, job.props_json, names = found
                named.update(names)
        for part in chunks(list(unread)):
            for row in self.conn.execute(CURRENT_DEFINITIONS, {"keys": part}):
                job = jobs[row.asset_id]
                job.props = dict((row.definition or {}).get("properties") or {})
                job.props_json = canonical(job.props)
                names = named_by(job.props)
                named.update(names)
                if row.fingerprint == job.fingerprint and job.fingerprint:
                    size = len(job.props_json) * 4 + len(job.fingerprint) + 64 * len(names)
                    known.put(job.fingerprint, (job.props, job.props_json, names), size)
        missing = named - set(self.assets)
        if missing:
            self._load_assets(missing)

    def _rows_with_assets(self, query: Any, keys: list[Any]) -> list[Any]:
        """The rows of `query` (which binds `keys`), their assets loaded too."""
        rows = [row for part in chunks(keys) for row in self.conn.execute(query, {"keys": part})]
        missing = {row.uri for row in rows} - set(self.assets)
        if missing:
            self._load_assets(missing)
        return rows

    def _load_runs(self, uuids: set[str]) -> None:
        by_id: dict[int, RunState] = {}
        found = self._rows_with_assets(RUNS_BY_UUID, sorted(uuids))
        for row in found:
            run = RunState(
                row.run_uuid,
                self.assets[row.uri],
                row.id,
                row.state,
                row.state_time,
                row.started_at,
                row.ended_at,
                row.parent_run_uuid,
                dict(row.facets or {}),
                dirty=False,
            )
            self.runs[run.uuid] = run
            by_id[row.id] = run
        linked = self._rows_with_assets(LINKS_BY_RUN, list(by_id))
        for row in linked:
            asset = self.assets[row.uri]
            by_id[row.run_id].io[(asset.uri, row.direction)] = RunLink(
                asset,
                row.direction,
                version_id=row.version_id,
                facets=dict(row.facets or {}),
                row_id=row.id,
                dirty=False,
            )

    def _asset(self, uri: str, namespace: str, name: str, kind: str) -> AssetState:
        found = self.assets.get(uri)
        if found is None:
            found = AssetState(uri, namespace, name, kind, origin=ORIGIN)
            self.assets[uri] = found
        return found

    def _dataset_spec(self, asset: AssetState) -> AssetSpec:
        """The spec of a dataset whose `schema` facet asserts a definition: without its
        fields, for its definition goes beside it to `apply_in` (`dataset_definition`
        of the facet's fields). Building the fields as `FieldSpec`s, to be asked for
        that definition, was 2% of a heavy file ingest's writing process."""
        return AssetSpec(
            namespace=asset.namespace,
            name=asset.name,
            kind="dataset",
            observed=asset.observed or {},
        )

    def _job_spec(self, job: AssetState, props: dict[str, Any]) -> AssetSpec:
        edges = [
            EdgeSpec(source_namespace=a.namespace, source_name=a.name, kind="reads")
            for a in (self.assets[uri] for uri in props["inputs"])
        ]
        return AssetSpec(
            namespace=job.namespace,
            name=job.name,
            kind="job",
            properties=props,
            edges=edges,
            observed=job.observed or {},
        )
