"""`GET /`: the report served live (mounted on any FastAPI app)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalog.apply import apply
from catalog.db import Store
from catalog.specs import AssetSpec, EdgeSpec
from lineage.cli import server_app
from reports.context import MAX_DEPTH
from reports.render import render_report
from reports.serve_cli import mount_live
from reports.web import mount_report

PG = "postgres://db:5432"


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    apply(
        store,
        [
            AssetSpec(namespace=PG, name="shop.public.orders", kind="table"),
            AssetSpec(
                namespace=PG,
                name="shop.public.orders_v",
                kind="view",
                edges=[EdgeSpec(source_namespace=PG, source_name="shop.public.orders")],
            ),
        ],
    )
    yield store
    store.dispose()


def test_serves_the_report(catalog: Store) -> None:
    app = FastAPI()
    mount_report(app, catalog)
    client = TestClient(app)
    page = client.get("/")
    assert page.status_code == 200 and page.text == render_report(catalog)
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    focused = client.get("/", params={"focus": "orders_v", "depth": 2})
    assert focused.status_code == 200
    assert focused.text == render_report(catalog, focus="orders_v", depth=2, served=True)
    # The focused page links to more of the catalog: one hop further, and the whole of it.
    links = re.findall(r'<a href="([^"#]+)"', focused.text)
    assert links == [f"?focus={quote(PG + '/shop.public.orders_v', safe='')}&amp;depth=3", "./"]
    deeper = client.get("/?" + html.unescape(links[0])[1:])
    assert deeper.status_code == 200 and "within 3 hops of it" in deeper.text
    deepest = client.get("/", params={"focus": "orders_v", "depth": MAX_DEPTH})
    assert re.findall(r'<a href="([^"#]+)"', deepest.text) == ["./"]  # no depth past the limit
    assert client.get("/", params={"focus": "nope"}).status_code == 404
    assert client.get("/", params={"depth": 0}).status_code == 422


def test_the_page_is_kept_until_the_catalog_changes(catalog: Store) -> None:
    app = FastAPI()
    mount_report(app, catalog)
    client = TestClient(app)
    first = client.get("/").text
    assert client.get("/").text is not None and client.get("/").text == first
    apply(catalog, [AssetSpec(namespace=PG, name="shop.public.refunds", kind="table")])
    again = client.get("/").text
    assert "shop.public.refunds" in again and "shop.public.refunds" not in first
    assert again == render_report(catalog)


def test_a_corrupt_catalog_answers_503_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = Store(f"sqlite:///{path}")
    app = FastAPI()
    mount_report(app, store)
    store.engine.dispose()
    for extra in tmp_path.glob("c.db-*"):
        extra.unlink()
    path.write_bytes(b"this is not a database" * 1000)
    answer = TestClient(app).get("/")
    assert answer.status_code == 503 and "\n" not in answer.text.strip()
    store.dispose()


def test_token_protects_the_page(catalog: Store) -> None:
    app = server_app(catalog, "s3cret", 1024, mount_live)
    client = TestClient(app)
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/", params={"depth": 0}).status_code == 401  # before validation
    page = client.get("/", headers={"Authorization": "bearer s3cret"})  # any case
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
