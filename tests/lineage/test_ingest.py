"""Ingestion into a real catalog (SQLite and PostgreSQL): raw log, projections, rebuild."""

from __future__ import annotations

import copy
import json
import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from benchmarks.heavy import generate
from catalog.apply import apply
from catalog.db import Store
from catalog.identity import asset_uri
from catalog.specs import AssetSpec, FieldSpec
from catalog.versioning import fingerprint
from lineage import openlineage
from lineage.ingest import Ingester, Result, Summary, read_path
from lineage.lru import ByteLRU
from lineage.openlineage import EventRejected, parse_event
from tests.conftest import FIXTURES
from tests.lineage.stored import raw_bodies

OL = FIXTURES / "openlineage"
ACCEPTED_DIRS = ("wire", "marquez/open_lineage", "marquez/apples", "normalized")


def ingest(store: Store, path: Path | str) -> tuple[Summary, list[tuple[str | None, Result]]]:
    seen: list[tuple[str | None, Result]] = []
    summary = Ingester(store).ingest_stream(read_path(str(path)), lambda r, s: seen.append((s, r)))
    return summary, seen


def rows(store: Store, sql: str, **params: Any) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def edges(store: Store, kind: str | None = None) -> set[tuple[str, str, str]]:
    found = rows(
        store,
        "SELECT s.uri, e.kind, t.uri FROM edge e JOIN asset s ON s.id = e.source_id "
        "JOIN asset t ON t.id = e.target_id",
    )
    return {(s, k, t) for s, k, t in found if kind is None or k == kind}


def run_state(store: Store, run_uuid: str) -> Any:
    return rows(
        store,
        "SELECT r.state, r.parent_run_uuid, r.facets, a.uri FROM run r "
        "JOIN asset a ON a.id = r.job_id WHERE r.run_uuid = :u",
        u=run_uuid,
    )[0]


def snapshot(store: Store) -> dict[str, Any]:
    return {
        "assets": sorted(
            rows(store, "SELECT uri, kind, current_version, fingerprint, unresolved FROM asset")
        ),
        "edges": sorted(edges(store)),
        "runs": sorted(rows(store, "SELECT run_uuid, state, parent_run_uuid FROM run")),
        "links": sorted(
            rows(
                store,
                "SELECT r.run_uuid, a.uri, d.direction, v.version FROM run_dataset d "
                "JOIN run r ON r.id = d.run_id JOIN asset a ON a.id = d.asset_id "
                "LEFT JOIN asset_version v ON v.id = d.version_id",
            ),
            key=str,
        ),
        "aliases": sorted(rows(store, "SELECT uri FROM alias")),
    }


def write_events(path: Path, *events: dict[str, Any]) -> Path:
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")
    return path


def run_event(
    run_id: str,
    kind: str,
    when: str,
    inputs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    outputs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    job: str = "etl.job",
) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": when,
        "producer": "https://example.com/test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": "scheduler", "name": job},
        "inputs": list(inputs),
        "outputs": list(outputs),
    }


def dataset(namespace: str, name: str, *fields: tuple[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"namespace": namespace, "name": name}
    if fields:
        item["facets"] = {"schema": {"fields": [{"name": n, "type": t} for n, t in fields]}}
    return item


RUN_A = "11111111-1111-4111-8111-111111111111"
RUN_B = "22222222-2222-4222-8222-222222222222"


@pytest.mark.parametrize("folder", ACCEPTED_DIRS)
def test_every_real_event_is_accepted_and_projected(store: Store, folder: str) -> None:
    summary, seen = ingest(store, OL / folder)
    assert summary.rejected == 0, summary.reasons
    assert summary.accepted + summary.duplicates == len(seen) > 0
    raw = rows(store, "SELECT status, count(*) FROM raw_event GROUP BY status")
    assert dict(raw) == {
        "accepted": summary.accepted,
        **({"duplicate": summary.duplicates} if summary.duplicates else {}),
    }
    jobs = rows(store, "SELECT count(*) FROM asset WHERE kind = 'job' AND current_version > 0")
    assert jobs[0][0] > 0


def test_apples_chain_edges_follow_the_latest_job_versions(store: Store) -> None:
    ingest(store, OL / "marquez/apples")
    k = "grandmas.kitchen"
    got = edges(store)
    assert (f"{k}/apples", "reads", f"job:{k}/prepare_apple_filling") in got
    assert (f"{k}/cinnamon", "reads", f"job:{k}/prepare_apple_filling") in got
    assert ("cupboard/sugar", "reads", f"job:{k}/prepare_apple_filling") in got  # added by step 8
    assert (f"job:{k}/prepare_apple_filling", "writes", f"{k}/apple.filling") in got
    assert (f"{k}/apple.filling", "reads", f"job:{k}/prepare_apple_pie") in got
    assert (f"job:{k}/prepare_apple_pie", "writes", f"{k}/apple.pie") in got
    assert (f"{k}/apple.cider", "reads", f"job:{k}/prepare_vinegar") in got
    # step 7 picked different apples: the job's current version reads crab.apples only
    assert ("backyard/crab.apples", "reads", f"job:{k}/gather_apples") in got
    assert not any(s.endswith("red.delicious") for s, _, _ in got)
    versions = rows(
        store, "SELECT current_version FROM asset WHERE uri = :u", u=f"job:{k}/gather_apples"
    )
    assert versions == [(2,)]


TEMP = asset_uri("file", "/tmp/ctas_load/temp")
TBL1 = asset_uri("file", "/tmp/ctas_load/tbl1")


def test_ctas_column_lineage_and_symlinks(store: Store) -> None:
    ingest(
        store, OL / "normalized/openlineage/expected/spark/pysparkCTASWithColumnLineageEnd.jsonl"
    )
    lineage = rows(
        store,
        "SELECT s.uri, t.uri, e.fields FROM edge e JOIN asset s ON s.id = e.source_id "
        "JOIN asset t ON t.id = e.target_id WHERE e.kind = 'column_lineage'",
    )
    assert len(lineage) == 1
    source, target, fields = lineage[0]
    fields = json.loads(fields) if isinstance(fields, str) else fields
    assert (source, target) == (TEMP, TBL1)
    assert fields == {"a": ["a"], "b": ["b"]}
    alias = rows(
        store,
        "SELECT a.uri FROM alias l JOIN asset a ON a.id = l.asset_id WHERE l.uri = :u",
        u="file:/tmp/ctas_load/default.tbl1",
    )
    assert alias == [(TBL1,)]
    target_fields = rows(
        store,
        "SELECT f.name, f.type FROM asset_field f JOIN asset a ON a.id = f.asset_id "
        "WHERE a.uri = :u ORDER BY f.position",
        u=TBL1,
    )
    assert target_fields == [("a", "long"), ("b", "long")]


def test_dbt_parent_links_and_a_failed_run(store: Store) -> None:
    ingest(store, OL / "normalized/openlineage/expected/dbt/postgres_failed_run_ol_events.jsonl")
    top = run_state(store, "f9ab4c79-3576-5eb2-8a5a-40e09af4322b")
    model = run_state(store, "483e44ff-8b42-5dbc-b154-db9ebbe8118c")
    statement = run_state(store, "0bceecc7-f18c-5dd9-b730-86a701bee983")
    assert top.state == "FAIL" and top.parent_run_uuid is None
    assert model.parent_run_uuid == "f9ab4c79-3576-5eb2-8a5a-40e09af4322b"
    assert model.uri == "job:dbt-test-namespace/model.jaffle_shop.orders"
    assert statement.parent_run_uuid == "483e44ff-8b42-5dbc-b154-db9ebbe8118c"
    assert statement.state == "FAIL"
    facets = json.loads(statement.facets) if isinstance(statement.facets, str) else statement.facets
    assert "errorMessage" in facets
    ok = run_state(store, "78c337c3-e56d-5665-8637-688063615eba")
    assert ok.state == "COMPLETE"


def test_unseen_parent_becomes_a_placeholder_run_and_job(store: Store, tmp_path: Path) -> None:
    child = run_event(RUN_A, "START", "2024-06-01T12:00:00Z")
    child["run"]["facets"] = {
        "parent": {"run": {"runId": RUN_B}, "job": {"namespace": "airflow", "name": "dag.task"}}
    }
    ingest(store, write_events(tmp_path / "e.jsonl", child))
    parent = run_state(store, RUN_B)
    assert parent.state == "UNKNOWN" and parent.uri == "job:airflow/dag.task"
    assert run_state(store, RUN_A).parent_run_uuid == RUN_B


def test_broken_identity_is_rejected_and_kept_raw(store: Store) -> None:
    _, seen = ingest(store, OL / "marquez/negative")
    by_file = {Path(s or "").name: r for s, r in seen}
    expected = {
        "400_eventTime_date_only.json": "eventTime",
        "422_input_dataset_null_name.json": "inputs[0].name",
        "422_job_null_name.json": "job.name",
        "422_run_null_runId.json": "run.runId",
    }
    for name, field in expected.items():
        assert by_file[name].status == "rejected", name
        assert by_file[name].field == field
        assert by_file[name].http_status in (400, 422)
    # A namespace is never a reason to drop an event (Marquez refuses this one).
    assert by_file["400_namespace_with_emoji.json"].status == "accepted"
    # identity intact, one standard facet malformed: accepted, facet named in a warning
    for name, facet in (
        ("422_parent_facet_empty_run.json", "run.facets.parent"),
        ("422_schema_facet_invalid_fields.json", "outputs[0].facets.schema"),
    ):
        assert by_file[name].status == "accepted"
        assert any(w.startswith(facet) for w in by_file[name].warnings)
    logged = rows(store, "SELECT status, error, body FROM raw_event WHERE status = 'rejected'")
    assert len(logged) == 4 and all(error for _, error, _ in logged)
    assert not any("😂" in body for body in raw_bodies(store.url))  # the password in a namespace


def test_malformed_facets_are_warnings_kept_raw_not_projected(store: Store) -> None:
    _, seen = ingest(store, OL / "negative")
    by_file = {Path(s or "").name: r for s, r in seen}
    assert by_file["proxy-fluentd__event_no_run_id.json"].field == "run.runId"
    facets = {
        "proxy-fluentd__event_invalid_dataset_facet.json": "outputs[0].facets.ownership",
        "proxy-fluentd__event_invalid_input_dataset_facet.json": (
            "inputs[0].inputFacets.dataQualityMetrics"
        ),
        "proxy-fluentd__event_invalid_job_facet.json": "job.facets.ownership",
        "proxy-fluentd__event_invalid_output_dataset_facet.json": (
            "outputs[0].outputFacets.outputStatistics"
        ),
        "proxy-fluentd__event_invalid_run_facet.json": "run.facets.parent",
    }
    for name, facet in facets.items():
        assert by_file[name].status == "accepted", name
        assert any(w.startswith(facet) for w in by_file[name].warnings), name
    logged = rows(store, "SELECT warnings, body FROM raw_event WHERE status = 'accepted'")
    assert len(logged) == 5
    for warnings, body in logged:
        warnings = json.loads(warnings) if isinstance(warnings, str) else warnings
        assert warnings and body  # the warning is in the log, with the raw facet
    job = rows(store, "SELECT observed FROM asset WHERE uri = 'job:my-scheduler-namespace/myjob'")
    observed = json.loads(job[0][0]) if isinstance(job[0][0], str) else job[0][0]
    assert "ownership" not in observed.get("openlineage", {})


def test_the_same_events_twice_change_nothing(store: Store) -> None:
    for folder in ACCEPTED_DIRS:
        ingest(store, OL / folder)
    before = snapshot(store)
    raw_before = rows(store, "SELECT count(*) FROM raw_event")[0][0]
    for folder in ACCEPTED_DIRS:
        summary, seen = ingest(store, OL / folder)
        assert summary.accepted == 0 and summary.duplicates == len(seen)
    assert snapshot(store) == before
    # the arrivals themselves are logged, as duplicates
    assert rows(store, "SELECT count(*) FROM raw_event")[0][0] > raw_before


def test_rebuild_replays_the_raw_log_into_the_same_projections(store: Store) -> None:
    for folder in (*ACCEPTED_DIRS, "negative", "marquez/negative"):
        ingest(store, OL / folder)
    before = snapshot(store)
    summary = Ingester(store).rebuild()
    assert summary.rejected == 5
    assert snapshot(store) == before


def test_late_start_never_reopens_a_finished_run(store: Store, tmp_path: Path) -> None:
    events = write_events(
        tmp_path / "e.jsonl",
        run_event(RUN_A, "COMPLETE", "2024-06-01T12:05:00Z"),
        run_event(RUN_A, "START", "2024-06-01T12:00:00Z"),
        run_event(RUN_A, "RUNNING", "2024-06-01T12:09:00Z"),
    )
    ingest(store, events)
    found = rows(store, "SELECT state, started_at, ended_at FROM run WHERE run_uuid = :u", u=RUN_A)
    state, started, ended = found[0]
    assert state == "COMPLETE"
    assert str(started).startswith("2024-06-01 12:00") and str(ended).startswith("2024-06-01 12:05")


def test_schema_change_is_a_new_version_and_runs_link_their_version(
    store: Store, tmp_path: Path
) -> None:
    v1 = dataset("s3://bucket", "sales", ("id", "int"))
    v2 = dataset("s3://bucket", "sales", ("id", "int"), ("amount", "numeric"))
    bare = dataset("s3://bucket", "sales")
    ingest(
        store,
        write_events(
            tmp_path / "1.jsonl", run_event(RUN_A, "COMPLETE", "2024-06-01T12:00:00Z", outputs=[v1])
        ),
    )
    ingest(
        store,
        write_events(
            tmp_path / "2.jsonl", run_event(RUN_B, "COMPLETE", "2024-06-02T12:00:00Z", outputs=[v2])
        ),
    )
    third = "33333333-3333-4333-8333-333333333333"
    ingest(
        store,
        write_events(
            tmp_path / "3.jsonl",
            run_event(third, "COMPLETE", "2024-06-03T12:00:00Z", outputs=[bare]),
        ),
    )
    history = rows(
        store,
        "SELECT v.version, v.diff FROM asset_version v JOIN asset a ON a.id = v.asset_id "
        "WHERE a.uri = 's3://bucket/sales' ORDER BY v.version",
    )
    assert [v for v, _ in history] == [1, 2]  # the bare mention made no zero-field version
    diff = history[1][1]
    diff = json.loads(diff) if isinstance(diff, str) else diff
    assert diff["added"] == [{"name": "amount", "type": "numeric"}] and not diff["breaking"]
    links = dict(
        (r, v)
        for r, v in rows(
            store,
            "SELECT r.run_uuid, v.version FROM run_dataset d JOIN run r ON r.id = d.run_id "
            "JOIN asset_version v ON v.id = d.version_id",
        )
    )
    assert links == {RUN_A: 1, RUN_B: 2, third: 2}


def test_a_scanned_table_keeps_its_definition(store: Store, tmp_path: Path) -> None:
    scanned = AssetSpec(
        namespace="postgres://db.internal:5432",
        name="shop.public.orders",
        kind="table",
        fields=[
            FieldSpec(name="id", type="integer", nullable=False),
            FieldSpec(name="total", type="numeric"),
        ],
    )
    apply(store, [scanned], origin="scan postgres://db.internal:5432/shop")
    event = run_event(
        RUN_A,
        "COMPLETE",
        "2024-06-01T12:00:00Z",
        inputs=[dataset("postgresql://DB.internal", "shop.public.orders", ("id", "long"))],
    )
    ingest(store, write_events(tmp_path / "e.jsonl", event))
    asset = rows(
        store,
        "SELECT kind, current_version, origin FROM asset WHERE uri = :u",
        u="postgres://db.internal:5432/shop.public.orders",
    )
    assert asset == [("table", 1, "scan postgres://db.internal:5432/shop")]
    assert (
        "postgres://db.internal:5432/shop.public.orders",
        "reads",
        "job:scheduler/etl.job",
    ) in edges(store)
    assert rows(store, "SELECT count(*) FROM asset WHERE name = 'shop.public.orders'") == [(1,)]


def test_dataset_event_versions_a_dataset(store: Store) -> None:
    summary, _ = ingest(store, OL / "wire/client-python__serde_dataset_event.json")
    assert summary.accepted == 1
    found = rows(
        store, "SELECT current_version FROM asset WHERE kind = 'dataset' AND current_version > 0"
    )
    assert found == [(1,)]


def test_credentials_in_a_namespace_are_never_stored(store: Store, tmp_path: Path) -> None:
    event = run_event(
        RUN_A,
        "START",
        "2024-06-01T12:00:00Z",
        inputs=[dataset("postgres://loader:s3cr3t@db:5432", "shop.public.orders")],
    )
    summary, _ = ingest(store, write_events(tmp_path / "e.jsonl", event))
    assert summary.accepted == 1
    assert rows(store, "SELECT uri FROM asset WHERE kind = 'dataset'") == [
        ("postgres://db:5432/shop.public.orders",)
    ]
    [body] = raw_bodies(store.url)
    assert "s3cr3t" not in body and "loader:***@db" in body


def test_claims_are_right_when_sqlite_cannot_number_new_rows_in_order(tmp_path: Path) -> None:
    """A raw log whose largest id is SQLite's largest gets random ids for new rows: the
    ingester cannot count on the ids after the largest and reads them back by digest
    (a warning the projection adds is written to the right row)."""
    first = json.loads(next(iter(sorted((OL / "marquez/apples").iterdir()))).read_text())
    other_job = {**first, "job": {**first["job"], "name": "another_job"}}  # the same run id
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps(first) + "\n" + json.dumps(other_job) + "\n")
    clean = Store(f"sqlite:///{tmp_path / 'clean.db'}")
    full = Store(f"sqlite:///{tmp_path / 'full.db'}")
    with full.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw_event (id, digest, received_at, body, status, warnings)"
                " VALUES (9223372036854775807, :d, '2024-01-01 00:00:00', '{}', 'rejected', '[]')"
            ),
            {"d": "0" * 64},
        )
    expected = Ingester(clean).ingest_path(str(events))
    got = Ingester(full).ingest_path(str(events))
    assert got.to_json() == expected.to_json() and got.accepted == 2
    assert edges(full) == edges(clean)
    logged = "SELECT digest, status, warnings FROM raw_event WHERE digest != :z ORDER BY digest"
    warned = rows(clean, logged, z="0" * 64)
    assert any(json.loads(w) for _, _, w in warned)  # the run of another job
    assert rows(full, logged, z="0" * 64) == warned
    clean.dispose()
    full.dispose()


def _versions_and_links(store: Store) -> tuple[list[Any], list[Any]]:
    with store.engine.connect() as conn:
        versions = conn.execute(
            text(
                "SELECT a.kind, a.namespace, a.name, v.version, v.fingerprint, v.breaking"
                " FROM asset_version v JOIN asset a ON a.id = v.asset_id"
                " ORDER BY a.kind, a.namespace, a.name, v.version"
            )
        ).all()
        links = conn.execute(
            text(
                "SELECT r.run_uuid, a.namespace, a.name, d.direction, v.fingerprint"
                " FROM run_dataset d JOIN run r ON r.id = d.run_id"
                " JOIN asset a ON a.id = d.asset_id"
                " LEFT JOIN asset_version v ON v.id = d.version_id"
                " ORDER BY r.run_uuid, a.namespace, a.name, d.direction"
            )
        ).all()
    return versions, links


def test_the_parsers_schema_fingerprints_are_the_projections_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reading process takes each schema's fingerprint for the writer: real
    producers' events and heavy generated ones (symlinks, renames, column lineage,
    schemas sent late) give the very versions and run links they gave when the
    projection took every fingerprint itself."""
    heavy = tmp_path / "heavy.ndjson"
    generate(heavy, 400)
    sources = [str(OL / d) for d in ACCEPTED_DIRS] + [str(heavy)]
    taken = [
        ref.fingerprint
        for source in sources
        for _, value, _ in read_path(source)
        if isinstance(value, dict)
        for ref in _parsed_refs(value)
    ]
    assert sum(fp is not None for fp in taken) > 500

    def ingest(name: str) -> tuple[list[Any], list[Any]]:
        openlineage._SEEN.clear()  # refs read before keep the fingerprints they took
        openlineage._FINGERPRINTS.clear()
        store = Store(f"sqlite:///{tmp_path / name}")
        try:
            ingester = Ingester(store)
            for source in sources:
                ingester.ingest_path(source)
            return _versions_and_links(store)
        finally:
            store.dispose()

    parsed = ingest("parsed.db")
    monkeypatch.setattr(openlineage, "_fingerprint_of", lambda ref: None)
    projected = ingest("projected.db")
    assert len(parsed[0]) > 400 and len(parsed[1]) > 400
    assert parsed == projected
    # and every version's fingerprint is its stored definition's, as `apply` takes it
    with sqlite3.connect(tmp_path / "parsed.db") as conn:
        stored = conn.execute("SELECT definition, fingerprint FROM asset_version").fetchall()
    conn.close()
    assert len(stored) > 400
    assert all(fingerprint(json.loads(definition)) == fp for definition, fp in stored)


def _catalog_as_said(path: Path) -> dict[str, list[Any]]:
    """Versions, sources (a definition kept by fingerprint read from its version) and
    run links, by name: what a catalog says, whatever ids and write times it has."""
    queries = {
        "versions": "SELECT a.uri, v.version, v.fingerprint, v.definition, v.breaking"
        " FROM asset_version v JOIN asset a ON a.id = v.asset_id",
        "sources": "SELECT a.uri, e.source, e.fingerprint, coalesce(e.definition,"
        " (SELECT v.definition FROM asset_version v WHERE v.asset_id = e.asset_id"
        " AND v.fingerprint = e.fingerprint ORDER BY v.id DESC LIMIT 1)), e.observed,"
        " CASE WHEN a.kind = 'job' THEN '' ELSE e.asserted_at END"
        " FROM asset_evidence e JOIN asset a ON a.id = e.asset_id",
        "links": "SELECT r.run_uuid, a.uri, d.direction, v.fingerprint FROM run_dataset d"
        " JOIN run r ON r.id = d.run_id JOIN asset a ON a.id = d.asset_id"
        " LEFT JOIN asset_version v ON v.id = d.version_id",
    }
    with sqlite3.connect(path) as conn:
        said = {name: sorted(conn.execute(sql).fetchall()) for name, sql in queries.items()}
    conn.close()
    return said


def test_where_chunks_begin_changes_nothing_the_catalog_says(tmp_path: Path) -> None:
    """The heavy mix (many jobs writing the same tables, schemas that change) ingested
    in whole chunks, in chunks of 7 events and one event at a time: the same versions,
    the same sources with what and when each said, the same run links. Jobs that write
    a table as it is defined were its sources only where a chunk had created or
    changed it (the versions could differ: a field only such a job still names)."""
    heavy = tmp_path / "heavy.ndjson"
    generate(heavy, 500)

    def ingested(name: str, size: int) -> dict[str, list[Any]]:
        store = Store(f"sqlite:///{tmp_path / name}")
        try:
            summary = Ingester(store, chunk_size=size).ingest_path(str(heavy))
            assert summary.accepted == 500
        finally:
            store.dispose()
        return _catalog_as_said(tmp_path / name)

    whole = ingested("whole.db", 10_000)
    assert len(whole["sources"]) > 500 and len(whole["versions"]) > 500
    assert ingested("sevens.db", 7) == whole
    assert ingested("ones.db", 1) == whole


def test_column_lineage_built_once_serves_later_chunks_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """A job's column lineage built from a dataset's maps is kept across chunks (the refs
    received are the same objects from chunk to chunk): real producers' events and
    heavy ones, in small chunks, give the very versions and run links they give when
    nothing is kept, and what is kept takes no more memory than it is counted."""
    heavy = tmp_path / "heavy.ndjson"
    generate(heavy, 400)
    sources = [str(OL / d) for d in ACCEPTED_DIRS] + [str(heavy)]

    def ingest(name: str, kept: int | None) -> tuple[tuple[list[Any], list[Any]], Any]:
        store = Store(f"sqlite:///{tmp_path / name}")
        try:
            ingester = Ingester(store, chunk_bytes=64 * 1024)
            if kept is not None:
                ingester.projector.column_lineage = ByteLRU(kept)
            for source in sources:
                ingester.ingest_path(source)
            return _versions_and_links(store), ingester.projector.column_lineage
        finally:
            store.dispose()

    with_cache, cache = ingest("kept.db", None)
    without, nothing = ingest("built.db", 0)
    assert len(nothing) == 0 and len(cache) > 50
    assert len(with_cache[0]) > 400 and len(with_cache[1]) > 400
    assert with_cache == without
    entries = [value for value, _ in cache._data.values()]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        copies = copy.deepcopy(entries)  # nothing shared: more than the entries hold
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(copies) == len(entries)
    assert held <= cache.size, f"{held} bytes held, {cache.size} counted"


def _job_event(run: str, kind: str, sql: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": "2024-06-01T12:00:00.000Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/dbt",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run},
        "job": {"namespace": "dbt", "name": "shop.orders", "facets": {"sql": sql}},
        "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.raw_orders"}],
        "outputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}],
    }


@pytest.mark.parametrize("one_chunk", [True, False])
def test_a_jobs_code_sent_again_as_it_is_makes_no_version_and_any_change_does(
    tmp_path: Path, one_chunk: bool
) -> None:
    """Most producers send a job's SQL with every event: the same code again (other
    metadata, other key order) leaves the job as it is; a changed query, a new key, or
    a value JSON tells apart (`true` and `1`, equal in Python) makes a new version."""
    runs = [f"0190c5d2-8b6e-7c3a-9d4f-00000000000{i}" for i in range(6)]
    meta = {"_producer": "https://example.com/dbt", "_schemaURL": "https://example.com/sql.json"}
    sqls = [
        {**meta, "query": "SELECT * FROM raw_orders"},
        {"query": "SELECT * FROM raw_orders", "_producer": "https://example.com/other"},
        {**meta, "query": "SELECT id FROM raw_orders"},
        {**meta, "query": "SELECT id FROM raw_orders", "dialect": True},
        {**meta, "query": "SELECT id FROM raw_orders", "dialect": 1},
        {"dialect": 1, "query": "SELECT id FROM raw_orders"},
    ]
    events = [
        _job_event(run, kind, sql)
        for run, sql in zip(runs, sqls, strict=True)
        for kind in ("START", "COMPLETE")
    ]
    store = Store(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        ingester = Ingester(store)
        documents = [(json.dumps(e), e, None) for e in events]
        if one_chunk:
            results = ingester.ingest(documents)
        else:
            results = [r for d in documents for r in ingester.ingest([d])]
        assert [r.status for r in results] == ["accepted"] * len(events)
        with store.engine.connect() as conn:
            versions = conn.execute(
                text(
                    "SELECT v.version, v.definition FROM asset_version v"
                    " JOIN asset a ON a.id = v.asset_id WHERE a.kind = 'job'"
                    " AND a.name = 'shop.orders' ORDER BY v.version"
                )
            ).all()
    finally:
        store.dispose()
    held = [(json.loads(d) if isinstance(d, str) else d)["properties"]["sql"] for _, d in versions]
    # (as JSON: `True == 1` in Python, and a list comparison would not tell them apart)
    assert [json.dumps(h, sort_keys=True) for h in held] == [
        '{"query": "SELECT * FROM raw_orders"}',
        '{"query": "SELECT id FROM raw_orders"}',
        '{"dialect": true, "query": "SELECT id FROM raw_orders"}',
        '{"dialect": 1, "query": "SELECT id FROM raw_orders"}',
    ]


def _parsed_refs(value: dict[str, Any]) -> list[Any]:
    try:
        event = parse_event(value)
    except EventRejected:
        return []
    return [*event.inputs, *event.outputs]
