"""Credentials given to steward never come back out: one planted password, every surface.

The password goes everywhere a user can give one: the PostgreSQL source URL
(the local server trusts 127.0.0.1, so it is sent and not checked), an
unreachable PostgreSQL, the Qdrant API key (`--api-key` and
`$STEWARD_QDRANT_API_KEY`) and a Qdrant URL, an MLflow tracking URL, the
catalog URL itself (a PostgreSQL catalog, as option and in the environment),
and OpenLineage events whose namespaces carry `user:PASSWORD@` and
`?password=PASSWORD`. Then every surface is searched for it: the catalog
(SQLite file bytes with its WAL, every column of every table of a PostgreSQL
catalog), stdout and stderr of every command (`--json` too), debug logs
(in process and to a log file), `steward serve`'s log and the report.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import SQLModel

from catalog.cli import cli
from catalog.db import Store
from tests.connectors.pg_helpers import database
from tests.connectors.test_qdrant import filled_storage
from tests.pg import PG_HOST, PG_PORT, PG_USER, temporary_database
from tests.serving import STEWARD, free_port, steward_serve

PASSWORD = "Pl4nted-Pa55w0rd-xyz"
TOKEN = "credentials-test-token"


def events(path: Path) -> Path:
    """OpenLineage events whose namespaces (job, datasets, parent, symlinks, column
    lineage, a data source) carry the password as `user:PASSWORD@` and `?password=`."""
    with_user = f"postgres://reader:{PASSWORD}@db.internal:5432"
    with_query = f"s3://curated?password={PASSWORD}&region=eu"
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2024-06-01T12:00:00Z",
        "producer": "https://example.com/credentials",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {
            "runId": "5a0c7d32-0f0e-4d7e-9a43-3b0e2f1c9d01",
            "facets": {
                "parent": {
                    "run": {"runId": "5a0c7d32-0f0e-4d7e-9a43-3b0e2f1c9d02"},
                    "job": {"namespace": f"airflow://admin:{PASSWORD}@air:8080", "name": "dag"},
                }
            },
        },
        "job": {"namespace": f"spark://spark:7077?password={PASSWORD}", "name": "load"},
        "inputs": [
            {
                "namespace": with_user,
                "name": "shop.public.orders",
                "facets": {
                    "schema": {"fields": [{"name": "id", "type": "int"}]},
                    "symlinks": {
                        "identifiers": [
                            {"namespace": f"hive://u:{PASSWORD}@meta:9083", "name": "orders"}
                        ]
                    },
                    "dataSource": {"name": with_user, "uri": f"{with_user}/shop"},
                },
            }
        ],
        "outputs": [
            {
                "namespace": with_query,
                "name": "orders_clean",
                "facets": {
                    "schema": {"fields": [{"name": "id", "type": "int"}]},
                    "columnLineage": {
                        "fields": {
                            "id": {
                                "inputFields": [
                                    {
                                        "namespace": with_user,
                                        "name": "shop.public.orders",
                                        "field": "id",
                                    }
                                ]
                            }
                        }
                    },
                },
            }
        ],
    }
    path.write_text(json.dumps(event) + "\n", encoding="utf-8")
    return path


class Surfaces:
    """Everything steward printed or logged, and the files it wrote, to search at the end."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.texts: list[tuple[str, str]] = []
        self.files: list[Path] = []

    def invoke(self, *args: str, env: dict[str, str] | None = None, codes: Any = (0,)) -> str:
        """`steward ARGS` in process (click's runner); its stdout."""
        result = CliRunner().invoke(cli, list(args), env=env)
        assert result.exit_code in codes, (args, result.output, result.exception)
        self.texts.append((" ".join(args), result.stdout + result.stderr))
        return result.stdout

    def run(
        self, log: Path, *args: str, env: dict[str, str] | None = None, codes: Any = (0,)
    ) -> str:
        """`steward -vv ARGS` as a process, its debug log on stderr written to `log`."""
        with log.open("ab") as err:
            done = subprocess.run(
                [STEWARD, "-vv", *args],
                stdout=subprocess.PIPE,
                stderr=err,
                env={**os.environ, **(env or {})},
                timeout=120,
            )
        assert done.returncode in codes, (args, log.read_text(errors="replace"))
        self.texts.append((" ".join(args), done.stdout.decode("utf-8", "replace")))
        self.files.append(log)
        return done.stdout.decode("utf-8", "replace")

    def leaks(self) -> list[str]:
        found = [where for where, output in self.texts if PASSWORD in output]
        found += [str(f) for f in self.files if f.exists() and PASSWORD.encode() in f.read_bytes()]
        if PASSWORD in self.caplog.text:
            found.append("the log records of the commands run in process")
        return found


def postgres_catalog_leaks(url: str) -> list[str]:
    """Tables of a PostgreSQL catalog with the password in any column of any row."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM asset")).scalar_one() >= 5
            return [
                table.name
                for table in SQLModel.metadata.sorted_tables
                if conn.execute(
                    text(
                        f'SELECT count(*) FROM "{table.name}" t WHERE row_to_json(t)::text LIKE :p'
                    ),
                    {"p": f"%{PASSWORD}%"},
                ).scalar_one()
            ]
    finally:
        store.dispose()


@pytest.fixture
def qdrant_storage(tmp_path: Path) -> Path:
    return filled_storage(tmp_path)


def exercise(
    surfaces: Surfaces,
    catalog: str,
    source: str,
    qdrant: Path,
    tmp_path: Path,
    log: Path | None = None,
) -> None:
    """Every command that takes or shows credentials, against one catalog; with `log`,
    the scans, the ingest and an error run as processes with their debug log there."""
    env = {"STEWARD_QDRANT_API_KEY": PASSWORD}
    unreachable = f"postgres://{PG_USER}:{PASSWORD}@{PG_HOST}:1/nowhere"
    invoke = surfaces.invoke

    def logged(*args: str, codes: Any = (0,)) -> None:
        if log is None:
            invoke(*args, env=env, codes=codes)
        else:
            surfaces.run(log, *args, env=env, codes=codes)

    invoke("--catalog", catalog, "init")
    invoke("--catalog", catalog, "scan", source, "--plan")
    logged("--catalog", catalog, "scan", source, "--json")
    invoke("--catalog", catalog, "scan", f"qdrant+local://{qdrant}", "--api-key", PASSWORD)
    invoke("--catalog", catalog, "scan", f"qdrant+local://{qdrant}", "--json", env=env)
    logged("--catalog", catalog, "ingest", "--json", str(events(tmp_path / "e.jsonl")))
    invoke("--catalog", catalog, "ingest", "--rebuild")
    for args in (
        ("assets", "--json"),
        ("show", "orders_clean", "--json"),
        ("history", "orders_clean", "--json"),
        ("lineage", "upstream", "orders_clean", "--json"),
        ("lineage", "downstream", "shop.public.orders", "--json"),
        ("findings", "--json"),
    ):
        invoke("--catalog", catalog, *args)
    invoke("--catalog", catalog, "check", "--json", codes=(0, 1))
    report = tmp_path / f"report-{len(surfaces.texts)}.html"
    invoke("--catalog", catalog, "report", "-o", str(report))
    surfaces.files.append(report)
    for args in (
        ("scan", f"qdrant://reader:{PASSWORD}@127.0.0.1:1"),
        ("scan", f"qdrant://127.0.0.1:{free_port()}", "--api-key", PASSWORD),
        ("scan", f"mlflow://reader:{PASSWORD}@127.0.0.1:{free_port()}"),
    ):
        invoke("--catalog", catalog, *args, codes=(2,))
    logged("--catalog", catalog, "scan", unreachable, codes=(2,))


@pytest.mark.slow
def test_a_planted_password_is_in_no_catalog_output_log_or_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, qdrant_storage: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    surfaces = Surfaces(caplog)
    sqlite_catalog = tmp_path / "catalog.db"
    with (
        database("CREATE TABLE orders (id int PRIMARY KEY, total numeric)") as source_db,
        temporary_database("steward_credentials") as catalog_db,
    ):
        source = f"postgres://{PG_USER}:{PASSWORD}@{PG_HOST}:{PG_PORT}/{source_db}"
        pg_catalog = f"postgresql://{PG_USER}:{PASSWORD}@{PG_HOST}:{PG_PORT}/{catalog_db}"
        exercise(surfaces, f"sqlite:///{sqlite_catalog}", source, qdrant_storage, tmp_path)
        exercise(surfaces, pg_catalog, source, qdrant_storage, tmp_path, tmp_path / "debug.log")

        # The catalog URL from the environment, and a catalog that does not answer.
        surfaces.invoke("assets", env={"STEWARD_CATALOG_URL": pg_catalog})
        down = f"postgresql://{PG_USER}:{PASSWORD}@{PG_HOST}:1/{catalog_db}"
        surfaces.invoke("--catalog", down, "assets", codes=(2,))
        surfaces.run(tmp_path / "down.log", "--catalog", down, "assets", codes=(2,))

        # steward serve on the PostgreSQL catalog: events in, the report out, and an
        # MLflow scan with the password pointed at it (a server that is not MLflow).
        with steward_serve(
            pg_catalog, tmp_path / "serve.log", token=TOKEN, root=("-vv",)
        ) as server:
            body = (tmp_path / "e.jsonl").read_bytes().replace(b"9d01", b"9d09")  # a new run
            headers = {"Authorization": f"Bearer {TOKEN}"}
            posted = httpx.post(f"{server.base}/api/v1/lineage", content=body, headers=headers)
            assert posted.json()["status"] == "accepted"
            surfaces.texts.append(("POST /api/v1/lineage", posted.text))
            page = httpx.get(f"{server.base}/", headers=headers, timeout=60)
            assert page.status_code == 200 and "orders_clean" in page.text
            surfaces.texts.append(("GET /", page.text))
            mlflow = f"mlflow://reader:{PASSWORD}@127.0.0.1:{server.port}"
            surfaces.invoke("--catalog", f"sqlite:///{sqlite_catalog}", "scan", mlflow, codes=(2,))
        surfaces.files.append(server.log)

        assert postgres_catalog_leaks(pg_catalog) == []
    catalog_files = sorted(tmp_path.glob("catalog.db*"))
    assert catalog_files and all(PASSWORD.encode() not in f.read_bytes() for f in catalog_files)
    assert surfaces.leaks() == []
    # ... and the runs did see the password and produce output worth searching.
    outputs = "\n".join(out for _, out in surfaces.texts)
    assert "orders_clean" in outputs and "Error: cannot reach Qdrant" in outputs
    assert "Error: cannot connect to postgres://" in (tmp_path / "debug.log").read_text()
