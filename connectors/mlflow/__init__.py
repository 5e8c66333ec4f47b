"""MLflow model registries: `steward scan mlflow+file:///ABS/mlruns` (the `mlflow` extra).

Also `mlflow+sqlite:///ABS/mlflow.db` and a tracking server, `mlflow://HOST:PORT`
(`mlflows://` for https). Every registered model is an asset of kind `model`
in the registry's namespace; its definition is its latest version (signature
as fields, every version with its source run in the properties), so a new
model version is a new steward version and an unchanged registry writes
nothing. The latest version's source run gives the lineage: the datasets it
logged (`mlflow.log_input`) as `trained_on` / `evaluated_on` edges keyed like
the other connectors key them, the feature sets and embedding model its tags
name (`steward.feature_set...`, `steward.embedding_model`), and its
experiment as context. `connectors.mlflow.mapping` holds the pure mapping,
`connectors.mlflow.reader` the MLflow I/O.
"""

from __future__ import annotations

from catalog.apply import Scope
from connectors.base import Connector, ConnectorConfig, Progress, Scan
from connectors.mlflow.mapping import model_spec
from connectors.mlflow.reader import (
    Reader,
    check_reachable,
    import_mlflow,
    locate,
    mlflow_environment,
)

__all__ = ["MlflowConfig", "MlflowConnector"]


class MlflowConfig(ConnectorConfig):
    pass


class MlflowConnector(Connector[MlflowConfig]):
    """Registered models and model versions of an MLflow registry."""

    kind = "mlflow"
    schemes = ("mlflow", "mlflows", "mlflow+file", "mlflow+sqlite")
    config_class = MlflowConfig

    def scan(self, progress: Progress | None = None) -> Scan:
        import_mlflow()
        location = locate(self.config.url)
        check_reachable(location)
        with mlflow_environment(location):
            reader = Reader(location)
            models = reader.models(progress)
        warnings = reader.warnings
        specs = [model_spec(location.namespace, m, warnings) for m in models]
        return Scan(
            specs=specs,
            scopes=[Scope(location.namespace, kinds=("model",))],
            origin=f"scan {location.shown}",
            warnings=warnings,
        )
