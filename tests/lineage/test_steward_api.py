"""steward's own read API answers what the CLI prints with `--json`, from the same functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from catalog.cli import cli
from catalog.db import Store
from lineage.server import create_app
from tests.conftest import FIXTURES

OL = FIXTURES / "openlineage"
BASE = "/api/steward/v1"
FEATURES = """
[entities.user_id]
join_keys = ["user_id"]

[feature_sets.user_activity]
entities = ["user_id"]
source = "postgres://db.internal:5432/shop.public.events"
description = "Activity aggregates per user"

[feature_sets.user_activity.features.clicks_7d]
dtype = "int64"
offline = "count(*)"
online = "count(*)"

[models.churn]
features = ["user_activity"]
"""


def steward(catalog: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout) if "--json" in args else None


def build_world(catalog_url: str, tmp_path: Path) -> None:
    """Events, a feature file, two model revisions with a binding, and a check's findings."""
    for folder in ("marquez/apples", "marquez/open_lineage", "wire"):
        steward(catalog_url, "ingest", str(OL / folder))
    features = tmp_path / "features.toml"
    features.write_text(FEATURES)
    steward(catalog_url, "scan", str(features))
    for revision in ("1", "2"):
        steward(
            catalog_url, "models", "register", "embed", "--revision", revision,
            "--dim", "8", "--distance", "cosine",
        )  # fmt: skip
    steward(catalog_url, "models", "use", "embed", "2")
    steward(catalog_url, "models", "bind", "grandmas.kitchen/apples", "embed@1")
    steward(catalog_url, "models", "use", "embed", "2", "--purpose", "fruit-search")
    steward(catalog_url, "check", "--json")


@pytest.fixture
def world(catalog_url: str, tmp_path: Path) -> tuple[str, TestClient]:
    build_world(catalog_url, tmp_path)
    # A local Host: without a token the server answers only names of this machine.
    return catalog_url, TestClient(create_app(Store(catalog_url)), base_url="http://127.0.0.1")


def get(client: TestClient, path: str, **params: str) -> Any:
    response = client.get(BASE + path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_assets_with_filters_and_pages_are_the_cli_list(world: tuple[str, TestClient]) -> None:
    catalog, client = world
    every = steward(catalog, "assets", "--json")
    assert len(every) > 40
    answer = get(client, "/assets", limit="10000")
    assert answer["assets"] == every and answer["totalCount"] == len(every)
    assert get(client, "/assets", limit="3", offset="2")["assets"] == every[2:5]
    assert get(client, "/assets", kind="job")["assets"] == steward(
        catalog, "assets", "--kind", "job", "--json"
    )
    assert get(client, "/assets", live="true")["assets"] == steward(
        catalog, "assets", "--live", "--json"
    )
    apples = get(client, "/assets", q="APPLE")
    assert apples["assets"] == [a for a in every if "apple" in a["uri"].lower()]
    assert apples["totalCount"] == len(apples["assets"]) > 0
    namespace = get(client, "/assets", namespace="grandmas.kitchen")["assets"]
    assert namespace == [a for a in every if a["namespace"] == "grandmas.kitchen"]
    assert get(client, "/feature-sets")["assets"] == steward(
        catalog, "assets", "--kind", "feature_set", "--json"
    )


def test_one_asset_its_versions_and_diffs_are_the_cli_s(world: tuple[str, TestClient]) -> None:
    catalog, client = world
    every = steward(catalog, "assets", "--json")
    versioned = next(a for a in every if a["version"] >= 2)
    uri = versioned["uri"]
    segment = quote(uri, safe="")
    shown = steward(catalog, "show", uri, "--json")
    assert get(client, f"/assets/{segment}") == shown
    # which source said what about it (its evidence), as `show` prints it
    assert shown["sources"] and all(s["source"] and s["asserted_at"] for s in shown["sources"])
    assert get(client, f"/assets/{segment}/versions")["versions"] == steward(
        catalog, "history", uri, "--json"
    )
    assert get(client, f"/assets/{segment}/diff", v1="1", v2="2") == steward(
        catalog, "diff", uri, "1", "2", "--json"
    )
    missing = client.get(f"{BASE}/assets/{quote('nowhere/nothing', safe='')}")
    assert missing.status_code == 404 and missing.json()["code"] == 404
    bad = client.get(f"{BASE}/assets/{segment}/diff", params={"v1": "one", "v2": "2"})
    assert bad.status_code == 400


def test_findings_models_and_coverage(world: tuple[str, TestClient]) -> None:
    catalog, client = world
    findings = steward(catalog, "findings", "--json")
    assert findings, "the check found nothing to compare"
    assert get(client, "/findings")["findings"] == findings
    assert get(client, "/findings", all="true")["findings"] == steward(
        catalog, "findings", "--all", "--json"
    )
    models = steward(catalog, "models", "list", "--json")
    assert [b["asset"] for m in models for b in m["bindings"]] == ["grandmas.kitchen/apples"]
    assert get(client, "/models")["models"] == models
    queries = steward(catalog, "models", "queries", "--json")
    assert {"purpose": "fruit-search", "queries": "embed@2", "indexes": 0} in queries
    answer = get(client, "/models/queries")
    assert answer["queries"] == queries and answer["totalCount"] == len(queries)
    live = steward(catalog, "assets", "--live", "--json")
    coverage = {c["kind"]: c for c in get(client, "/coverage")["coverage"]}
    assert {k: c["assets"] for k, c in coverage.items()} == {
        kind: sum(a["kind"] == kind for a in live) for kind in {a["kind"] for a in live}
    }
    shown = {
        a["uri"]: steward(catalog, "show", a["uri"], "--json")["upstream"]
        for a in live
        if a["kind"] == "job"
    }
    assert coverage["job"]["with_upstream"] == sum(
        1 for ups in shown.values() if any(u["kind"] != "column_lineage" for u in ups)
    )


def test_lineage_coverage_is_the_checks(world: tuple[str, TestClient]) -> None:
    catalog, client = world
    result = CliRunner().invoke(cli, ["--catalog", catalog, "check", "--json", "--coverage"])
    assert result.exit_code in (0, 1), result.output
    checked = json.loads(result.stdout)["coverage"]
    assert checked, "the check counted no kind"
    answer = get(client, "/coverage/lineage")
    assert answer["coverage"] == checked
    assert {kind: points[-1]["traced"] for kind, points in answer["trend"].items()} == {
        kind: f["traced"] for kind, f in checked.items()
    }
