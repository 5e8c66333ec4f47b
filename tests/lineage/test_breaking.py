"""Breaking changes, exactly: nested fields at any depth, readers rebuilt with the change,
known or assumed use, and finding ids that last as long as their condition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset
from openlineage.client.serde import Serde

from catalog.db import Store
from catalog.versioning import diff_definitions
from lineage.findings import check
from lineage.ingest import Ingester
from lineage.openlineage import loads
from tests.connectors.pg_helpers import database, execute, scan_apply
from tests.pg import PG_HOST, PG_PORT

NS = "hdfs://namenode:8020"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
T0 = datetime(2026, 11, 30, 8, tzinfo=UTC)
Field = schema_dataset.SchemaDatasetFacetFields


def _event(job: str, when: datetime, inputs: list[Any], outputs: list[Any]) -> str:
    return str(
        Serde.to_json(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime=when.isoformat(),
                run=Run(runId=str(uuid4())),
                job=Job(namespace="spark", name=job),
                producer=PRODUCER,
                inputs=inputs,
                outputs=outputs,
            )
        )
    )


def customers(zip_type: str, extra: bool = False) -> str:
    """Spark writing a table with a struct column (nested fields, as Spark's schema facet)."""
    address = [Field(name="zip", type=zip_type), Field(name="city", type="string")]
    if extra:
        address.append(Field(name="street", type="string"))
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[
            Field(name="id", type="long"),
            Field(name="address", type="struct", fields=address),
        ]
    )
    when = T0 + timedelta(hours=2 if extra or zip_type != "integer" else 0)
    output = OutputDataset(namespace=NS, name="/warehouse/customers", facets={"schema": schema})
    return _event("write_customers", when, [], [output])


def reader(job: str = "mail_labels") -> str:
    dataset = InputDataset(namespace=NS, name="/warehouse/customers")
    return _event(job, T0 + timedelta(hours=1), [dataset], [])


def ingest(store: Store, *bodies: str) -> None:
    for body in bodies:
        (result,) = Ingester(store).ingest([(body, loads(body), None)])
        assert result.status == "accepted", result.error


def _breaking(store: Store) -> list[Any]:
    return [f for f in check(store) if f.rule == "breaking_schema_change"]


def test_a_nested_retype_is_breaking_and_names_the_nested_field(store: Store) -> None:
    ingest(store, customers("integer"), reader(), customers("string"))
    (finding,) = _breaking(store)
    assert finding.evidence["broken_fields"] == {"address.zip": "retyped"}
    (who,) = finding.evidence["readers"]
    assert who["uri"] == "job:spark/mail_labels"
    assert who["known"] is False  # a whole-asset edge: its use of the field is assumed


def test_a_nested_field_added_is_not_breaking(store: Store) -> None:
    """The twin: a struct that gains a field breaks nobody."""
    ingest(store, customers("integer"), reader(), customers("integer", extra=True))
    assert _breaking(store) == []


def test_nested_fields_at_any_depth_in_a_diff() -> None:
    def definition(kind: str) -> dict[str, Any]:
        inner = {"name": "geo", "type": "struct", "fields": [{"name": "lat", "type": kind}]}
        outer = {"name": "address", "type": "struct", "fields": [inner]}
        return {"kind": "dataset", "fields": [{"name": "a", "attributes": {"fields": [outer]}}]}

    diff = diff_definitions(definition("double"), definition("string"))
    assert [(c["field"], c["change"]) for c in diff["changed"]] == [
        ("a.address.geo.lat", "retyped")
    ]
    assert diff["breaking"] is True
    assert diff_definitions(definition("double"), definition("double"))["changed"] == []


def test_a_finding_keeps_its_id_while_its_condition_lasts(store: Store) -> None:
    ingest(store, customers("integer"), reader(), customers("string"))
    (first,) = _breaking(store)
    ingest(store, reader("another_reader"))  # the condition lasts; who reads it changes
    (again,) = _breaking(store)
    assert again.id == first.id
    assert {r["uri"] for r in again.evidence["readers"]} == {
        "job:spark/mail_labels",
        "job:spark/another_reader",
    }


# -- a view rebuilt in the same transaction (PostgreSQL forces it for a retype) -----------


def test_a_view_rebuilt_with_the_change_is_not_a_reader_of_the_old_shape(store: Store) -> None:
    with database(
        "CREATE TABLE orders (id int PRIMARY KEY, amount int)",
        "CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 100",
    ) as db:
        scan_apply(store, db)
        # A job reads the table (whole-asset edge): it does read the old shape.
        table = f"{db}.public.orders"
        event = _event(
            "nightly_report",
            T0,
            [InputDataset(namespace=f"postgres://{PG_HOST}:{PG_PORT}", name=table)],
            [],
        )
        ingest(store, event)
        execute(
            db,
            "BEGIN; DROP VIEW big_orders; ALTER TABLE orders ALTER amount TYPE text;"
            " CREATE VIEW big_orders AS SELECT id, amount FROM orders; COMMIT",
        )
        scan_apply(store, db)
    (finding,) = _breaking(store)
    readers = {r["uri"] for r in finding.evidence["readers"]}
    assert readers == {"job:spark/nightly_report"}  # not the view rebuilt with it
    assert finding.evidence["broken_fields"] == {"amount": "retyped"}
