"""MLflow model registries: `steward scan mlflow+file:///ABS/mlruns` (the `mlflow` extra).

Also `mlflow+sqlite:///ABS/mlflow.db` and a tracking server, `mlflow://HOST:PORT`
(`mlflows://` for https). Every registered model is an asset of kind `model`
in the registry's namespace; its definition is its latest version (signature
as fields, every version with its source run in the properties), so a new
model version is a new steward version and an unchanged registry writes
nothing. The latest version's source run (an MLflow 3 logged model,
`models:/m-...`, resolved to the run that logged it) gives the lineage: the
datasets it logged (`mlflow.log_input`) as `trained_on` / `evaluated_on`
edges, keyed like the other connectors key them when their source is a file
or a table, otherwise assets of kind `dataset` of their own in the registry's
namespace (`datasets/NAME@DIGEST`, MLflow's schema as fields and its profile
observed); the feature sets and embedding model its tags name
(`steward.feature_set...`, `steward.embedding_model`); and its experiment as
context. The scan never writes to the registry: a SQLite store is read
through a read-only connection, never migrated. `connectors.mlflow.mapping`
holds the pure mapping, `connectors.mlflow.reader` and
`connectors.mlflow.tables` the MLflow I/O.
"""

from __future__ import annotations

from catalog.apply import Scope
from catalog.runs import RunMarks
from connectors.base import Connector, ConnectorConfig, Progress, Scan
from connectors.mlflow.mapping import model_specs
from connectors.mlflow.reader import (
    Reader,
    check_reachable,
    import_mlflow,
    locate,
    mlflow_environment,
)
from connectors.mlflow.runs import experiment_spec, run_specs

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

        def read_runs(marks: RunMarks) -> Scan:
            with mlflow_environment(location):
                tracking = reader.tracking(marks.since, marks.open_runs)
            found: list[str] = []
            runs, datasets = run_specs(
                location.namespace, tracking.runs, models, tracking.logged_models, found
            )
            jobs = [experiment_spec(location.namespace, e) for e in tracking.experiments]
            return Scan(
                specs=jobs + datasets,
                scopes=[Scope(location.namespace, kinds=("job",))],
                warnings=found,
                runs=runs,
            )

        return Scan(
            specs=model_specs(location.namespace, models, warnings),
            scopes=[Scope(location.namespace, kinds=("model",))],
            origin=f"scan {location.shown}",
            warnings=warnings,
            read_runs=read_runs,
            runs_namespace=location.namespace,
        )
