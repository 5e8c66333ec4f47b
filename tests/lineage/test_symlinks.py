"""Two names of one table (a Hive metastore name and the path Spark wrote), tied by a
`symlinks` facet, are one asset whatever order the events arrive in.

Events in the shape of the Spark integration's `pysparkSymlinksComplete`, built with
the openlineage-python client's classes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count
from typing import Any
from uuid import uuid4

import pytest
from click.testing import CliRunner
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset, symlinks_dataset
from openlineage.client.serde import Serde

from catalog.cli import cli
from catalog.db import Store
from lineage.ingest import Ingester
from lineage.openlineage import loads

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
PATH = "file:///tmp/warehouse/test"
HIVE = "hive://metastore:9083/default.test"
_clock = count()


def _event(job: str, inputs: list[Any], outputs: list[Any]) -> str:
    out = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime(2026, 11, 30, 8, next(_clock), tzinfo=UTC).isoformat(),
        run=Run(runId=str(uuid4())),
        job=Job(namespace="spark", name=job),
        producer=PRODUCER,
        inputs=inputs,
        outputs=outputs,
    )
    return str(Serde.to_json(out))


SCHEMA = schema_dataset.SchemaDatasetFacet(
    fields=[
        schema_dataset.SchemaDatasetFacetFields(name="key", type="integer"),
        schema_dataset.SchemaDatasetFacetFields(name="value", type="string"),
    ]
)
TIE = symlinks_dataset.SymlinksDatasetFacet(
    identifiers=[
        symlinks_dataset.Identifier(
            namespace="hive://metastore:9083", name="default.test", type="TABLE"
        )
    ]
)


def writer(tied: bool) -> str:
    facets = {"schema": SCHEMA, **({"symlinks": TIE} if tied else {})}
    return _event(
        "write_test",
        [],
        [OutputDataset(namespace="file", name="/tmp/warehouse/test", facets=facets)],
    )


def reader() -> str:
    dataset = InputDataset(namespace="hive://metastore:9083", name="default.test")
    return _event("read_test", [dataset], [])


def ingest(store: Store, *bodies: str, together: bool = False) -> None:
    if together:  # one batch (a file, a batch post): one chunk of the ingester
        results = Ingester(store).ingest([(body, loads(body), None) for body in bodies])
        assert [r.status for r in results] == ["accepted"] * len(bodies)
        return
    for body in bodies:  # one request each, as producers send them
        (result,) = Ingester(store).ingest([(body, loads(body), None)])
        assert result.status == "accepted", result.error


def steward(url: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--catalog", url, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


ORDERS = {
    "reader first": lambda: [reader(), writer(tied=True)],
    "writer first": lambda: [writer(tied=True), reader()],
    "both known, then tied": lambda: [writer(tied=False), reader(), writer(tied=True)],
}


@pytest.mark.parametrize("together", [False, True], ids=["requests", "one batch"])
@pytest.mark.parametrize("order", list(ORDERS))
def test_symlinked_names_are_one_asset_in_any_order(
    store: Store, catalog_url: str, order: str, together: bool
) -> None:
    ingest(store, *ORDERS[order](), together=together)
    assets = steward(catalog_url, "assets", "--json")
    datasets = [a for a in assets if a["kind"] != "job"]
    assert len(datasets) == 1, [a["uri"] for a in datasets]
    (dataset,) = datasets
    assert [f["name"] for f in dataset["fields"]] == ["key", "value"]
    shown = steward(catalog_url, "show", "--json", dataset["uri"])
    assert {dataset["uri"], *shown["aliases"]} == {PATH, HIVE}
    down = steward(catalog_url, "lineage", "downstream", "--json", "spark/write_test")
    assert "job:spark/read_test" in {n["uri"] for n in down["nodes"]}
    if order == "both known, then tied" and not together:
        assert shown["merged"] == [
            {"uri": shown["aliases"][0], "merged_at": shown["merged"][0]["merged_at"]}
        ]
        assert shown["merged"][0]["merged_at"]


@pytest.mark.parametrize("together", [False, True], ids=["requests", "one batch"])
def test_untied_names_stay_two_assets(store: Store, catalog_url: str, together: bool) -> None:
    """The twin: without a symlink nothing says the two names are one table."""
    ingest(store, writer(tied=False), reader(), together=together)
    datasets = [a for a in steward(catalog_url, "assets", "--json") if a["kind"] != "job"]
    assert sorted(a["uri"] for a in datasets) == sorted([HIVE, PATH])
    down = steward(catalog_url, "lineage", "downstream", "--json", "spark/write_test")
    assert "spark/read_test" not in {n["uri"] for n in down["nodes"]}


KEY_ONLY = schema_dataset.SchemaDatasetFacet(
    fields=[schema_dataset.SchemaDatasetFacetFields(name="key", type="integer")]
)


def _writes(job: str, namespace: str, name: str, **facets: Any) -> str:
    return _event(job, [], [OutputDataset(namespace=namespace, name=name, facets=facets)])


def _check(url: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--catalog", url, "check", "--json"])
    assert result.exit_code in (0, 1), result.output
    return [f for f in json.loads(result.stdout) if f["rule"] == "breaking_schema_change"]


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied twin"])
def test_a_finding_follows_its_asset_into_a_merge(
    store: Store, catalog_url: str, tied: bool
) -> None:
    """A breaking change found on the Hive name, acknowledged; then the names are tied
    and merged: the finding is about the kept name now, first seen when it was, and
    still acknowledged."""
    ingest(
        store,
        _writes("write_path", "file", "/tmp/warehouse/test", schema=SCHEMA),
        _writes("load_hive", "hive://metastore:9083", "default.test", schema=SCHEMA),
        reader(),
        _writes("load_hive", "hive://metastore:9083", "default.test", schema=KEY_ONLY),
    )
    (before,) = _check(catalog_url)
    assert before["assets"][0] == HIVE
    acked = CliRunner().invoke(
        cli, ["--catalog", catalog_url, "findings", "ack", before["id"], "--reason", "migrating"]
    )
    assert acked.exit_code == 0, acked.output
    first_seen = steward(catalog_url, "findings", "--json")[0]["first_seen"]

    facets = {"schema": KEY_ONLY, **({"symlinks": TIE} if tied else {})}
    ingest(store, _writes("write_path", "file", "/tmp/warehouse/test", **facets))
    (after,) = _check(catalog_url)
    shown = steward(catalog_url, "findings", "--all", "--json")
    now = {f["id"]: f for f in shown}
    assert now[after["id"]]["status"] == "open"
    assert after["acknowledged"] is not None
    assert now[after["id"]]["first_seen"] == first_seen
    if tied:
        assert after["assets"][0] == PATH and after["id"] != before["id"]
        assert now[before["id"]]["status"] == "resolved"
    else:
        assert after["id"] == before["id"]
