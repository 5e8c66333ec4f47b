"""Property-based: whatever a client sends, steward's API answers without a 5xx and as its own
OpenAPI document says (schemathesis, over the app's ASGI interface).

steward's routes are checked for the status, the content type and the body
against the response schemas they declare; Marquez's routes (whose bodies
are checked against Marquez's own document in test_marquez_schema.py) for
never answering a server error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog.db import Store
from lineage.api.steward_routes import PREFIX
from lineage.server import create_app
from tests.lineage.test_steward_api import build_world, steward

STEWARD = "^/api/steward/v1/"
TOKEN = "schema-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STEWARD_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    folder = tmp_path_factory.mktemp("schema")
    url = f"sqlite:///{folder / 'c.db'}"
    build_world(url, Path(folder))
    store = Store(url)
    yield url, create_app(store, token=TOKEN)
    store.dispose()


@pytest.fixture(scope="module")
def api_schema(catalog: tuple[str, Any]) -> Any:
    _, app = catalog
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)


FAST = settings(
    max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def _fuzz(api_schema: Any, path_regex: str, checks: list[Any]) -> int:
    """Run generated requests against each GET operation whose path matches; how many."""
    operations = [
        result.ok()
        for result in api_schema.include(path_regex=path_regex, method="GET").get_all_operations()
    ]
    for operation in operations:

        @FAST
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(headers=AUTH, checks=checks)

        run()
    return len(operations)


def test_steward_routes_answer_as_documented(api_schema: Any) -> None:
    assert _fuzz(api_schema, STEWARD, STEWARD_CHECKS) >= 9


def test_marquez_routes_never_fail_on_any_input(api_schema: Any) -> None:
    assert _fuzz(api_schema, "^/api/v1/", [not_a_server_error]) >= 20


def test_every_asset_answers_as_documented(api_schema: Any, catalog: tuple[str, Any]) -> None:
    """The generated cases rarely name a real asset: each real one, on each asset route."""
    url, _ = catalog
    assets = steward(url, "assets", "--json")
    assert len(assets) > 20
    # The client's serde examples name a job and a dataset `openlineage/name`: two assets,
    # the dataset's URI a name of both, so it is chosen by `dataset:`.
    twins = {a["uri"].removeprefix("job:") for a in assets if a["kind"] == "job"}
    assert "openlineage/name" in twins
    seen = set()
    for path in ("/assets/{asset}", "/assets/{asset}/versions", "/assets/{asset}/diff"):
        operation = api_schema[f"/api/steward/v1{path}"]["GET"]
        diff = path.endswith("diff")
        for asset in [a for a in assets if a["version"] or not diff]:
            query = {"v1": "1", "v2": str(asset["version"])} if diff else None
            ref = f"dataset:{asset['uri']}" if asset["uri"] in twins else asset["uri"]
            segment = quote(ref, safe="")  # one path segment, as clients send it
            case = operation.Case(path_parameters={"asset": segment}, query=query)
            response = case.call_and_validate(headers=AUTH, checks=STEWARD_CHECKS)
            seen.add(response.status_code)
    assert seen == {200}


def test_every_steward_route_documents_its_answer(api_schema: Any) -> None:
    paths = {p: item for p, item in api_schema.raw_schema["paths"].items() if p.startswith(PREFIX)}
    assert len(paths) >= 9
    for path, item in paths.items():
        responses = item["get"]["responses"]
        assert "$ref" in responses["200"]["content"]["application/json"]["schema"], path
        assert {"400", "401", "404"} <= set(responses) and "422" not in responses, path
