"""Real MLflow registries (a file store and a SQLite store) built with MLflow's client, scanned."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from catalog.cli import cli
from catalog.identity import AssetKey
from connectors.mlflow.mapping import (
    DatasetInput,
    ModelInfo,
    RunInfo,
    VersionInfo,
    dataset_key,
    embedding,
    feature_sets,
    model_spec,
    model_specs,
    signature_fields,
)

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed: '.[mlflow]'")

import pandas as pd  # noqa: E402
from mlflow.data.dataset_source import DatasetSource  # noqa: E402
from mlflow.models.signature import ModelSignature  # noqa: E402
from mlflow.types.schema import ColSpec, Schema  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # MLflow's own advice while the test builds registries (no input examples, etc.)
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

EVENTS = "postgres://db.internal:5432/shop.public.events"
CLICKS = "count(*) FILTER (WHERE kind = 'click')"
FEATURES = f"""
[entities.user_id]
join_keys = ["user_id"]

[feature_sets.user_activity]
entities = ["user_id"]
source = "{EVENTS}"

[feature_sets.user_activity.features.clicks_7d]
dtype = "int64"
offline = "{CLICKS}"
online = "{CLICKS}"

[feature_sets.user_activity.features.country]
dtype = "string"
offline = "coalesce(country, 'unknown')"
online = "coalesce(country, 'unknown')"
"""


class TableSource(DatasetSource):
    """A dataset source naming a database table by URI (MLflow has none built in)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @staticmethod
    def _get_source_type() -> str:
        return "table"

    def load(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> TableSource:
        return cls(str(raw_source))

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> TableSource:
        return cls(source_dict["uri"])


class Churn(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input.iloc[:, 0] * 0.0


def signature(*inputs: tuple[str, str]) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec(kind, name) for name, kind in inputs]),
        outputs=Schema([ColSpec("double", "churn_probability")]),
    )


CHURN_INPUTS = (("clicks_7d", "long"), ("country", "string"))


class Registry:
    """An MLflow registry in a temp dir, written with MLflow's own client."""

    def __init__(self, backend: str, root: Path, features: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.features = root, features
        if backend == "file":
            self.tracking_uri = (root / "mlruns").as_uri()
            self.url = f"mlflow+file://{root / 'mlruns'}"
        else:
            self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
            self.url = f"mlflow+sqlite://{root / 'mlflow.db'}"
        self.namespace = self.url
        self.client = mlflow.MlflowClient(self.tracking_uri, self.tracking_uri)
        self.experiments: dict[str, str] = {}

    def store_bytes(self) -> dict[str, bytes]:
        """Every file of the store (the registry, not the artifacts), by path."""
        base = self.root / ("mlruns" if self.url.startswith("mlflow+file") else "mlflow.db")
        files = sorted(base.rglob("*")) if base.is_dir() else [base]
        return {str(p): p.read_bytes() for p in files if p.is_file()}

    def use(self) -> None:
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def experiment(self, name: str) -> str:
        if name not in self.experiments:
            location = (self.root / "artifacts" / name).as_uri()
            self.experiments[name] = self.client.create_experiment(name, location)
        return self.experiments[name]

    def train_churn(self, rows: int, inputs: tuple[tuple[str, str], ...] = CHURN_INPUTS) -> None:
        """A churn training run: a Postgres table for training, a file for evaluation."""
        self.use()
        frame = pd.DataFrame({"clicks_7d": range(rows), "country": ["de"] * rows})
        with mlflow.start_run(experiment_id=self.experiment("churn-training")):
            train = mlflow.data.from_pandas(frame, source=TableSource(EVENTS), name="events")
            mlflow.log_input(train, context="training")
            holdout = mlflow.data.from_pandas(
                frame, source=str(self.root / "holdout.parquet"), name="holdout"
            )
            mlflow.log_input(holdout, context="evaluation")
            mlflow.set_tags(
                {
                    "steward.feature_set_namespace": f"features://{self.features}",
                    "steward.feature_set.user_activity": "1",
                }
            )
            mlflow.log_param("rows", rows)
            mlflow.pyfunc.log_model(
                name="model",
                python_model=Churn(),
                signature=signature(*inputs),
                pip_requirements=[],
                registered_model_name="churn",
            )

    def train_ranker(self) -> None:
        """A ranker: a parquet file, a table named by input tag, an embedding model param."""
        self.use()
        frame = pd.DataFrame({"query": ["a", "b"], "clicked": [1, 0]})
        with mlflow.start_run(experiment_id=self.experiment("search")):
            clicks = mlflow.data.from_pandas(
                frame, source=str(self.root / "clicks.parquet"), name="clicks"
            )
            mlflow.log_input(clicks, context="training")
            queries = mlflow.data.from_pandas(frame, name="queries")
            mlflow.log_input(
                queries,
                context="training",
                tags={"steward.source": "postgresql://db.internal/shop.public.queries"},
            )
            mlflow.set_tag("steward.feature_set", f"features://{self.features}/user_activity@1")
            mlflow.log_param("steward.embedding_model", "all-MiniLM-L6-v2@1")
            mlflow.pyfunc.log_model(
                name="model",
                python_model=Churn(),
                signature=ModelSignature(inputs=Schema([ColSpec("string", "query")])),
                pip_requirements=[],
                registered_model_name="ranker",
            )


@pytest.fixture(scope="module", autouse=True)
def allow_file_store() -> Any:
    """MLflow 3 writes a file store only when asked (steward's scan asks for itself)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        yield


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("features") / "features.toml"
    path.write_text(FEATURES)
    return path


@pytest.fixture(scope="module", params=["file", "sqlite"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, features: Path
) -> Registry:
    reg = Registry(request.param, tmp_path_factory.mktemp(f"mlflow-{request.param}"), features)
    reg.train_churn(3)
    reg.train_churn(4)
    reg.train_ranker()
    reg.client.update_registered_model("churn", description="Churn propensity")
    reg.client.set_registered_model_tag("churn", "team", "growth")
    reg.client.set_registered_model_alias("churn", "champion", "2")
    return reg


def steward(catalog: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)


def ok(catalog: str, *args: str) -> Any:
    result = steward(catalog, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result


def test_scan_rescan_and_new_version(registry: Registry, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    first = ok(catalog, "scan", registry.url, "--json")
    # Two models, and three experiments (MLflow's Default one too) as jobs.
    assert first["summary"] == {"created": 5, "changed": 0, "unchanged": 0, "deleted": 0}
    assert first["runs_written"] == 3
    assert first["warnings"] == []
    assert first["source"] == f"scan {registry.namespace}"

    churn = ok(catalog, "show", f"{registry.namespace}/churn", "--json")
    assert (churn["kind"], churn["namespace"], churn["name"]) == (
        "model",
        registry.namespace,
        "churn",
    )
    assert churn["description"] == "Churn propensity"
    assert [(f["name"], f["type"], f["attributes"]["signature"]) for f in churn["fields"]] == [
        ("clicks_7d", "long", "inputs"),
        ("country", "string", "inputs"),
        ("churn_probability", "double", "outputs"),
    ]
    props = churn["properties"]
    assert props["latest_version"] == 2
    assert [v["version"] for v in props["versions"]] == [1, 2]
    assert all(v["run_id"] for v in props["versions"])
    assert props["run_id"] == props["versions"][1]["run_id"]
    fs_uri = f"features://{registry.features}/user_activity"
    assert props["trained_on"] == {fs_uri: 1}
    holdout = f"file://{registry.root / 'holdout.parquet'}"
    assert {(d["name"], d["context"], d["uri"]) for d in props["datasets"]} == {
        ("events", "training", EVENTS),
        ("holdout", "evaluation", holdout),
    }
    assert sorted((e["uri"], e["kind"]) for e in churn["upstream"]) == sorted(
        [(EVENTS, "trained_on"), (holdout, "evaluated_on"), (fs_uri, "feature_input")]
    )
    # Experiment and run are context on the model's page; aliases are observed.
    observed = churn["observed"]
    assert observed["experiment"]["name"] == "churn-training"
    assert observed["run"]["params"] == {"rows": "4"}
    assert observed["aliases"] == {"champion": 2}
    assert observed["versions"][1]["aliases"] == ["champion"]
    assert observed["tags"] == {"team": "growth"}

    ranker = ok(catalog, "show", f"{registry.namespace}/ranker", "--json")
    assert ranker["properties"]["embedding"] == {
        "origin": "metadata",
        "models": [{"model": "all-MiniLM-L6-v2", "revision": "1"}],
    }
    assert sorted((e["uri"], e["kind"]) for e in ranker["upstream"]) == sorted(
        [
            (f"file://{registry.root / 'clicks.parquet'}", "trained_on"),
            ("postgres://db.internal:5432/shop.public.queries", "trained_on"),
            (fs_uri, "feature_input"),
        ]
    )

    # Unchanged registry: nothing written; an alias move is an observation, not a version.
    registry.client.set_registered_model_alias("churn", "previous", "1")
    before = registry.store_bytes()
    again = ok(catalog, "scan", registry.url, "--json")
    assert again["summary"] == {"created": 0, "changed": 0, "unchanged": 5, "deleted": 0}
    assert again["changes"] == [] and again["runs_written"] == 0
    assert registry.store_bytes() == before  # the scan only reads the registry

    # A model deleted from the registry is marked deleted in the catalog.
    registry.client.create_registered_model("scratch")
    assert ok(catalog, "scan", registry.url, "--json")["summary"]["created"] == 1
    registry.client.delete_registered_model("scratch")
    gone = ok(catalog, "scan", registry.url, "--json")
    assert [(c["uri"], c["action"]) for c in gone["changes"]] == [
        (f"{registry.namespace}/scratch", "delete")
    ]

    # A new model version (with a new input) is a new steward version of the model.
    registry.train_churn(5, (*CHURN_INPUTS, ("tenure_days", "long")))
    plan = ok(catalog, "scan", registry.url, "--plan", "--json")
    assert plan["applied"] is False and plan["summary"]["changed"] == 1
    changed = ok(catalog, "scan", registry.url, "--json")
    (change,) = changed["changes"]
    assert (change["uri"], change["action"], change["version"]) == (
        f"{registry.namespace}/churn",
        "update",
        2,
    )
    assert "tenure_days" in json.dumps(change["diff"])
    after = ok(catalog, "show", f"{registry.namespace}/churn", "--json")
    assert after["properties"]["latest_version"] == 3
    assert after["observed"]["run"]["params"] == {"rows": "5"}


def test_planted_skew_and_lineage_through_mlflow(
    registry: Registry, features: Path, tmp_path: Path
) -> None:
    """Trained on user_activity v1; serving now reads v2: flagged through the MLflow path."""
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    assert features.read_text() == FEATURES
    ok(catalog, "scan", str(features))
    ok(catalog, "scan", registry.url)
    check = steward(catalog, "check", "--rule", "feature_definition_skew", "--json")
    assert check.exit_code == 0 and json.loads(check.stdout) == []

    features.write_text(FEATURES.replace("'unknown'", "'??'"))
    try:
        ok(catalog, "scan", str(features))
    finally:
        features.write_text(FEATURES)
    check = steward(catalog, "check", "--rule", "feature_definition_skew", "--json")
    assert check.exit_code == 1, check.output
    model_uri = f"{registry.namespace}/churn"
    fs_uri = f"features://{features}/user_activity"
    found = {tuple(f["assets"]): f for f in json.loads(check.stdout)}
    assert (model_uri, fs_uri) in found
    evidence = found[(model_uri, fs_uri)]["evidence"]
    assert (evidence["trained_on_version"], evidence["serving_version"]) == (1, 2)
    assert evidence["changed_features"] == ["country"]

    upstream = ok(catalog, "lineage", "upstream", model_uri, "--json")
    shown = json.dumps(upstream)
    for uri in (EVENTS, fs_uri, f"file://{registry.root / 'holdout.parquet'}"):
        assert uri in shown
    kinds = {(e["source"], e["kind"]) for e in upstream["edges"]}
    assert (fs_uri, "feature_input") in kinds and (EVENTS, "trained_on") in kinds


def test_embedding_model_tag_binds_the_model(registry: Registry, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    for revision in ("1", "2"):
        ok(
            catalog,
            "models",
            "register",
            "all-MiniLM-L6-v2",
            "--revision",
            revision,
            "--dim",
            "384",
            "--distance",
            "cosine",
        )
    ok(catalog, "models", "use", "all-MiniLM-L6-v2", "2")
    ok(catalog, "scan", registry.url)
    check = steward(catalog, "check", "--rule", "stale_embeddings", "--json")
    assert check.exit_code == 1, check.output
    (finding,) = json.loads(check.stdout)
    assert finding["assets"][0] == f"{registry.namespace}/ranker"
    assert finding["evidence"]["built_with"] == ["all-MiniLM-L6-v2@1"]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assets(catalog: str) -> list[Any]:
    listed: list[Any] = ok(catalog, "assets", "--json")
    return listed


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mlflow+file://{tmp}/nowhere", "no such directory"),
        ("mlflow+file://{tmp}/empty", "not an MLflow file store"),
        ("mlflow+sqlite://{tmp}/nowhere.db", "no such file"),
        ("mlflow+sqlite://{tmp}/other.db", "not an MLflow database"),
        ("mlflow://alice:s3cret@127.0.0.1:{port}", "cannot reach the MLflow server"),
    ],
)
def test_errors_are_one_line_and_apply_nothing(tmp_path: Path, url: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    url = url.format(tmp=tmp_path, port=unused_port())
    result = CliRunner().invoke(cli, ["--catalog", catalog, "scan", url])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "s3cret" not in result.output
    assert assets(catalog) == []
    assert list((tmp_path / "empty").iterdir()) == []  # MLflow created nothing there
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "nowhere.db").exists()


def test_a_server_that_is_not_mlflow(tmp_path: Path) -> None:
    """A real HTTP server answering 404 to everything: one line, nothing applied."""

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        catalog = f"sqlite:///{tmp_path / 'c.db'}"
        url = f"mlflow://bob:hunter2@127.0.0.1:{server.server_address[1]}"
        result = CliRunner().invoke(cli, ["--catalog", catalog, "scan", url])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 2, result.output
    assert "MLflow cannot read the registry" in result.stderr and "404" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.output
    assert assets(catalog) == []


SERVER = """
import os, sys
os.environ["_MLFLOW_SERVER_FILE_STORE"] = os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = sys.argv[1]
os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "false"
from mlflow.server import app
from werkzeug.serving import make_server
make_server("127.0.0.1", int(sys.argv[2]), app, threaded=True).serve_forever()
"""


@pytest.mark.parametrize("registry", ["sqlite"], indirect=True)  # one backend behind it is enough
def test_tracking_server_reads_like_the_store(registry: Registry, tmp_path: Path) -> None:
    """MLflow's own tracking server (its Flask app) over the SQLite store: the same models."""
    port = unused_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, registry.tracking_uri, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # until it listens (MLflow imports slowly), at most 2 minutes
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "the MLflow server exited"
                time.sleep(0.2)
        catalog = f"sqlite:///{tmp_path / 'c.db'}"
        scanned = ok(catalog, "scan", f"mlflow://alice:s3cret@127.0.0.1:{port}", "--json")
        direct = ok(catalog, "scan", registry.url, "--json")
    finally:
        server.terminate()
        server.wait(timeout=30)
    namespace = f"mlflow://127.0.0.1:{port}"
    assert scanned["source"] == f"scan {namespace}" and "s3cret" not in json.dumps(scanned)
    assert scanned["summary"]["created"] == direct["summary"]["created"] >= 2
    via_server = ok(catalog, "show", f"{namespace}/churn", "--json")
    via_store = ok(catalog, "show", f"{registry.namespace}/churn", "--json")
    assert via_server["fingerprint"] == via_store["fingerprint"]
    assert via_server["upstream"] == via_store["upstream"] != []


@pytest.mark.parametrize("registry", ["sqlite"], indirect=True)
def test_a_version_without_its_run_is_followed_through_its_logged_model(
    registry: Registry, tmp_path: Path
) -> None:
    """MLflow 3 registers `models:/m-...`; a version whose run id is not kept still has lineage."""
    db = tmp_path / "mlflow.db"
    db.write_bytes((registry.root / "mlflow.db").read_bytes())
    with sqlite3.connect(db) as conn:  # as a client that registered without linking the run
        (source, run_id) = conn.execute(
            "SELECT source, run_id FROM model_versions WHERE name = 'ranker'"
        ).fetchone()
        conn.execute("UPDATE model_versions SET run_id = NULL WHERE name = 'ranker'")
    assert source.startswith("models:/m-")
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    assert ok(catalog, "scan", f"mlflow+sqlite://{db}", "--json")["warnings"] == []
    ranker = ok(catalog, "show", f"mlflow+sqlite://{db}/ranker", "--json")
    assert ranker["properties"]["run_id"] == run_id
    assert len(ranker["upstream"]) == 3
    assert [f["name"] for f in ranker["fields"]] == ["query"]  # its MLmodel, found too


def test_missing_extra_names_it(tmp_path: Path) -> None:
    """Without MLflow installed (simulated by blocking its import), the error names the extra."""
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from catalog.cli import main\n"
        f"sys.argv = ['steward', '--catalog', 'sqlite:///{tmp_path / 'c.db'}', 'scan',"
        f" 'mlflow+file://{tmp_path}']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert "pip install 'ai-steward[mlflow]'" in result.stderr


# -- the pure mapping, without a registry ------------------------------------------------


def test_dataset_keys_meet_the_other_connectors() -> None:
    assert dataset_key("local", '{"uri": "/data/x.parquet"}', {}) == AssetKey(
        "file", "/data/x.parquet"
    )
    assert dataset_key("local", '{"uri": "file:///data/x.parquet"}', {}) == AssetKey(
        "file", "/data/x.parquet"
    )
    assert dataset_key("table", '{"uri": "postgresql://u:pw@DB:5432/shop.public.t"}', {}) == (
        AssetKey("postgres://db:5432", "shop.public.t")
    )
    assert dataset_key("s3", '{"uri": "s3://bucket/k/part.parquet"}', {}) == AssetKey(
        "s3://bucket", "k/part.parquet"
    )
    tagged = {"steward.source": "postgres://db/shop.public.q"}
    assert dataset_key("code", "{}", tagged) == AssetKey("postgres://db:5432", "shop.public.q")
    for source in ('{"uri": "data/x.csv"}', '{"tags": {}}', '{"table_name": "a.b"}', "nonsense"):
        assert dataset_key("spark", source, {}) is None


def test_feature_set_tags_and_their_mistakes() -> None:
    run = RunInfo(
        run_id="r",
        tags={
            "steward.feature_set": "feast://shop/a@2, features:///x/f.toml/b@1",
            "steward.feature_set_namespace": "features:///x/f.toml",
            "steward.feature_set.c": "3",
            "steward.feature_set.d": "zero",
            "steward.feature_set.e": "feast://shop/e@0",
        },
        params={"steward.feature_set.c": "9", "steward.embedding_model": "m@r1"},
    )
    warnings: list[str] = []
    found = {k.uri: v for k, v in feature_sets(run, warnings, "m v1").items()}
    assert found == {
        "feast://shop/a": 2,
        "features:///x/f.toml/b": 1,
        "features:///x/f.toml/c": 3,  # the tag wins over the param
    }
    assert len(warnings) == 2 and all("m v1" in w and "ignored" in w for w in warnings)
    assert embedding(run, warnings, "m v1") == {
        "origin": "metadata",
        "models": [{"model": "m", "revision": "r1"}],
    }
    lonely = RunInfo(run_id="r", tags={"steward.feature_set.c": "3"})
    assert feature_sets(lonely, warnings, "m v1") == {}
    assert "steward.feature_set_namespace" in warnings[-1]


def test_signature_fields_name_every_spec_once() -> None:
    tensor = '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'
    fields = signature_fields(
        {
            "inputs": '[{"type": "long", "name": "x", "required": false}]',
            "outputs": '[{"type": "double", "name": "x"}, {"type": "string"}]',
            "params": '[{"name": "k", "type": "long", "default": 5, "shape": null}]',
        }
    )
    assert [(f.name, f.type, f.nullable, f.attributes["signature"]) for f in fields] == [
        ("x", "long", True, "inputs"),
        ("output.x", "double", False, "outputs"),
        ("output_1", "string", False, "outputs"),
        ("k", "long", True, "params"),
    ]
    assert fields[3].default == "5"
    (only,) = signature_fields({"inputs": tensor, "outputs": None})
    assert (only.name, only.type, only.attributes["shape"]) == (
        "input",
        "tensor(float32, [-1, 4])",
        [-1, 4],
    )


def test_latest_ready_version_defines_the_model() -> None:
    versions = [VersionInfo(1), VersionInfo(2), VersionInfo(3, status="FAILED_REGISTRATION")]
    model = ModelInfo(name="m", versions=versions, aliases={"champion": 1})
    spec = model_spec("mlflow://h:5000", model, [])
    assert spec.properties["latest_version"] == 2
    assert [v["version"] for v in spec.properties["versions"]] == [1, 2, 3]
    assert spec.observed["versions"][0]["aliases"] == ["champion"]
    moved = model_spec("mlflow://h:5000", ModelInfo(name="m", versions=versions), [])
    assert moved.definition() == spec.definition()  # an alias is not a version


def test_logged_datasets_without_a_location_are_assets_of_the_registry() -> None:
    iris = DatasetInput.logged(
        "iris-train",
        "1f1c13b5",
        "code",
        '{"uri": "sklearn.datasets.load_iris"}',
        '{"mlflow_colspec": [{"type": "double", "name": "x", "required": true},'
        ' {"type": "long", "name": "y", "required": false}]}',
        '{"num_rows": 120, "num_elements": 240}',
        tags={"mlflow.data.context": "training"},
    )
    events = DatasetInput.logged(
        "events",
        "aa",
        "table",
        '{"uri": "postgres://db/shop.public.events"}',
        None,
        None,
        tags={"mlflow.data.context": "eval"},
    )
    run = RunInfo(run_id="r", inputs=[iris, events])
    models = [ModelInfo(n, versions=[VersionInfo(1, run_id="r")], run=run) for n in ("b", "a")]
    specs = {s.uri: s for s in model_specs("mlflow://h:5000", models, [])}
    dataset_uri = "mlflow://h:5000/datasets/iris-train@1f1c13b5"
    # One asset for the two models; the table is the PostgreSQL connector's, an edge only.
    assert list(specs) == ["mlflow://h:5000/b", "mlflow://h:5000/a", dataset_uri]
    iris_spec = specs[dataset_uri]
    assert iris_spec.kind == "dataset"
    assert [(f.name, f.type, f.nullable) for f in iris_spec.fields] == [
        ("x", "double", False),
        ("y", "long", True),
    ]
    assert iris_spec.observed["profile"] == {"num_rows": 120, "num_elements": 240}
    assert iris_spec.properties["source"] == {"uri": "sklearn.datasets.load_iris"}
    assert {(e.source.uri, e.kind) for e in specs["mlflow://h:5000/a"].edges} == {
        (dataset_uri, "trained_on"),
        ("postgres://db:5432/shop.public.events", "evaluated_on"),
    }
    # What MLflow profiled is observed: another row count is not another version.
    recounted = DatasetInput.logged(
        *("iris-train", "1f1c13b5", "code", iris.source, iris.schema, '{"num_rows": 7}'),
        tags={},
    )
    model = ModelInfo("a", run=RunInfo("r", inputs=[recounted]))
    again = model_specs("mlflow://h:5000", [model], [])
    assert again[-1].definition() == iris_spec.definition()
