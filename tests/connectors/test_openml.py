"""The OpenML connector: the real openml-python client reading real OpenML answers from its cache.

`tests/fixtures/external/openml` holds answers of OpenML's test server in
openml-python's cache layout; each test copies it and points the client's
cache at the copy (`--cache-dir`), so nothing here needs the network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlmodel import select

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.models import Asset
from connectors.openml import OpenmlConfig, OpenmlConnector
from connectors.openml.mapping import RunInfo, TaskInfo, parse_refs, run_spec
from tests.conftest import FIXTURES

pytestmark = [
    # MLflow's own advice while a test logs a model (type hints, SQLAlchemy loaders)
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

NS = "openml+test://test.openml.org"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    copy = tmp_path / "openml-cache"
    shutil.copytree(FIXTURES / "openml", copy)
    return copy


def scan(cache: Path, refs: str) -> Any:
    config = OpenmlConfig(url=f"openml+test://{refs}", cache_dir=cache)
    return OpenmlConnector(config).scan()


def steward(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", f"sqlite:///{tmp_path / 'c.db'}", *args])


def test_a_dataset_is_described_as_openml_versions_it(cache: Path) -> None:
    result = scan(cache, "2")
    [spec] = result.specs
    assert (spec.namespace, spec.name, spec.kind) == (NS, "d/2", "dataset")
    props = spec.properties
    assert props["name"] == "anneal" and props["version"] == 1
    assert props["format"] == "ARFF" and props["licence"] == "Public"
    assert props["checksum"] == "4eaed8b6ec9d8211024b6c089b064761"
    assert props["default_target"] == "class"
    fields = {f.name: f for f in spec.fields}
    assert len(fields) == 39
    assert fields["family"].type == "nominal"
    assert fields["family"].attributes["nominal_values"][:3] == ["GB", "GK", "GS"]
    assert fields["carbon"].type == "numeric" and not fields["carbon"].nullable
    assert fields["class"].attributes["target"] is True
    assert spec.observed["missing"]["family"] == 772
    assert len(spec.observed["qualities"]) == 106
    assert spec.observed["qualities"]["ClassCount"] == 6.0
    assert "study_1" in spec.observed["tags"]
    # the dataset's page and file are the same asset
    assert [(k.namespace, k.name) for k in spec.aliases] == [
        ("https://test.openml.org:443", "d/2"),
        ("http://www.openml.org:80", "data/download/1666876/phpFsFYVN"),
    ]
    assert any("read from openml-python's cache" in w for w in result.warnings)


def test_tasks_and_runs_give_lineage(cache: Path) -> None:
    result = scan(cache, "t/1,t/3,r/1")
    specs = {s.name: s for s in result.specs}
    assert sorted(specs) == ["r/100", "t/1", "t/3"]
    task = specs["t/1"]
    assert task.kind == "task" and task.properties["target"] == "class"
    assert task.properties["estimation_procedure"]["type"] == "crossvalidation"
    assert [(e.source_name, e.kind) for e in task.edges] == [("d/1", "reads")]
    run = specs["r/100"]  # the cache's run 1 is OpenML's run 100
    assert run.kind == "model"
    assert run.properties["flow"] == {"id": 67, "name": "weka.BayesNet_K2(1)"}
    assert run.properties["parameters"]["Q"] == "weka.classifiers.bayes.net.search.local.K2"
    assert sorted((e.source_name, e.kind) for e in run.edges) == [
        ("d/28", "trained_on"),
        ("t/28", "reads"),
    ]
    assert run.observed["evaluations"]["area_under_roc_curve"] == pytest.approx(0.990288)
    assert "run 1: OpenML's answer describes run 100" in result.warnings


def test_a_run_without_input_data_trained_on_its_tasks_dataset() -> None:
    task = TaskInfo(id=3, task_type="Supervised Classification", dataset_id=3, target="class")
    run = RunInfo(id=9, task_id=3, flow_id=1, flow_name="sklearn.tree.DecisionTree")
    spec = run_spec(NS, run, {3: task})
    assert ("d/3", "trained_on") in [(e.source_name, e.kind) for e in spec.edges]
    assert run_spec(NS, run, {}).edges[-1].kind == "reads"  # task unknown: no dataset edge


def test_rescan_writes_nothing_and_a_changed_answer_is_a_new_version(
    cache: Path, store: Store
) -> None:
    first = scan(cache, "2")
    assert apply(store, first.specs, first.scopes).summary()["created"] == 1
    again = scan(cache, "2")
    assert apply(store, again.specs, again.scopes).summary() == {
        "created": 0,
        "changed": 0,
        "unchanged": 1,
        "deleted": 0,
    }
    description = cache / "org/openml/test/datasets/2/description.xml"
    text = description.read_text()
    description.write_text(
        text.replace(
            "<oml:default_target_attribute>class</oml:default_target_attribute>",
            "<oml:default_target_attribute>shape</oml:default_target_attribute>",
        )
    )
    changed = scan(cache, "2")
    [change] = apply(store, changed.specs, changed.scopes).pending
    assert change.action == "update" and change.diff is not None
    with store.session() as session:
        asset = session.exec(select(Asset).where(Asset.name == "d/2")).one()
    assert asset.current_version == 2


def test_scan_through_the_cli_says_it_read_the_cache(cache: Path, tmp_path: Path) -> None:
    result = steward(tmp_path, "scan", "openml+test://2,t/3", "--cache-dir", str(cache), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["summary"]["created"] == 2
    assert any("dataset 2, task 3" in w for w in out["warnings"])
    up = json.loads(steward(tmp_path, "lineage", "upstream", f"{NS}/t/3", "--json").stdout)
    assert [e["source"] for e in up["edges"]] == [f"{NS}/d/3"]


def test_an_object_neither_cached_nor_reachable_is_one_line(cache: Path, tmp_path: Path) -> None:
    result = steward(tmp_path, "scan", "openml+test://5", "--cache-dir", str(cache))
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert "dataset 5" in result.stderr and "OpenML" in result.stderr
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize("url", ["openml://abc", "openml://d/", "openml://x/3", "openml://0"])
def test_bad_references_are_refused(url: str, tmp_path: Path) -> None:
    result = steward(tmp_path, "scan", url)
    assert result.exit_code == 2, result.output
    assert "is not an OpenML reference" in result.stderr


def test_references() -> None:
    assert parse_refs("2, d/61,t/1,r/100") == [
        ("dataset", 2),
        ("dataset", 61),
        ("task", 1),
        ("model", 100),
    ]
    assert OpenmlConfig(url="openml://2").namespace == "openml://www.openml.org"


def test_a_model_trained_on_the_dataset_in_mlflow_resolves_to_it(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's own client logs a training input whose source is the dataset's file URL."""
    mlflow = pytest.importorskip("mlflow")
    import openml
    import pandas as pd

    # MLflow probes the directories around the test runner for a git checkout (reads
    # beside a worktree); the run's git commit is nothing this test is about.
    from mlflow.tracking.context.git_context import GitRunContext

    monkeypatch.setattr(GitRunContext, "in_context", lambda self: False)
    monkeypatch.setattr(openml.config, "server", "https://test.openml.org/api/v1/xml")
    openml.config.set_root_cache_directory(cache)
    dataset = openml.datasets.get_dataset(2, download_data=False, download_qualities=False)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    frame = pd.DataFrame({"carbon": [0.0, 1.0], "class": ["3", "U"]})

    class Model(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return model_input

    artifacts = (tmp_path / "artifacts").as_uri()  # not the working directory's ./mlruns
    experiment = mlflow.MlflowClient().create_experiment("anneal", artifacts)
    with mlflow.start_run(experiment_id=experiment):
        source = mlflow.data.from_pandas(frame, source=dataset.url, name="anneal")
        mlflow.log_input(source, context="training")
        mlflow.pyfunc.log_model(
            name="model",
            python_model=Model(),
            pip_requirements=[],
            registered_model_name="annealer",
        )
    assert steward(tmp_path, "scan", "openml+test://2", "--cache-dir", str(cache)).exit_code == 0
    assert steward(tmp_path, "scan", f"mlflow+sqlite://{tmp_path / 'mlflow.db'}").exit_code == 0
    up = steward(tmp_path, "lineage", "upstream", "annealer", "--json")
    assert up.exit_code == 0, up.output
    edges = [(e["source"], e["kind"]) for e in json.loads(up.stdout)["edges"]]
    assert (f"{NS}/d/2", "trained_on") in edges


def test_an_openlineage_dataset_naming_the_openml_page_resolves_to_it(
    cache: Path, tmp_path: Path
) -> None:
    """The openlineage-python client writes an event whose input is the dataset's page."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import Dataset, Job, Run, RunEvent, RunState
    from openlineage.client.transport.file import FileConfig, FileTransport

    events = tmp_path / "events.jsonl"
    client = OpenLineageClient(
        transport=FileTransport(FileConfig(log_file_path=str(events), append=True))
    )
    client.emit(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=str(uuid4())),
            job=Job(namespace="pipelines", name="train_annealer"),
            producer="https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python",
            inputs=[Dataset(namespace="https://test.openml.org", name="d/2")],
        )
    )
    assert steward(tmp_path, "scan", "openml+test://2", "--cache-dir", str(cache)).exit_code == 0
    ingested = steward(tmp_path, "ingest", str(events))
    assert ingested.exit_code == 0, ingested.output
    down = steward(tmp_path, "lineage", "downstream", f"{NS}/d/2", "--json")
    assert down.exit_code == 0, down.output
    targets = [e["target"] for e in json.loads(down.stdout)["edges"]]
    assert any(t.endswith("train_annealer") for t in targets), targets
