"""Lineage coverage: what the catalog cannot say the origin of, and the share it can.

A lineage gap is something steward does not know about an asset's origin: a
model version without a known training run or data, a vector index without
a known embedding model or source, a feature set without a source, a dataset
that a model reads which no scan or event describes. An asset is *traced* when
it has no gap, and its lineage reaches a source (a table, a view, a file, a
dataset) with no gap and nothing unresolved on the way. `coverage` gives, for
each kind, the share of traced assets; `load` reads what both need from the
catalog, `figures` is the two together (served by the API, printed by
`steward check`, stored with each check for the report's trend). Pure
functions over plain data, but `load`, `figures`, `record` and `trend`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from catalog.db import rows_among
from catalog.models import (
    Asset,
    AssetVersion,
    CoverageFigure,
    Edge,
    ModelBinding,
    Run,
    RunDataset,
    utcnow,
)

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
BINDING = ModelBinding.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
RUN_DATASET = RunDataset.__table__  # type: ignore[attr-defined]
FIGURE = CoverageFigure.__table__  # type: ignore[attr-defined]

#: The kinds coverage is given for, in the order they are shown.
KINDS = ("model", "collection", "vector_column", "feature_set")
#: What lineage may end at: data, not something derived from data.
SOURCE_KINDS = frozenset({"table", "view", "materialized_view", "dataset", "file"})
TABLE_KINDS = frozenset({"table", "view", "materialized_view"})

REMEDIES = {
    "no_run": "Register versions from a run (mlflow.register_model('runs:/RUN_ID/model', NAME), "
    "or log_model(..., registered_model_name=NAME) inside the run), then scan the store again.",
    "run_unknown": "Scan the MLflow store that holds the run (steward scan mlflow+sqlite:///PATH); "
    "a run deleted for good cannot be traced: retrain in a run that logs its data.",
    "run_deleted": "Restore the run (MlflowClient().restore_run(RUN_ID)), or retrain in a kept run "
    "that logs its data with mlflow.log_input(dataset, context='training').",
    "no_training_data": "Log the training data in the run: mlflow.log_input(mlflow.data."
    "from_pandas(df, source=URI), context='training'), or name the feature sets with the run tag "
    "steward.feature_set = FEATURE_SET_URI@VERSION.",
    "no_lineage": "Send the training job's OpenLineage events (the model an output, its data "
    "inputs), or register it in MLflow from a run that logs its data (mlflow.log_input).",
    "no_embedding_model": "Put embedding_model and embedding_revision in the collection's metadata "
    "(a pgvector column: in its comment, embedding_model=NAME embedding_revision=REV), or record "
    "it: steward models bind ASSET NAME@REVISION.",
    "no_source": "Put embedding_source = DATASET_URI in the collection's metadata (a pgvector "
    "column: in its comment), or send the OpenLineage events of the job that fills it "
    "(the source an input, the index an output).",
    "no_feature_source": 'Give the feature set its source: source = "URI" under '
    "[feature_sets.NAME] in features.toml (Feast: the feature view's batch source), or send the "
    "OpenLineage events of the job that computes it.",
    "undescribed": "Scan its source (steward scan URL), or send an OpenLineage event naming it "
    "with its schema facet.",
}


@dataclass(slots=True)
class AssetInfo:
    uri: str
    name: str
    kind: str
    unresolved: bool
    properties: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    vector: bool = False
    bound: bool = False


@dataclass
class RunInfo:
    deleted: bool
    inputs: int


@dataclass
class CoverageData:
    assets: dict[str, AssetInfo]
    #: target uri -> the uris of what feeds it
    upstream: dict[str, set[str]]
    runs: dict[str, RunInfo] = field(default_factory=dict)


@dataclass
class Gap:
    """One thing steward does not know about where an asset came from."""

    uri: str
    missing: str
    title: str
    #: What distinguishes gaps on the same asset (a model version).
    key: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    also: list[str] = field(default_factory=list)

    @property
    def remedy(self) -> str:
        return REMEDIES[self.missing]


def coverage_kind(asset: AssetInfo) -> str | None:
    """The kind an asset is counted under (None: not counted)."""
    if asset.unresolved:
        return None
    if asset.kind in ("model", "collection", "feature_set"):
        return asset.kind
    if asset.kind in TABLE_KINDS and asset.vector:
        return "vector_column"
    return None


def _version_run(asset: AssetInfo, number: int) -> str | None:
    for entry in asset.observed.get("versions") or []:
        if isinstance(entry, dict) and entry.get("version") == number and "run_id" in entry:
            return entry.get("run_id") or None
    for entry in asset.properties.get("versions") or []:
        if isinstance(entry, dict) and entry.get("version") == number:
            return entry.get("run_id") or None
    return None


def _model_gaps(asset: AssetInfo, data: CoverageData) -> list[Gap]:
    versions = asset.properties.get("versions")
    if not isinstance(versions, list):  # not a registry's model: its lineage is its edges
        if data.upstream.get(asset.uri):
            return []
        return [Gap(asset.uri, "no_lineage", f"{asset.uri} has no known training data")]
    aliases = asset.observed.get("aliases") or {}
    served: dict[int, list[str]] = defaultdict(list)
    for alias, number in sorted(aliases.items()):
        if isinstance(number, int):
            served[number].append(alias)
    checked = set(served)
    latest = asset.properties.get("latest_version")
    if isinstance(latest, int):
        checked.add(latest)
    out = []
    for number in sorted(checked):
        run_id = _version_run(asset, number)
        names = served.get(number, [])
        shown = f"{asset.name} v{number}" + "".join(f" @{a}" for a in names)
        evidence: dict[str, Any] = {"version": number, "aliases": names, "run_id": run_id}
        run = data.runs.get(run_id or "")
        if not run_id:
            missing, what = "no_run", "was registered without a run"
        elif run is None:
            missing, what = "run_unknown", f"was trained in run {run_id}, which is not in the store"
        elif run.deleted:
            missing, what = "run_deleted", f"was trained in run {run_id}, which is deleted"
        elif run.inputs == 0:
            missing = "no_training_data"
            what = f"was trained in run {run_id}, which logged no training data or feature sets"
            if names:
                what += f"; served as {', '.join('@' + a for a in names)}, it traces to no dataset"
        else:
            continue
        out.append(Gap(asset.uri, missing, f"{shown} {what}", str(number), evidence))
    return out


def find_gaps(data: CoverageData) -> list[Gap]:
    """Every lineage gap, sorted by asset and key."""
    out: list[Gap] = []
    for uri in sorted(data.assets):
        asset = data.assets[uri]
        kind = coverage_kind(asset)
        upstream = data.upstream.get(uri, set())
        if kind == "model":
            out += _model_gaps(asset, data)
        elif kind in ("collection", "vector_column"):
            what = "collection" if kind == "collection" else "vector column(s) of"
            if not asset.bound and not asset.properties.get("embedding"):
                out.append(
                    Gap(uri, "no_embedding_model", f"{what} {uri}: no known embedding model", "m")
                )
            if not upstream:
                out.append(Gap(uri, "no_source", f"{what} {uri}: no known source", "s"))
        elif kind == "feature_set" and not upstream and not asset.properties.get("source"):
            out.append(Gap(uri, "no_feature_source", f"feature set {uri} has no source"))
        elif asset.unresolved:
            readers = sorted(
                target
                for target, sources in data.upstream.items()
                if uri in sources
                and target in data.assets
                and coverage_kind(data.assets[target]) == "model"
            )
            if readers:
                title = f"{uri} is read by {', '.join(readers[:3])}" + (
                    f" and {len(readers) - 3} more" if len(readers) > 3 else ""
                )
                out.append(
                    Gap(
                        uri,
                        "undescribed",
                        title + ", but no scan or event describes it",
                        evidence={"readers": readers},
                        also=readers,
                    )
                )
    return out


def traced(uri: str, data: CoverageData, gapped: set[str]) -> bool:
    """Whether the asset's lineage reaches a source with no gap or unknown on the way."""
    if uri in gapped:
        return False
    seen, queue, source = {uri}, deque([uri]), False
    while queue:
        for up in data.upstream.get(queue.popleft(), ()):
            if up in seen:
                continue
            seen.add(up)
            asset = data.assets.get(up)
            if asset is None or asset.unresolved or up in gapped:
                return False
            source = source or asset.kind in SOURCE_KINDS
            queue.append(up)
    return source


def coverage(data: CoverageData, gaps: list[Gap] | None = None) -> dict[str, dict[str, Any]]:
    """For each kind: assets, traced, their share (percent) and the untraced ones."""
    gapped = {g.uri for g in (find_gaps(data) if gaps is None else gaps)}
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        uris = sorted(u for u, a in data.assets.items() if coverage_kind(a) == kind)
        if not uris:
            continue
        ok = [u for u in uris if traced(u, data, gapped)]
        out[kind] = {
            "assets": len(uris),
            "traced": len(ok),
            "percent": round(100 * len(ok) / len(uris), 1),
            "untraced": sorted(set(uris) - set(ok)),
        }
    return out


# -- the catalog ---------------------------------------------------------------------------


#: The current version of every live asset, and what coverage reads of it (the rules'
#: facts add their columns to it: `lineage.facts`).
ASSET_ROWS = (
    select(
        ASSET.c.id,
        ASSET.c.uri,
        ASSET.c.name,
        ASSET.c.kind,
        ASSET.c.unresolved,
        ASSET.c.observed,
        VERSION.c.definition,
    )
    .join(
        VERSION,
        (VERSION.c.asset_id == ASSET.c.id) & (VERSION.c.version == ASSET.c.current_version),
        isouter=True,
    )
    .where(ASSET.c.deleted.is_(False))
)


class Loader:
    """Builds a `CoverageData` from asset rows handed to it (`add`), then the edges and
    runs it reads itself (`finish`): `lineage.facts` reads the assets once for the rules
    and for coverage.

    Of each asset it keeps its properties and observations only where they are read:
    the kinds counted, and models (their runs)."""

    def __init__(self, conn: Connection, only: Collection[int] | None = None) -> None:
        self.conn, self.only = conn, only
        query = select(BINDING.c.asset_id).distinct()
        self.bound = {row[0] for row in rows_among(conn, query, BINDING.c.asset_id, only)}
        self.assets: dict[str, AssetInfo] = {}
        self.by_id: dict[int, str] = {}

    def add(
        self,
        asset_id: int,
        uri: str,
        name: str,
        kind: str,
        unresolved: bool,
        observed: dict[str, Any] | None,
        definition: dict[str, Any] | None,
    ) -> None:
        definition = definition or {}
        vector = any(
            (f.get("attributes") or {}).get("vector") for f in definition.get("fields", [])
        )
        info = AssetInfo(uri, name, kind, unresolved, vector=bool(vector))
        if kind == "model" or coverage_kind(info) is not None:
            info.properties = definition.get("properties") or {}
            info.observed = observed or {}
        info.bound = asset_id in self.bound
        self.assets[uri] = info
        self.by_id[asset_id] = uri

    def finish(self) -> CoverageData:
        by_id = self.by_id
        upstream: dict[str, set[str]] = defaultdict(set)
        edges = select(EDGE.c.source_id, EDGE.c.target_id)
        for source_id, target_id in rows_among(self.conn, edges, EDGE.c.target_id, self.only):
            if source_id in by_id and target_id in by_id and source_id != target_id:
                upstream[by_id[target_id]].add(by_id[source_id])
        wanted = run_ids(
            (a.properties, a.observed) for a in self.assets.values() if a.kind == "model"
        )
        return CoverageData(self.assets, dict(upstream), runs_of(self.conn, wanted))


def load(conn: Connection, only: Collection[int] | None = None) -> CoverageData:
    """What the gaps and the figures are computed over, read in a few bulk queries.

    `only`: the assets of these ids and the edges between them (the gaps of an
    asset need its own row and its neighbours'; the figures need everything).
    """
    loader = Loader(conn, only)
    for r in rows_among(conn, ASSET_ROWS, ASSET.c.id, only):
        loader.add(r.id, r.uri, r.name, r.kind, r.unresolved, r.observed, r.definition)
    return loader.finish()


def run_ids(models: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    """The runs that models' versions name, from each model's (properties, observed)."""
    return sorted(
        {
            run_id
            for properties, observed in models
            for entry in (observed.get("versions") or []) + (properties.get("versions") or [])
            if isinstance(entry, dict) and (run_id := entry.get("run_id"))
        }
    )


def runs_of(conn: Connection, wanted: list[str]) -> dict[str, RunInfo]:
    """What the gaps see of these runs: deleted or not, and how many inputs each logged."""
    runs: dict[str, RunInfo] = {}
    inputs = (
        select(func.count())
        .select_from(RUN_DATASET)
        .where(RUN_DATASET.c.run_id == RUN.c.id)
        .where(RUN_DATASET.c.direction == "input")
        .scalar_subquery()
    )
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        for run_uuid, facets, count in conn.execute(
            select(RUN.c.run_uuid, RUN.c.facets, inputs).where(RUN.c.run_uuid.in_(part))
        ):
            stage = ((facets or {}).get("mlflow_run") or {}).get("lifecycleStage")
            runs[run_uuid] = RunInfo(stage == "deleted", int(count))
    return runs


def figures(conn: Connection) -> dict[str, dict[str, Any]]:
    """The coverage of the catalog now, by kind (see `coverage`)."""
    return coverage(load(conn))


def record(
    conn: Connection, figures: dict[str, dict[str, Any]], at: datetime | None = None
) -> None:
    """Keep a check's figures, for the trend, when they differ from the last check's.

    A check that finds the same figures again is no change: the trend shows
    each change, and re-running the same checks renders the same report.
    """
    when = at or utcnow()
    rows = [
        {"checked_at": when, "kind": kind, "assets": f["assets"], "traced": f["traced"]}
        for kind, f in figures.items()
    ]
    last = conn.execute(select(func.max(FIGURE.c.checked_at))).scalar()
    before = {
        (row.kind, row.assets, row.traced)
        for row in conn.execute(select(FIGURE).where(FIGURE.c.checked_at == last))
    }
    # A catalog with none of the kinds is kept as one row of kind '' (the trend skips it).
    rows = rows or [{"checked_at": when, "kind": "", "assets": 0, "traced": 0}]
    if {(r["kind"], r["assets"], r["traced"]) for r in rows} == before:
        return
    conn.execute(insert(FIGURE), rows)


def trend(conn: Connection, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """The figures of the last `limit` checks, by kind, oldest first."""
    times = [
        row[0]
        for row in conn.execute(
            select(FIGURE.c.checked_at).distinct().order_by(FIGURE.c.checked_at.desc()).limit(limit)
        )
    ]
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not times:
        return {}
    for row in conn.execute(
        select(FIGURE)
        .where(FIGURE.c.checked_at.in_(times))
        .where(FIGURE.c.kind != "")
        .order_by(FIGURE.c.checked_at, FIGURE.c.kind)
    ):
        share = round(100 * row.traced / row.assets, 1) if row.assets else 0.0
        out[row.kind].append(
            {
                "at": row.checked_at.isoformat().replace("+00:00", "Z"),
                "assets": row.assets,
                "traced": row.traced,
                "percent": share,
            }
        )
    return dict(out)
