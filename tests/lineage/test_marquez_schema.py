"""Every Marquez route, with any path and query values, answers no 5xx and nothing off-schema.

A property-based run (hypothesis) over a catalog of real producers' events:
Marquez's own test events, OpenLineage's client and integration fixtures.
An answer of 200 must conform to the route's schema in Marquez's
`openapi.yml`; any other answer is a 4xx in Marquez's error shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from catalog.db import Store
from lineage.api.mount import marquez_spec
from lineage.ingest import Ingester, read_path
from lineage.server import create_app
from tests.conftest import FIXTURES
from tests.lineage.marquez_schema import SPEC, errors, response_schema

OL = FIXTURES / "openlineage"
TOKEN = "schema-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, list[str]]]]:
    db = tmp_path_factory.mktemp("schema") / "catalog.db"
    store = Store(f"sqlite:///{db}")
    ingester = Ingester(store)
    for folder in ("marquez/apples", "marquez/open_lineage", "wire", "normalized"):
        ingester.ingest_stream(read_path(str(OL / folder)), lambda _r, _s: None)
    with store.engine.connect() as conn:
        assets = conn.execute(text("select namespace, name, kind from asset")).all()
        runs = [r[0] for r in conn.execute(text("select run_uuid from run"))]
    known = {
        "namespace": sorted({a.namespace for a in assets}),
        "dataset": sorted({a.name for a in assets if a.kind != "job"}),
        "job": sorted({a.name for a in assets if a.kind == "job"}),
        "id": runs,
        "nodeId": [
            f"{'job' if a.kind == 'job' else 'dataset'}:{a.namespace}:{a.name}" for a in assets
        ],
    }
    with TestClient(create_app(store, token=TOKEN)) as client:
        yield client, known
    store.dispose()


GETS = [path for path, item in marquez_spec()["paths"].items() if "get" in item]
#: Paths the document lists that steward does not serve (deprecated in Marquez).
NOT_SERVED = {"/runlineage/upstream"}


def _value(known: list[str]) -> st.SearchStrategy[str]:
    texts = st.text(min_size=0, max_size=40)
    return st.one_of(st.sampled_from(known), texts) if known else texts


@st.composite
def requests(draw: st.DrawFn, known: dict[str, list[str]]) -> tuple[str, str, dict[str, str]]:
    template = draw(st.sampled_from(sorted(set(GETS) - NOT_SERVED)))
    path = template
    for name in ("namespace", "dataset", "job", "id", "source", "tag", "version"):
        if "{" + name + "}" in path:
            value = draw(_value(known.get(name, [])))
            path = path.replace("{" + name + "}", quote(value, safe="") or "x")
    numbers = st.one_of(st.integers(-3, 20_000).map(str), st.text(max_size=6))
    params = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "limit": numbers,
                "offset": numbers,
                "depth": numbers,
                "nodeId": _value(known["nodeId"]),
                "q": st.text(max_size=20),
                "filter": st.sampled_from(["dataset", "job", "JOB", "other"]),
                "sort": st.sampled_from(["name", "updated_at", "x"]),
                "type": st.sampled_from(["run", "job", "x"]),
                "withDownstream": st.sampled_from(["true", "false", "maybe"]),
                "sortDirection": st.sampled_from(["asc", "desc", "sideways"]),
                "before": st.sampled_from(["2030-01-01", "2030-01-01T00:00:00Z", "yesterday"]),
                "after": st.sampled_from(["2000-01-01", "2000-01-01T00:00:00+02:00", "13-13"]),
            },
        )
    )
    return template, path, params


def test_every_route_is_in_the_document_we_serve(world: tuple[TestClient, Any]) -> None:
    client, _ = world
    assert client.get("/openapi.json").status_code == 401
    served = client.get("/openapi.json", headers=HEADERS).json()
    for path in set(GETS) - NOT_SERVED:
        operation = served["paths"][f"/api/v1{path}"]["get"]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].removeprefix("#/components/schemas/") in served["components"]["schemas"]


def test_the_shipped_marquez_document_is_the_fixture() -> None:
    import yaml

    expected = json.loads(json.dumps(yaml.safe_load(SPEC.read_text()), default=str))

    def keys_as_text(node: Any) -> Any:
        if isinstance(node, dict):
            return {str(k): keys_as_text(v) for k, v in node.items()}
        if isinstance(node, list):
            return [keys_as_text(v) for v in node]
        return node

    assert marquez_spec() == keys_as_text(expected)


def test_the_schema_check_catches_what_marquez_would_not_answer() -> None:
    """The validator can fail: Marquez's document rejects these bodies."""
    assert errors("Job", {"latestRun": {"state": "COMPLETE"}})
    assert errors("Dataset", {"createdAt": "yesterday"})
    assert errors("DatasetList", {"totalCount": 1})
    assert errors("LineageGraph", {"graph": [{"type": "JOB", "data": {"type": 7}}]})


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_request_gets_a_conforming_answer(
    world: tuple[TestClient, dict[str, list[str]]], data: st.DataObject
) -> None:
    client, known = world
    template, path, params = data.draw(requests(known))
    response = client.get(f"/api/v1{path}", params=params, headers=HEADERS)
    assert response.status_code < 500, (path, params, response.text[:500])
    body = response.json()
    event(f"{response.status_code}")
    if response.status_code == 200:
        assert errors(response_schema(template), body) == [], (path, params)
    else:
        assert 400 <= response.status_code < 500
        assert isinstance(body.get("code"), int) and isinstance(body.get("message"), str), body
