"""`steward ingest` through click: files, gzip, NDJSON, stdin, directories, FileTransport."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from click.testing import CliRunner
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Dataset, Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset
from openlineage.client.transport.file import FileConfig, FileTransport

from catalog.cli import cli
from tests.conftest import FIXTURES

OL = FIXTURES / "openlineage"
PRODUCER = "https://example.com/steward-tests"


def invoke(db: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, ["--catalog", f"sqlite:///{db}", *args], input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_ingest_a_file_then_again_as_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    code, out, err = invoke(db, "ingest", str(OL / "marquez/open_lineage/event_full.json"))
    assert code == 0 and out == ""
    assert "1 accepted, 0 duplicates, 0 rejected" in err
    code, out, _ = invoke(db, "ingest", "--json", str(OL / "marquez/open_lineage/event_full.json"))
    assert json.loads(out) == {
        "accepted": 0,
        "duplicates": 1,
        "rejected": 0,
        "with_warnings": 1,
        "first_rejections": [],
    }


def test_ingest_gzip_ndjson_from_stdin_and_an_array(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    ndjson = (OL / "normalized/openlineage/expected/dbt/postgres_seed_ol_events.jsonl").read_bytes()
    code, out, _ = invoke(db, "ingest", "--json", "-", stdin=gzip.compress(ndjson))
    assert code == 0 and json.loads(out)["accepted"] == len(ndjson.splitlines())
    array = OL / "expected/dbt/small_result.json"  # a JSON array (of templates: rejected)
    code, out, _ = invoke(db, "ingest", "--json", str(array))
    summary = json.loads(out)
    assert summary["rejected"] == 2 and ": eventTime: " in summary["first_rejections"][0]
    assert count(db, "SELECT count(*) FROM raw_event WHERE status = 'rejected'") == 2


def test_ingest_a_directory_reports_the_first_rejections(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    code, _, err = invoke(db, "ingest", str(OL / "marquez/negative"))
    assert code == 0
    assert "3 accepted, 0 duplicates, 4 rejected" in err
    assert "rejected: " in err and "eventTime" in err
    assert "😂" not in err


def test_ingest_needs_a_path_or_rebuild(tmp_path: Path) -> None:
    code, _, err = invoke(tmp_path / "c.db", "ingest")
    assert code == 2 and err.startswith("Error: give either PATH or --rebuild")
    code, _, err = invoke(tmp_path / "c.db", "ingest", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err


def test_rebuild_from_the_raw_log(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    invoke(db, "ingest", str(OL / "marquez/apples"))
    versions = count(db, "SELECT count(*) FROM asset_version")
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM edge")
    code, out, _ = invoke(db, "ingest", "--rebuild", "--json")
    assert code == 0 and json.loads(out)["accepted"] == 8
    assert count(db, "SELECT count(*) FROM asset_version") == versions
    assert count(db, "SELECT count(*) FROM edge WHERE kind = 'writes'") == 5


def _events(job: str) -> list[RunEvent]:
    run = Run(runId=str(uuid4()))
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="int")]
    )
    inputs = [Dataset(namespace="s3://raw", name="clicks", facets={"schema": schema})]
    outputs = [Dataset(namespace="s3://curated", name="sessions")]
    return [
        RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=run,
            job=Job(namespace="pipelines", name=job),
            producer=PRODUCER,
            inputs=inputs,
            outputs=outputs,
        )
        for state in (RunState.START, RunState.COMPLETE)
    ]


@pytest.mark.parametrize("append", [False, True])
def test_file_transport_output_is_ingested(tmp_path: Path, append: bool) -> None:
    folder = tmp_path / "ol"
    folder.mkdir()
    target = folder / ("events.jsonl" if append else "event")
    client = OpenLineageClient(
        transport=FileTransport(FileConfig(log_file_path=str(target), append=append))
    )
    for event in _events("sessionize"):
        client.emit(event)
    files = sorted(folder.iterdir())
    assert len(files) == (1 if append else 2)
    db = tmp_path / "c.db"
    code, out, _ = invoke(db, "ingest", "--json", str(folder))
    assert code == 0 and json.loads(out)["accepted"] == 2
    assert count(db, "SELECT count(*) FROM run WHERE state = 'COMPLETE'") == 1
    assert count(db, "SELECT count(*) FROM edge WHERE kind IN ('reads', 'writes')") == 2


def test_every_command_has_help() -> None:
    for name in ("ingest", "serve"):
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
    assert "--max-body" in CliRunner().invoke(cli, ["serve", "--help"]).output


def test_chunks_by_size_project_what_one_chunk_does(tmp_path: Path) -> None:
    """--chunk-size bounds memory, not the result: one event a chunk, the same catalog."""
    from benchmarks.load import World
    from tests.lineage.stored import counts, run_states

    events = tmp_path / "events.ndjson"
    World(seed=5, epoch_runs=8).write_ndjson(events, 80)
    one, many = tmp_path / "one.db", tmp_path / "many.db"
    assert invoke(one, "ingest", str(events))[0] == 0
    code, _, err = invoke(many, "ingest", "--chunk-size", "1B", str(events))
    assert code == 0, err
    for url in (f"sqlite:///{one}", f"sqlite:///{many}"):
        assert counts(url)["accepted raw events"] == 80
    assert counts(f"sqlite:///{one}") == counts(f"sqlite:///{many}")
    assert run_states(f"sqlite:///{one}") == run_states(f"sqlite:///{many}")
    code, _, err = invoke(many, "ingest", "--chunk-size", "lots", str(events))
    assert code == 2 and "--chunk-size 'lots' is not a size" in err
