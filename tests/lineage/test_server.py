"""The HTTP endpoint: a real `steward serve` subprocess and the real openlineage client."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Dataset, Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset

from catalog.db import Store
from lineage.server import create_app
from tests.conftest import FIXTURES
from tests.serving import steward_serve

OL = FIXTURES / "openlineage"
TOKEN = "s3cret-token-for-tests"
PRODUCER = "https://example.com/steward-tests"


@pytest.fixture
def served(catalog_url: str, tmp_path: Path) -> Iterator[str]:
    """`steward serve` on a free loopback port, with a token and a 64 KB body limit."""
    with steward_serve(catalog_url, tmp_path / "serve.log", "--max-body", "64KB", token=TOKEN) as s:
        yield s.base


def _events(job: str) -> list[RunEvent]:
    run = Run(runId=str(uuid4()))
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name="user_id", type="bigint"),
            schema_dataset.SchemaDatasetFacetFields(name="ts", type="timestamp"),
        ]
    )
    return [
        RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=run,
            job=Job(namespace="pipelines", name=job),
            producer=PRODUCER,
            inputs=[
                Dataset(
                    namespace="postgres://DB:5432",
                    name="app.public.clicks",
                    facets={"schema": schema},
                )
            ],
            outputs=[Dataset(namespace="s3://curated", name="sessions")],
        )
        for state in (RunState.START, RunState.COMPLETE)
    ]


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_the_openlineage_client_posts_to_steward_serve(served: str) -> None:
    client = OpenLineageClient(
        config={
            "transport": {
                "type": "http",
                "url": served,
                "auth": {"type": "api_key", "apiKey": TOKEN},
                "compression": "gzip",
            }
        }
    )
    for event in _events("sessionize"):
        client.emit(event)
    response = httpx.get(
        f"{served}/api/v1/lineage",
        params={"nodeId": "job:pipelines:sessionize", "depth": 2},
        headers=auth(),
    )
    assert response.status_code == 200
    graph = {node["id"]: node for node in response.json()["graph"]}
    job = graph["job:pipelines:sessionize"]
    clicks = "dataset:postgres://db:5432:app.public.clicks"
    assert job["type"] == "JOB"
    assert job["inEdges"] == [{"origin": clicks, "destination": job["id"]}]
    assert job["outEdges"] == [
        {"origin": job["id"], "destination": "dataset:s3://curated:sessions"}
    ]
    assert job["data"]["latestRun"]["state"] == "COMPLETED"
    assert [f["name"] for f in graph[clicks]["data"]["fields"]] == ["user_id", "ts"]
    by_dataset = httpx.get(
        f"{served}/api/v1/lineage", params={"nodeId": clicks, "depth": 1}, headers=auth()
    )
    assert {n["id"] for n in by_dataset.json()["graph"]} == {clicks, job["id"]}


def test_status_codes_of_the_endpoint(served: str) -> None:
    with httpx.Client(base_url=served, headers=auth()) as http:
        assert httpx.get(f"{served}/health").status_code == 200  # no token needed
        assert httpx.post(f"{served}/api/v1/lineage", content=b"{}").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (
            httpx.get(f"{served}/api/v1/lineage?nodeId=job:a:b", headers=wrong).status_code == 401
        )

        ok = (OL / "marquez/open_lineage/event_simple.json").read_bytes()
        assert http.post("/api/v1/lineage", content=ok).status_code == 201
        assert http.post("/api/v1/lineage", content=ok).json()["status"] == "duplicate"

        bad = http.post("/api/v1/lineage", content=b'{"eventType": ')
        assert bad.status_code == 400 and bad.json()["field"] == "(body)"
        no_run = http.post(
            "/api/v1/lineage",
            content=(OL / "negative/proxy-fluentd__event_no_run_id.json").read_bytes(),
        )
        assert no_run.status_code == 422 and no_run.json()["field"] == "run.runId"
        date_only = http.post(
            "/api/v1/lineage",
            content=(OL / "marquez/negative/400_eventTime_date_only.json").read_bytes(),
        )
        assert date_only.status_code == 400 and date_only.json()["field"] == "eventTime"
        facet = http.post(
            "/api/v1/lineage",
            content=(OL / "negative/proxy-fluentd__event_invalid_job_facet.json").read_bytes(),
        )
        assert facet.status_code == 201
        assert any(w.startswith("job.facets.ownership") for w in facet.json()["warnings"])

        large = (OL / "marquez/open_lineage/event_large.json").read_bytes()
        assert len(large) > 64 * 1024
        assert http.post("/api/v1/lineage", content=large).status_code == 413
        bomb = gzip.compress(b" " * (200 * 1024) + b"{}")
        too_big = http.post("/api/v1/lineage", content=bomb, headers={"Content-Encoding": "gzip"})
        assert too_big.status_code == 413
        not_gzip = http.post("/api/v1/lineage", content=ok, headers={"Content-Encoding": "gzip"})
        assert not_gzip.status_code == 400

        unknown = http.get("/api/v1/lineage", params={"nodeId": "dataset:nowhere:nothing"})
        assert unknown.status_code == 404


def test_a_nul_in_the_url_is_a_400_on_either_backend(served: str) -> None:
    """A NUL (`%00`) in a query or a path is the client's mistake. PostgreSQL refuses it
    in any text, and the server answered 503 as if the catalog were down."""
    paths = [
        "/api/steward/v1/assets?q=ab%00cdef",
        "/api/steward/v1/assets?namespace=a%00b",
        "/api/v1/search?q=ab%00cdef",
        "/api/v1/namespaces/a%00b/datasets",
        "/api/v1/lineage?nodeId=dataset:a%00b:c",
    ]
    with httpx.Client(base_url=served, headers=auth()) as http:
        for path in paths:
            answer = http.get(path)
            assert answer.status_code == 400, (path, answer.text)
            assert "NUL character" in answer.json()["message"]
        assert http.get("/api/steward/v1/assets?q=abcdef").status_code == 200
        # Without the token, the token is what is wrong.
        assert httpx.get(f"{served}/api/v1/search?q=a%00b").status_code == 401


def test_batch_endpoint_answers_per_event(served: str) -> None:
    events: list[Any] = [
        json.loads((OL / f"marquez/apples/{name}").read_text())
        for name in ("1_pick_apples.json", "2_apple_filling.json")
    ]
    events.append(json.loads((OL / "marquez/negative/422_job_null_name.json").read_text()))
    events.append(events[0])
    response = httpx.post(f"{served}/api/v1/lineage/batch", json=events, headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "accepted",
        "rejected",
        "duplicate",
    ]
    assert body["results"][2]["field"] == "job.name"
    assert body["summary"]["rejected"] == 1
    not_array = httpx.post(f"{served}/api/v1/lineage/batch", json={"a": 1}, headers=auth())
    assert not_array.status_code == 422
    graph = httpx.get(
        f"{served}/api/v1/lineage",
        params={"nodeId": "dataset:grandmas.kitchen:apples", "depth": 4},
        headers=auth(),
    ).json()["graph"]
    ids = {n["id"] for n in graph}
    assert "job:grandmas.kitchen:gather_apples" in ids
    assert "dataset:grandmas.kitchen:apple.filling" in ids


#: Without a token the app answers only requests to a local address, posting JSON.
LOCAL: dict[str, Any] = {
    "base_url": "http://127.0.0.1",
    "headers": {"Content-Type": "application/json"},
}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('app') / 'c.db'}")
    with TestClient(create_app(store, max_body=256 * 1024), **LOCAL) as client:
        yield client
    store.dispose()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)
EVENTISH = st.fixed_dictionaries(
    {
        "eventTime": st.sampled_from(["2024-06-01T12:00:00Z", "2024-06-01", "x", None]),
        "run": st.fixed_dictionaries({"runId": st.sampled_from([str(uuid4()), "bad", None])}),
        "job": st.fixed_dictionaries(
            {
                "namespace": st.sampled_from(["ns", "", "postgres://h:x"]),
                "name": st.text(max_size=5),
            }
        ),
    },
    optional={"inputs": JSON, "outputs": JSON, "eventType": JSON, "producer": JSON},
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=JSON | EVENTISH)
def test_any_json_gets_201_400_or_422(app_client: TestClient, value: Any) -> None:
    response = app_client.post("/api/v1/lineage", content=json.dumps(value))
    assert response.status_code in (201, 400, 422), response.text
    assert app_client.get("/health").status_code == 200


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=200))
def test_any_bytes_get_201_400_or_422(app_client: TestClient, body: bytes) -> None:
    response = app_client.post("/api/v1/lineage", content=body)
    assert response.status_code in (201, 400, 422), response.text


def test_a_locked_sqlite_catalog_answers_503_not_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import catalog.db
    import lineage.ingest

    monkeypatch.setattr(catalog.db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(lineage.ingest, "LOCK_RETRIES", 2)
    path = tmp_path / "c.db"
    store = Store(f"sqlite:///{path}")
    body = (OL / "marquez/open_lineage/event_simple.json").read_bytes()
    with TestClient(create_app(store), **LOCAL) as client:
        holder = sqlite3.connect(path, timeout=0, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process writing for a long time
        try:
            response = client.post("/api/v1/lineage", content=body)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert client.post("/api/v1/lineage", content=body).status_code == 201
    store.dispose()


def listening(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net shows them) that listen on a TCP port."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_steward_serve_listens_on_loopback_only_unless_told_otherwise(tmp_path: Path) -> None:
    with steward_serve(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "serve.log") as server:
        assert listening(server.port) == {"0100007F"}  # 127.0.0.1 only, no IPv6, no 0.0.0.0
