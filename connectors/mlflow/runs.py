"""From MLflow's experiments and runs to jobs and runs: pure functions over plain data.

An experiment is a job (`NAMESPACE/experiments/NAME`, kind `job`); each of
its runs is a run of that job (`catalog.specs.RunSpec`), as OpenLineage's
runs are: its state (MLflow's status as OpenLineage's: FINISHED is COMPLETE,
FAILED is FAIL, KILLED is ABORT), start and end, and the `mlflow_run` facet
(run name, status, lifecycle stage, user, params, latest metrics, tags,
logged models and the registered versions they became). Its inputs are the
datasets it logged (`log_input`, with their context) and the feature sets its
tags name; its outputs the registered models its versions belong to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from catalog.identity import AssetKey
from catalog.specs import AssetSpec, RunIOSpec, RunSpec
from connectors.mlflow.mapping import (
    FEATURE_SCHEMES,
    ModelInfo,
    RunInfo,
    dataset_key,
    dataset_spec,
    edge_kind,
    feature_sets,
    registry_dataset_key,
)
from connectors.mlflow.tracking import ExperimentInfo, LoggedModelInfo

#: MLflow's run status -> OpenLineage's run state.
STATES = {
    "FINISHED": "COMPLETE",
    "FAILED": "FAIL",
    "KILLED": "ABORT",
    "RUNNING": "RUNNING",
    "SCHEDULED": "START",
}
#: A run tag MLflow writes that is large and repeated elsewhere (the logged models).
NOISY_TAGS = frozenset({"mlflow.log-model.history"})
EXPERIMENT_PREFIX = "experiments/"


def experiment_key(namespace: str, name: str) -> AssetKey:
    """`NAMESPACE/experiments/NAME`: a registered model's name cannot hold a `/`."""
    return AssetKey(namespace, f"{EXPERIMENT_PREFIX}{name}")


def experiment_spec(namespace: str, experiment: ExperimentInfo) -> AssetSpec:
    observed: dict[str, Any] = {
        "registry": "mlflow",
        "lifecycle_stage": experiment.lifecycle_stage,
    }
    if experiment.tags:
        observed["tags"] = {
            k: v for k, v in sorted(experiment.tags.items()) if not k.startswith("mlflow.")
        }
    key = experiment_key(namespace, experiment.name)
    return AssetSpec(
        namespace=key.namespace,
        name=key.name,
        kind="job",
        properties={"experiment_id": experiment.experiment_id, "type": "mlflow_experiment"},
        observed=observed,
    )


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def run_specs(
    namespace: str,
    runs: Iterable[RunInfo],
    models: list[ModelInfo],
    logged: list[LoggedModelInfo],
    warnings: list[str],
) -> tuple[list[RunSpec], list[AssetSpec]]:
    """The runs, and the registry's own datasets they logged (see `registry_dataset_key`)."""
    versions: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for model in models:
        for v in model.versions:
            if v.source_run:
                versions[v.source_run][model.name].append(v.version)
    by_model_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for model in models:
        for v in model.versions:
            if v.source.startswith("models:/m-"):
                model_id = v.source[len("models:/") :].split("/", 1)[0]
                by_model_id[model_id].append({"model": model.name, "version": v.version})
    logged_by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lm in sorted(logged, key=lambda m: m.model_id):
        if lm.run_id:
            logged_by_run[lm.run_id].append(
                {
                    "model_id": lm.model_id,
                    "name": lm.name,
                    "status": lm.status,
                    "registered": sorted(
                        by_model_id.get(lm.model_id, []), key=lambda r: (r["model"], r["version"])
                    ),
                }
            )
    out: list[RunSpec] = []
    datasets: dict[AssetKey, AssetSpec] = {}
    for run in runs:
        inputs: list[RunIOSpec] = []
        for ds in run.inputs:
            key = dataset_key(ds.source_type, ds.source, ds.tags)
            if key is None:
                key = registry_dataset_key(namespace, ds)
                datasets.setdefault(key, dataset_spec(key, ds))
            feature = key.namespace.startswith(FEATURE_SCHEMES)
            inputs.append(
                RunIOSpec(
                    namespace=key.namespace,
                    name=key.name,
                    kind="feature_set" if feature else "dataset",
                    facets={
                        "mlflow_dataset": {
                            "name": ds.name,
                            "digest": ds.digest,
                            "context": ds.context or None,
                            "edge": edge_kind(ds.context, key),
                        }
                    },
                )
            )
        where = f"run {run.run_id}"
        for key, version in sorted(feature_sets(run, warnings, where).items()):
            inputs.append(
                RunIOSpec(
                    namespace=key.namespace,
                    name=key.name,
                    kind="feature_set",
                    facets={"steward_feature_set": {"version": version}},
                )
            )
        outputs = [
            RunIOSpec(
                namespace=namespace,
                name=name,
                kind="model",
                facets={"mlflow_model_versions": {"versions": sorted(numbers)}},
            )
            for name, numbers in sorted(versions.get(run.run_id, {}).items())
        ]
        facet = {
            "runName": run.run_name,
            "experimentId": run.experiment_id,
            "status": run.status,
            "lifecycleStage": run.lifecycle_stage,
            "user": run.user or None,
            "params": dict(sorted(run.params.items())),
            "metrics": dict(sorted(run.metrics.items())),
            "tags": {k: v for k, v in sorted(run.tags.items()) if k not in NOISY_TAGS},
            "loggedModels": logged_by_run.get(run.run_id, []),
        }
        job = experiment_key(namespace, run.experiment_name or run.experiment_id)
        out.append(
            RunSpec(
                run_uuid=run.run_id,
                job_namespace=job.namespace,
                job_name=job.name,
                state=STATES.get(run.status.upper(), "OTHER"),
                started_at=_time(run.start_time),
                ended_at=_time(run.end_time),
                facets={"mlflow_run": facet},
                inputs=inputs,
                outputs=outputs,
            )
        )
    return out, [datasets[k] for k in sorted(datasets)]
