"""Everything the rules look at, loaded from the catalog in bulk.

The rules themselves (`lineage.rules`) are pure functions over a `Facts`;
this module is the only part of them that reads the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from catalog.coverage import ASSET_ROWS, CoverageData, Loader
from catalog.db import id_batches, rows_among
from catalog.embeddings import KIND as MODEL_KIND
from catalog.embeddings import strongest
from catalog.models import Asset, AssetVersion, Edge, ModelBinding, ModelInUse, Profile
from catalog.profiles import KIND as VECTOR_SAMPLE
from catalog.profiles import StoredSample, samples_of
from catalog.querying import QueryBindings, load_query_bindings
from catalog.samples import FeatureSample, load_feature_samples
from lineage.graph import LineageGraph

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
IN_USE = ModelInUse.__table__  # type: ignore[attr-defined]
PROFILE = Profile.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
#: Rows fetched at a time from the asset query (a server-side cursor on PostgreSQL): the
#: whole catalog's definitions are never in memory as a result set.
YIELD_PER = 5000
#: Kinds whose whole definition the rules read (every field of a feature set).
WHOLE = frozenset({"feature_set"})


def read_by_rules(kind: str, definition: dict[str, Any]) -> dict[str, Any]:
    """What the rules read of an asset's current definition: its vector fields and what it
    was trained on (`properties.trained_on`); of a feature set, all of it. A catalog's
    definitions are most of what a check would hold otherwise."""
    if kind in WHOLE:
        return definition
    kept: dict[str, Any] = {}
    fields = [
        f
        for f in definition.get("fields") or []
        if isinstance(f, dict)
        and isinstance(f.get("attributes"), dict)
        and f["attributes"].get("vector")
    ]
    if fields:
        kept["fields"] = fields
    properties = definition.get("properties")
    if isinstance(properties, dict) and "trained_on" in properties:
        kept["properties"] = {"trained_on": properties["trained_on"]}
    return kept


@dataclass(slots=True)
class AssetFacts:
    """An asset as the rules see it. Of most assets a full check loads only what the
    rules read (`read_by_rules`): the whole definition of feature sets and of what a
    model was trained on, the diff of breaking versions and of drifting indexes."""

    id: int
    uri: str
    name: str
    kind: str
    version: int
    deleted: bool
    unresolved: bool
    definition: dict[str, Any]
    diff: dict[str, Any]
    version_created_at: datetime | None
    #: What the last scan observed (row counts, shares of vector dimensions).
    observed: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    part: str
    model: str
    revision: str
    origin: str
    share: float


@dataclass
class ModelFacts:
    uri: str
    name: str
    in_use: str | None
    #: revision -> its properties (dim, distance, normalized)
    revisions: dict[str, dict[str, Any]]


@dataclass
class Facts:
    graph: LineageGraph
    assets: dict[str, AssetFacts]
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    models: dict[str, ModelFacts] = field(default_factory=dict)
    #: (uri, version) -> definition, for versions a rule asks about (trained-on versions).
    old_definitions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    vector_samples: dict[str, list[StoredSample]] = field(default_factory=dict)
    feature_samples: dict[str, dict[str, FeatureSample]] = field(default_factory=dict)
    #: What embeds the queries of each index (index bindings, purposes).
    queries: QueryBindings = field(default_factory=lambda: QueryBindings({}, {}, {}))
    #: Deleted (dropped) assets that live assets still read: uri -> the readers' uris.
    dropped_readers: dict[str, list[str]] = field(default_factory=dict)
    #: What lineage coverage is computed over (`catalog.coverage`).
    coverage: CoverageData | None = None


def load_facts(
    conn: Connection,
    session: Session,
    only: Collection[int] | None = None,
    judged: Collection[int] | None = None,
) -> Facts:
    """The facts of the whole catalog, or of the assets of ids `only` and the edges
    between them (an incremental check's part of the catalog). Samples (vectors,
    feature values) are loaded only for the assets `judged`, when given."""
    graph = LineageGraph.from_connection(conn, only=only)
    cover = Loader(conn, only)
    assets: dict[str, AssetFacts] = {}
    # What coverage reads of each live asset's current version, and what the rules read.
    query = ASSET_ROWS.add_columns(
        ASSET.c.current_version, ASSET.c.deleted, VERSION.c.diff, VERSION.c.created_at
    )
    by_id: dict[int, AssetFacts] = {}
    for r in rows_among(conn, query.execution_options(yield_per=YIELD_PER), ASSET.c.id, only):
        uri = graph.uri_of(r.id) or r.uri  # one string for the graph, the rules and coverage
        definition, observed = r.definition or {}, r.observed or {}
        cover.add(r.id, uri, r.name, r.kind, r.unresolved, observed, definition)
        kept = read_by_rules(r.kind, definition)
        diff = r.diff or {}
        facts = AssetFacts(
            r.id,
            uri,
            r.name,
            r.kind,
            r.current_version,
            r.deleted,
            r.unresolved,
            kept,
            diff if diff.get("breaking") else {},
            r.created_at,
            observed if kept.get("fields") else {},
        )
        assets[uri] = facts
        by_id[r.id] = facts
    coverage_data = cover.finish()
    del cover

    out = Facts(graph=graph, assets=assets)
    _load_dropped_readers(conn, out, only)
    _load_bindings(session, out, by_id, only)
    _load_models(conn, out, by_id)
    _load_trained_on(conn, out)
    _load_samples(conn, session, out, by_id, judged if judged is not None else only)
    out.queries = (
        load_query_bindings(session)
        if only is None
        else load_query_bindings(session, {a.id: a.uri for a in by_id.values()})
    )
    _load_drifting_diffs(conn, out)
    out.coverage = coverage_data
    return out


def _load_dropped_readers(conn: Connection, out: Facts, only: Collection[int] | None) -> None:
    source, reader = ASSET.alias("source"), ASSET.alias("reader")
    query = (
        select(source.c.uri, reader.c.uri)
        .select_from(EDGE)
        .join(source, source.c.id == EDGE.c.source_id)
        .join(reader, reader.c.id == EDGE.c.target_id)
        .where(source.c.deleted.is_(True))
        .where(reader.c.deleted.is_(False))
        .where(EDGE.c.origin_id != EDGE.c.source_id)
    )
    rows = rows_among(conn, query, EDGE.c.source_id, only)
    found: dict[str, set[str]] = defaultdict(set)
    for dropped, user in rows:
        found[dropped].add(user)
    out.dropped_readers = {uri: sorted(users) for uri, users in sorted(found.items())}


def _load_bindings(
    session: Session, out: Facts, by_id: dict[int, AssetFacts], only: Collection[int] | None
) -> None:
    grouped: dict[int, list[ModelBinding]] = defaultdict(list)
    query = sm_select(ModelBinding)
    batches = (
        [query]
        if only is None
        else [query.where(col(ModelBinding.asset_id).in_(ids)) for ids in id_batches(only)]
    )
    for batch in batches:
        for row in session.exec(batch):
            grouped[row.asset_id].append(row)
    for asset_id, rows in sorted(grouped.items()):
        asset = by_id.get(asset_id)
        if asset is not None:
            out.bindings[asset.uri] = [
                Binding(b.part, b.model, b.revision, b.origin, float(b.share))
                for b in strongest(rows)
            ]


def _load_models(conn: Connection, out: Facts, by_id: dict[int, AssetFacts]) -> None:
    in_use = {row.model_id: row.revision for row in conn.execute(select(IN_USE))}
    models = [a for a in by_id.values() if a.kind == MODEL_KIND and not a.unresolved]
    if not models:
        return
    revisions: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in conn.execute(
        select(VERSION.c.asset_id, VERSION.c.definition)
        .where(VERSION.c.asset_id.in_([m.id for m in models]))
        .order_by(VERSION.c.version)
    ):
        props = (row.definition or {}).get("properties", {})
        revisions[row.asset_id][str(props.get("revision", ""))] = props
    for model in models:
        out.models[model.name] = ModelFacts(
            model.uri, model.name, in_use.get(model.id), revisions[model.id]
        )


def _load_trained_on(conn: Connection, out: Facts) -> None:
    wanted: set[tuple[str, int]] = set()
    for asset in out.assets.values():
        trained = asset.definition.get("properties", {}).get("trained_on")
        if isinstance(trained, dict):
            for uri, version in trained.items():
                if isinstance(version, int) and uri in out.assets:
                    wanted.add((uri, version))
    ids = {uri: out.assets[uri].id for uri, _ in wanted}
    # What a feature set changed since is its whole definition then and now.
    for uri in sorted(ids):
        asset = out.assets[uri]
        row = _version_row(conn, VERSION.c.definition, asset.id, asset.version)
        asset.definition = (row.definition if row is not None else None) or {}
    for uri, version in sorted(wanted):
        row = _version_row(conn, VERSION.c.definition, ids[uri], version)
        if row is not None:
            out.old_definitions[(uri, version)] = row.definition or {}


def _version_row(conn: Connection, column: Any, asset_id: int, version: int) -> Any:
    """One column of an asset's version, as a row (None: no such version)."""
    return conn.execute(
        select(column).where(VERSION.c.asset_id == asset_id).where(VERSION.c.version == version)
    ).first()


def _load_drifting_diffs(conn: Connection, out: Facts) -> None:
    """The whole diff of the current version of the assets whose vectors may have
    drifted (`embedding_drift` says what it changed)."""
    for uri in sorted(out.vector_samples):
        asset = out.assets.get(uri)
        if asset is None:
            continue
        row = _version_row(conn, VERSION.c.diff, asset.id, asset.version)
        asset.diff = (row.diff if row is not None else None) or {}


def _load_samples(
    conn: Connection,
    session: Session,
    out: Facts,
    by_id: dict[int, AssetFacts],
    only: Collection[int] | None,
) -> None:
    counts: dict[tuple[int, str], int] = defaultdict(int)
    query = select(PROFILE.c.asset_id, PROFILE.c.kind)
    for row in rows_among(conn, query, PROFILE.c.asset_id, only):
        counts[(row.asset_id, row.kind)] += 1
    for (asset_id, kind), count in sorted(counts.items()):
        asset = by_id.get(asset_id)
        if asset is None:
            continue
        if kind == VECTOR_SAMPLE and count >= 2:
            out.vector_samples[asset.uri] = samples_of(session, asset_id)
        elif kind in ("offline_sample", "online_sample") and asset.uri not in out.feature_samples:
            db_asset = session.get(Asset, asset_id)
            if db_asset is not None:
                out.feature_samples[asset.uri] = load_feature_samples(session, db_asset)
