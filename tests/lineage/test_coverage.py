"""Lineage coverage of collections and feature sets: real Qdrant (local mode), a real
features.toml, and the source table described by an OpenLineage event of Spark's shape.

Each traced asset has an untraced twin that lacks one thing (a feature set its
source; a collection its embedding model and its source): the rule names what
is missing and how to record it, and the figures are exact.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from click.testing import CliRunner
from openlineage.client.event_v2 import Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset
from openlineage.client.serde import Serde
from qdrant_client import QdrantClient, models

from catalog.cli import cli
from catalog.coverage import AssetInfo, CoverageData, coverage, find_gaps

TABLE_NS, TABLE = "postgres://db:5432", "shop.public.events"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
FEATURES = f"""
[entities.user_id]
join_keys = ["user_id"]

[feature_sets.activity]
entities = ["user_id"]
source = "{TABLE_NS}/{TABLE}"

[feature_sets.activity.features.clicks]
dtype = "int64"
offline = "count(*)"
online = "count(*)"

[feature_sets.orphan]
entities = ["user_id"]

[feature_sets.orphan.features.clicks]
dtype = "int64"
offline = "count(*)"
online = "count(*)"
"""


def steward(catalog: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return result


def describe_table(tmp_path: Path) -> Path:
    """A file with Spark's event writing the source table, with its schema."""
    field = schema_dataset.SchemaDatasetFacetFields
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[field(name="user_id", type="long"), field(name="body", type="string")]
    )
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime(2026, 11, 30, 8, tzinfo=UTC).isoformat(),
        run=Run(runId=str(uuid4())),
        job=Job(namespace="spark", name="load_events"),
        producer=PRODUCER,
        inputs=[],
        outputs=[OutputDataset(namespace=TABLE_NS, name=TABLE, facets={"schema": schema})],
    )
    events = tmp_path / "events.json"
    events.write_text(str(Serde.to_json(event)))
    return events


def test_collections_and_feature_sets(tmp_path: Path) -> None:
    events = describe_table(tmp_path)
    features = tmp_path / "features.toml"
    features.write_text(FEATURES)
    qdrant = tmp_path / "qdrant"
    client = QdrantClient(path=str(qdrant))
    params = models.VectorParams(size=4, distance=models.Distance.COSINE)
    metadata = {
        "embedding_model": "minilm",
        "embedding_revision": "1",
        "embedding_source": f"{TABLE_NS}/{TABLE}",
    }
    client.create_collection("docs", vectors_config=params, metadata=metadata)
    client.create_collection("bare", vectors_config=params)
    client.close()

    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    steward(catalog, "ingest", str(events))
    steward(catalog, "scan", str(features))
    steward(catalog, "scan", f"qdrant+local://{qdrant}")
    found = json.loads(steward(catalog, "check", "--json", "--coverage").stdout)
    gaps = {
        (f["assets"][0], f["evidence"]["missing"]): f
        for f in found["findings"]
        if f["rule"] == "untracked_lineage"
    }
    bare = f"qdrant+local://{qdrant}/bare"
    orphan = f"features://{features}/orphan"
    assert set(gaps) == {
        (bare, "no_embedding_model"),
        (bare, "no_source"),
        (orphan, "no_feature_source"),
    }
    assert "embedding_model" in gaps[(bare, "no_embedding_model")]["remedy"]
    assert "embedding_source" in gaps[(bare, "no_source")]["remedy"]
    assert "features.toml" in gaps[(orphan, "no_feature_source")]["remedy"]
    assert found["coverage"] == {
        "collection": {"assets": 2, "traced": 1, "percent": 50.0, "untraced": [bare]},
        "feature_set": {"assets": 2, "traced": 1, "percent": 50.0, "untraced": [orphan]},
    }
    text = steward(catalog, "check", "--min-coverage", "collection=50").stdout
    assert "collection" in text and "50.0%" in text


def test_an_unknown_on_the_way_leaves_an_asset_untraced() -> None:
    """A model reading a view of an undescribed table is untraced; reading it directly, the
    table is a gap of its own (a dataset a model reads that nothing describes)."""
    assets = {
        "m": AssetInfo("m", "m", "model", False),
        "v": AssetInfo("v", "v", "view", False),
        "t": AssetInfo("t", "t", "table", True),
    }
    data = CoverageData(assets, {"m": {"v"}, "v": {"t"}})
    assert find_gaps(data) == []
    assert coverage(data)["model"]["traced"] == 0
    direct = CoverageData(assets, {"m": {"t"}})
    (gap,) = find_gaps(direct)
    assert (gap.uri, gap.missing, gap.also) == ("t", "undescribed", ["m"])
    assets["t"] = AssetInfo("t", "t", "table", False)
    assert find_gaps(data) == [] and coverage(data)["model"]["traced"] == 1
    # A model whose lineage reaches no data at all (only a job) is not traced.
    alone = CoverageData({"m": assets["m"], "j": AssetInfo("j", "j", "job", False)}, {"m": {"j"}})
    assert coverage(alone)["model"] == {
        "assets": 1,
        "traced": 0,
        "percent": 0.0,
        "untraced": ["m"],
    }
