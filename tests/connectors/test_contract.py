"""One contract, every connector: found through its entry point, stable identity, a new
version only on change, no credential kept, one-line errors for unreachable sources and
refused keys.

Each connector is run against a real source of its kind (PostgreSQL, Qdrant's local
storage, an MLflow registry, a Feast repository, feature files, OpenML answers in
openml-python's cache, Pinecone's API stand-in), always through the CLI.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import HTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from catalog.cli import cli
from catalog.identity import normalize_namespace
from connectors.registry import available, for_url
from tests.conftest import FIXTURES, REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

SECRET = "Contract-S3cret-" + uuid.uuid4().hex[:8]


@dataclass
class Source:
    """A real source of one connector's kind, and how to change it or fail to reach it."""

    url: str
    change: Callable[[], None]
    #: CLI options of every scan (the credential among them where the source takes one).
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: A URL (and options) that cannot be reached (`NOT_APPLICABLE` says why there is none).
    unreachable: list[str] | None = None
    #: A URL and a wrong key the source refuses.
    wrong_key: list[str] | None = None


#: Checks that do not apply to a connector, and why.
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("openml", "key"): "OpenML's public datasets, tasks and runs are read without a key",
    ("features", "unreachable"): "a local file: a missing one is covered by test_features",
    ("features", "key"): "local files take no key",
    ("mlflow", "key"): "MLflow stores and open tracking servers take no key here",
    ("feast", "unreachable"): "a local repository: a missing one is covered by test_feast",
    ("feast", "key"): "a local repository takes no key",
}


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- one source per connector ------------------------------------------------------------


def postgres(tmp_path: Path) -> Iterator[Source]:
    from tests.connectors.pg_helpers import database, execute
    from tests.pg import PG_HOST, PG_PORT

    with database(
        "CREATE TABLE t (id int PRIMARY KEY, body text)", prefix="steward_contract"
    ) as db:
        # The server trusts 127.0.0.1: the password is sent, and must be kept nowhere.
        yield Source(
            url=f"postgres://postgres:{SECRET}@{PG_HOST}:{PG_PORT}/{db}",
            change=lambda: execute(db, "ALTER TABLE t ADD COLUMN title text"),
            unreachable=[f"postgres://postgres:{SECRET}@{PG_HOST}:1/{db}"],
            wrong_key=[f"postgres://steward_no_such_role:{SECRET}@{PG_HOST}:{PG_PORT}/{db}"],
        )


def qdrant(tmp_path: Path) -> Iterator[Source]:
    from qdrant_client import QdrantClient, models

    from tests.connectors.test_qdrant import _KeyCheckingQdrant

    path = tmp_path / "qdrant"

    def collection(size: int) -> None:
        client = QdrantClient(path=str(path))
        try:
            if client.collection_exists("docs"):
                client.delete_collection("docs")
            client.create_collection(
                "docs", vectors_config=models.VectorParams(size=size, distance=models.Distance.DOT)
            )
            rows = np.random.default_rng(0).standard_normal((20, size)).tolist()
            client.upsert("docs", [models.PointStruct(id=i, vector=v) for i, v in enumerate(rows)])
        finally:
            client.close()

    collection(4)
    server = HTTPServer(("127.0.0.1", 0), _KeyCheckingQdrant)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield Source(
            url=f"qdrant+local://{path}",
            change=lambda: collection(8),
            args=["--api-key", SECRET],
            unreachable=[f"qdrant://127.0.0.1:{unused_port()}", "--api-key", SECRET],
            wrong_key=[f"qdrant://127.0.0.1:{server.server_address[1]}", "--api-key", SECRET],
        )
    finally:
        server.shutdown()
        server.server_close()


def pinecone(tmp_path: Path) -> Iterator[Source]:
    from tests.connectors.pinecone_standin import PineconeStandIn

    standin = PineconeStandIn(SECRET)
    standin.add_index("docs", 4, tags={"embedding_model": "m", "embedding_revision": "1"})
    standin.upsert("docs", np.random.default_rng(0).standard_normal((20, 4)).tolist())

    def change() -> None:
        standin.indexes["docs"].description["tags"]["embedding_revision"] = "2"

    try:
        yield Source(
            url=standin.url,
            change=change,
            env={"STEWARD_PINECONE_API_KEY": SECRET},
            unreachable=[f"pinecone+http://127.0.0.1:{unused_port()}"],
            wrong_key=[standin.url, "--api-key", "wrong-" + SECRET],
        )
    finally:
        standin.close()
    assert standin.problems == [], standin.problems[:3]


def openml(tmp_path: Path) -> Iterator[Source]:
    cache = tmp_path / "openml-cache"
    shutil.copytree(FIXTURES / "openml", cache)
    description = cache / "org/openml/test/datasets/2/description.xml"

    def change() -> None:
        description.write_text(description.read_text().replace(">Public<", ">CC0<"))

    yield Source(
        url="openml+test://2,t/1",
        change=change,
        args=["--cache-dir", str(cache)],
        # no network here: a dataset that is not cached cannot be reached
        unreachable=["openml+test://999999", "--cache-dir", str(cache)],
    )


def features(tmp_path: Path) -> Iterator[Source]:
    from tests.connectors.test_features import DEFINITIONS

    path = tmp_path / "features.toml"
    path.write_text(DEFINITIONS)
    yield Source(
        url=str(path),
        change=lambda: path.write_text(DEFINITIONS.replace('dtype = "string"', 'dtype = "int64"')),
    )


def mlflow(tmp_path: Path) -> Iterator[Source]:
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    import mlflow as ml
    from mlflow.tracking.context.git_context import GitRunContext

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"

    class Model(ml.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return model_input

    experiment: list[str] = []

    def register() -> None:
        ml.set_tracking_uri(tracking)
        ml.set_registry_uri(tracking)
        if not experiment:  # artifacts in the test's directory, not ./mlruns
            artifacts = (tmp_path / "artifacts").as_uri()
            experiment.append(ml.MlflowClient().create_experiment("contract", artifacts))
        with pytest.MonkeyPatch.context() as patch:
            # the run's git commit is nothing this test is about (and probing for a
            # checkout reads beside a worktree)
            patch.setattr(GitRunContext, "in_context", lambda self: False)
            with ml.start_run(experiment_id=experiment[0]):
                ml.pyfunc.log_model(
                    name="model",
                    python_model=Model(),
                    pip_requirements=[],
                    registered_model_name="contract",
                )

    register()
    yield Source(
        url=f"mlflow+sqlite://{tmp_path / 'mlflow.db'}",
        change=register,
        unreachable=[f"mlflow://127.0.0.1:{unused_port()}"],
    )


def feast(tmp_path: Path, template: Path | None = None) -> Iterator[Source]:
    """A copy of the session's applied Feast repository (`template`, the `feast_shop`
    fixture); a change is a changed definition applied with `feast apply`."""
    from tests.connectors.conftest import copy_feast_repo
    from tests.connectors.test_feast import DEFINITIONS, feast_apply

    assert template is not None, "the source fixture passes the feast_shop fixture"
    repo = copy_feast_repo(template, tmp_path / "repo")

    def change() -> None:
        (repo / "definitions.py").write_text(DEFINITIONS.replace("* 1.0", "* 2.0"))
        feast_apply(repo)

    yield Source(
        url=f"feast://{repo}",
        change=change,
    )


SOURCES: dict[str, Callable[[Path], Iterator[Source]]] = {
    "postgres": postgres,
    "qdrant": qdrant,
    "pinecone": pinecone,
    "openml": openml,
    "features": features,
    "mlflow": mlflow,
    "feast": feast,
}


def declared() -> dict[str, str]:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return dict(tomllib.load(fh)["project"]["entry-points"]["steward.connectors"])


def test_every_declared_connector_has_a_contract_case() -> None:
    assert sorted(SOURCES) == sorted(declared())


def test_the_installed_entry_points_are_the_declared_ones() -> None:
    """The registry finds connectors only through the installed entry points."""
    missing = sorted(set(declared()) - set(available()))
    assert not missing, (
        f"connectors {missing} are declared in pyproject.toml but not installed: "
        "reinstall the project (pip install -e .) so its entry points are current"
    )


@pytest.fixture(params=sorted(SOURCES))
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Source]]:
    check = getattr(request.function, "check", "")
    reason = NOT_APPLICABLE.get((request.param, check))
    if reason:
        pytest.skip(f"{request.param}: {reason}")
    builder = SOURCES[request.param]
    if request.param == "feast":  # applied once a session, copied for each test
        builder = partial(feast, template=request.getfixturevalue("feast_shop"))
    made = builder(tmp_path / "source")
    (tmp_path / "source").mkdir(exist_ok=True)
    yield request.param, next(made)
    for _ in made:  # runs the builder's cleanup
        pass


def scan(catalog: Path, source: Source, *args: str, url: str | None = None) -> Result:
    return CliRunner().invoke(
        cli,
        ["--catalog", f"sqlite:///{catalog}", "scan", url or source.url, *source.args, *args],
        env=source.env,
    )


def summary(result: Result) -> dict[str, int]:
    assert result.exit_code == 0, result.output
    out: dict[str, int] = json.loads(result.stdout)["summary"]
    return out


def test_identity_and_a_version_only_on_change(source: tuple[str, Source], tmp_path: Path) -> None:
    name, src = source
    assert type(for_url(src.url)) is available()[name]  # found through its entry point
    catalog = tmp_path / "c.db"
    first = scan(catalog, src, "--json")
    created = summary(first)["created"]
    assert created > 0
    uris = [c["uri"] for c in json.loads(first.stdout)["changes"]]
    assert len(set(uris)) == len(uris)
    listed = json.loads(
        CliRunner().invoke(cli, ["--catalog", f"sqlite:///{catalog}", "assets", "--json"]).stdout
    )
    for asset in listed:
        if not asset.get("unresolved"):
            assert normalize_namespace(asset["namespace"]) == asset["namespace"]
    assert summary(scan(catalog, src, "--json")) == {
        "created": 0,
        "changed": 0,
        "unchanged": created,
        "deleted": 0,
    }
    src.change()
    changed = summary(scan(catalog, src, "--json"))
    assert changed["changed"] + changed["created"] >= 1
    assert summary(scan(catalog, src, "--json"))["changed"] == 0
    dump = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("c.db"))
    assert SECRET.encode() not in dump


def check(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Names the check a test makes, for `NOT_APPLICABLE`."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        test.check = kind  # type: ignore[attr-defined]
        return test

    return mark


def fails_in_one_line(tmp_path: Path, words: list[str], env: dict[str, str]) -> None:
    """`steward scan WORDS` exits 2 with one line, without the secret, writing no catalog."""
    catalog = tmp_path / "c.db"
    result = CliRunner().invoke(cli, ["--catalog", f"sqlite:///{catalog}", "scan", *words], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert SECRET not in result.output
    assert not catalog.exists()


@check("unreachable")
def test_an_unreachable_source_is_one_line(source: tuple[str, Source], tmp_path: Path) -> None:
    _, src = source
    assert src.unreachable is not None
    fails_in_one_line(tmp_path, src.unreachable, src.env)


@check("key")
def test_a_refused_key_is_one_line(source: tuple[str, Source], tmp_path: Path) -> None:
    _, src = source
    assert src.wrong_key is not None
    fails_in_one_line(tmp_path, src.wrong_key, {})


@pytest.mark.parametrize(
    ("module", "words", "extra"),
    [
        ("pinecone", ["pinecone+http://127.0.0.1:9", "--api-key", "k"], "pinecone"),
        ("openml", ["openml+test://2"], "openml"),
    ],
)
def test_a_missing_extra_is_named(
    module: str, words: list[str], extra: str, tmp_path: Path
) -> None:
    """Without the client library (its import blocked), the error names the extra."""
    import subprocess
    import sys

    argv = ["steward", "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "scan", *words]
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from catalog.cli import main\n"
        f"sys.argv = {argv!r}\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert f"pip install 'ai-steward[{extra}]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.db").exists()
