"""Namespaces as the OpenLineage naming spec writes them, through the real ingester.

Events are built with the openlineage-python client's classes and serialised by its
Serde, in the shapes the Spark and JDBC integrations send.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde
from sqlalchemy import text

from catalog.db import Store
from lineage.findings import check
from lineage.ingest import Ingester, Result
from lineage.openlineage import loads

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"


def event(inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> str:
    out = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime(2026, 11, 30, 8, tzinfo=UTC).isoformat(),
        run=Run(runId=str(uuid4())),
        job=Job(namespace="spark", name="copy_job"),
        producer=PRODUCER,
        inputs=[InputDataset(namespace=ns, name=name) for ns, name in inputs],
        outputs=[OutputDataset(namespace=ns, name=name) for ns, name in outputs],
    )
    return str(Serde.to_json(out))


def ingest(store: Store, body: str) -> Result:
    (result,) = Ingester(store).ingest([(body, loads(body), None)])
    return result


def edges(store: Store) -> set[tuple[str, str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.uri, e.kind, t.uri FROM edge e JOIN asset s ON s.id = e.source_id "
                "JOIN asset t ON t.id = e.target_id"
            )
        ).all()
    return {(s, k, t) for s, k, t in rows}


RAW = "abfss://raw@account.dfs.core.windows.net"
CURATED = "abfss://curated@account.dfs.core.windows.net"


def test_two_azure_containers_stay_two_datasets(store: Store) -> None:
    result = ingest(store, event([(RAW, "orders")], [(CURATED, "orders")]))
    assert result.status == "accepted" and result.warnings == []
    assert edges(store) == {
        (f"{RAW}/orders", "reads", "job:spark/copy_job"),
        ("job:spark/copy_job", "writes", f"{CURATED}/orders"),
    }
    assert [f.title for f in check(store) if f.rule == "breaking_schema_change"] == []


def test_one_container_read_and_written_is_one_dataset(store: Store) -> None:
    """The twin: the same container on both sides is one dataset."""
    same = "abfss://raw@ACCOUNT.dfs.core.windows.net/"
    ingest(store, event([(RAW, "orders")], [(same, "orders")]))
    assert {s for s, _, _ in edges(store)} | {t for _, _, t in edges(store)} == {
        f"{RAW}/orders",
        "job:spark/copy_job",
    }


def test_multi_host_namespaces_keep_the_event_and_its_lineage(store: Store) -> None:
    oracle = "oracle://H1.example:1521,h2.example:1522"
    kafka = "kafka://broker1:9092,Broker2:9093"
    result = ingest(store, event([(oracle, "SHOP.ORDERS")], [(kafka, "orders-topic")]))
    assert result.status == "accepted", result.error
    assert result.warnings == []
    assert edges(store) == {
        ("oracle://h1.example:1521,h2.example:1522/SHOP.ORDERS", "reads", "job:spark/copy_job"),
        ("job:spark/copy_job", "writes", "kafka://broker1:9092,broker2:9093/orders-topic"),
    }


def test_a_port_placeholder_is_kept_verbatim_with_a_warning(store: Store) -> None:
    result = ingest(store, event([("database://host:port", "shop.orders")], []))
    assert result.status == "accepted", result.error
    assert any("kept verbatim" in w for w in result.warnings), result.warnings
    assert edges(store) == {("database://host:port/shop.orders", "reads", "job:spark/copy_job")}


def test_a_readable_namespace_gives_no_warning(store: Store) -> None:
    """The twin: a namespace with a real port is normalised without a word."""
    result = ingest(store, event([("database://host:5000", "shop.orders")], []))
    assert result.warnings == []


def test_a_warning_names_the_place_of_each_mention(store: Store) -> None:
    """One dataset read in one event and written in the next: each warning says where it
    is in its own event, though the dataset is read from the parser's cache the second time."""
    placeholder = ("database://host:port", "shop.orders")
    first = ingest(store, event([placeholder], []))
    second = ingest(store, event([("database://host:5000", "shop.items")], [placeholder]))
    assert [w.split(":")[0] for w in first.warnings] == ["inputs[0].namespace"]
    assert [w.split(":")[0] for w in second.warnings] == ["outputs[0].namespace"]
