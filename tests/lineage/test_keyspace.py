"""Jobs and datasets are separate key spaces: an OpenLineage job and a dataset with the
same namespace and name are two assets, whatever order they arrive in.

The events are shaped as dbt's and OpenLineage's own fixtures are (a model's job is
named like the table it writes: `analytics/orders` writes `analytics/orders`), sent
to a real `steward serve` one request at a time, or ingested from a file by
`steward ingest`, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from catalog.cli import cli
from catalog.db import Store
from tests.serving import steward_serve

TOKEN = "keyspace-token"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/blob/v1-0-0/client"
SCHEMA_URL = (
    "https://github.com/OpenLineage/OpenLineage/blob/v1-0-0/spec/OpenLineage.json"
    "#/definitions/SchemaDatasetFacet"
)
NS = "analytics"
RAW = [("id", "INTEGER"), ("amount", "DECIMAL")]
ORDERS = [("id", "INTEGER"), ("total", "DECIMAL")]
DAILY = [("day", "DATE"), ("total", "DECIMAL")]
RUN_ORDERS = "d46e465b-d358-4d32-83d4-df660ff614dd"
RUN_DAILY = "0b4f0c1e-8d1a-4c55-9d43-5b8e1f6a2c77"
RUN_AGAIN = "5c3e2a10-4b7d-4e8f-9a61-2d7c9b3e8f02"


def dataset(name: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "namespace": NS,
        "name": name,
        "facets": {
            "schema": {
                "_producer": PRODUCER,
                "_schemaURL": SCHEMA_URL,
                "fields": [{"name": n, "type": t} for n, t in fields],
            }
        },
    }


def event(
    kind: str, when: str, run: str, job: str, inputs: list[Any], outputs: list[Any]
) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": when,
        "run": {"runId": run},
        "job": {"namespace": NS, "name": job},
        "inputs": inputs,
        "outputs": outputs,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/1-0-1/OpenLineage.json#/definitions/RunEvent",
    }


#: The job `analytics/orders` reads raw_orders and writes the table `analytics/orders`.
ORDERS_JOB = [
    event(
        state,
        when,
        RUN_ORDERS,
        "orders",
        [dataset("raw_orders", RAW)],
        [dataset("orders", ORDERS)],
    )
    for state, when in (("START", "2024-05-09T19:49:24Z"), ("COMPLETE", "2024-05-09T19:50:24Z"))
]
#: The job `analytics/daily` reads the table `analytics/orders` and writes `analytics/daily`.
DAILY_JOB = [
    event(
        "COMPLETE",
        "2024-05-09T20:00:00Z",
        RUN_DAILY,
        "daily",
        [dataset("orders", ORDERS)],
        [dataset("daily", DAILY)],
    )
]
#: Its next run drops the column `total` that `analytics/daily` reads.
ORDERS_AGAIN = event(
    "COMPLETE",
    "2024-05-10T19:50:24Z",
    RUN_AGAIN,
    "orders",
    [dataset("raw_orders", RAW)],
    [dataset("orders", ORDERS[:1])],
)
#: Each job before the dataset named like it, and each dataset before its job.
ARRIVALS = {
    "jobs-first": [*ORDERS_JOB, *DAILY_JOB],
    "datasets-first": [*DAILY_JOB, *ORDERS_JOB],
}


def steward(catalog: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)


def data(catalog: str, *args: str) -> Any:
    result = steward(catalog, *args, "--json")
    assert result.exit_code in ((0, 1) if args[0] == "check" else (0,)), result.output
    return json.loads(result.stdout)


def send(catalog: str, base: str | None, events: list[dict[str, Any]], tmp_path: Path) -> None:
    """Post each event on its own (`base`: a running server), else ingest them as a file."""
    if base is not None:
        for one in events:
            response = httpx.post(
                f"{base}/api/v1/lineage",
                json=one,
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            )
            assert response.status_code == 201, response.text
        return
    path = tmp_path / f"events-{len(list(tmp_path.glob('events-*')))}.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    result = steward(catalog, "ingest", str(path))
    assert result.exit_code == 0, result.output


@pytest.fixture(params=["http", "file"])
def route(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(catalog_url: str, tmp_path: Path) -> Iterator[str]:
    with steward_serve(catalog_url, tmp_path / "serve.log", token=TOKEN) as server:
        yield server.base


def rows(catalog: str, sql: str) -> list[tuple[Any, ...]]:
    store = Store(catalog)
    try:
        with store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        store.dispose()


def api(base: str, path: str, **params: str) -> Any:
    response = httpx.get(
        f"{base}{path}", params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("order", sorted(ARRIVALS))
def test_a_job_and_the_dataset_named_like_it_are_two_assets(
    catalog_url: str, served: str, route: str, order: str, tmp_path: Path
) -> None:
    send(catalog_url, served if route == "http" else None, ARRIVALS[order], tmp_path)

    # the catalog: two key spaces, the edges between them, no edge from an asset to itself
    assets = rows(catalog_url, "SELECT uri, kind, namespace, name FROM asset ORDER BY uri")
    assert assets == [
        (f"{NS}/daily", "dataset", NS, "daily"),
        (f"{NS}/orders", "dataset", NS, "orders"),
        (f"{NS}/raw_orders", "dataset", NS, "raw_orders"),
        (f"job:{NS}/daily", "job", NS, "daily"),
        (f"job:{NS}/orders", "job", NS, "orders"),
    ]
    edges = rows(
        catalog_url,
        "SELECT s.uri, e.kind, t.uri FROM edge e JOIN asset s ON s.id = e.source_id"
        " JOIN asset t ON t.id = e.target_id",
    )
    assert sorted(edges) == [
        (f"{NS}/orders", "reads", f"job:{NS}/daily"),
        (f"{NS}/raw_orders", "reads", f"job:{NS}/orders"),
        (f"job:{NS}/daily", "writes", f"{NS}/daily"),
        (f"job:{NS}/orders", "writes", f"{NS}/orders"),
    ]
    runs = rows(catalog_url, "SELECT r.run_uuid, a.uri FROM run r JOIN asset a ON a.id = r.job_id")
    assert sorted(runs) == sorted(
        [(RUN_ORDERS, f"job:{NS}/orders"), (RUN_DAILY, f"job:{NS}/daily")]
    )

    # the command line: a name of both is refused with how to choose; either prefix chooses
    for ref in (f"{NS}/orders", "orders"):
        refused = steward(catalog_url, "show", ref)
        assert refused.exit_code == 2
        assert refused.output.strip().splitlines() == [
            f"Error: '{ref}' names both a job and a dataset: write job:{NS}/orders for the job"
            f" or dataset:{NS}/orders for the dataset"
        ]
    job = data(catalog_url, "show", f"job:{NS}/orders")
    assert (job["kind"], job["properties"]["outputs"]) == ("job", [f"{NS}/orders"])
    table = data(catalog_url, "show", f"dataset:{NS}/orders")
    assert table["kind"] == "dataset"
    assert [(f["name"], f["type"]) for f in table["fields"]] == ORDERS
    assert data(catalog_url, "show", "job:orders")["uri"] == f"job:{NS}/orders"
    assert data(catalog_url, "show", "raw_orders")["uri"] == f"{NS}/raw_orders"  # one: as before

    up = data(catalog_url, "lineage", "upstream", f"dataset:{NS}/daily")
    assert up["start"] == f"{NS}/daily"
    assert [(n["uri"], n["distance"]) for n in up["nodes"]] == [
        (f"job:{NS}/daily", 1),
        (f"{NS}/orders", 2),
        (f"job:{NS}/orders", 3),
        (f"{NS}/raw_orders", 4),
    ]
    down = data(catalog_url, "lineage", "downstream", f"job:{NS}/orders")
    assert [n["uri"] for n in down["nodes"]] == [
        f"{NS}/orders",
        f"job:{NS}/daily",
        f"{NS}/daily",
    ]
    path = data(catalog_url, "lineage", "path", "raw_orders", f"dataset:{NS}/daily")
    assert path["path"] == [
        f"{NS}/raw_orders",
        f"job:{NS}/orders",
        f"{NS}/orders",
        f"job:{NS}/daily",
        f"{NS}/daily",
    ]
    refused = steward(catalog_url, "lineage", "upstream", f"{NS}/daily")
    assert refused.exit_code == 2 and "dataset:analytics/daily" in refused.output

    # Marquez's API: /jobs/orders and /datasets/orders are the two
    job_answer = api(served, f"/api/v1/namespaces/{NS}/jobs/orders")
    assert job_answer["inputs"] == [{"namespace": NS, "name": "raw_orders"}]
    assert job_answer["outputs"] == [{"namespace": NS, "name": "orders"}]
    assert job_answer["latestRun"]["id"] == RUN_ORDERS
    table_answer = api(served, f"/api/v1/namespaces/{NS}/datasets/orders")
    assert [(f["name"], f["type"]) for f in table_answer["fields"]] == ORDERS
    jobs = api(served, f"/api/v1/namespaces/{NS}/jobs")["jobs"]
    assert sorted(j["name"] for j in jobs) == ["daily", "orders"]
    tables = api(served, f"/api/v1/namespaces/{NS}/datasets")["datasets"]
    assert sorted(d["name"] for d in tables) == ["daily", "orders", "raw_orders"]
    graph = api(served, "/api/v1/lineage", nodeId=f"job:{NS}:orders", depth="1")["graph"]
    nodes = {n["id"]: n for n in graph}
    me = nodes[f"job:{NS}:orders"]
    assert me["type"] == "JOB"
    assert [e["origin"] for e in me["inEdges"]] == [f"dataset:{NS}:raw_orders"]
    assert [e["destination"] for e in me["outEdges"]] == [f"dataset:{NS}:orders"]
    graph = api(served, "/api/v1/lineage", nodeId=f"dataset:{NS}:orders", depth="1")["graph"]
    them = {n["id"]: n for n in graph}[f"dataset:{NS}:orders"]
    assert them["type"] == "DATASET"
    assert [e["origin"] for e in them["inEdges"]] == [f"job:{NS}:orders"]
    assert [e["destination"] for e in them["outEdges"]] == [f"job:{NS}:daily"]

    # steward's read API: the same refs as the command line
    base = f"{served}/api/steward/v1/assets"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    both = httpx.get(f"{base}/{quote(f'{NS}/orders', safe='')}", headers=auth, timeout=60)
    assert both.status_code == 409 and "job:analytics/orders" in both.text
    one = httpx.get(f"{base}/{quote(f'job:{NS}/orders', safe='')}", headers=auth, timeout=60)
    assert one.status_code == 200 and one.json()["kind"] == "job"


def test_check_reports_a_breaking_change_of_the_dataset_to_its_reader_alone(
    catalog_url: str, served: str, route: str, tmp_path: Path
) -> None:
    """The job that writes `analytics/orders` is not a reader of it; the job that reads it is."""
    base = served if route == "http" else None
    send(catalog_url, base, ARRIVALS["jobs-first"], tmp_path)
    assert data(catalog_url, "check") == []
    send(catalog_url, base, [ORDERS_AGAIN], tmp_path)
    found = data(catalog_url, "check")
    assert [(f["rule"], f["assets"]) for f in found] == [
        ("breaking_schema_change", [f"{NS}/orders", f"job:{NS}/daily"])
    ]
    assert found[0]["evidence"]["broken_fields"] == {"total": "removed"}
    assert [r["uri"] for r in found[0]["evidence"]["readers"]] == [f"job:{NS}/daily"]
