"""`steward serve` serves the report live at `/`, beside the OpenLineage API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from catalog.apply import apply
from catalog.db import Store
from catalog.specs import AssetSpec, FieldSpec
from lineage.cli import server_app
from reports.serve_cli import mount_live
from tests.serving import routes_of, steward_serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    apply(
        Store(url),
        [
            AssetSpec(
                namespace="postgres://db:5432",
                name="shop.public.orders",
                kind="table",
                fields=[FieldSpec(name="id", type="int")],
            )
        ],
    )
    token = "s3cret-token"
    with steward_serve(url, tmp_path / "serve.log", token=token) as server:
        yield server.base, token


def test_the_report_is_served_live_behind_the_token(served: tuple[str, str]) -> None:
    base, token = served
    assert httpx.get(f"{base}/", timeout=30).status_code == 401
    page = httpx.get(f"{base}/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "shop.public.orders" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    missing = httpx.get(
        f"{base}/?focus=nope", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert missing.status_code == 404


def routes_of_steward_serve(tmp_path: Path, token: str) -> list[tuple[str, str]]:
    """(method, path) of every route of the app `steward serve` runs, from its route table."""
    store = Store(f"sqlite:///{tmp_path / 'routes.db'}")
    api = server_app(store, token, 1024, mount_live)
    with TestClient(api):  # runs the app's lifespan, so that its writer thread ends
        routes = routes_of(api)
    store.dispose()
    return sorted((method, re.sub(r"\{[^}]*\}", "x", path)) for method, path in routes)


def test_every_route_but_health_answers_401_without_the_token_or_with_a_wrong_one(
    served: tuple[str, str], tmp_path: Path
) -> None:
    base, token = served
    calls = routes_of_steward_serve(tmp_path, token)
    paths = {path for _, path in calls}
    assert {"/", "/health", "/api/v1/lineage", "/api/v1/lineage/batch"} <= paths
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            response = httpx.request(
                method, f"{base}{path}", headers=headers, content=b"{}", timeout=30
            )
            expected = 200 if path == "/health" else 401
            assert response.status_code == expected, (method, path, headers)
    page = httpx.get(f"{base}/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert page.status_code == 200  # the token itself is enough
