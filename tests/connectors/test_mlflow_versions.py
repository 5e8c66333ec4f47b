"""MLflow versions in the wild: the team's MLflow and steward's are rarely the same.

MLflow's quickstart is written by the oldest MLflow the `mlflow` extra allows
(3.0) and by an MLflow 2 (each in an environment of the test's own,
`tests.venvs`) and scanned by steward with its own (the newest) MLflow; a
store written by steward's MLflow is scanned by steward running on the
oldest. Either way the store's bytes and schema revision stay as they were,
the team's MLflow still opens it, and the model's upstream is the dataset its
run logged. (Steward's own MLflow must be 3.x: MLflow 2 cannot read the runs
of a file store MLflow 3 wrote. Stores of MLflow 2 are read by MLflow 3.)
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catalog.cli import cli
from tests.connectors.test_mlflow import Registry
from tests.connectors.test_read_only import files, sha256
from tests.venvs import cached_venv

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed: '.[mlflow]'")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = Path(__file__).with_name("mlflow_quickstart.py")
#: The team's MLflow versions, each with the scikit-learn, pandas and SQLAlchemy of its
#: time: the oldest `ai-steward[mlflow]` allows (pyproject: mlflow-skinny>=3.0), and an
#: MLflow 2 (2.10, before numpy 2) whose stores steward must read too.
OLDEST = "3.0.1"
TEAMS = {
    OLDEST: [
        f"mlflow-skinny=={OLDEST}",
        "scikit-learn==1.6.1",
        "pandas==2.2.3",
        "numpy<2.3",
        "sqlalchemy>=2.0.30,<2.1",
        "alembic>=1.13,<1.16",
    ],
    "2.10.0": [
        "mlflow-skinny==2.10.0",
        "scikit-learn==1.4.2",
        "pandas==2.1.4",
        "numpy<2",
        "sqlalchemy>=2.0.30,<2.1",
        "alembic>=1.13,<1.14",
    ],
}

#: The team's MLflow opens its store again: the registered version, its run, the model.
TEAM_OPENS = """
import json, sys, mlflow
mlflow.set_tracking_uri(sys.argv[1]); mlflow.set_registry_uri(sys.argv[1])
client = mlflow.MlflowClient()
mv = client.get_model_version("tracking-quickstart", "1")
run = client.get_run(mv.run_id)
model = mlflow.sklearn.load_model("models:/tracking-quickstart/1")
print(json.dumps({"run_id": mv.run_id, "params": run.data.params,
                  "classes": [int(c) for c in model.classes_]}))
"""

#: steward on the oldest MLflow: that environment's packages first, steward's own after.
STEWARD_ON_OLDEST = """
import sys
sys.path.insert(0, sys.argv[1])
sys.path.extend(sys.argv[2].split("|"))
import mlflow
assert mlflow.__version__ == sys.argv[3], mlflow.__version__
from catalog.cli import main
sys.argv = ["steward", *sys.argv[4:]]
main()
"""


def team_python(version: str) -> Path:
    """The Python of an environment with this MLflow (and scikit-learn)."""
    return cached_venv(f"mlflow-{version}", TEAMS[version])


@pytest.fixture(scope="session")
def oldest() -> Path:
    """The Python of an environment with the oldest MLflow the extra allows."""
    return team_python(OLDEST)


@pytest.fixture(autouse=True)
def allow_file_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


def revision(db: Path) -> str:
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0])


def team_environment() -> dict[str, str]:
    """The environment without MLflow's settings (MLflow's own calls in this process set
    MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI: the team's MLflow would write there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MLFLOW_ALLOW_FILE_STORE": "true"}


def run(python: Path, *args: str, cwd: Path) -> Any:
    done = subprocess.run(
        [str(python), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=team_environment(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None


def steward(catalog: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def store(backend: str, root: Path) -> tuple[str, str]:
    """(MLflow's tracking URI, steward's URL) of a store under `root`."""
    if backend == "file":
        return (root / "mlruns").as_uri(), f"mlflow+file://{root / 'mlruns'}"
    return f"sqlite:///{root / 'mlflow.db'}", f"mlflow+sqlite://{root / 'mlflow.db'}"


@pytest.mark.parametrize("backend", ["sqlite", "file"])
@pytest.mark.parametrize("version", sorted(TEAMS))
def test_quickstart_by_the_teams_mlflow_scanned_by_stewards(
    version: str, backend: str, tmp_path: Path
) -> None:
    assert mlflow.__version__ != version  # the point: two versions
    python = team_python(version)
    team = tmp_path / "team"
    team.mkdir()
    tracking_uri, url = store(backend, team)
    logged = run(python, str(QUICKSTART), tracking_uri, cwd=team)
    assert logged["mlflow"] == version
    before = files(team)
    db = team / "mlflow.db"
    old_revision = revision(db) if backend == "sqlite" else None

    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    scanned = steward(catalog, "scan", url, "--json")

    # The store is as the team left it: every byte, every file, its schema revision.
    assert files(team) == before
    if backend == "sqlite":
        assert revision(db) == old_revision
    assert scanned["warnings"] == []
    namespace = url
    dataset_uri = f"{namespace}/datasets/iris-train@{logged['dataset']['digest']}"
    model_uri = f"{namespace}/tracking-quickstart"
    assert sorted((c["uri"], c["kind"], c["action"]) for c in scanned["changes"]) == [
        (f"job:{namespace}/experiments/Default", "job", "create"),
        (f"job:{namespace}/experiments/MLflow Quickstart", "job", "create"),
        (dataset_uri, "dataset", "create"),
        (model_uri, "model", "create"),
    ]
    assert scanned["runs_written"] == 1  # the quickstart's run, a run of its experiment
    upstream = steward(catalog, "lineage", "upstream", "tracking-quickstart", "--json")
    assert [(e["source"], e["target"], e["kind"]) for e in upstream["edges"]] == [
        (dataset_uri, model_uri, "trained_on")
    ]
    dataset = steward(catalog, "show", dataset_uri, "--json")
    assert [f["name"] for f in dataset["fields"]] == logged["columns"]
    assert dataset["observed"]["profile"]["num_rows"] == logged["rows"]
    assert dataset["properties"]["source"] == {"uri": "sklearn.datasets.load_iris"}
    model = steward(catalog, "show", model_uri, "--json")
    assert model["properties"]["run_id"] == logged["run_id"]
    assert model["observed"]["run"]["params"]["solver"] == "lbfgs"
    assert [f["name"] for f in model["fields"] if f["attributes"]["signature"] == "inputs"] == [
        c for c in logged["columns"] if c != "target"
    ]

    # An unchanged store: the re-scan writes nothing, to the store or the catalog.
    again = steward(catalog, "scan", url, "--json")
    assert again["summary"] == {"created": 0, "changed": 0, "unchanged": 4, "deleted": 0}
    assert again["changes"] == [] and again["runs_written"] == 0
    assert [v["version"] for v in steward(catalog, "history", model_uri, "--json")] == [1]
    assert files(team) == before

    # The team's MLflow still opens its store and loads the model.
    opened = run(python, "-c", TEAM_OPENS, tracking_uri, cwd=team)
    assert opened["run_id"] == logged["run_id"] and opened["classes"] == [0, 1, 2]
    assert opened["params"]["solver"] == "lbfgs"


@pytest.fixture(scope="module", params=["sqlite", "file"])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A store written by steward's own MLflow (the newest the extra allows)."""
    root = tmp_path_factory.mktemp(f"newest-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        registry = Registry(request.param, root / "team", root / "features.toml")
        registry.train_churn(3)
        registry.train_ranker()
    return registry


def test_a_store_of_stewards_mlflow_scanned_by_steward_on_the_oldest(
    written: Registry, oldest: Path, tmp_path: Path
) -> None:
    """Written by the newest MLflow (steward's), read by steward on the oldest: same assets."""
    registry = written
    before = files(registry.root)
    newest = steward(f"sqlite:///{tmp_path / 'newest.db'}", "scan", registry.url, "--json")

    old_catalog = tmp_path / "oldest.db"
    site = "|".join(
        dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    )
    done = subprocess.run(
        [
            str(oldest),
            "-c",
            STEWARD_ON_OLDEST,
            str(REPO),
            site,
            OLDEST,
            "--catalog",
            f"sqlite:///{old_catalog}",
            "scan",
            registry.url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**team_environment(), "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    on_oldest = json.loads(done.stdout)
    assert files(registry.root) == before
    assert newest["warnings"] == []
    fingerprints = {c["uri"]: c["fingerprint"] for c in newest["changes"]}
    assert {c["uri"]: c["fingerprint"] for c in on_oldest["changes"]} == fingerprints
    assert f"{registry.namespace}/churn" in fingerprints
    assert on_oldest["warnings"] == []


@pytest.mark.parametrize("written", ["sqlite"], indirect=True)
def test_a_store_steward_cannot_read_is_refused_and_left_alone(
    written: Registry, tmp_path: Path
) -> None:
    """A schema without a column steward reads: one line naming both revisions, no change."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(written.root / "mlflow.db", db)
    with sqlite3.connect(db) as conn:  # a future MLflow that renamed a column
        conn.execute("ALTER TABLE runs RENAME COLUMN artifact_uri TO artifact_root")
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
    before = sha256(db)
    result = CliRunner().invoke(
        cli, ["--catalog", f"sqlite:///{tmp_path / 'c.db'}", "scan", f"mlflow+sqlite://{db}"]
    )
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "f00dfeedbeef" in line and "runs.artifact_uri" in line
    assert f"MLflow {mlflow.__version__}" in line and "never migrates" in line
    assert sha256(db) == before and not (tmp_path / "mlflow.db-journal").exists()
    assert revision(db) == "f00dfeedbeef"
