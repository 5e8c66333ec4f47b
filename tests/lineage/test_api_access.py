"""Access to the HTTP API: the token before anything, the OpenAPI document to its holders."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.db import Store
from lineage.server import create_app
from reports.serve_cli import mount_live
from tests.serving import routes_of, steward_serve

TOKEN = "access-token"


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('access') / 'c.db'}")
    app = create_app(store, token=TOKEN)
    mount_live(app, store, TOKEN)
    return TestClient(app)


def _routes(client: TestClient) -> set[tuple[str, str]]:
    return routes_of(client.app)  # type: ignore[arg-type]


def test_every_route_and_method_wants_the_token(app_client: TestClient) -> None:
    routes = _routes(app_client)
    assert len(routes) > 20
    for method, template in sorted(routes):
        path = template.replace("{", "").replace("}", "")
        response = app_client.request(method, path)
        expected = 200 if path == "/health" else 401
        assert response.status_code == expected, (method, path)
        if expected == 401:
            assert response.headers["www-authenticate"] == "Bearer"


@settings(max_examples=100, deadline=None)
@given(
    path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
)
def test_an_unknown_route_says_401_before_404(
    app_client: TestClient, path: str, method: str
) -> None:
    url = "/" + path.lstrip("/").replace("?", "").replace("#", "")
    if url == "/health":
        return
    assert app_client.request(method, url).status_code == 401
    wrong = {"Authorization": f"Bearer {TOKEN}x"}
    assert app_client.request(method, url, headers=wrong).status_code == 401


def test_with_the_token_an_unknown_route_is_a_404_in_marquez_shape(app_client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = app_client.get("/api/v1/no/such/route", headers=auth)
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_the_openapi_document_is_served_to_token_holders_only(tmp_path: Path) -> None:
    with steward_serve(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "log", token=TOKEN) as s:
        assert httpx.get(f"{s.base}/openapi.json").status_code == 401
        assert httpx.get(f"{s.base}/docs").status_code == 401
        doc = httpx.get(f"{s.base}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
        assert doc.status_code == 200
        paths = doc.json()["paths"]
    # every route the app has is in the document, but the document itself and the report
    app = TestClient(create_app(Store(f"sqlite:///{tmp_path / 'c.db'}"), token=TOKEN))
    assert {p for _, p in _routes(app)} - {"/openapi.json"} == set(paths)
    assert "/api/steward/v1/assets" in paths and "/api/v1/namespaces/{namespace}/datasets" in paths
