"""MLflow's tracking side (experiments, runs, logged models) and the lineage-coverage rule.

Two real SQLite stores written with MLflow's client, built once for the
module: a clean one where every registered version comes from a run that
logged its data (`log_inputs`), and its twin, a copy to which MLflow adds
the untracked cases: a version trained in a run that logged nothing and
served as `@production`, a version registered without a run, one whose run
was deleted, one whose run is in another store. `untracked_lineage` fires
exactly on those, and is silent on the clean store.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select

from catalog.cli import cli
from catalog.models import Asset, Run, RunDataset
from catalog.runs import run_marks
from connectors.mlflow.tables import TableStore
from connectors.mlflow.tracking import read_tables

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed: '.[mlflow]'")

import pandas as pd  # noqa: E402
from mlflow.entities import DatasetInput, InputTag  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

RUN = Run.__table__  # type: ignore[attr-defined]
RUN_DATASET = RunDataset.__table__  # type: ignore[attr-defined]
ASSET = Asset.__table__  # type: ignore[attr-defined]


@dataclass
class Store:
    """One MLflow store (SQLite, or a file store), written by MLflow's client."""

    root: Path
    backend: str = "sqlite"

    @property
    def db(self) -> Path:
        return self.root / ("mlflow.db" if self.backend == "sqlite" else "mlruns")

    @property
    def url(self) -> str:
        return f"mlflow+{self.backend}://{self.db}"

    @property
    def client(self) -> Any:
        uri = f"sqlite:///{self.db}" if self.backend == "sqlite" else self.db.as_uri()
        mlflow.set_tracking_uri(uri)  # MLflow resolves `models:/` with the default client
        mlflow.set_registry_uri(uri)
        return mlflow.MlflowClient(uri, uri)

    def experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(self.client.create_experiment(name, (self.root / "artifacts").as_uri()))

    def train(self, experiment: str, *, data: bool, params: dict[str, str] | None = None) -> str:
        """A finished run: params, a metric, and (if `data`) its training and evaluation data."""
        client = self.client
        run = client.create_run(self.experiment(experiment), run_name=f"{experiment}-run")
        run_id = str(run.info.run_id)
        for key, value in (params or {"alpha": "0.1"}).items():
            client.log_param(run_id, key, value)
        client.log_metric(run_id, "auc", 0.875)
        if data:
            frame = pd.DataFrame({"clicks": [1, 2, 3], "churned": [0, 1, 0]})
            logged = []
            for name, context in (("events", "training"), ("holdout", "evaluation")):
                ds = mlflow.data.from_pandas(frame, name=f"{experiment}-{name}")
                logged.append(
                    DatasetInput(ds._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])
                )
            client.log_inputs(run_id, datasets=logged)
        client.set_terminated(run_id, "FINISHED")
        return run_id

    def register(self, name: str, run_id: str | None, *, logged: bool = True) -> int:
        """A version of `name` from the run: through an MLflow 3 logged model, or `runs:/`."""
        client = self.client
        if not client.search_registered_models(f"name = '{name}'"):
            client.create_registered_model(name)
        if run_id is None:
            files = self.root / "model"
            version = client.create_model_version(name, str(files))
        elif logged:
            run = client.get_run(run_id)
            model = client.create_logged_model(
                run.info.experiment_id, name="model", source_run_id=run_id
            )
            client.finalize_logged_model(model.model_id, "READY")
            files = Path(model.artifact_location.removeprefix("file://"))
            version = client.create_model_version(
                name, f"models:/{model.model_id}", run_id=run_id, model_id=model.model_id
            )
        else:
            files = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://")) / "model"
            version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        files.mkdir(parents=True, exist_ok=True)
        (files / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")  # as log_model
        return int(version.version)


@dataclass
class Twins:
    clean: Store
    dirty: Store
    #: model name -> (version, run id) of the untracked cases of `dirty`
    cases: dict[str, tuple[int, str | None]]
    clean_runs: set[str]


def traced_models(clean: Store) -> set[str]:
    """Two models whose every version traces to its training data; their runs."""
    churn_run = clean.train("churn", data=True)
    clean.register("churn", churn_run)
    clean.client.set_registered_model_alias("churn", "champion", "1")
    ranker_run = clean.train("search", data=True, params={"k": "10"})
    clean.register("ranker", ranker_run, logged=False)
    return {churn_run, ranker_run}


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Twins:
    clean = Store(tmp_path_factory.mktemp("clean"))
    runs = traced_models(clean)
    dirty = Store(tmp_path_factory.mktemp("dirty"))
    shutil.copy(clean.db, dirty.db)
    return Twins(clean, dirty, untracked_models(dirty), runs)


def untracked_models(dirty: Store) -> dict[str, tuple[int, str | None]]:
    """Four models that trace to no data, each for another reason: (version, run id)."""
    cases: dict[str, tuple[int, str | None]] = {}
    nothing = dirty.train("churn", data=False)  # trained in a run that logged no input
    cases["churn"] = (dirty.register("churn", nothing), nothing)
    dirty.client.set_registered_model_alias("churn", "production", "2")
    cases["scratch"] = (dirty.register("scratch", None), None)  # no run at all
    gone = dirty.train("churn", data=True)
    cases["retired"] = (dirty.register("retired", gone, logged=False), gone)
    dirty.client.delete_run(gone)
    elsewhere = "0123456789abcdef0123456789abcdef"  # a run of another store
    version = dirty.client.create_registered_model("borrowed")
    number = dirty.client.create_model_version(
        version.name, f"runs:/{elsewhere}/model", run_id=elsewhere
    ).version
    cases["borrowed"] = (int(number), elsewhere)
    return cases


def steward(catalog: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)


def ok(catalog: str, *args: str) -> Any:
    result = steward(catalog, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result


def check(catalog: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = steward(catalog, "check", "--json", "--coverage", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def untracked(found: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(f["assets"]): f for f in found["findings"] if f["rule"] == "untracked_lineage"}


def catalog_rows(catalog: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Every run by its MLflow id, and each run's datasets (uri, direction, facets)."""
    engine = create_engine(catalog)
    with engine.connect() as conn:
        runs = {r.run_uuid: r for r in conn.execute(select(RUN))}
        ios: dict[str, list[Any]] = {}
        by_id = {r.id: u for u, r in runs.items()}
        for row in conn.execute(
            select(RUN_DATASET.c.run_id, ASSET.c.uri, RUN_DATASET.c.direction, RUN_DATASET.c.facets)
            .join(ASSET, ASSET.c.id == RUN_DATASET.c.asset_id)
            .order_by(ASSET.c.uri)
        ):
            ios.setdefault(by_id[row.run_id], []).append((row.uri, row.direction, row.facets))
        jobs = {r.id: r.uri for r in conn.execute(select(ASSET).where(ASSET.c.kind == "job"))}
    engine.dispose()
    return {u: {**r._mapping, "job": jobs.get(r.job_id)} for u, r in runs.items()}, ios


def test_runs_are_runs_of_their_experiments(twins: Twins, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    scanned = ok(catalog, "scan", twins.clean.url, "--json")
    assert scanned["runs_written"] == 2 and scanned["warnings"] == []
    runs, ios = catalog_rows(catalog)
    assert set(runs) == twins.clean_runs
    client = twins.clean.client
    ns = twins.clean.url
    for run_id in twins.clean_runs:
        mlrun = client.get_run(run_id)
        row = runs[run_id]
        experiment = client.get_experiment(mlrun.info.experiment_id).name
        assert row["job"] == f"job:{ns}/experiments/{experiment}"
        assert row["state"] == "COMPLETE"
        assert int(row["started_at"].timestamp() * 1000) == mlrun.info.start_time
        assert int(row["ended_at"].timestamp() * 1000) == mlrun.info.end_time
        facet = row["facets"]["mlflow_run"]
        assert facet["params"] == mlrun.data.params
        assert facet["metrics"] == {"auc": 0.875}
        assert facet["user"] == mlrun.info.user_id
        assert facet["lifecycleStage"] == "active"
        digests = {d.dataset.name: d.dataset.digest for d in mlrun.inputs.dataset_inputs}
        inputs = {uri: f["mlflow_dataset"]["context"] for uri, d, f in ios[run_id] if d == "input"}
        assert inputs == {
            f"{ns}/datasets/{name}@{digest}": "training" if "events" in name else "evaluation"
            for name, digest in digests.items()
        }
    # The logged model and the registered version it became; `runs:/` registers no logged model.
    churn_run = next(u for u, r in runs.items() if r["job"].endswith("/churn"))
    (logged,) = runs[churn_run]["facets"]["mlflow_run"]["loggedModels"]
    assert logged["registered"] == [{"model": "churn", "version": 1}]
    assert client.get_model_version("churn", "1").source == f"models:/{logged['model_id']}"
    outputs = [(uri, f) for uri, d, f in ios[churn_run] if d == "output"]
    assert outputs == [(f"{ns}/churn", {"mlflow_model_versions": {"versions": [1]}})]
    ranker_run = next(u for u in runs if u != churn_run)
    assert runs[ranker_run]["facets"]["mlflow_run"]["loggedModels"] == []

    # The model's lineage is what its version's run read.
    upstream = ok(catalog, "lineage", "upstream", f"{ns}/churn", "--json")
    read = {uri for uri, d, _ in ios[churn_run] if d == "input"}
    assert {n["uri"] for n in upstream["nodes"]} - {f"{ns}/churn"} == read


def test_the_rule_is_silent_on_the_clean_store(twins: Twins, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    before = twins.clean.db.read_bytes()
    ok(catalog, "scan", twins.clean.url)
    code, found = check(catalog, "--fail-on", "warning", "--min-coverage", "model=100")
    assert (code, found["findings"]) == (0, [])
    assert found["coverage"] == {
        "model": {"assets": 2, "traced": 2, "percent": 100.0, "untraced": []}
    }
    assert twins.clean.db.read_bytes() == before  # the scan never writes to the store


def test_a_file_store_gives_the_same_findings(
    twins: Twins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same models written to a file store (read through MLflow's client, not tables)."""
    monkeypatch.chdir(tmp_path)  # MLflow writes nothing beside the store, but be sure
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the team writing one (MLflow 3)
    files = Store(tmp_path / "team", backend="file")
    traced_models(files)
    cases = untracked_models(files)
    found: dict[str, Any] = {}
    for store in (files, twins.dirty):
        catalog = f"sqlite:///{tmp_path / (store.backend + '.db')}"
        ok(catalog, "scan", store.url)
        _, found[store.backend] = check(catalog)
    for backend, store in (("file", files), ("sqlite", twins.dirty)):
        assert {
            (f["assets"][0].removeprefix(store.url), f["evidence"]["missing"])
            for f in untracked(found[backend]).values()
        } == {
            ("/churn", "no_training_data"),
            ("/scratch", "no_run"),
            ("/retired", "run_deleted"),
            ("/borrowed", "run_unknown"),
        }
    assert {name: v for name, (v, _) in cases.items()} == {
        name: v for name, (v, _) in twins.cases.items()
    }
    assert found["file"]["coverage"]["model"]["percent"] == 20.0


def test_the_rule_fires_exactly_on_the_untracked(twins: Twins, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    ok(catalog, "scan", twins.dirty.url)
    code, found = check(catalog)
    assert code == 0  # warnings, and --fail-on is error
    ns = twins.dirty.url
    findings = untracked(found)
    assert set(findings) == {(f"{ns}/{name}",) for name in twins.cases}
    expected = {
        "churn": "no_training_data",
        "scratch": "no_run",
        "retired": "run_deleted",
        "borrowed": "run_unknown",
    }
    for name, (version, run_id) in twins.cases.items():
        finding = findings[(f"{ns}/{name}",)]
        assert finding["severity"] == "warning"
        assert finding["evidence"]["missing"] == expected[name]
        assert (finding["evidence"]["version"], finding["evidence"]["run_id"]) == (version, run_id)
        assert finding["remedy"]
    churn = findings[(f"{ns}/churn",)]
    assert churn["evidence"]["aliases"] == ["production"]
    assert "@production" in churn["title"] and "traces to no dataset" in churn["title"]
    assert "mlflow.log_input" in churn["remedy"]
    # 5 models; only the ranker is traced (churn's latest version has no data).
    untraced = sorted(f"{ns}/{name}" for name in twins.cases)
    assert found["coverage"] == {
        "model": {"assets": 5, "traced": 1, "percent": 20.0, "untraced": untraced}
    }

    # The gate: below the floor is exit 1; the rule's severity can be raised.
    gate = steward(catalog, "check", "--min-coverage", "model=50")
    assert gate.exit_code == 1 and "model 20.0% < 50%" in gate.stderr
    assert "model" in gate.stdout and "20.0%" in gate.stdout
    code, raised = check(catalog, "--severity", "untracked_lineage=error")
    assert code == 1
    assert {f["severity"] for f in untracked(raised).values()} == {"error"}
    for wrong, said in (
        (("--min-coverage", "models=50"), "unknown kind 'models'"),
        (("--min-coverage", "model=150"), "not a percentage from 0 to 100"),
        (("--severity", "untracked_lineage=loud"), "unknown level 'loud'"),
        (("--severity", "untracked"), "write RULE=LEVEL"),
    ):
        mistake = steward(catalog, "check", *wrong)
        assert mistake.exit_code == 2 and said in mistake.stderr
        assert len(mistake.stderr.strip().splitlines()) == 1


def test_rescans_read_what_changed(twins: Twins, tmp_path: Path) -> None:
    """A re-scan writes only the new run; an unchanged one writes nothing."""
    root = tmp_path / "store"
    root.mkdir()
    store = Store(root)
    shutil.copy(twins.clean.db, store.db)
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    assert ok(catalog, "scan", store.url, "--json")["runs_written"] == 2
    again = ok(catalog, "scan", store.url, "--json")
    assert again["runs_written"] == 0 and again["summary"]["created"] == 0
    fresh = store.train("churn", data=True)
    later = ok(catalog, "scan", store.url, "--json")
    assert later["runs_written"] == 1
    runs, _ = catalog_rows(catalog)
    assert set(runs) == twins.clean_runs | {fresh}

    engine = create_engine(catalog)
    with engine.connect() as conn:
        marks = run_marks(conn, store.url)
    engine.dispose()
    tables = TableStore(store.db, store.url)
    read = read_tables(tables, marks.since, marks.open_runs)
    everything = read_tables(tables, None, [])
    assert everything.complete and len(everything.runs) == 3
    # Only the runs at the mark or after it are read again.
    assert not read.complete and len(read.runs) < 3
    assert fresh in {r.run_id for r in read.runs}

    # A run deleted since is read again (MLflow keeps its deletion time), and marked so.
    store.client.delete_run(fresh)
    assert ok(catalog, "scan", store.url, "--json")["runs_written"] == 1
    runs, _ = catalog_rows(catalog)
    assert runs[fresh]["facets"]["mlflow_run"]["lifecycleStage"] == "deleted"


SERVER = """
import os, sys
os.environ["_MLFLOW_SERVER_FILE_STORE"] = os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = sys.argv[1]
os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "false"
from mlflow.server import app
from werkzeug.serving import make_server
make_server("127.0.0.1", int(sys.argv[2]), app, threaded=True).serve_forever()
"""


def test_a_tracking_server_gives_the_same_runs_and_findings(twins: Twins, tmp_path: Path) -> None:
    """MLflow's own tracking server over the twin store: read through MLflow's client."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, f"sqlite:///{twins.dirty.db}", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "the MLflow server exited"
                time.sleep(0.2)
        via_server = f"sqlite:///{tmp_path / 'server.db'}"
        scanned = ok(via_server, "scan", f"mlflow://127.0.0.1:{port}", "--json")
        again = ok(via_server, "scan", f"mlflow://127.0.0.1:{port}", "--json")
    finally:
        server.terminate()
        server.wait(timeout=30)
    direct = f"sqlite:///{tmp_path / 'direct.db'}"
    assert scanned["runs_written"] == ok(direct, "scan", twins.dirty.url, "--json")["runs_written"]
    assert again["runs_written"] == 0
    server_runs, server_ios = catalog_rows(via_server)
    direct_runs, direct_ios = catalog_rows(direct)
    assert set(server_runs) == set(direct_runs)
    for run_id, row in direct_runs.items():
        theirs = server_runs[run_id]
        assert (theirs["state"], theirs["started_at"], theirs["ended_at"]) == (
            row["state"],
            row["started_at"],
            row["ended_at"],
        )
        mine, seen = row["facets"]["mlflow_run"], theirs["facets"]["mlflow_run"]
        assert {k: (v, seen.get(k)) for k, v in mine.items() if seen.get(k) != v} == {}
        namespace = f"mlflow://127.0.0.1:{port}"
        assert [
            (u.replace(namespace, twins.dirty.url), d, f) for u, d, f in server_ios.get(run_id, [])
        ] == direct_ios.get(run_id, [])
    _, by_server = check(via_server)
    _, by_store = check(direct)
    assert {k[0].rsplit("/", 1)[1] for k in untracked(by_server)} == set(twins.cases)
    assert by_server["coverage"]["model"]["percent"] == by_store["coverage"]["model"]["percent"]
