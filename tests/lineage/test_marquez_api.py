"""Marquez's read API: Marquez's own Python client against a real `steward serve`.

What is read back is checked against what was posted: the apples chain of
Marquez's own test events, and events the openlineage-python client emits
(two schemas of one table, column lineage, a failed run, a streaming job).
Every answer is also checked against Marquez's `openapi.yml`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from marquez_client import MarquezClient
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Dataset, Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import column_lineage_dataset, job_type_job, schema_dataset

from tests.conftest import FIXTURES
from tests.lineage.marquez_schema import errors, response_schema
from tests.serving import steward_serve

OL = FIXTURES / "openlineage"
TOKEN = "marquez-api-token"
PRODUCER = "https://example.com/steward-tests"
SHOP = "postgres://db:5432"
ORDERS_V1 = [("id", "integer"), ("amount", "numeric")]
ORDERS_V2 = [("id", "integer"), ("amount", "numeric"), ("currency", "text")]
DAILY = [("id", "integer"), ("total", "numeric")]
#: daily's field -> the orders fields it is computed from
DAILY_FROM = {"id": ["id"], "total": ["amount"]}
STATES = {
    RunState.START: "RUNNING",
    RunState.COMPLETE: "COMPLETED",
    RunState.FAIL: "FAILED",
    RunState.ABORT: "ABORTED",
}


def _schema(fields: list[tuple[str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]
    )


def _lineage() -> column_lineage_dataset.ColumnLineageDatasetFacet:
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            target: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(SHOP, "shop.public.orders", s)
                    for s in sources
                ]
            )
            for target, sources in DAILY_FROM.items()
        }
    )


def _run(
    job: str, schema: list[tuple[str, str]], end: RunState, at: datetime, **job_facets: Any
) -> list[RunEvent]:
    run = Run(runId=str(uuid4()))
    orders = Dataset(namespace=SHOP, name="shop.public.orders", facets={"schema": _schema(schema)})
    daily = Dataset(
        namespace=SHOP,
        name="shop.public.daily",
        facets={"schema": _schema(DAILY), "columnLineage": _lineage()},
    )
    return [
        RunEvent(
            eventType=state,
            eventTime=(at + timedelta(minutes=i)).isoformat(),
            run=run,
            job=Job(namespace="shop-jobs", name=job, facets=job_facets),
            producer=PRODUCER,
            inputs=[orders],
            outputs=[daily],
        )
        for i, state in enumerate((RunState.START, end))
    ]


@pytest.fixture
def posted(catalog_url: str, tmp_path: Path) -> Iterator[tuple[str, list[RunEvent]]]:
    """`steward serve` with the apples chain (batch) and the client's events (one by one)."""
    with steward_serve(catalog_url, tmp_path / "serve.log", token=TOKEN) as served:
        apples = [json.loads(p.read_text()) for p in sorted((OL / "marquez/apples").glob("*"))]
        batch = httpx.post(
            f"{served.base}/api/v1/lineage/batch",
            json=apples,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert batch.json()["summary"]["accepted"] == len(apples), batch.text
        start = datetime(2026, 1, 1, tzinfo=UTC)
        streaming = job_type_job.JobTypeJobFacet(
            processingType="STREAMING", integration="FLINK", jobType="JOB"
        )
        events = [
            *_run("daily_totals", ORDERS_V1, RunState.COMPLETE, start),
            *_run("daily_totals", ORDERS_V2, RunState.COMPLETE, start + timedelta(hours=1)),
            *_run("daily_totals", ORDERS_V2, RunState.FAIL, start + timedelta(hours=2)),
            *_run("orders_stream", ORDERS_V2, RunState.ABORT, start, jobType=streaming),
        ]
        client = OpenLineageClient(
            config={
                "transport": {
                    "type": "http",
                    "url": served.base,
                    "auth": {"type": "api_key", "apiKey": TOKEN},
                }
            }
        )
        for event in events:
            client.emit(event)
        yield served.base, events


def _valid(path: str, body: Any) -> Any:
    assert errors(response_schema(path), body) == []
    return body


def test_marquez_python_reads_what_was_ingested(posted: tuple[str, list[RunEvent]]) -> None:
    base, events = posted
    client = MarquezClient(base, api_key=TOKEN)

    # namespaces: every namespace an event named, of jobs and datasets
    listed = _valid("/namespaces", client.list_namespaces(limit=1000))["namespaces"]
    apples = [json.loads(p.read_text()) for p in sorted((OL / "marquez/apples").glob("*"))]
    named = {e["job"]["namespace"] for e in apples} | {
        d["namespace"] for e in apples for d in (*e["inputs"], *e["outputs"])
    }
    assert named | {"shop-jobs", SHOP} <= {n["name"] for n in listed}
    one = _valid("/namespaces/{namespace}", client.get_namespace(SHOP))
    assert one["name"] == SHOP

    # datasets of the shop: the two tables, with the fields of the latest schema
    datasets = _valid("/namespaces/{namespace}/datasets", client.list_datasets(SHOP))
    assert datasets["totalCount"] == 2
    assert sorted(d["name"] for d in datasets["datasets"]) == [
        "shop.public.daily",
        "shop.public.orders",
    ]
    orders = _valid(
        "/namespaces/{namespace}/datasets/{dataset}",
        client.get_dataset(SHOP, "shop.public.orders"),
    )
    assert [(f["name"], f["type"]) for f in orders["fields"]] == ORDERS_V2

    # dataset versions: one per distinct schema, newest first, each with its fields
    versions = _valid(
        "/namespaces/{namespace}/datasets/{dataset}/versions",
        client.list_dataset_versions(SHOP, "shop.public.orders"),
    )["versions"]
    assert [[(f["name"], f["type"]) for f in v["fields"]] for v in versions] == [
        ORDERS_V2,
        ORDERS_V1,
    ]
    assert versions[0]["version"] == orders["currentVersion"]
    assert versions[0]["diff"]["added"][0]["name"] == "currency"
    again = client.get_dataset_version(SHOP, "shop.public.orders", versions[1]["version"])
    assert (
        _valid("/namespaces/{namespace}/datasets/{dataset}/versions/{version}", again)
        == (versions[1])
    )

    # jobs: inputs, outputs, type, the latest run's state
    jobs = _valid("/namespaces/{namespace}/jobs", client.list_jobs("shop-jobs"))["jobs"]
    by_name = {j["name"]: j for j in jobs}
    assert set(by_name) == {"daily_totals", "orders_stream"}
    daily_job = _valid(
        "/namespaces/{namespace}/jobs/{job}", client.get_job("shop-jobs", "daily_totals")
    )
    assert daily_job["inputs"] == [{"namespace": SHOP, "name": "shop.public.orders"}]
    assert daily_job["outputs"] == [{"namespace": SHOP, "name": "shop.public.daily"}]
    assert daily_job["type"] == "BATCH"
    assert by_name["orders_stream"]["type"] == "STREAM"
    runs_of = {}
    for e in events:
        runs_of.setdefault(e.job.name, {})[e.run.runId] = STATES[e.eventType]
    last_daily = [e for e in events if e.job.name == "daily_totals"][-1]
    assert daily_job["latestRun"]["id"] == last_daily.run.runId
    assert daily_job["latestRun"]["state"] == STATES[last_daily.eventType]

    # runs: every run of the job with its final state; one run by id
    runs = _valid(
        "/namespaces/{namespace}/jobs/{job}/runs", client.list_job_runs("shop-jobs", "daily_totals")
    )["runs"]
    assert {r["id"]: r["state"] for r in runs} == runs_of["daily_totals"]
    first = next(e for e in events if e.job.name == "daily_totals")
    run = _valid("/jobs/runs/{id}", client.get_job_run(first.run.runId))
    assert run["state"] == "COMPLETED"
    assert run["startedAt"] is not None and run["endedAt"] is not None
    assert [v["datasetVersionId"]["version"] for v in run["inputDatasetVersions"]] == [
        versions[1]["version"]  # the first run read the first schema
    ]
    stream = client.list_job_runs("shop-jobs", "orders_stream")["runs"]
    assert [r["state"] for r in stream] == ["ABORTED"]

    # column lineage: daily's fields come from the orders fields the facet named
    graph = _valid(
        "/column-lineage", client.get_column_lineage_by_dataset(SHOP, "shop.public.daily")
    )["graph"]
    inputs = {
        n["data"]["field"]: sorted(i["field"] for i in n["data"]["inputFields"])
        for n in graph
        if n["data"]["dataset"] == "shop.public.daily"
    }
    assert inputs == {k: sorted(v) for k, v in DAILY_FROM.items()}
    assert all(
        i["dataset"] == "shop.public.orders" for n in graph for i in n["data"]["inputFields"]
    )

    # the apples chain, read through the same client
    pie = apples[-1]
    job = client.get_job(pie["job"]["namespace"], pie["job"]["name"])
    assert job["outputs"] == [
        {"namespace": d["namespace"], "name": d["name"]} for d in pie["outputs"]
    ]
    assert _valid("/tags", client.list_tags())["tags"] == []
