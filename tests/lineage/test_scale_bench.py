"""The scale benchmark at a tiny size on PostgreSQL: its catalog is one steward reads, it runs."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from benchmarks import bench_scale
from benchmarks.scale_catalog import build
from catalog.cli import cli
from catalog.db import Store
from lineage.graph import LineageGraph
from lineage.openlineage import digest_of, parse_event
from tests.pg import database_url, temporary_database

ASSETS, EDGES, EVENTS = 250, 750, 600


@pytest.fixture(scope="module")
def generated() -> object:
    with temporary_database("steward_scale") as name:
        url = database_url(name)
        Store(url).dispose()
        shape = build(url, ASSETS, EDGES, EVENTS, seed=3)
        yield url, shape


def test_the_generated_lineage_is_what_steward_reads(generated: tuple) -> None:
    url, shape = generated
    store = Store(url)
    with store.engine.connect() as conn:
        graph = LineageGraph.from_connection(conn)
    store.dispose()
    live = ASSETS - len(shape.deleted)
    dropped = sum(i in shape.deleted for ins, outs in shape.job_io for i in ins + outs)
    assert len(graph) == live
    assert graph.edge_count == EDGES - dropped
    j = 7
    reads = {e.source for e in graph.edges_into(shape.job_uri(j)) if e.kind == "reads"}
    inputs, outputs = shape.job_io[j]
    assert reads == {shape.dataset_uri(i) for i in inputs if i not in shape.deleted}
    writes = graph.downstream(shape.job_uri(j), depth=1)
    assert {n.uri for n, _ in writes.nodes} == {
        shape.dataset_uri(i) for i in outputs if i not in shape.deleted
    }


def test_accepted_events_parse_and_carry_their_digest_once(generated: tuple) -> None:
    url, _ = generated
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT digest, body, status FROM raw_event ORDER BY id").fetchall()
        sizes = conn.execute(
            "SELECT avg(octet_length(body)) FROM raw_event WHERE status = 'accepted'"
        ).fetchone()
    assert len(rows) == EVENTS
    accepted = [(d, b) for d, b, s in rows if s == "accepted"]
    assert len({d for d, _ in accepted}) == len(accepted)
    for digest, body in accepted:
        value = json.loads(body)
        assert digest_of(value) == digest
        parsed = parse_event(value, digest)
        assert parsed.job_name and parsed.outputs
    duplicates = {d for d, _, s in rows if s == "duplicate"}
    assert duplicates <= {d for d, _ in accepted}
    assert sizes is not None and 600 < sizes[0] < 2000


def test_steward_check_reads_the_generated_catalog(generated: tuple) -> None:
    url, shape = generated
    result = CliRunner().invoke(cli, ["-q", "--catalog", url, "check", "--json"])
    assert result.exit_code in (0, 1), result.output
    findings = json.loads(result.stdout)
    dropped = [f for f in findings if f["rule"] == "dropped_dataset_read"]
    readers = {
        shape.job_uri(j)
        for j, (ins, _) in enumerate(shape.job_io)
        if any(i in shape.deleted for i in ins)
    }
    assert readers, "the generated catalog has a deleted dataset that jobs read"
    assert {uri for f in dropped for uri in f["assets"]} >= readers


def test_the_benchmark_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    bench_scale.main(
        ["--assets", str(ASSETS), "--edges", str(EDGES), "--events", str(EVENTS), "--starts", "5"]
    )
    out = capsys.readouterr().out
    for line in (
        "build: the whole catalog",
        "lineage downstream depth 5: steward p95",
        "lineage upstream depth 5: baseline CTE p95",
        "`steward lineage downstream --depth 5` (CLI)",
        "`steward check` (full, CLI)",
        "incremental",
        "`steward report --focus ASSET` (CLI)",
        "`steward gc --keep-days 30 --vacuum` (CLI)",
        "gc: VACUUM FULL raw_event",
    ):
        assert line in out, out
    assert "exit 2" not in out and "Traceback" not in out
