"""A real Feast repository (file offline store, SQLite online store), scanned by steward."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from catalog.cli import cli
from tests.connectors.conftest import copy_feast_repo

pytest.importorskip("feast", reason="the feast extra is not installed: pip install '.[feast]'")
pytestmark = pytest.mark.slow

FEATURE_STORE_YAML = """\
project: shop
registry: data/registry.db
provider: local
online_store:
    type: sqlite
    path: data/online_store.db
offline_store:
    type: file
entity_key_serialization_version: 3
"""

DEFINITIONS = """\
from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"])
activity_source = FileSource(name="activity_source", path="data/activity.parquet",
                             timestamp_field="event_timestamp")
user_activity = FeatureView(
    name="user_activity", entities=[user], ttl=timedelta(days=3650),
    schema=[Field(name="clicks_7d", dtype=Int64), Field(name="country", dtype=String)],
    online=True, source=activity_source, owner="ml-platform@example.com",
)
request = RequestSource(name="request", schema=[Field(name="boost", dtype=Int64)])


@on_demand_feature_view(sources=[user_activity, request],
                        schema=[Field(name="clicks_boosted", dtype=Float64)])
def boosted(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["clicks_boosted"] = inputs["clicks_7d"] * 1.0 + inputs["boost"]
    return out


churn_service = FeatureService(name="churn_v1", features=[user_activity[["clicks_7d"]], boosted])
"""


def feast_apply(repo: Path) -> None:
    feast = Path(sys.executable).with_name("feast")
    result = subprocess.run([str(feast), "apply"], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def repo(feast_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop repository (three users, applied and materialised), a copy of this module's."""
    return copy_feast_repo(feast_shop, tmp_path_factory.mktemp("feast") / "repo")


def steward(catalog: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)


def test_scan_change_and_rescan(repo: Path, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    first = steward(catalog, "scan", f"feast://{repo}", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["summary"]["created"] == 4
    assets = {a["name"]: a for a in json.loads(steward(catalog, "assets", "--json").stdout)}
    view = assets["user_activity"]
    assert view["namespace"] == "feast://shop" and view["kind"] == "feature_set"
    assert [(f["name"], f["type"]) for f in view["fields"]] == [
        ("clicks_7d", "Int64"),
        ("country", "String"),
    ]
    parquet = f"file://{repo / 'data' / 'activity.parquet'}"
    shown = json.loads(steward(catalog, "show", "feast://shop/user_activity", "--json").stdout)
    assert shown["upstream"] == [{"uri": parquet, "kind": "feature_source"}]
    assert shown["properties"]["join_keys"] == {"user": ["user_id"]}
    boosted = json.loads(steward(catalog, "show", "boosted", "--json").stdout)
    assert 'inputs["clicks_7d"]*1.0+inputs["boost"]' in boosted["properties"]["transformation"]
    assert boosted["upstream"] == [
        {"uri": "feast://shop/source/request", "kind": "feature_source"},
        {"uri": view["uri"], "kind": "feature_source"},
    ]
    service = json.loads(steward(catalog, "show", "churn_v1", "--json").stdout)
    assert service["kind"] == "feature_service"
    assert service["properties"]["features"] == {
        "boosted": ["clicks_boosted"],
        "user_activity": ["clicks_7d"],
    }

    again = json.loads(steward(catalog, "scan", f"feast://{repo}", "--json").stdout)
    assert again["summary"] == {"created": 0, "changed": 0, "unchanged": 4, "deleted": 0}

    # A changed definition, applied with Feast and scanned again: a new version.
    (repo / "definitions.py").write_text(
        DEFINITIONS.replace('inputs["clicks_7d"] * 1.0', 'inputs["clicks_7d"] * 2.0')
    )
    feast_apply(repo)
    changed = json.loads(steward(catalog, "scan", f"feast://{repo}", "--json").stdout)
    (change,) = changed["changes"]
    assert (change["uri"], change["version"]) == ("feast://shop/boosted", 2)
    assert change["diff"]["changed"][0]["key"] == "transformation"


def test_samples_pulled_from_the_stores(repo: Path, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    steward(catalog, "scan", f"feast://{repo}")
    entities = tmp_path / "entities.csv"
    entities.write_text("user_id\n1\n2\n3\n")
    result = steward(
        catalog, "features", "sample", "user_activity", "--from-feast", str(entities), "--json"
    )
    assert result.exit_code == 0, result.output
    offline, online = json.loads(result.stdout)["samples"]
    assert offline["rows"] == online["rows"] == 3
    assert offline["features"]["clicks_7d"]["mean"] == pytest.approx(5.0)
    assert online["features"]["country"]["top"][0] == ["de", 2]


def test_not_a_repository(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--catalog", f"sqlite:///{tmp_path / 'c.db'}", "scan", f"feast://{tmp_path}"]
    )
    assert result.exit_code == 2
    assert "not a Feast repository" in result.stderr


def test_missing_extra_names_it(tmp_path: Path) -> None:
    """Without Feast installed (simulated by blocking its import), the error names the extra."""
    code = (
        "import sys; sys.modules['feast'] = None\n"
        "from catalog.cli import main\n"
        f"sys.argv = ['steward', '--catalog', 'sqlite:///{tmp_path / 'c.db'}', 'scan',"
        f" 'feast://{tmp_path}']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert "pip install 'ai-steward[feast]'" in result.stderr
