"""Feast repositories: `steward scan feast://PATH/TO/REPO` (the `feast` extra).

The registry is read through Feast's own SDK (`FeatureStore(repo_path=...)`).
Feature views, stream and label views and on-demand feature views become
feature sets (namespace `feast://PROJECT`); on-demand transformations are
fingerprinted from their source code; feature services become the serving
side of a model (kind `feature_service`) with edges from the views they
read. Data sources become lineage edges into the views: a file is keyed as
`file` + its path and a PostgreSQL table as the PostgreSQL connector keys it
(`postgres://HOST:PORT` + `DB.SCHEMA.TABLE`), so they join what other scans
and events say; push, request and stream sources exist only in the
repository and are described by the scan as datasets `source/NAME`.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from catalog.apply import Scope
from catalog.errors import InvalidInput, SourceUnavailable
from catalog.identity import AssetKey
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
from connectors.base import Connector, ConnectorConfig, Progress, Scan
from connectors.features import normalize_transformation

EXTRA_HINT = "pip install 'ai-steward[feast]'"


def import_feast() -> Any:
    """The feast package, or a one-line error naming the extra to install."""
    try:
        import feast
    except ImportError:
        raise InvalidInput("reading Feast repositories needs Feast", hint=EXTRA_HINT) from None
    return feast


def repo_path(url: str) -> Path:
    """`feast:///abs/repo` or `feast://relative/repo` -> the repository folder."""
    rest = url.removeprefix("feast://")
    if not rest:
        raise InvalidInput("feast:// needs a repository path", hint="feast://PATH/TO/REPO")
    return Path(rest).expanduser()


def open_store(url: str) -> Any:
    """A FeatureStore for the repository at `url`, or a one-line error."""
    feast = import_feast()
    path = repo_path(url)
    if not (path / "feature_store.yaml").is_file():
        raise InvalidInput(f"{path}: not a Feast repository (no feature_store.yaml)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return feast.FeatureStore(repo_path=str(path.resolve()))
    except Exception as err:  # Feast raises many kinds on a broken repository
        raise SourceUnavailable(
            f"{path}: Feast cannot open the repository: {_first_line(err)}"
        ) from None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _seconds(ttl: Any) -> float | None:
    return ttl.total_seconds() if ttl else None


#: Feast data sources that live only in the repository: cataloged in its namespace.
FEAST_ONLY_SOURCES = ("PushSource", "RequestSource")


def _snake(name: str) -> str:
    """`PushSource` -> `push_source`."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def dataset_key(source: Any, store: Any, path: Path) -> AssetKey | None:
    """The dataset a Feast data source reads, keyed like steward's own connectors.

    A file is `file` + its absolute path and a PostgreSQL table is keyed as the
    PostgreSQL connector keys it, so their lineage joins what other scans and
    events say; any other source (push, request, Kafka...) is `source/NAME` in
    the repository's namespace, described by the scan itself.
    """
    if source is None:
        return None
    kind = type(source).__name__
    if kind == "FileSource":
        if "://" in source.path:
            return None
        file_path = Path(source.path)
        if not file_path.is_absolute():
            file_path = (path / file_path).resolve()
        return AssetKey("file", str(file_path))
    if kind == "PostgreSQLSource":
        options = source._postgres_options
        table = options._table
        config = store.config.offline_store
        if not table:
            return None
        schema, _, name = table.rpartition(".")
        db_schema = schema or getattr(config, "db_schema", None) or "public"
        return AssetKey.of(
            f"postgres://{config.host}:{config.port}", f"{config.database}.{db_schema}.{name}"
        )
    return AssetKey(f"feast://{store.project}", f"source/{source.name}")


def _fields(features: list[Any]) -> list[FieldSpec]:
    return [FieldSpec(name=f.name, type=str(f.dtype)) for f in features]


def _observed(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(obj, "owner", None):
        out["owner"] = obj.owner
    if getattr(obj, "tags", None):
        out["tags"] = dict(obj.tags)
    return out


def _source_edge(key: AssetKey) -> EdgeSpec:
    return EdgeSpec(source_namespace=key.namespace, source_name=key.name, kind="feature_source")


class FeastConfig(ConnectorConfig):
    pass


class FeastConnector(Connector[FeastConfig]):
    """Every object of a Feast repository: views, on-demand views, services, sources.

    Feature, stream and label views and on-demand views are feature sets;
    feature services are `feature_service` assets; push, request and stream
    sources are datasets of the repository's namespace (with lineage into the
    views that read them); entities give the views' join keys; the project's
    description is observed on every asset.
    """

    kind = "feast"
    schemes = ("feast",)
    config_class = FeastConfig

    def scan(self, progress: Progress | None = None) -> Scan:
        store = open_store(self.config.url)
        path = repo_path(self.config.url).resolve()
        namespace = f"feast://{store.project}"
        logging.getLogger("feast").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            project = _project(store)
            entities = {e.name: e for e in store.list_entities()}
            # By name: a Feast release that lists a stream view among the views too
            # describes it once, as what it most precisely is.
            views = {v.name: (v, "feature_view") for v in store.list_feature_views()}
            views.update(
                (v.name, (v, "stream_feature_view")) for v in store.list_stream_feature_views()
            )
            views.update((v.name, (v, "label_view")) for v in _label_views(store))
            on_demand = store.list_on_demand_feature_views()
            services = store.list_feature_services()
            sources = {s.name: s for s in store.list_data_sources()}
        for view, _ in views.values():
            for source in (view.batch_source, view.stream_source):
                if source is not None:
                    sources.setdefault(source.name, source)
        for odfv in on_demand:
            sources.update(getattr(odfv, "source_request_sources", None) or {})
        reader = _Reader(store, path, namespace, entities, project)
        specs = [reader.source(s) for _, s in sorted(sources.items()) if reader.is_own(s)]
        specs += [reader.view(v, feast_type) for v, feast_type in views.values()]
        specs += [reader.on_demand(v) for v in on_demand]
        specs += [reader.service(s) for s in services]
        return Scan(specs=specs, scopes=[Scope(namespace)], origin=f"scan feast://{path}")


def _project(store: Any) -> dict[str, Any]:
    """The repository's `Project` object (name, description), when it has one."""
    try:
        project = store.get_project(store.project)
    except Exception:  # older registries keep no Project object
        return {}
    out = {"name": project.name}
    if project.description:
        out["description"] = project.description
    return out


def _label_views(store: Any) -> list[Any]:
    list_label_views = getattr(store, "list_label_views", None)
    return list(list_label_views()) if callable(list_label_views) else []


class _Reader:
    """Turns the objects of one repository into asset specs."""

    def __init__(
        self,
        store: Any,
        path: Path,
        namespace: str,
        entities: dict[str, Any],
        project: dict[str, Any],
    ) -> None:
        self.store = store
        self.path = path
        self.namespace = namespace
        self.entities = entities
        self.project = project

    def _observed(self, obj: Any) -> dict[str, Any]:
        out = _observed(obj)
        if self.project:
            out["feast_project"] = self.project
        return out

    def key(self, source: Any) -> AssetKey | None:
        return dataset_key(source, self.store, self.path)

    def is_own(self, source: Any) -> bool:
        """Whether the source is described here (not a file or table scanned elsewhere)."""
        key = self.key(source)
        return key is not None and key.namespace == self.namespace

    def source(self, source: Any) -> AssetSpec:
        """A push, request or stream source as a dataset of the repository."""
        kind = type(source).__name__
        properties: dict[str, Any] = {"feast_type": _snake(kind)}
        batch = self.key(getattr(source, "batch_source", None))
        if batch is not None:
            properties["batch_source"] = batch.uri
        timestamp = getattr(source, "timestamp_field", None)
        if timestamp:
            properties["timestamp_field"] = timestamp
        schema = getattr(source, "schema", None) if kind == "RequestSource" else None
        return AssetSpec(
            namespace=self.namespace,
            name=f"source/{source.name}",
            kind="dataset",
            description=getattr(source, "description", None) or None,
            fields=_fields(list(schema or [])),
            properties=properties,
            observed=self._observed(source),
        )

    def view(self, view: Any, feast_type: str) -> AssetSpec:
        edges: dict[str, EdgeSpec] = {}
        properties: dict[str, Any] = {
            "feast_type": feast_type,
            "entities": sorted(view.entities),
            "join_keys": {
                name: [self.entities[name].join_key]
                for name in view.entities
                if name in self.entities
            },
            "ttl_seconds": _seconds(view.ttl),
            "online": bool(view.online),
        }
        for role, source in (("batch", view.batch_source), ("stream", view.stream_source)):
            if source is None:
                continue
            properties[f"{role}_source"] = source.name
            key = self.key(source)
            if key is not None:
                properties["source"] = key.uri
                edges.setdefault(key.uri, _source_edge(key))
        udf = getattr(view, "udf_string", None) or ""
        if udf:
            properties["transformation"] = normalize_transformation(udf)
        for name in ("labeler_field", "conflict_policy"):
            value = getattr(view, name, None)
            if value:
                properties[name] = str(getattr(value, "value", value))
        return AssetSpec(
            namespace=self.namespace,
            name=view.name,
            kind="feature_set",
            description=view.description or None,
            fields=_fields(view.features),
            properties=properties,
            observed={**self._observed(view), "feast_repo": str(self.path)},
            edges=list(edges.values()),
        )

    def on_demand(self, view: Any) -> AssetSpec:
        transformation = getattr(view, "feature_transformation", None)
        udf = getattr(view, "udf_string", "") or getattr(transformation, "udf_string", "") or ""
        sources = sorted(view.source_feature_view_projections)
        requests = getattr(view, "source_request_sources", None) or {}
        properties: dict[str, Any] = {
            "feast_type": "on_demand_feature_view",
            "mode": getattr(view, "mode", None),
            "transformation": normalize_transformation(udf),
            "sources": sources,
            "request_sources": sorted(requests),
        }
        if getattr(view, "write_to_online_store", False):
            properties["write_to_online_store"] = True
        edges = [
            EdgeSpec(source_namespace=self.namespace, source_name=name, kind="feature_source")
            for name in sources
        ]
        edges += [_source_edge(k) for k in map(self.key, requests.values()) if k is not None]
        return AssetSpec(
            namespace=self.namespace,
            name=view.name,
            kind="feature_set",
            description=view.description or None,
            fields=_fields(view.features),
            properties=properties,
            observed={
                **self._observed(view),
                "transformation_source": udf,
                "feast_repo": str(self.path),
            },
            edges=edges,
        )

    def service(self, service: Any) -> AssetSpec:
        reads = {
            p.name: sorted(f.name for f in p.features) for p in service.feature_view_projections
        }
        return AssetSpec(
            namespace=self.namespace,
            name=service.name,
            kind="feature_service",
            description=service.description or None,
            properties={"features": {name: reads[name] for name in sorted(reads)}},
            observed=self._observed(service),
            edges=[
                EdgeSpec(source_namespace=self.namespace, source_name=name, kind="feature_input")
                for name in sorted(reads)
            ],
        )


def _sampled_view(store: Any, repo: str, view_name: str) -> tuple[Any, list[str], list[str]]:
    """A feature or on-demand view, its entity key columns and its request columns."""
    try:
        view = store.get_feature_view(view_name)
        return view, [c.name for c in view.entity_columns], []
    except Exception:
        pass
    try:
        view = store.get_on_demand_feature_view(view_name)
    except Exception:
        raise InvalidInput(
            f"{view_name} is not a feature view or on-demand feature view of {repo}",
            hint="--from-feast reads feature views and on-demand feature views",
        ) from None
    keys: dict[str, None] = {}
    for name in view.source_feature_view_projections:
        keys.update(dict.fromkeys(c.name for c in store.get_feature_view(name).entity_columns))
    requests = [
        f.name for source in (view.source_request_sources or {}).values() for f in source.schema
    ]
    return view, list(keys), requests


def pull_samples(
    repo: str, view_name: str, entity_rows: list[dict[str, Any]]
) -> tuple[dict[str, list[Any]], dict[str, list[Any]], list[str]]:
    """Offline (historical) and online values of a feature view for the given entity rows.

    Returns the offline and online columns (entity keys and features, row
    aligned with `entity_rows`) and the key column names. Rows without an
    `event_timestamp` are read as of now. An on-demand view is computed by
    Feast on both sides: its rows also carry the request sources' columns.
    """
    import pandas as pd

    store = open_store(f"feast://{repo}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        view, keys, requests = _sampled_view(store, repo, view_name)
        missing = [k for k in keys + requests if any(k not in row for row in entity_rows)]
        if missing:
            what = "key" if missing[0] in keys else "request"
            raise InvalidInput(f"entity rows lack the {what} column '{missing[0]}'")
        refs = [f"{view_name}:{f.name}" for f in view.features]
        frame = pd.DataFrame(entity_rows)
        if "event_timestamp" not in frame:
            frame["event_timestamp"] = pd.Timestamp.now(tz="UTC")
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        frame["__row"] = range(len(frame))
        side = "offline"
        try:
            offline_df = store.get_historical_features(entity_df=frame, features=refs).to_df()
            offline_df = offline_df.sort_values("__row")
            side = "online"
            online = store.get_online_features(
                features=refs,
                entity_rows=[{k: row[k] for k in keys + requests} for row in entity_rows],
            ).to_dict()
        except Exception as err:  # the stores' own errors, of every kind
            raise SourceUnavailable(
                f"{repo}: Feast cannot read {view_name} from its {side} store: {_first_line(err)}",
                hint="feast apply, then feast materialize-incremental",
            ) from None
    names = [f.name for f in view.features]
    json_names = {f.name for f in view.features if str(f.dtype) == "Json"}
    offline_cols = {c: _column(offline_df[c].tolist(), c in json_names) for c in keys + names}
    online_cols = {c: _column(online[c], c in json_names) for c in keys + names}
    return offline_cols, online_cols, keys


def _column(values: list[Any], is_json: bool) -> list[Any]:
    """Plain values; a `Json` feature as the value it encodes on both sides.

    Feast hands a `Json` feature to training as the stored text and to
    serving as the parsed value: compared raw, every row would differ.
    """
    plain = [_plain(v) for v in values]
    if not is_json:
        return plain
    out = []
    for value in plain:
        try:
            out.append(json.loads(value) if isinstance(value, str) else value)
        except json.JSONDecodeError:
            out.append(value)
    return out


def _plain(value: Any) -> Any:
    """numpy and pandas scalars as plain Python values (NaN and NA as None)."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    if isinstance(value, float) and value != value:
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return value
