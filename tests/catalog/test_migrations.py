"""The catalog's schema evolves only through migrations, and old catalogs upgrade in place."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, func, insert, select, table, text
from sqlmodel import SQLModel

from catalog.db import Store, _alembic_config, head_revision
from catalog.models import ZSTD_MAGIC, Asset, RawEvent
from catalog.queries import history, list_assets, resolve, show_asset
from catalog.textsearch import UNMODELLED
from lineage.ingest import Ingester
from lineage.openlineage import loads

FIXTURE_CATALOGS = Path(__file__).resolve().parent.parent / "fixtures" / "catalogs"


def test_models_match_the_migrations(store: Store) -> None:
    """A table model changed without a migration shows up here (the search index,
    made beside the models, aside)."""

    def modelled(name: str | None, *_: object) -> bool:
        return name not in UNMODELLED

    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": modelled}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_new_catalog_is_at_head(store: Store) -> None:
    assert store.current_revision() == head_revision()


def test_every_released_schema_upgrades_in_place(tmp_path: Path) -> None:
    """One fixture catalog per schema version, written by that release, opens without loss."""
    fixtures = sorted(FIXTURE_CATALOGS.glob("schema-*.db"))
    assert fixtures, "keep a fixture catalog per schema version in tests/fixtures/catalogs"
    for fixture in fixtures:
        copy = tmp_path / fixture.name
        shutil.copy(fixture, copy)
        store = Store(f"sqlite:///{copy}")
        assert store.current_revision() == head_revision()
        with store.session() as s:
            assets = list_assets(s)
            assert s.exec(select(func.count()).select_from(Asset)).one()[0] == len(assets)
            orders = resolve(s, "shop.public.orders")
            assert [v["version"] for v in history(s, orders)] == [1, 2]
            assert any(a["deleted"] for a in assets)
        store.dispose()


def _finding_table_before_0012() -> Any:
    """The finding table as schemas before 0012 have it (no `at_risk_count`)."""
    from catalog.models import Finding

    columns = Finding.__table__.columns  # type: ignore[attr-defined]
    return table("finding", *(column(c.name, c.type) for c in columns if c.name != "at_risk_count"))


def test_a_catalog_with_findings_upgrades_and_takes_acknowledgements(tmp_path: Path) -> None:
    """Findings written under the first schema can be acknowledged after the upgrade."""
    from alembic import command
    from sqlalchemy import insert

    from catalog.acks import acknowledge, active
    from catalog.db import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url, migrate=False)
    with old.write() as conn:
        command.upgrade(_alembic_config(conn), "0001")
        conn.execute(
            insert(_finding_table_before_0012()).values(
                id="0123456789abcdef",
                rule="stale_embeddings",
                severity="error",
                status="open",
                title="docs is stale",
                assets=["qdrant://q:6333/docs"],
                evidence={"in_use": "2"},
                remedy="Re-embed docs.",
                at_risk=[],
                first_seen=datetime(2026, 1, 1, tzinfo=UTC),
                last_seen=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    assert old.current_revision() == "0001"
    old.dispose()
    store = Store(url)
    assert store.current_revision() == head_revision()
    with store.write() as conn:
        acknowledge(conn, "0123", "accepted for the migration test")
    with store.engine.connect() as conn:
        assert active(conn)["0123456789abcdef"].reason == "accepted for the migration test"


def test_an_upgraded_catalog_has_each_assets_evidence(tmp_path: Path) -> None:
    """0001 -> head: each resolved asset's last registration becomes its first source."""
    copy = tmp_path / "schema-0001.db"
    shutil.copy(FIXTURE_CATALOGS / "schema-0001.db", copy)
    store = Store(f"sqlite:///{copy}")
    with store.session() as s:
        resolved = [a for a in s.exec(select(Asset)).scalars() if a.current_version > 0]
        assert resolved
        for asset in resolved:
            sources = show_asset(s, asset)["sources"]
            assert [x["source"] for x in sources] == [asset.origin or "unknown"]
            assert [f["name"] for f in sources[0].get("fields", [])] == [
                f["name"] for f in show_asset(s, asset)["fields"]
            ]
    store.dispose()


def test_an_upgraded_catalog_checks_in_full_once_then_incrementally(tmp_path: Path) -> None:
    """0007 -> head: what was written before the change log is seen by one full check."""
    from alembic import command

    from catalog.apply import apply
    from catalog.db import _alembic_config
    from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
    from lineage.findings import run_check

    def orders(kind: str) -> AssetSpec:
        return AssetSpec(
            namespace="postgres://db:5432",
            name="shop.public.orders",
            kind="table",
            fields=[FieldSpec(name="id", type=kind)],
        )

    reader = AssetSpec(
        namespace="postgres://db:5432",
        name="shop.public.daily",
        kind="view",
        edges=[EdgeSpec(source_namespace="postgres://db:5432", source_name="shop.public.orders")],
    )
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url, migrate=False)
    with old.write() as conn:
        command.upgrade(_alembic_config(conn), "0007")
    apply(old, [orders("integer"), reader])
    apply(old, [orders("text")])  # a breaking change no trigger saw
    old.dispose()
    store = Store(url)
    assert store.current_revision() == head_revision()
    first = run_check(store, incremental=True)
    assert not first.incremental and first.full_because
    assert [f.rule for f in first.findings] == ["breaking_schema_change"]
    apply(store, [orders("bigint")])
    then = run_check(store, incremental=True)
    assert then.incremental and then.evaluated >= 2
    assert [f.evidence["version"] for f in then.findings] == [3]
    store.dispose()


def test_a_catalog_of_0009_loses_the_plain_digest_index_and_keeps_claiming(
    tmp_path: Path,
) -> None:
    """0009 -> head drops the plain index on raw event digests; an event sent twice is still
    accepted once (the unique index on accepted digests decides); downgrade restores it."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    old = Store(url, migrate=False)
    with old.write() as conn:
        command.upgrade(_alembic_config(conn), "0009")
    old.dispose()
    store = Store(url)
    indexes = text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'raw_event'")
    try:
        with store.engine.connect() as conn:
            assert "ix_raw_event_digest" not in set(conn.execute(indexes).scalars())
        body = (
            '{"eventType": "COMPLETE", "eventTime": "2026-12-01T08:00:00Z", "producer": "p",'
            ' "run": {"runId": "3f5e8b52-9d3c-4bd7-9c2e-2f0b5f0a6a11"},'
            ' "job": {"namespace": "dbt", "name": "daily"}}'
        )
        ingester = Ingester(store)
        first, again = (ingester.ingest([(body, loads(body), None)])[0] for _ in range(2))
        assert (first.status, again.status) == ("accepted", "duplicate")
        with store.write() as conn:
            command.downgrade(_alembic_config(conn), "0009")
        with store.engine.connect() as conn:
            assert "ix_raw_event_digest" in set(conn.execute(indexes).scalars())
    finally:
        store.dispose()


def _assets(store: Store) -> list[tuple[str, str]]:
    """(uri, kind) of every asset, each checked to be stored under the hash of its URI."""
    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT uri, kind, key_hash FROM asset ORDER BY uri")).all()
    assert all(h == hashlib.sha256(u.encode()).hexdigest() for u, _, h in found)
    return [(u, k) for u, k, _ in found if u.startswith(("analytics/", "job:"))]


def _edges(store: Store) -> set[tuple[str, str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.uri, e.kind, t.uri FROM edge e JOIN asset s ON s.id = e.source_id"
                " JOIN asset t ON t.id = e.target_id WHERE s.uri NOT LIKE 'postgres:%'"
            )
        )
        return {(s, k, t) for s, k, t in rows}


def test_a_catalog_of_0010_moves_its_jobs_to_a_key_space_of_their_own(tmp_path: Path) -> None:
    """0010 -> head: every job's URI becomes `job:NAMESPACE/NAME` (its id, runs and edges
    kept), so its next events land on it; the asset that merged a job and the table named
    like it stays one until `steward ingest --rebuild` splits it."""
    from tests.fixtures.make_catalog import events

    copy = tmp_path / "schema-0010.db"
    shutil.copy(FIXTURE_CATALOGS / "schema-0010.db", copy)
    with sqlite3.connect(copy) as old:
        jobs_before = dict(old.execute("SELECT id, uri FROM asset WHERE kind = 'job'").fetchall())
    assert sorted(jobs_before.values()) == ["analytics/load", "analytics/orders"]
    store = Store(f"sqlite:///{copy}")
    try:
        assert _assets(store) == [
            ("analytics/clean", "dataset"),
            ("analytics/raw", "dataset"),
            ("job:analytics/load", "job"),
            ("job:analytics/orders", "job"),  # the merged one, a job when last described
        ]
        with store.engine.connect() as conn:
            jobs = dict(conn.execute(text("SELECT id, uri FROM asset WHERE kind = 'job'")).all())
        assert jobs == {i: f"job:{uri}" for i, uri in jobs_before.items()}
        assert ("analytics/raw", "reads", "job:analytics/load") in _edges(store)
        with store.session() as s:
            assert resolve(s, "analytics/load").uri == "job:analytics/load"

        # the next run of a job lands on it, and names its table apart from it
        again = events()[1].replace("0a6a11", "0a6a19").replace("08:01", "09:01")
        result = Ingester(store).ingest([(again, loads(again), None)])[0]
        assert result.status == "accepted"
        with store.engine.connect() as conn:
            runs = conn.execute(
                text(
                    "SELECT a.uri, count(*) FROM run r JOIN asset a ON a.id = r.job_id"
                    " GROUP BY a.uri"
                )
            ).all()
        assert sorted(runs) == [("job:analytics/load", 1), ("job:analytics/orders", 2)]
        assert ("analytics/orders", "dataset") in _assets(store)

        Ingester(store).rebuild()
        assert _assets(store) == [
            ("analytics/clean", "dataset"),
            ("analytics/orders", "dataset"),
            ("analytics/raw", "dataset"),
            ("job:analytics/load", "job"),
            ("job:analytics/orders", "job"),
        ]
        assert _edges(store) == {
            ("analytics/raw", "reads", "job:analytics/load"),
            ("job:analytics/load", "writes", "analytics/clean"),
            ("analytics/clean", "reads", "job:analytics/orders"),
            ("job:analytics/orders", "writes", "analytics/orders"),
        }
    finally:
        store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_jobs_keys_go_down_to_0010_and_up_again(tmp_path: Path, backend: str) -> None:
    """Downgrade gives jobs their plain URI back, but one whose dataset twin holds it;
    upgrade moves them all to `job:` again."""
    from contextlib import ExitStack

    from tests.fixtures.make_catalog import events
    from tests.pg import database_url, temporary_database

    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'c.db'}"
        else:
            url = database_url(stack.enter_context(temporary_database("steward_keys")))
        store = Store(url)
        stack.callback(store.dispose)
        Ingester(store).ingest([(body, loads(body), None) for body in events()])
        both = [
            ("analytics/clean", "dataset"),
            ("analytics/orders", "dataset"),
            ("analytics/raw", "dataset"),
            ("job:analytics/load", "job"),
            ("job:analytics/orders", "job"),
        ]
        assert _assets(store) == both
        edges = _edges(store)
        with store.write() as conn:
            command.downgrade(_alembic_config(conn), "0010")
        assert _assets(store) == [
            ("analytics/clean", "dataset"),
            ("analytics/load", "job"),
            ("analytics/orders", "dataset"),
            ("analytics/raw", "dataset"),
            ("job:analytics/orders", "job"),
        ]
        with store.write() as conn:
            command.upgrade(_alembic_config(conn), "head")
        assert store.current_revision() == head_revision()
        assert _assets(store) == both
        assert _edges(store) == edges


def test_findings_of_0010_keep_their_whole_at_risk_list_and_count_it(catalog_url: str) -> None:
    """0010 -> head: a finding recorded when `at_risk` listed every asset below it reads
    with `at_risk_count` the length of that list, and shows the nearest of them."""
    from lineage.findings import list_findings
    from lineage.rules import AT_RISK_SHOWN

    store = Store(catalog_url)
    below = [f"postgres://db:5432/v{i:03}" for i in range(AT_RISK_SHOWN + 20)]
    at_risk = [{"uri": u, "path": ["postgres://db:5432/t", u]} for u in reversed(below)]
    at_risk[-1]["path"] = ["postgres://db:5432/t", below[1], below[0]]  # two hops away
    try:
        with store.write() as conn:
            command.downgrade(_alembic_config(conn), "0010")
            values = {
                "rule": "breaking_schema_change",
                "severity": "error",
                "status": "open",
                "title": "t changed",
                "assets": ["postgres://db:5432/t"],
                "evidence": {},
                "remedy": "",
                "first_seen": datetime(2026, 1, 1, tzinfo=UTC),
                "last_seen": datetime(2026, 1, 1, tzinfo=UTC),
            }
            old = _finding_table_before_0012()
            conn.execute(insert(old).values(id="a" * 16, at_risk=at_risk, **values))
            conn.execute(insert(old).values(id="b" * 16, at_risk=[], **values))
        store.migrate()
        assert store.current_revision() == head_revision()
        with store.session() as s:
            found = {f["id"][0]: f for f in list_findings(s)}
        assert found["a"]["at_risk_count"] == AT_RISK_SHOWN + 20
        assert [r["uri"] for r in found["a"]["at_risk"]] == below[1:][:AT_RISK_SHOWN]
        assert (found["b"]["at_risk_count"], found["b"]["at_risk"]) == (0, [])
    finally:
        store.dispose()


def _bodies(path: Path) -> list[tuple[str, Any]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT typeof(body), body FROM raw_event ORDER BY id").fetchall()
    conn.close()
    return rows


def test_a_catalog_of_0012_packs_its_raw_bodies_and_unpacks_them_going_down(
    tmp_path: Path,
) -> None:
    """0013 packs the bodies a SQLite catalog stored as text (a collected one stays
    empty); downgrade gives back the very text, which an older release reads."""
    copy = tmp_path / "c.db"
    shutil.copy(FIXTURE_CATALOGS / "schema-0010.db", copy)
    texts = [body for kind, body in _bodies(copy)]
    assert texts and all(kind == "text" for kind, _ in _bodies(copy))
    with sqlite3.connect(copy) as conn:  # one more, collected by `steward gc`
        conn.execute(
            "INSERT INTO raw_event (digest, received_at, body, status, warnings)"
            " VALUES ('0', '2024-01-01 00:00:00.000000', '', 'accepted', '[]')"
        )
    conn.close()

    store = Store(f"sqlite:///{copy}")
    try:
        assert store.current_revision() == head_revision()
        packed = _bodies(copy)
        assert [kind for kind, _ in packed] == ["blob"] * len(texts) + ["text"]
        assert [zlib.decompress(body).decode() for _, body in packed[:-1]] == texts
        assert packed[-1][1] == ""
        with store.write() as conn:
            command.downgrade(_alembic_config(conn), "0012")
        assert _bodies(copy) == [("text", body) for body in texts] + [("text", "")]
        with store.write() as conn:
            command.upgrade(_alembic_config(conn), "head")
        assert _bodies(copy) == packed
    finally:
        store.dispose()


def test_zstd_bodies_beside_zlib_ones_read_back_and_go_down_to_zlib(tmp_path: Path) -> None:
    """A catalog packed by 0013 (zlib) takes new bodies packed with zstd; both read back
    as the text received; going down to 0013 packs the zstd ones with zlib again, and
    to 0012 unpacks every one."""
    copy = tmp_path / "c.db"
    shutil.copy(FIXTURE_CATALOGS / "schema-0010.db", copy)
    old = [body for _, body in _bodies(copy)]
    store = Store(f"sqlite:///{copy}")
    try:
        event = json.loads(old[0])
        event["run"]["runId"] = "01890a4b-0000-7000-8000-0000000000aa"
        new = json.dumps(event)
        assert Ingester(store).ingest([(new, loads(new), "post")])[0].status == "accepted"
        held = _bodies(copy)
        assert [b[:4] == ZSTD_MAGIC for _, b in held] == [False] * len(old) + [True]
        assert [zlib.decompress(b).decode() for _, b in held[:-1]] == old
        with store.engine.connect() as conn:
            read = conn.execute(select(RawEvent.body).order_by(RawEvent.id)).scalars().all()
        assert read == [*old, new]

        with store.write() as conn:
            command.downgrade(_alembic_config(conn), "0013")
        down = _bodies(copy)
        assert [zlib.decompress(b).decode() for _, b in down] == [*old, new]
        with store.write() as conn:
            command.downgrade(_alembic_config(conn), "0012")
        assert _bodies(copy) == [("text", body) for body in [*old, new]]
    finally:
        store.dispose()
