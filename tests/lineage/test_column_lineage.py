"""Column lineage in full: transformations (type, subtype, description, masking) and
dataset-level dependencies, from the Spark integration's own `pysparkCLLEnd` event."""

from __future__ import annotations

import copy
import json
from typing import Any

from click.testing import CliRunner

from catalog.cli import cli
from catalog.db import Store
from lineage.ingest import Ingester
from lineage.openlineage import loads
from tests.lineage.test_lifecycle import SPARK, complete

TARGET = "file:///tmp/cll_test/tbl1"
SOURCE1 = "file:///tmp/cll_test/cll_source1"
SOURCE2 = "file:///tmp/cll_test/cll_source2"


def cll_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((SPARK / "pysparkCLLEnd.json").read_text())
    return event


def ingest(store: Store, event: dict[str, Any]) -> None:
    body = complete(event, "cll_job")
    (result,) = Ingester(store).ingest([(body, loads(body), None)])
    assert result.status == "accepted", result.error


def upstream(url: str, *extra: str) -> Any:
    args = ["--catalog", url, "lineage", "upstream", "--fields", *extra, TARGET]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in extra else result.stdout


def _how(walk: Any, source: str, target_field: str, source_field: str) -> list[dict[str, Any]]:
    for edge in walk["edges"]:
        if edge["source"] == source and edge["kind"] == "column_lineage":
            found: list[dict[str, Any]] = edge["transformations"][target_field][source_field]
            return found
    raise AssertionError(f"no column lineage from {source}")


def test_transformations_are_kept_and_shown(store: Store, catalog_url: str) -> None:
    ingest(store, cll_event())
    walk = upstream(catalog_url, "--json")
    assert _how(walk, SOURCE1, "ident", "a")[0] == {
        "type": "DIRECT",
        "subtype": "IDENTITY",
        "description": "t1.a AS ident",
        "masking": False,
    }
    join = _how(walk, SOURCE2, "ident", "a")
    assert [(t["type"], t["subtype"]) for t in join] == [
        ("INDIRECT", "JOIN"),
        ("INDIRECT", "FILTER"),
    ]
    text = upstream(catalog_url)
    assert f"{TARGET}.trans <- " in text and "DIRECT/TRANSFORMATION" in text
    assert "masked" not in text


def test_a_masked_field_is_shown_as_masked(store: Store, catalog_url: str) -> None:
    event = cll_event()
    trans = event["outputs"][0]["facets"]["columnLineage"]["fields"]["trans"]
    trans["inputFields"][0]["transformations"][0]["masking"] = True  # concat(...) masks b
    ingest(store, event)
    text = upstream(catalog_url)
    line = next(x for x in text.splitlines() if f"{TARGET}.trans <- " in x and SOURCE1 in x)
    assert f"{SOURCE1}.b (DIRECT/TRANSFORMATION, INDIRECT/GROUP_BY, masked)" in line


def test_without_transformations_only_the_field_mapping_is_kept(
    store: Store, catalog_url: str
) -> None:
    """The twin: the same lineage with no `transformations` says nothing of how."""
    event = copy.deepcopy(cll_event())
    for spec in event["outputs"][0]["facets"]["columnLineage"]["fields"].values():
        for src in spec["inputFields"]:
            src.pop("transformations", None)
    ingest(store, event)
    walk = upstream(catalog_url, "--json")
    edges = [e for e in walk["edges"] if e["kind"] == "column_lineage"]
    assert edges and all("transformations" not in e for e in edges)
    assert sorted(next(e for e in edges if e["source"] == SOURCE1)["fields"]["ident"]) == ["a", "b"]


def test_dataset_level_dependencies_are_kept_as_the_whole_output(
    store: Store, catalog_url: str
) -> None:
    event = cll_event()
    event["outputs"][0]["facets"]["columnLineage"]["dataset"] = [
        {
            "namespace": "file",
            "name": "/tmp/cll_test/cll_source2",
            "field": "a",
            "transformations": [
                {"type": "INDIRECT", "subtype": "JOIN", "description": "ON t1.a = t2.a"}
            ],
        }
    ]
    ingest(store, event)
    walk = upstream(catalog_url, "--json")
    edge = next(
        e for e in walk["edges"] if e["source"] == SOURCE2 and e["kind"] == "column_lineage"
    )
    assert edge["fields"]["*"] == ["a"]
    assert edge["transformations"]["*"]["a"] == [
        {"type": "INDIRECT", "subtype": "JOIN", "description": "ON t1.a = t2.a"}
    ]
