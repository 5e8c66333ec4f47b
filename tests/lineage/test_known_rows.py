"""A file ingest keeps the asset rows of its chunks for the next ones only while nothing
else writes to the catalog: a write between two chunks, from another process or from
this one, is seen by the next chunk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset
from openlineage.client.serde import Serde
from sqlalchemy import text

from catalog.apply import apply
from catalog.db import Store
from catalog.specs import AssetSpec, FieldSpec
from lineage.chunk import AssetRow, KnownRows
from lineage.ingest import Ingester, Result

NS = "postgres://db.internal:5432"
NAME = "shop.public.orders"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _event(job: str, when: datetime) -> str:
    """A dbt model `job` that read the orders table (as its schema facet says) and wrote its own."""
    fields = [schema_dataset.SchemaDatasetFacetFields(name="id", type="integer")]
    facets = {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=when.isoformat(),
        run=Run(runId=str(uuid4())),
        job=Job(namespace="dbt", name=job),
        producer=PRODUCER,
        inputs=[InputDataset(namespace=NS, name=NAME, facets=facets)],
        outputs=[OutputDataset(namespace=NS, name=f"shop.public.{job}", facets=facets)],
    )
    return str(Serde.to_json(event))


def _input_versions(store: Store) -> dict[str, int]:
    """Each job's run: the version of the orders table it read, as the catalog links it."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT j.name, v.version FROM run r JOIN asset j ON j.id = r.job_id"
                " JOIN run_dataset l ON l.run_id = r.id JOIN asset_version v ON v.id = l.version_id"
                " JOIN asset d ON d.id = l.asset_id WHERE d.name = :name AND l.direction = 'input'"
            ),
            {"name": NAME},
        )
        return {name: version for name, version in rows}


@pytest.mark.parametrize("writer", ["another connection", "the same store"])
def test_a_scan_between_two_chunks_is_seen_by_the_next(
    store: Store, catalog_url: str, tmp_path: Path, writer: str
) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text(_event("first", T0) + "\n" + _event("second", T0 + timedelta(hours=1)) + "\n")
    other = Store(catalog_url) if writer == "another connection" else store
    scanned = AssetSpec(
        namespace=NS,
        name=NAME,
        kind="table",
        fields=[FieldSpec(name="id", type="integer"), FieldSpec(name="total", type="numeric")],
    )

    def between(result: Result, _source: str | None) -> None:
        if result.status == "accepted" and not seen:
            seen.append(result)
            apply(other, [scanned], origin=f"scan {NS}/shop")  # a column added, between chunks

    seen: list[Result] = []
    summary = Ingester(store, chunk_size=1).ingest_path(str(events), on_result=between)
    if other is not store:
        other.dispose()

    assert summary.accepted == 2
    # The first run read the version its event described; the second, the scan's.
    assert _input_versions(store) == {"first": 1, "second": 2}


def test_without_a_write_between_chunks_each_run_reads_the_version_it_saw(
    store: Store, tmp_path: Path
) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text(
        "\n".join(_event(f"model_{n}", T0 + timedelta(minutes=n)) for n in range(5)) + "\n"
    )
    summary = Ingester(store, chunk_size=2).ingest_path(str(events))
    assert summary.accepted == 5
    assert _input_versions(store) == {f"model_{n}": 1 for n in range(5)}


def _row(uri: str) -> AssetRow:
    return AssetRow(1, "", uri, NS, NAME, "table", 1, "0" * 64, "openlineage")


def test_a_write_on_the_same_connection_between_chunks_forgets_the_rows(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'catalog.db'}")
    known = KnownRows(1 << 20)
    known.enabled = True
    uri = f"{NS}/{NAME}"
    with store.engine.connect() as conn:
        begun = known.begin(conn)
        known.commit(begun, {uri: _row(uri)})
        assert known.begin(conn) is not None and known.rows.get(uri) == _row(uri)
        known.commit(begun, {uri: _row(uri)})
        # Another writer on this very connection: SQLite's data_version cannot tell.
        conn.execute(text("CREATE TABLE scratch (x INTEGER)"))
        conn.execute(text("INSERT INTO scratch VALUES (1)"))
        conn.commit()
        known.begin(conn)
        assert known.rows.get(uri) is None
    store.dispose()


def test_rows_are_kept_only_by_a_file_ingest_on_sqlite(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'catalog.db'}")
    known = KnownRows(1 << 20)  # not enabled: a server's chunks never keep rows
    uri = f"{NS}/{NAME}"
    with store.engine.connect() as conn:
        known.commit(known.begin(conn), {uri: _row(uri)})
        assert known.rows.get(uri) is None
    store.dispose()


def _job_event(inputs: list[str], when: datetime) -> str:
    """A completed run of one job that read `inputs` and wrote `shop.public.daily`."""
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=when.isoformat(),
        run=Run(runId=str(uuid4())),
        job=Job(namespace="dbt", name="daily"),
        producer=PRODUCER,
        inputs=[InputDataset(namespace=NS, name=f"shop.public.{n}") for n in inputs],
        outputs=[OutputDataset(namespace=NS, name="shop.public.daily")],
    )
    return str(Serde.to_json(event))


def test_a_job_versioned_in_one_chunk_is_read_as_it_is_by_the_next(store: Store) -> None:
    """One ingester, one chunk after another: a job reads orders, then orders and items, then
    orders again. Each run's inputs are the job's exactly, so each is a version: a chunk
    that took the job's definition of two chunks before (kept from chunk to chunk) would
    see the third run as no change."""
    ingester = Ingester(store)
    for n, inputs in enumerate((["orders"], ["orders", "items"], ["orders"])):
        body = _job_event(inputs, T0 + timedelta(hours=n))
        (result,) = ingester.ingest([(body, json.loads(body), None)])
        assert result.status == "accepted", result.error
    assert _job_inputs(store) == [
        [f"{NS}/shop.public.orders"],
        [f"{NS}/shop.public.items", f"{NS}/shop.public.orders"],
        [f"{NS}/shop.public.orders"],
    ]


def _job_inputs(store: Store) -> list[list[str]]:
    """The inputs of each version of the job `daily`, in order."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT v.version, v.definition FROM asset_version v JOIN asset a"
                " ON a.id = v.asset_id WHERE a.name = 'daily' AND a.kind = 'job' ORDER BY v.version"
            )
        ).all()
    return [sorted(_definition(d)["properties"]["inputs"]) for _, d in rows]


def _definition(value: object) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]


def test_a_later_chunk_widens_a_job_with_the_inputs_its_kept_definition_names(
    store: Store,
) -> None:
    """A job read orders (chunk one); a running event of it (chunk two) says nothing new,
    and the ingester keeps the job's definition as read. A third chunk's running event
    names items only: the job's new definition reads both, so that chunk needs orders
    too, which none of its events names. The kept definition brings the assets it names
    with it, and the job is versioned whole."""
    ingester = Ingester(store)
    done = json.loads(_job_event(["orders"], T0))
    running = json.loads(_job_event(["orders"], T0 + timedelta(hours=1)))
    running["eventType"] = "RUNNING"
    wider = json.loads(_job_event(["items"], T0 + timedelta(hours=2)))
    wider["eventType"] = "RUNNING"
    for event in (done, running, wider):
        (result,) = ingester.ingest([(json.dumps(event), event, None)])
        assert result.status == "accepted", result.error
    assert len(ingester.projector.job_definitions) == 1  # the third chunk's, kept
    assert _job_inputs(store) == [
        [f"{NS}/shop.public.orders"],
        [f"{NS}/shop.public.items", f"{NS}/shop.public.orders"],
    ]
