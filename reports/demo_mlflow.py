"""The demo's MLflow store: a traced model beside an untracked one (the `mlflow` extra).

Written once with MLflow's own client into DIRECTORY/mlflow/mlflow.db: the
run that trained `churn-classifier` logged the events it read
(`log_inputs`, context `training`, its location in the `steward.source`
input tag); the run that trained `propensity` logged nothing, and the model
is served as `@production` all the same. `steward check` then names the
second (`untracked_lineage`) and counts it in the model coverage.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The two models the demo's store registers, and the one that is untracked.
TRACED, UNTRACKED = "churn-classifier", "propensity"
MLMODEL = "artifact_path: model\nflavors: {}\n"
SCHEMA = (
    '{"mlflow_colspec": [{"type": "double", "name": "clicks_7d", "required": true},'
    ' {"type": "double", "name": "churned", "required": true}]}'
)
DIGEST = "5c1d3f0e"


def _train(client: Any, experiment: str, source_uri: str | None) -> str:
    """A finished run of `experiment`; with `source_uri`, it logged what it trained on."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    run = client.create_run(experiment, run_name="train")
    run_id = str(run.info.run_id)
    client.log_param(run_id, "max_depth", "6")
    client.log_metric(run_id, "auc", 0.81)
    if source_uri is not None:
        # The dataset entity as `mlflow.data.from_pandas` describes it, written out: from_pandas
        # would tag it with the git commit of whatever repository the demo runs in.
        ds = Dataset("events", DIGEST, "code", '{"tags": {}}', SCHEMA, '{"num_rows": 3}')
        tags = [InputTag("mlflow.data.context", "training"), InputTag("steward.source", source_uri)]
        client.log_inputs(run_id, datasets=[DatasetInput(ds, tags)])
    client.set_terminated(run_id, "FINISHED")
    files = Path(str(client.get_run(run_id).info.artifact_uri).removeprefix("file://")) / "model"
    files.mkdir(parents=True, exist_ok=True)
    (files / "MLmodel").write_text(MLMODEL)
    return run_id


def build_registry(directory: Path, source_uri: str, say: Callable[[str], None]) -> str | None:
    """The store's scan URL (built if missing), or None without MLflow installed."""
    try:
        import mlflow
    except ImportError:
        return None
    root = directory / "mlflow"
    db = root / "mlflow.db"
    if not db.exists():
        say("writing an MLflow store: one model trained in a run that logged its data, one not")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        uri = f"sqlite:///{db}"
        logger = logging.getLogger("mlflow")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            client = mlflow.MlflowClient(uri, uri)
            artifacts = (root / "artifacts").as_uri()
            for model, experiment, source in (
                (TRACED, "churn-training", source_uri),
                (UNTRACKED, "propensity-training", None),
            ):
                run_id = _train(client, client.create_experiment(experiment, artifacts), source)
                client.create_registered_model(model)
                client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)
            client.set_registered_model_alias(TRACED, "champion", "1")
            client.set_registered_model_alias(UNTRACKED, "production", "1")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)  # never half a store: built again next time
            raise
        finally:
            logger.setLevel(level)
    return f"mlflow+sqlite://{db}"
