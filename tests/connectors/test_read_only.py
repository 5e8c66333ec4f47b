"""The contract every connector keeps: a scan never changes what it reads.

Each kind of source is built by its real producer, scanned through the CLI
(read, apply, then the vector and feature samples a scan takes), and compared
with itself before: a source made of files by every file and folder (path and
SHA-256), a server by its catalog and its write statistics. Each comparison
is shown able to fail: a write by the producer afterwards changes it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from catalog.cli import cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(root: Path) -> dict[str, str]:
    """Every file and folder under `root`: its SHA-256, or `dir`."""
    return {
        str(p.relative_to(root)): "dir" if p.is_dir() else sha256(p)
        for p in sorted(root.rglob("*"))
    }


def scan(tmp_path: Path, url: str) -> int:
    """Scan through the CLI; how many assets it found."""
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    result = CliRunner().invoke(cli, ["--catalog", catalog, "scan", url, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    return int(summary["created"] + summary["unchanged"])


# -- sources made of files: (folder to watch, URL to scan, a write by its producer) ------------

Source = tuple[Path, str, Callable[[], None]]


def qdrant_local(root: Path) -> Source:
    from qdrant_client import QdrantClient, models

    from tests.connectors.test_qdrant import fill

    path = root / "qdrant"
    client = QdrantClient(path=str(path))
    fill(client)
    client.close()

    def write() -> None:
        client = QdrantClient(path=str(path))
        client.upsert("bare", [models.PointStruct(id=1, vector=[0.5] * 8)])
        client.close()

    return path, f"qdrant+local://{path}", write


def features_file(root: Path) -> Source:
    from tests.connectors.test_mlflow import FEATURES

    path = root / "features"
    path.mkdir(parents=True)
    (path / "features.toml").write_text(FEATURES)

    def write() -> None:
        (path / "features.toml").write_text(FEATURES.replace("'unknown'", "'?'"))

    return path, str(path / "features.toml"), write


def feast_repo(root: Path, template: Path | None = None) -> Source:
    """A copy of the session's applied and materialised Feast repository (`template`,
    the `feast_shop` fixture); the producer's write is a changed definition applied."""
    from tests.connectors.conftest import copy_feast_repo
    from tests.connectors.test_feast import feast_apply

    assert template is not None, "the source fixture passes the feast_shop fixture"
    path = copy_feast_repo(template, root / "repo")

    def write() -> None:
        text = (path / "definitions.py").read_text()
        (path / "definitions.py").write_text(text.replace("days=3650", "days=365"))
        feast_apply(path)

    return path, f"feast://{path}", write


def mlflow_store(backend: str) -> Callable[[Path], Source]:
    def build(root: Path) -> Source:
        pytest.importorskip("mlflow", reason="the mlflow extra is not installed: '.[mlflow]'")
        from tests.connectors.test_mlflow import Registry

        registry = Registry(backend, root / "team", root / "features.toml")
        registry.train_churn(3)
        registry.train_ranker()

        def write() -> None:
            registry.client.set_registered_model_tag("churn", "team", "growth")

        watched = registry.root / ("mlflow.db" if backend == "sqlite" else "mlruns")
        return watched.parent if backend == "sqlite" else watched, registry.url, write

    return build


def mlflow_runs_only(root: Path) -> Source:
    """A file store a team only tracks runs in: no model was ever registered (its
    experiments are jobs, its run a run of one)."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed: '.[mlflow]'")
    import mlflow

    path = root / "mlruns"
    client = mlflow.MlflowClient(path.as_uri())
    run_id = client.create_run(client.create_experiment("tracking")).info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.set_terminated(run_id)

    def write() -> None:
        client.set_tag(run_id, "reviewed", "yes")

    return path, f"mlflow+file://{path}", write


SOURCES: dict[str, Callable[[Path], Source]] = {
    "qdrant-local": qdrant_local,
    "features.toml": features_file,
    "feast-repo": feast_repo,
    "mlflow-file": mlflow_store("file"),
    "mlflow-sqlite": mlflow_store("sqlite"),
    "mlflow-file-runs-only": mlflow_runs_only,
}
#: Sources with nothing steward catalogues (the scan reads, and finds nothing).
EMPTY: frozenset[str] = frozenset()


@pytest.fixture(scope="module", params=sorted(SOURCES))
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Source]:
    """One source, built by its producer (once per module: MLflow's run context reads git)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        build = SOURCES[request.param]
        if request.param == "feast-repo":  # applied once a session, copied here
            build = partial(feast_repo, template=request.getfixturevalue("feast_shop"))
        return request.param, build(tmp_path_factory.mktemp(request.param))


def test_a_scan_leaves_every_file_as_it_was(
    source: tuple[str, Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the producer's write below
    kind, (watched, url, write) = source
    before = files(watched)
    assert (scan(tmp_path, url) == 0) == (kind in EMPTY)
    assert files(watched) == before
    scan(tmp_path, url)  # a re-scan reads again
    assert files(watched) == before
    write()  # the comparison sees a write by the source's own producer
    assert files(watched) != before


@pytest.fixture(scope="module")
def mlflow_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed: '.[mlflow]'")
    watched, _, _ = mlflow_store("sqlite")(tmp_path_factory.mktemp("mlflow-ro"))
    return watched


def test_an_mlflow_sqlite_store_is_opened_read_only(mlflow_sqlite: Path) -> None:
    """The connection steward reads a SQLite store with refuses writes: SQLite's `mode=ro`."""
    from sqlalchemy.exc import OperationalError

    from connectors.mlflow.tables import TableStore

    before = files(mlflow_sqlite)
    tables = TableStore(mlflow_sqlite / "mlflow.db", "the store")
    assert [m.name for m in tables.registered()] == ["churn", "ranker"]
    with tables.engine.connect() as conn, pytest.raises(OperationalError, match="readonly"):
        conn.exec_driver_sql("UPDATE registered_models SET description = 'changed'")
    assert files(mlflow_sqlite) == before


# -- PostgreSQL: its catalog, its contents and its write statistics --------------------------

SHOP = (
    "CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL, country text)",
    "COMMENT ON TABLE customers IS 'People who buy things'",
    "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " customer_id integer REFERENCES customers(id), total numeric(10,2))",
    "CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100",
    "CREATE MATERIALIZED VIEW totals AS SELECT customer_id, sum(total) FROM orders GROUP BY 1",
    "INSERT INTO customers SELECT i, 'c' || i || '@example.com', 'de'"
    " FROM generate_series(1, 50) i",
    "INSERT INTO orders (customer_id, total) SELECT i % 50 + 1, i FROM generate_series(1, 200) i",
)

STATE = {
    "relations": "SELECT c.relname, c.relkind, c.relnatts, c.relhasindex, c.relacl::text,"
    " obj_description(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1",
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default"
    " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "writes": "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd"
    " FROM pg_stat_user_tables ORDER BY 1",
    "contents": "SELECT (SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM customers c),"
    " (SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o)",
    "roles": "SELECT rolname FROM pg_roles ORDER BY 1",
}


def state(database: str) -> dict[str, Any]:
    """The database's catalog, contents and write statistics, as its users see them now."""
    from tests.connectors.pg_helpers import dsn

    with psycopg.connect(dsn(database), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return {name: conn.execute(query).fetchall() for name, query in STATE.items()}


@pytest.fixture
def shop() -> Iterator[str]:
    from tests.connectors.pg_helpers import database

    with database(*SHOP) as name:
        yield name


def settled(database: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state once the server has published every finished session's statistics.

    PostgreSQL publishes a session's counts when it ends or at most a second
    later; asking until two answers agree (or, given `previous`, until one
    differs) waits for that without a fixed sleep.
    """
    last = state(database)
    for _ in range(50):
        time.sleep(0.1)
        now = state(database)
        if (previous is None and now == last) or (previous is not None and now != previous):
            return now
        last = now
    return last


def test_a_postgres_scan_changes_neither_catalog_nor_contents(shop: str, tmp_path: Path) -> None:
    from tests.connectors.pg_helpers import execute
    from tests.pg import database_url

    before = settled(shop)
    scan(tmp_path, database_url(shop, "postgres"))
    scan(tmp_path, database_url(shop, "postgres"))
    assert settled(shop) == before
    execute(shop, "UPDATE customers SET country = 'fr' WHERE id = 1")
    assert settled(shop, before) != before  # the statistics see a write
