"""Feast repositories: `steward scan feast://PATH/TO/REPO` (the `feast` extra).

The registry is read through Feast's own SDK (`FeatureStore(repo_path=...)`).
Feature views, stream feature views and on-demand feature views become
feature sets (namespace `feast://PROJECT`); on-demand transformations are
fingerprinted from their source code; feature services become the serving
side of a model (kind `feature_service`) with edges from the views they
read; data sources become lineage edges to the datasets they read, keyed the
way the other connectors key them (a PostgreSQL table as
`postgres://HOST:PORT` + `DB.SCHEMA.TABLE`, a file as `file` + its path).
"""

from __future__ import annotations

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
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceUnavailable(f"{path}: Feast cannot open the repository: {first}") from None


def _seconds(ttl: Any) -> float | None:
    return ttl.total_seconds() if ttl else None


def dataset_key(source: Any, store: Any, path: Path) -> AssetKey | None:
    """The dataset a Feast data source reads, keyed like steward's own connectors."""
    if source is None:
        return None
    kind = type(source).__name__
    if kind == "PushSource":
        return dataset_key(getattr(source, "batch_source", None), store, path)
    if kind == "RequestSource":
        return None
    if kind == "FileSource":
        file_path = Path(source.path)
        if not file_path.is_absolute() and "://" not in source.path:
            file_path = (path / file_path).resolve()
        return AssetKey("file", str(file_path)) if "://" not in source.path else None
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


class FeastConfig(ConnectorConfig):
    pass


class FeastConnector(Connector[FeastConfig]):
    """Feature views, on-demand views and feature services of a Feast repository."""

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
            entities = {e.name: e for e in store.list_entities()}
            views = store.list_feature_views()
            stream_views = store.list_stream_feature_views()
            on_demand = store.list_on_demand_feature_views()
            services = store.list_feature_services()
        specs = [self._view(v, "feature_view", store, path, namespace, entities) for v in views]
        specs += [
            self._view(v, "stream_feature_view", store, path, namespace, entities)
            for v in stream_views
        ]
        specs += [self._on_demand(v, namespace) for v in on_demand]
        specs += [self._service(s, namespace) for s in services]
        return Scan(specs=specs, scopes=[Scope(namespace)], origin=f"scan feast://{path}")

    def _view(
        self,
        view: Any,
        feast_type: str,
        store: Any,
        path: Path,
        namespace: str,
        entities: dict[str, Any],
    ) -> AssetSpec:
        edges = []
        properties: dict[str, Any] = {
            "feast_type": feast_type,
            "entities": sorted(view.entities),
            "join_keys": {
                name: [entities[name].join_key] for name in view.entities if name in entities
            },
            "ttl_seconds": _seconds(view.ttl),
            "online": bool(view.online),
        }
        for role, source in (("batch", view.batch_source), ("stream", view.stream_source)):
            if source is None:
                continue
            properties[f"{role}_source"] = source.name
            key = dataset_key(source, store, path)
            if key is not None:
                properties["source"] = key.uri
                edges.append(
                    EdgeSpec(
                        source_namespace=key.namespace, source_name=key.name, kind="feature_source"
                    )
                )
        udf = getattr(view, "udf_string", None) or ""
        if udf:
            properties["transformation"] = normalize_transformation(udf)
        return AssetSpec(
            namespace=namespace,
            name=view.name,
            kind="feature_set",
            description=view.description or None,
            fields=_fields(view.features),
            properties=properties,
            observed={**_observed(view), "feast_repo": str(path)},
            edges=edges,
        )

    def _on_demand(self, view: Any, namespace: str) -> AssetSpec:
        transformation = getattr(view, "feature_transformation", None)
        udf = getattr(view, "udf_string", "") or getattr(transformation, "udf_string", "") or ""
        sources = sorted(view.source_feature_view_projections)
        requests = sorted(getattr(view, "source_request_sources", {}) or {})
        return AssetSpec(
            namespace=namespace,
            name=view.name,
            kind="feature_set",
            description=view.description or None,
            fields=_fields(view.features),
            properties={
                "feast_type": "on_demand_feature_view",
                "mode": getattr(view, "mode", None),
                "transformation": normalize_transformation(udf),
                "sources": sources,
                "request_sources": requests,
            },
            observed={**_observed(view), "transformation_source": udf},
            edges=[
                EdgeSpec(source_namespace=namespace, source_name=name, kind="feature_source")
                for name in sources
            ],
        )

    def _service(self, service: Any, namespace: str) -> AssetSpec:
        reads = {
            p.name: sorted(f.name for f in p.features) for p in service.feature_view_projections
        }
        return AssetSpec(
            namespace=namespace,
            name=service.name,
            kind="feature_service",
            description=service.description or None,
            properties={"features": {name: reads[name] for name in sorted(reads)}},
            observed=_observed(service),
            edges=[
                EdgeSpec(source_namespace=namespace, source_name=name, kind="feature_input")
                for name in sorted(reads)
            ],
        )


def pull_samples(
    repo: str, view_name: str, entity_rows: list[dict[str, Any]]
) -> tuple[dict[str, list[Any]], dict[str, list[Any]], list[str]]:
    """Offline (historical) and online values of a feature view for the given entity rows.

    Returns the offline and online columns (entity keys and features, row
    aligned with `entity_rows`) and the key column names. Rows without an
    `event_timestamp` are read as of now.
    """
    import pandas as pd

    store = open_store(f"feast://{repo}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            view = store.get_feature_view(view_name)
        except Exception:
            raise InvalidInput(
                f"{view_name} is not a feature view of {repo}",
                hint="--from-feast reads plain feature views",
            ) from None
        keys = [c.name for c in view.entity_columns]
        missing = [k for k in keys if any(k not in row for row in entity_rows)]
        if missing:
            raise InvalidInput(f"entity rows lack the key column '{missing[0]}'")
        refs = [f"{view_name}:{f.name}" for f in view.features]
        frame = pd.DataFrame(entity_rows)
        if "event_timestamp" not in frame:
            frame["event_timestamp"] = pd.Timestamp.now(tz="UTC")
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        frame["__row"] = range(len(frame))
        offline_df = store.get_historical_features(entity_df=frame, features=refs).to_df()
        offline_df = offline_df.sort_values("__row")
        online = store.get_online_features(
            features=refs, entity_rows=[{k: row[k] for k in keys} for row in entity_rows]
        ).to_dict()
    names = [f.name for f in view.features]
    offline_cols = {c: [_plain(v) for v in offline_df[c].tolist()] for c in keys + names}
    online_cols = {c: [_plain(v) for v in online[c]] for c in keys + names}
    return offline_cols, online_cols, keys


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
