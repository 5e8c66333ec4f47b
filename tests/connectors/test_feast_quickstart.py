"""Feast's own quickstart, as a new user meets it, end to end with steward.

`feast init` (the local template: parquet files generated on the spot, no
network), `feast apply`, `feast materialize-incremental`, all through the
real `feast` CLI; then steward scans the repository, re-scans it, sees one
changed view, samples the views from Feast's offline and online stores and
checks them: nothing on the untouched template, and a planted change to the
transformation that feeds the online store is found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from catalog.cli import cli
from tests.connectors.conftest import applied_template, copy_feast_repo

try:
    import feast  # noqa: F401
except ImportError:  # pragma: no cover
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("the feast extra is not installed: pip install '.[feast]'", allow_module_level=True)

pytestmark = pytest.mark.slow
FEAST = Path(sys.executable).with_name("feast")
VIEWS = (
    "driver_hourly_stats",
    "driver_hourly_stats_fresh",
    "transformed_conv_rate",
    "transformed_conv_rate_fresh",
)


def feast_cli(repo: Path, *args: str) -> str:
    result = subprocess.run(
        [str(FEAST), *args], cwd=repo, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def steward(catalog: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)


def as_json(catalog: str, *args: str) -> Any:
    result = steward(catalog, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`feast init demo && cd demo/feature_repo && feast apply && feast materialize-incremental`,
    once; every test changes a copy of its own (`copy_feast_repo`)."""
    root = tmp_path_factory.mktemp("quickstart")
    feast_cli(root, "init", "demo")
    path = root / "demo" / "feature_repo"
    feast_cli(path, "apply")
    feast_cli(path, "materialize-incremental", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return applied_template(path, tmp_path_factory)


@pytest.fixture(scope="module")
def repo(applied: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_feast_repo(applied, tmp_path_factory.mktemp("demo") / "feature_repo")


def registry(repo: Path) -> dict[str, set[str]]:
    """What Feast's own registry says the repository holds, by steward kind."""
    from feast import FeatureStore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = FeatureStore(repo_path=str(repo))
        views = {v.name for v in store.list_all_feature_views()}
        services = {s.name for s in store.list_feature_services()}
        sources = {
            f"source/{s.name}"
            for s in store.list_data_sources()
            if type(s).__name__ in ("PushSource", "RequestSource")
        }
    return {"feature_set": views, "feature_service": services, "dataset": sources}


def test_scan_rescan_and_one_changed_view(repo: Path, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    url = f"feast://{repo}"
    plan = as_json(catalog, "scan", url, "--plan")
    first = as_json(catalog, "scan", url)
    assert first["applied"] is True
    assert first["summary"] == {**plan["summary"], "created": len(plan["changes"])}

    # Every object of the template is in the catalog, under the project's namespace.
    held: dict[str, set[str]] = {}
    for asset in as_json(catalog, "assets"):
        if asset["namespace"] == "feast://demo":
            held.setdefault(asset["kind"], set()).add(asset["name"])
    expected = registry(repo)
    assert held == expected
    assert expected["dataset"] == {
        "source/driver_stats_push_source",
        "source/driver_quality_labels_push",
        "source/vals_to_add",
    }
    assert first["summary"]["created"] == sum(map(len, expected.values()))

    # Lineage from the push source and from the request source.
    parquet = f"file://{repo / 'data' / 'driver_stats.parquet'}"
    fresh = as_json(catalog, "show", "driver_hourly_stats_fresh")
    assert fresh["upstream"] == [
        {"uri": "feast://demo/source/driver_stats_push_source", "kind": "feature_source"},
        {"uri": parquet, "kind": "feature_source"},
    ]
    assert fresh["properties"]["join_keys"] == {"driver": ["driver_id"]}
    assert fresh["observed"]["feast_project"]["description"] == "A project for driver statistics"
    on_demand = as_json(catalog, "show", "transformed_conv_rate")
    assert on_demand["upstream"] == [
        {"uri": "feast://demo/driver_hourly_stats", "kind": "feature_source"},
        {"uri": "feast://demo/source/vals_to_add", "kind": "feature_source"},
    ]
    request = as_json(catalog, "show", "source/vals_to_add")
    assert [(f["name"], f["type"]) for f in request["fields"]] == [
        ("val_to_add", "Int64"),
        ("val_to_add_2", "Int64"),
    ]
    upstream = as_json(catalog, "lineage", "upstream", "driver_activity_v3")
    assert {n["uri"] for n in upstream["nodes"]} >= {
        "feast://demo/source/driver_stats_push_source",
        "feast://demo/source/vals_to_add",
        parquet,
    }
    labels = as_json(catalog, "show", "driver_quality_labels")
    assert labels["properties"]["feast_type"] == "label_view"
    assert labels["upstream"][0]["uri"] == "feast://demo/source/driver_quality_labels_push"

    # Unchanged: no new version anywhere.
    again = as_json(catalog, "scan", url)
    assert again["summary"] == {
        "created": 0,
        "changed": 0,
        "unchanged": first["summary"]["created"],
        "deleted": 0,
    }

    # One view changed (its time to live), applied with Feast: one new version.
    definitions = repo / "feature_definitions.py"
    text = definitions.read_text()
    changed = text.replace("ttl=timedelta(days=1)", "ttl=timedelta(days=2)", 1)
    assert changed != text
    definitions.write_text(changed)
    feast_cli(repo, "apply")
    rescan = as_json(catalog, "scan", url)
    (change,) = rescan["changes"]
    assert (change["uri"], change["action"], change["version"]) == (
        "feast://demo/driver_hourly_stats",
        "update",
        2,
    )
    (what,) = change["diff"]["changed"]
    assert (what["key"], what["from"], what["to"]) == ("ttl_seconds", 86400.0, 172800.0)
    assert not change["diff"]["added"] and not change["diff"]["removed"]


def findings(catalog: str) -> list[dict[str, Any]]:
    result = steward(catalog, "check", "--fail-on", "warning", "--json")
    assert result.exit_code in (0, 1), result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)
    assert result.exit_code == int(any(f["severity"] != "info" for f in found))
    return found


def sample(catalog: str, view: str, entities: Path) -> dict[str, Any]:
    result = steward(catalog, "features", "sample", view, "--from-feast", str(entities), "--json")
    assert result.exit_code == 0, result.output
    stored: dict[str, Any] = json.loads(result.stdout)
    return stored


def test_samples_and_check_find_a_planted_online_change(repo: Path, tmp_path: Path) -> None:
    import pandas as pd
    from feast import FeatureStore
    from feast.data_source import PushMode

    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    assert steward(catalog, "scan", f"feast://{repo}").exit_code == 0
    stats = pd.read_parquet(repo / "data" / "driver_stats.parquet")
    drivers = sorted(stats["driver_id"].unique().tolist())
    entities = tmp_path / "entities.csv"
    entities.write_text(
        "driver_id,val_to_add,val_to_add_2\n"
        + "".join(f"{d},{i},{10 * i}\n" for i, d in enumerate(drivers, 1))
    )

    # An on-demand view needs its request columns: one line, nothing stored.
    keys_only = tmp_path / "keys.csv"
    keys_only.write_text("driver_id\n" + "".join(f"{d}\n" for d in drivers))
    sample_args = ["features", "sample", "transformed_conv_rate", "--from-feast"]
    refused = CliRunner().invoke(cli, ["--catalog", catalog, *sample_args, str(keys_only)])
    assert refused.exit_code == 2
    assert refused.stderr.strip() == "Error: entity rows lack the request column 'val_to_add'"

    # The untouched template: every view sampled from both stores, and no skew.
    for view in VIEWS:
        stored = sample(catalog, view, entities)
        offline, online = stored["samples"]
        assert offline["rows"] == online["rows"] == len(drivers)
        assert set(offline["features"]) == set(online["features"]) != set()
    clean = findings(catalog)
    assert not [f for f in clean if f["rule"].startswith("feature_")], clean

    # A streaming job with a changed transformation (conversion rate as a
    # percentage) pushes to the online store through the template's push source.
    latest = stats.sort_values("event_timestamp").groupby("driver_id").tail(1).copy()
    latest["conv_rate"] = latest["conv_rate"] * 100
    latest["event_timestamp"] = pd.Timestamp.now(tz="UTC")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FeatureStore(repo_path=str(repo)).push(
            "driver_stats_push_source", latest, to=PushMode.ONLINE
        )
    for view in VIEWS:
        sample(catalog, view, entities)
    skewed = {
        (f["assets"][0], f["evidence"]["feature"])
        for f in findings(catalog)
        if f["rule"] == "feature_value_skew"
    }
    assert skewed == {
        ("feast://demo/driver_hourly_stats_fresh", "conv_rate"),
        ("feast://demo/transformed_conv_rate_fresh", "conv_rate_plus_val1"),
        ("feast://demo/transformed_conv_rate_fresh", "conv_rate_plus_val2"),
    }


STREAM_VIEW = """

from feast import KafkaSource
from feast.data_format import JsonFormat
from feast.stream_feature_view import stream_feature_view

driver_stats_stream_source = KafkaSource(
    name="driver_stats_stream",
    kafka_bootstrap_servers="localhost:9092",
    topic="drivers",
    timestamp_field="event_timestamp",
    batch_source=driver_stats_source,
    message_format=JsonFormat(
        schema_json="driver_id integer, event_timestamp timestamp, conv_rate double"
    ),
    watermark_delay_threshold=timedelta(minutes=5),
)


@stream_feature_view(
    entities=[driver],
    ttl=timedelta(days=1),
    mode="pandas",
    schema=[Field(name="conv_percentage", dtype=Float32)],
    timestamp_field="event_timestamp",
    online=True,
    source=driver_stats_stream_source,
)
def driver_hourly_stats_stream(df):
    df["conv_percentage"] = df["conv_rate"] * 100.0
    return df
"""


def test_a_stream_view_added_to_the_template(applied: Path, tmp_path: Path) -> None:
    """Feast's documented stream view (Kafka source, pandas transformation), added to a
    copy of the applied template and applied."""
    copy = copy_feast_repo(applied, tmp_path / "demo" / "feature_repo")
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    url = f"feast://{copy}"
    before = as_json(catalog, "scan", url)["summary"]["created"]
    with (copy / "feature_definitions.py").open("a") as definitions:
        definitions.write(STREAM_VIEW)
    feast_cli(copy, "apply")
    added = as_json(catalog, "scan", url)
    assert added["summary"] == {"created": 2, "changed": 0, "unchanged": before, "deleted": 0}
    assert {c["uri"] for c in added["changes"]} == {
        "feast://demo/driver_hourly_stats_stream",
        "feast://demo/source/driver_stats_stream",
    }
    stream = as_json(catalog, "show", "driver_hourly_stats_stream")
    assert stream["properties"]["feast_type"] == "stream_feature_view"
    assert 'df["conv_percentage"]=df["conv_rate"]*100.0' in stream["properties"]["transformation"]
    assert stream["upstream"] == [
        {"uri": "feast://demo/source/driver_stats_stream", "kind": "feature_source"},
        {"uri": f"file://{copy / 'data' / 'driver_stats.parquet'}", "kind": "feature_source"},
    ]
    kafka = as_json(catalog, "show", "source/driver_stats_stream")
    assert kafka["properties"]["feast_type"] == "kafka_source"
    assert kafka["properties"]["batch_source"] == f"file://{copy / 'data' / 'driver_stats.parquet'}"

    # Its online store gone (deleted): one line, exit 2.
    (copy / "data" / "online_store.db").unlink()
    entities = tmp_path / "entities.csv"
    entities.write_text("driver_id\n1001\n")
    sample_args = ["features", "sample", "driver_hourly_stats", "--from-feast"]
    result = CliRunner().invoke(cli, ["--catalog", catalog, *sample_args, str(entities)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {copy}: Feast cannot read driver_hourly_stats from its ")
