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

The commands run as processes are forked from one that has imported steward
(`tests/forked.py`): each is a process of its own that starts with nothing
of another command's state, without paying for the imports each time.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import SQLModel

from catalog.cli import cli
from catalog.db import Store
from tests.connectors.pg_helpers import database
from tests.connectors.test_qdrant import filled_storage
from tests.forked import Forks
from tests.lineage.stored import raw_bodies
from tests.pg import PG_HOST, PG_PORT, PG_USER, temporary_database
from tests.serving import free_port, steward_serve

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

    def __init__(self, caplog: pytest.LogCaptureFixture, forks: Forks) -> None:
        self.caplog = caplog
        self.forks = forks
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
        done = self.forks.run(["-vv", *args], env={**os.environ, **(env or {})}, stderr=log)
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


@pytest.fixture(scope="module")
def forks() -> Iterator[Forks]:
    """Every `steward` process of these tests, forked from one that imported steward."""
    with Forks() as started:
        yield started


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
    tmp_path: Path, caplog: pytest.LogCaptureFixture, qdrant_storage: Path, forks: Forks
) -> None:
    caplog.set_level(logging.DEBUG)
    surfaces = Surfaces(caplog, forks)
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
    logged = "\n".join(raw_bodies(f"sqlite:///{sqlite_catalog}"))
    assert "orders_clean" in logged and PASSWORD not in logged
    assert surfaces.leaks() == []
    # ... and the runs did see the password and produce output worth searching.
    outputs = "\n".join(out for _, out in surfaces.texts)
    assert "orders_clean" in outputs and "Error: cannot reach Qdrant" in outputs
    assert "Error: cannot connect to postgres://" in (tmp_path / "debug.log").read_text()


# -- secrets in every encoding --------------------------------------------------------------

#: One marker per shape, so a leak says which shape got through.
SHAPES = {
    "escaped-at": "Esc4pedAt-111",
    "escaped-equals": "Esc4pedEq-222",
    "at-in-password": "AtIn@Passw-333",
    "slash-in-password": "Slash/Passw-444",
    "query-hash-in-password": "Qu?ery#Passw-555",
    "key-param": "KeyParam-666",
    "sig-param": "SigParam-777",
    "amz-signature": "AmzSig-888",
    "aws-env": "AwsEnv-999",
    "password-member": "PwMember-aaa",
    "password-in-json-text": "PwJsonText-bbb",
    "escaped-member-name": "EscMember-ccc",
    "bearer": "BearerTok-ddd",
    "rejected-event": "Rejected-eee",
    "not-json": "NotJson-fff",
}


def _marker_tail(marker: str) -> str:
    """The part of a marker after any @ / ? #: what a half-masked URL would show."""
    for sep in "@/?#":
        marker = marker.rsplit(sep, 1)[-1]
    return marker


def encoded_events(tag: str) -> tuple[bytes, bytes, bytes]:
    """(a valid event, an event rejected for its time, a body that is not JSON), with
    every shape planted, some behind JSON escapes (`\\u0040`, `\\u003d`, `\\u0061`)."""
    s = SHAPES
    value = {
        "eventType": "COMPLETE",
        "eventTime": "2024-06-01T12:00:00Z",
        "producer": "https://example.com/encodings",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {
            "runId": str(uuid5(NAMESPACE_URL, tag)),
            "facets": {
                "custom_conf": {
                    "_producer": "https://example.com/encodings",
                    "_schemaURL": "https://example.com/custom.json",
                    "spark": f"spark.hadoop.fs.s3a.access.key=x key={s['key-param']} mode=1",
                    "blob": f"https://acct.blob.core.windows.net/c/f?sv=1&sig={s['sig-param']}",
                    "s3": f"s3://lake/f.parquet?X-Amz-Signature={s['amz-signature']}&X-Amz-Date=1",
                    "env": f"export AWS_SECRET_ACCESS_KEY={s['aws-env']}",
                    "password": s["password-member"],
                    "conf": '{"password": "' + s["password-in-json-text"] + '"}',
                    "PLACEHOLDER_MEMBER": s["escaped-member-name"],
                    "headers": f"Authorization: Bearer {s['bearer']}",
                }
            },
        },
        "job": {"namespace": "encodings", "name": f"load {tag}"},
        "inputs": [
            {
                "namespace": "PLACEHOLDER_AT",
                "name": "shop.public.orders",
                "facets": {
                    "dataSource": {
                        "_producer": "https://example.com/encodings",
                        "_schemaURL": "https://example.com/ds.json",
                        "name": "shop",
                        "uri": "PLACEHOLDER_EQ",
                    }
                },
            },
            {"namespace": f"postgres://u:{s['at-in-password']}@dbat:5432", "name": "a.b.c"},
            {"namespace": f"postgres://u:{s['slash-in-password']}@dbslash:5432", "name": "a.b.c"},
            {
                "namespace": f"postgres://u:{s['query-hash-in-password']}@dbq:5432",
                "name": "a.b.c",
            },
        ],
        "outputs": [{"namespace": "s3://curated", "name": f"encoded {tag}"}],
    }
    text = json.dumps(value)
    at_secret = s["escaped-at"]
    text = text.replace('"PLACEHOLDER_AT"', f'"postgres://user:{at_secret}\\u0040dbhost:5432"')
    eq = s["escaped-equals"]
    text = text.replace('"PLACEHOLDER_EQ"', f'"jdbc:postgresql://dbhost/shop?password\\u003d{eq}"')
    text = text.replace('"PLACEHOLDER_MEMBER"', '"p\\u0061ssword"')
    rejected = dict(json.loads(text), eventTime="not a time")
    rejected["job"] = {"namespace": f"airflow://a:{s['rejected-event']}@air:8080", "name": "j"}
    not_json = f'{{"job": postgres://u:{s["not-json"]}@h:5432 password={s["not-json"]}'
    return text.encode(), json.dumps(rejected).encode(), not_json.encode()


def encoding_leaks(texts: list[tuple[str, str]]) -> list[str]:
    return [
        f"{shape} in {where}"
        for where, text in texts
        for shape, marker in SHAPES.items()
        if marker in text or _marker_tail(marker) in text
    ]


def test_secrets_in_every_encoding_reach_no_surface(tmp_path: Path, forks: Forks) -> None:
    """Every shape, planted in events read from a file, posted singly, in a batch
    and gzipped to a real `steward serve`, replayed by --rebuild: none reaches the
    catalog file, the raw log, any output (with and without --json), the -vv logs,
    the reports, the API's answers or the error messages."""
    catalog = tmp_path / "c.db"
    url = f"sqlite:///{catalog}"
    valid, rejected, not_json = encoded_events("file")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join([valid, rejected, not_json]) + b"\n")
    texts: list[tuple[str, str]] = []

    def run(*args: str, codes: tuple[int, ...] = (0,)) -> str:
        done = forks.run(["-vv", "--catalog", url, *args])
        out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
        assert done.returncode in codes, (args, out[-2000:])
        texts.append((" ".join(args), out))
        return out

    summary = run("ingest", str(events), "--json")
    assert '"accepted": 1' in summary and '"rejected": 2' in summary
    with steward_serve(url, tmp_path / "serve.log", token=TOKEN, root=("-vv",)) as server:
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        with httpx.Client(base_url=server.base, headers=auth, timeout=60) as http:
            one, bad, junk = encoded_events("single")
            for body in (one, bad, junk):
                texts.append(("POST", http.post("/api/v1/lineage", content=body).text))
            batch = b"[" + b",".join(encoded_events("batch")[:2]) + b"]"
            texts.append(("POST batch", http.post("/api/v1/lineage/batch", content=batch).text))
            zipped = gzip.compress(encoded_events("gzip")[0])
            gz = {"Content-Encoding": "gzip"}
            answer = http.post("/api/v1/lineage", content=zipped, headers=gz)
            assert answer.status_code == 201, answer.text
            texts.append(("POST gzip", answer.text))
            for node in (
                "dataset:postgres://dbhost:5432:shop.public.orders",
                "job:encodings:load file",
            ):
                graph = http.get("/api/v1/lineage", params={"nodeId": node, "depth": 3})
                assert graph.status_code == 200, graph.text
                texts.append((f"GET lineage {node}", graph.text))
            page = http.get("/")
            assert page.status_code == 200 and "dbhost" in page.text
            texts.append(("GET /", page.text))
    texts.append(("serve log", server.log.read_text(errors="replace")))
    run("ingest", "--rebuild")
    for args in (
        ("assets",),
        ("assets", "--json"),
        ("show", "shop.public.orders"),
        ("show", "shop.public.orders", "--json"),
        ("show", "encoded file", "--json"),
        ("history", "shop.public.orders", "--json"),
        ("lineage", "downstream", "shop.public.orders"),
        ("lineage", "downstream", "shop.public.orders", "--json"),
    ):
        run(*args)
    run("check", "--json", codes=(0, 1))
    report = tmp_path / "report.html"
    run("report", "-o", str(report))
    texts.append(("report", report.read_text()))
    # Error messages: URLs whose passwords hold @ / ? # [, and secret parameters.
    slash, at = SHAPES["slash-in-password"], SHAPES["at-in-password"]
    for args in (
        ("scan", f"postgres://u:{slash}@127.0.0.1:1/db"),
        ("scan", f"postgres://u:{SHAPES['query-hash-in-password']}@127.0.0.1:1/db"),
        ("scan", f"postgres://u:{at}@[127.0.0.1/db"),
        ("scan", f"mlflow+sqlite:///{tmp_path}/none.db?password={SHAPES['key-param']}"),
        ("scan", f"qdrant://127.0.0.1:1?api_key={SHAPES['sig-param']}"),
        ("scan", f"qdrant://{SHAPES['bearer']}@127.0.0.1:1"),
    ):
        out = run(*args, codes=(2,))
        assert "Error:" in out and "Traceback" not in out, out[-2000:]
    for bad_catalog in (
        f"postgresql://u:{at}@127.0.0.1:1/db",
        f"postgresql://u:{slash}@127.0.0.1:1/db",
    ):
        done = forks.run(["-vv", "--catalog", bad_catalog, "assets"])
        assert done.returncode == 2
        texts.append((f"--catalog {bad_catalog[:12]}", done.stderr.decode("utf-8", "replace")))
    texts.append(("catalog file", catalog.read_bytes().decode("utf-8", "replace")))
    texts.append(("raw log", "\n".join(raw_bodies(url))))
    for extra in tmp_path.glob("c.db-*"):
        texts.append((extra.name, extra.read_bytes().decode("utf-8", "replace")))
    assert encoding_leaks(texts) == []
    # ... and the surfaces did carry the events: hosts, names and masks are there.
    everything = "\n".join(text for _, text in texts)
    assert "dbslash" in everything and "encoded file" in everything and "***" in everything
