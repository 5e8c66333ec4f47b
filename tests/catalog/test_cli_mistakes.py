"""A user's mistakes on any command: one line on stderr, exit code 2, nothing half-written."""

from __future__ import annotations

import json
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.specs import AssetSpec, FieldSpec
from tests.serving import STEWARD, steward_serve


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False)


def one_line_error(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    store = Store(url)
    apply(
        store,
        [
            AssetSpec(
                namespace="postgres://db:5432",
                name="shop.public.orders",
                kind="table",
                fields=[FieldSpec(name="id", type="integer")],
            )
        ],
    )
    store.dispose()
    return url


def test_report_to_a_missing_directory_or_a_full_disk(catalog: str, tmp_path: Path) -> None:
    one_line_error(run(catalog, "report", "-o", "/no/such/dir/r.html"), "/no/such/dir")
    one_line_error(run(catalog, "report", "-o", ""), "empty")
    one_line_error(run(catalog, "report", "-o", str(tmp_path)), "directory")
    one_line_error(run(catalog, "report", "-o", "x" * 300 + ".html"), "too long")
    one_line_error(run(catalog, "report", "-o", "/dev/full"), "/dev/full", "No space")
    assert not any(p.name.startswith(".steward-") for p in tmp_path.iterdir())


def test_a_report_that_cannot_be_finished_leaves_the_last_one(tmp_path: Path) -> None:
    """The file-size limit stops the write halfway: the old report stays whole.

    (An in-memory catalog, so that only the report meets the limit.)
    """
    report = tmp_path / "report.html"
    report.write_text("the last report")

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    done = subprocess.run(
        [STEWARD, "--catalog", "sqlite:///:memory:", "report", "-o", str(report)],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"Error: cannot write {report}: File too large")
    assert "Traceback" not in done.stderr
    assert report.read_text() == "the last report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_stdout_on_a_full_disk_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [STEWARD, "--catalog", "sqlite:///:memory:", "assets", "--json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "No space left on device" in lines[-1]
    assert len(lines) <= 2 and "Traceback" not in done.stderr  # (the note: a new catalog)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["scan", ""], ["source URL is empty"]),
        (["scan", "nosuchdir/"], ["no such directory: nosuchdir/"]),
        (["scan", "nosuch.toml"], ["no such file or directory: nosuch.toml"]),
        (["demo", ""], ["demo directory name is empty"]),
        (["show", ""], ["empty asset reference"]),
    ],
)
def test_empty_and_missing_names(catalog: str, args: list[str], words: list[str]) -> None:
    one_line_error(run(catalog, *args), *words)


def test_a_mistyped_command_is_suggested() -> None:
    result = CliRunner().invoke(cli, ["scna"])
    assert result.exit_code == 2
    assert "Did you mean 'scan'?" in result.stderr
    assert "Did you mean" not in CliRunner().invoke(cli, ["zzzzzz"]).stderr


def test_reading_a_new_catalog_says_so_and_check_refuses_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wrong-dir.db'}"
    listed = run(url, "assets")
    assert listed.exit_code == 0
    assert "is new" in listed.stderr and "holds nothing" in listed.stderr
    # The gate pointed at the wrong catalog is not green.
    one_line_error(run(url, "check"), "holds no assets", "--allow-empty")
    allowed = run(url, "check", "--allow-empty")
    assert allowed.exit_code == 0 and "holds no assets" in allowed.stderr
    assert "holds no assets" in run(url, "findings").stderr


def test_check_on_a_catalog_with_assets_says_nothing_of_it(catalog: str) -> None:
    result = run(catalog, "check", "--fail-on", "error")
    assert result.exit_code == 0 and "note:" not in result.stderr


def test_serve_on_a_busy_port_fails_before_announcing(catalog: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(catalog, "serve", "--port", str(port))
    one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "another --port")
    assert "serving" not in result.stderr


def test_serve_logs_one_line_per_written_batch(catalog: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with steward_serve(catalog, log) as served:
        client = OpenLineageClient(config={"transport": {"type": "http", "url": served.base}})
        run_ = Run(runId="0190d5c4-3f4a-7cd2-8e3a-3c9fd9c5a0a1")
        event = RunEvent(
            eventType=RunState.START,
            eventTime="2024-05-01T10:00:00+00:00",
            run=run_,
            job=Job(namespace="pipelines", name="daily"),
            producer="https://example.com/tests",
        )
        client.emit(event)
        client.emit(event)
        bad = httpx.post(f"{served.base}/api/v1/lineage", json={"eventType": "START"})
        assert bad.status_code in (400, 422)
        # The batch's line is logged once its answer is sent: wait for it (a hang guard).
        deadline = time.monotonic() + 60
        while log.read_text().count("events from") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = log.read_text().splitlines()
    assert lines[0].startswith(f"steward serving {catalog}")
    batches = [line for line in lines if "events from" in line]
    assert batches == [
        "INFO lineage.server: 1 events from 1 requests: 1 accepted, 0 duplicates, 0 rejected",
        "INFO lineage.server: 1 events from 1 requests: 0 accepted, 1 duplicates, 0 rejected",
        "INFO lineage.server: 1 events from 1 requests: 0 accepted, 0 duplicates, 1 rejected",
    ]
    assert json.loads(run(catalog, "assets", "--json").stdout)


# -- input checks ---------------------------------------------------------------------------


def test_ingest_refuses_a_file_that_is_not_json(catalog: str, tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from catalog.models import RawEvent

    config = tmp_path / "steward.toml"
    config.write_text('[steward]\ncatalog = "sqlite:///x.db"\n')
    one_line_error(run(catalog, "ingest", str(config)), "steward.toml: not JSON", "nothing")
    store = Store(catalog)
    with store.session() as session:
        assert session.exec(select(func.count()).select_from(RawEvent)).one()[0] == 0
    store.dispose()


FEATURE_FILE = """
[feature_sets.activity]
entities = ["user_id"]
[feature_sets.activity.features.clicks]
dtype = "{dtype}"
offline = "count(*)"
{online}
"""


def test_feature_files_name_bad_types_and_warn_without_online(catalog: str, tmp_path: Path) -> None:
    features = tmp_path / "features.toml"
    features.write_text(FEATURE_FILE.format(dtype="integer", online='online = "count(*)"'))
    one_line_error(
        run(catalog, "scan", str(features)),
        "features.toml: [feature_sets.activity.features.clicks] 'dtype' 'integer'",
        "did you mean 'int64'?",
    )
    features.write_text(FEATURE_FILE.format(dtype="array<INT64>", online=""))
    result = run(catalog, "scan", str(features))
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "no feature has an 'online' transformation" in (
        result.stderr
    )


def test_a_catalog_given_as_a_path_is_sqlite(catalog: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = catalog.removeprefix("sqlite:///")
    monkeypatch.chdir(Path(path).parent)
    listed = CliRunner().invoke(cli, ["--catalog", Path(path).name, "assets", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [a["name"] for a in json.loads(listed.stdout)] == ["shop.public.orders"]
    in_dir = CliRunner().invoke(cli, ["--catalog", ".", "assets", "--json"])
    assert [a["name"] for a in json.loads(in_dir.stdout)] == ["shop.public.orders"]
    created = CliRunner().invoke(cli, ["--catalog", "sub.db", "init"])
    assert created.exit_code == 0 and (Path(path).parent / "sub.db").is_file()


def test_a_missing_postgresql_catalog_database_says_create_it() -> None:
    from tests.pg import database_url, require_postgres

    require_postgres()
    result = run(database_url("steward_no_such_catalog_db"), "assets")
    one_line_error(
        result, 'database "steward_no_such_catalog_db" does not exist', "create it first"
    )
