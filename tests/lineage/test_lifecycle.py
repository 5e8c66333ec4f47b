"""`lifecycleStateChange` projected: a DROP marks the dataset deleted and its readers at
risk; a RENAME ties the previous name to the new one.

The DROP and RENAME events are the Spark integration's own expected events
(tests/fixtures/external/openlineage/expected/spark), completed with what the
integration tests leave out (run id, event time, producer).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any
from uuid import uuid4

from click.testing import CliRunner

from catalog.cli import cli
from catalog.db import Store
from lineage.findings import check
from lineage.ingest import Ingester
from lineage.openlineage import loads
from tests.conftest import FIXTURES

SPARK = FIXTURES / "openlineage" / "expected" / "spark"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
DROPPED = "file:///tmp/drop_test/drop_table_test"
OLD = "file:///tmp/alter_test/alter_table_test"
NEW = "file:///tmp/alter_test/alter_table_test_new"
_clock = count()


def complete(event: dict[str, Any], job: str | None = None) -> str:
    """An expected event as a producer sends it: with run, time and producer."""
    event = {
        "eventType": "COMPLETE",
        "inputs": [],
        "outputs": [],
        **event,
        "eventTime": datetime(2026, 11, 30, 8, next(_clock), tzinfo=UTC).isoformat(),
        "run": {"runId": str(uuid4())},
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    event["job"] = {"namespace": "spark", "name": job or event["job"].get("name", "job")}
    return json.dumps(event)


def spark(name: str, job: str | None = None) -> str:
    return complete(json.loads((SPARK / name).read_text()), job)


def reads(path: str, job: str, writes: str | None = None) -> str:
    outputs = [{"namespace": "file", "name": writes}] if writes else []
    return complete(
        {"inputs": [{"namespace": "file", "name": path}], "outputs": outputs, "job": {}}, job
    )


def writes(path: str, job: str) -> str:
    schema = {"fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}]}
    dataset = {"namespace": "file", "name": path, "facets": {"schema": schema}}
    return complete({"outputs": [dataset], "job": {}}, job)


def ingest(store: Store, *bodies: str) -> None:
    for body in bodies:
        (result,) = Ingester(store).ingest([(body, loads(body), None)])
        assert result.status == "accepted", result.error


def steward(url: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--catalog", url, *args])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def _dropped_findings(store: Store) -> list[Any]:
    return [f for f in check(store) if f.rule == "dropped_dataset_read"]


def test_a_drop_marks_the_dataset_deleted_and_its_readers_at_risk(
    store: Store, catalog_url: str
) -> None:
    path = "/tmp/drop_test/drop_table_test"
    ingest(store, writes(path, "make_table"), reads(path, "report", writes="/tmp/report"))
    ingest(store, spark("pysparkDropTableEvent.json", "drop_table"))
    shown = steward(catalog_url, "show", "--json", DROPPED)
    assert shown["deleted"] is True
    (finding,) = _dropped_findings(store)
    assert finding.severity == "error"
    assert finding.evidence["readers"] == ["job:spark/report"]
    assert "file:///tmp/report" in {r["uri"] for r in finding.at_risk}


def test_without_a_drop_the_dataset_is_live_and_nothing_is_at_risk(
    store: Store, catalog_url: str
) -> None:
    """The twin: the same writer and reader, no DROP."""
    path = "/tmp/drop_test/drop_table_test"
    ingest(store, writes(path, "make_table"), reads(path, "report", writes="/tmp/report"))
    assert steward(catalog_url, "show", "--json", DROPPED)["deleted"] is False
    assert _dropped_findings(store) == []


def test_a_table_recreated_after_its_drop_is_live_again(store: Store, catalog_url: str) -> None:
    path = "/tmp/drop_test/drop_table_test"
    ingest(store, writes(path, "make_table"), reads(path, "report"))
    ingest(store, spark("pysparkDropTableEvent.json", "drop_table"))
    ingest(store, writes(path, "make_table"))
    assert steward(catalog_url, "show", "--json", DROPPED)["deleted"] is False
    assert _dropped_findings(store) == []


def test_a_file_that_drops_then_writes_a_table_leaves_it_live(
    store: Store, catalog_url: str, tmp_path: Path
) -> None:
    """One event a chunk, as a file ingest carries the rows it read from chunk to chunk:
    the DROP's chunk marks the table deleted, the next one's write brings it back."""
    path = "/tmp/drop_test/drop_table_test"
    events = tmp_path / "events.ndjson"
    bodies = [
        writes(path, "make_table"),
        reads(path, "report"),
        spark("pysparkDropTableEvent.json", "drop_table"),
        reads(path, "report"),
        writes(path, "make_table"),
        reads(path, "report"),
    ]
    events.write_text("\n".join(bodies))
    assert Ingester(store, chunk_size=1).ingest_path(str(events)).accepted == len(bodies)
    assert steward(catalog_url, "show", "--json", DROPPED)["deleted"] is False
    assert _dropped_findings(store) == []


def test_a_rename_ties_the_previous_name_to_the_new_one(store: Store, catalog_url: str) -> None:
    ingest(store, writes("/tmp/alter_test/alter_table_test", "make_table"))
    ingest(store, reads("/tmp/alter_test/alter_table_test", "report"))
    ingest(store, spark("pysparkAlterTableRenameEnd.json", "rename_table"))
    shown = steward(catalog_url, "show", "--json", NEW)
    assert shown["uri"] == NEW
    assert OLD in shown["aliases"]
    # The old name's lineage is the new name's: what read it reads the renamed table.
    assert "job:spark/report" in {e["uri"] for e in shown["downstream"]}
    assert steward(catalog_url, "show", "--json", OLD)["uri"] == NEW
    datasets = [a["uri"] for a in steward(catalog_url, "assets", "--json") if a["kind"] != "job"]
    assert OLD not in datasets


def test_a_new_name_without_a_rename_is_another_asset(store: Store, catalog_url: str) -> None:
    """The twin: the new name written without `lifecycleStateChange` is a table of its own."""
    ingest(store, writes("/tmp/alter_test/alter_table_test", "make_table"))
    ingest(store, writes("/tmp/alter_test/alter_table_test_new", "make_table_new"))
    datasets = {a["uri"] for a in steward(catalog_url, "assets", "--json") if a["kind"] != "job"}
    assert {OLD, NEW} <= datasets
