"""One asset, many witnesses: a scan and OpenLineage jobs each assert, the catalog merges.

Events are built with the real openlineage-python client's classes and serialised
by its own Serde, as a producer sends them; each case has its clean twin.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    documentation_dataset,
    schema_dataset,
)
from openlineage.client.serde import Serde
from sqlalchemy import text
from sqlmodel import Session, select

from catalog.apply import apply
from catalog.db import Store
from catalog.models import AssetVersion
from catalog.queries import history, resolve, show_asset
from catalog.specs import AssetSpec, FieldSpec
from lineage.findings import check
from lineage.ingest import Ingester
from lineage.openlineage import loads

NS = "postgres://db.internal:5432"
NAME = "shop.public.orders"
URI = f"{NS}/{NAME}"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def schema(*fields: tuple[str, str | None], doc: str | None = None) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=name, type=kind, description=doc)
                for name, kind in fields
            ]
        )
    }
    return facets


def event(
    job: str,
    when: datetime,
    outputs: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
) -> str:
    out = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=when.isoformat(),
        run=Run(runId=str(uuid4())),
        job=Job(namespace="dbt", name=job),
        producer=PRODUCER,
        inputs=[InputDataset(namespace=NS, name=NAME, facets=inputs)] if inputs else [],
        outputs=[OutputDataset(namespace=NS, name=NAME, facets=outputs)] if outputs else [],
    )
    return str(Serde.to_json(out))


def ingest(store: Store, *bodies: str) -> None:
    results = Ingester(store).ingest([(body, loads(body), None) for body in bodies])
    assert [r.status for r in results] == ["accepted"] * len(bodies), results


def scanned(*fields: tuple[str, str]) -> AssetSpec:
    return AssetSpec(
        namespace=NS,
        name=NAME,
        kind="table",
        fields=[FieldSpec(name=n, type=t) for n, t in fields],
        observed={"owner": "shop", "row_count": 12},
    )


def scan(store: Store, *fields: tuple[str, str]) -> None:
    apply(store, [scanned(*fields)], origin=f"scan {NS}/shop")


def state(store: Store) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with Session(store.engine) as session:
        asset = resolve(session, URI)
        return show_asset(session, asset), history(session, asset)


def test_a_scan_after_untyped_events_refines_without_breaking(store: Store) -> None:
    ingest(store, event("orders.run", T0, outputs=schema(("id", None), ("total", None))))
    scan(store, ("id", "integer"), ("total", "numeric"))
    shown, versions = state(store)
    assert shown["kind"] == "table"
    assert [(f["name"], f["type"]) for f in shown["fields"]] == [
        ("id", "integer"),
        ("total", "numeric"),
    ]
    assert [v["diff"]["breaking"] for v in versions] == [False, False]
    assert {s["source"] for s in shown["sources"]} == {
        f"scan {NS}/shop",
        "openlineage dbt/orders.run",
    }


def test_a_real_retype_between_scans_is_still_breaking(store: Store) -> None:
    """The twin: a type changed by the same typed witness breaks."""
    scan(store, ("id", "integer"), ("total", "numeric"))
    scan(store, ("id", "text"), ("total", "numeric"))
    _, versions = state(store)
    assert [v["diff"]["breaking"] for v in versions] == [False, True]


def test_events_after_a_scan_never_retype_or_remove_and_add_no_version(store: Store) -> None:
    scan(store, ("id", "integer"), ("total", "numeric"))
    ingest(store, event("orders.run", T0, outputs=schema(("id", None))))
    ingest(store, event("orders.run", T0 + timedelta(hours=1), outputs=schema(("id", "string"))))
    shown, versions = state(store)
    assert [v["version"] for v in versions] == [1]
    assert [(f["name"], f["type"]) for f in shown["fields"]] == [
        ("id", "integer"),
        ("total", "numeric"),
    ]


def test_event_documentation_enriches_the_scanned_definition(store: Store) -> None:
    scan(store, ("id", "integer"))
    ingest(store, event("orders.run", T0, outputs=schema(("id", None), doc="The order's key.")))
    shown, versions = state(store)
    assert shown["fields"][0]["description"] == "The order's key."
    assert shown["fields"][0]["type"] == "integer"
    assert [v["diff"]["breaking"] for v in versions] == [False, False]


def test_a_rescan_keeps_what_events_observed(store: Store) -> None:
    facets = {
        **schema(("id", None)),
        "documentation": documentation_dataset.DocumentationDatasetFacet(description="Orders."),
        "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[
                data_quality_assertions_dataset.Assertion(
                    assertion="not_null", success=True, column="id"
                )
            ]
        ),
    }
    ingest(store, event("orders.test", T0, inputs=facets))
    scan(store, ("id", "integer"))
    scan(store, ("id", "integer"), ("note", "text"))  # a re-scan with a change
    shown, _ = state(store)
    events = shown["observed"]["openlineage"]
    assert events["documentation"]["description"] == "Orders."
    assert events["dataQualityAssertions"]["assertions"][0]["assertion"] == "not_null"
    assert shown["observed"]["owner"] == "shop"  # and the scan's own observations


def test_a_scan_alone_has_only_its_own_observations(store: Store) -> None:
    """The twin: nothing from events where no event was sent."""
    scan(store, ("id", "integer"))
    shown, _ = state(store)
    assert "openlineage" not in shown["observed"]
    assert [s["source"] for s in shown["sources"]] == [f"scan {NS}/shop"]


def test_a_partial_schema_from_the_same_job_removes_nothing(store: Store) -> None:
    """dbt without `docs generate` lists only documented columns, untyped."""
    typed = schema(("id", "integer"), ("total", "numeric"))
    ingest(store, event("orders.run", T0, outputs=typed))
    ingest(store, event("orders.run", T0 + timedelta(hours=1), outputs=schema(("id", None))))
    shown, versions = state(store)
    assert [(f["name"], f["type"]) for f in shown["fields"]] == [
        ("id", "integer"),
        ("total", "numeric"),
    ]
    assert len(versions) == 1


def test_a_typed_schema_from_the_same_job_does_remove(store: Store) -> None:
    """The twin: a full (typed) schema without a field says it is gone."""
    typed = schema(("id", "integer"), ("total", "numeric"))
    ingest(store, event("orders.run", T0, outputs=typed))
    ingest(store, event("orders.run", T0 + timedelta(hours=1), outputs=schema(("id", "integer"))))
    shown, versions = state(store)
    assert [f["name"] for f in shown["fields"]] == ["id"]
    assert versions[-1]["diff"]["removed"] == [{"name": "total", "type": "numeric"}]
    assert versions[-1]["diff"]["breaking"] is True


def test_two_jobs_each_partial_are_merged(store: Store) -> None:
    ingest(store, event("orders.run", T0, outputs=schema(("id", "integer"))))
    ingest(store, event("report.run", T0, inputs=schema(("id", None), ("total", None))))
    shown, _ = state(store)
    assert [(f["name"], f["type"]) for f in shown["fields"]] == [("id", "integer"), ("total", "")]
    sources = {s["source"]: s for s in shown["sources"]}
    assert set(sources) == {"openlineage dbt/orders.run", "openlineage dbt/report.run"}
    assert sources["openlineage dbt/orders.run"]["asserted_at"] == "2026-11-30T08:00:00Z"


def _three_writers(store: Store, one_chunk: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Job A writes the table with id, total and note; job B writes it the same; A
    then writes it without note. In one chunk, or one event at a time (as `steward
    serve` writes a request)."""
    full = schema(("id", "integer"), ("total", "numeric"), ("note", "text"))
    bodies = [
        event("orders.run", T0, outputs=full),
        event("orders.copy", T0 + timedelta(hours=1), outputs=full),
        event(
            "orders.run",
            T0 + timedelta(hours=2),
            outputs=schema(("id", "integer"), ("total", "numeric")),
        ),
    ]
    if one_chunk:
        ingest(store, *bodies)
    else:
        for body in bodies:
            ingest(store, body)
    return state(store)


def test_a_job_that_writes_a_table_as_it_is_is_its_source_in_any_chunk(
    store: Store, tmp_path: Any
) -> None:
    """B, which writes the table as it is, is one of its sources whether or not its
    event came in the chunk that created the table: its latest assertion still names
    note, so A's later schema without note removes nothing (the merge keeps the fields
    any job's latest assertion names). One chunk or one event at a time, the same
    versions and the same sources, with what each said."""
    apart = _three_writers(store, one_chunk=False)
    together_store = Store(f"sqlite:///{tmp_path / 'together.db'}")
    try:
        together = _three_writers(together_store, one_chunk=True)
    finally:
        together_store.dispose()
    for shown, versions in (apart, together):
        assert [f["name"] for f in shown["fields"]] == ["id", "total", "note"]
        assert len(versions) == 1
        sources = {s["source"]: s for s in shown["sources"]}
        assert set(sources) == {"openlineage dbt/orders.run", "openlineage dbt/orders.copy"}
        copy = sources["openlineage dbt/orders.copy"]
        assert [f["name"] for f in copy["fields"]] == ["id", "total", "note"]
        assert copy["asserted_at"] == "2026-11-30T09:00:00Z"

    def said(shown: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in s.items() if k != "recorded_at"} for s in shown["sources"]]

    assert said(apart[0]) == said(together[0])


# -- event time -----------------------------------------------------------------------------


def _versions_by_time(store: Store) -> list[tuple[list[str], bool, str]]:
    _, versions = state(store)
    with Session(store.engine) as session:
        asset = resolve(session, URI)
        fields = {
            v.version: [f["name"] for f in v.definition["fields"]]
            for v in session.exec(select(AssetVersion).where(AssetVersion.asset_id == asset.id))
        }
    return [(fields[v["version"]], v["current"], v["valid_from"]) for v in versions]


def _run_versions(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.run_uuid, v.version FROM run_dataset d JOIN run r ON r.id = d.run_id "
                "JOIN asset_version v ON v.id = d.version_id"
            )
        ).all()
    return {uuid: version for uuid, version in rows}


def test_an_older_event_arriving_late_is_history_not_current(store: Store) -> None:
    older = event("orders.run", T0, outputs=schema(("id", "integer"), ("total", "numeric")))
    newer = event("orders.run", T0 + timedelta(hours=1), outputs=schema(("id", "integer")))
    ingest(store, newer)
    ingest(store, older)  # a retried or backfilled event
    assert _versions_by_time(store) == [
        (["id", "total"], False, "2026-11-30T08:00:00Z"),
        (["id"], True, "2026-11-30T09:00:00Z"),
    ]
    shown, _ = state(store)
    assert [f["name"] for f in shown["fields"]] == ["id"]
    # The late run is linked to the version that was true at its time.
    late_run = json.loads(older)["run"]["runId"]
    assert _run_versions(store)[late_run] == 2
    assert check(store) == []  # nothing newer was broken by the late event


def test_events_in_order_make_the_newer_one_current(store: Store) -> None:
    """The twin: the same events in order; the removal is the current, breaking version."""
    older = event("orders.run", T0, outputs=schema(("id", "integer"), ("total", "numeric")))
    newer = event("orders.run", T0 + timedelta(hours=1), outputs=schema(("id", "integer")))
    ingest(store, older, newer)
    assert _versions_by_time(store) == [
        (["id", "total"], False, "2026-11-30T08:00:00Z"),
        (["id"], True, "2026-11-30T09:00:00Z"),
    ]
    _, versions = state(store)
    assert versions[-1]["diff"]["breaking"] is True
    learned = datetime.fromisoformat(versions[-1]["created_at"].replace("Z", "+00:00"))
    assert learned > T0 + timedelta(days=1)  # learned now, true since the event's time
