"""The catalog contract, run against SQLite and the real PostgreSQL."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import SQLModel

from catalog.apply import Scope, apply, apply_in, plan
from catalog.db import Store
from catalog.errors import Ambiguous, InvalidInput, NotFound
from catalog.identity import AssetKey
from catalog.models import Asset, AssetVersion, Edge
from catalog.queries import diff_versions, history, list_assets, resolve, show_asset
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec

NS = "postgres://db.internal:5432"
SCOPE = Scope(NS, ("shop.",))


def table(name: str, *columns: tuple[str, str], **extra: Any) -> AssetSpec:
    return AssetSpec(
        namespace=NS,
        name=name,
        kind=extra.pop("kind", "table"),
        fields=[FieldSpec(name=c, type=t) for c, t in columns],
        **extra,
    )


def snapshot(store: Store) -> dict[str, Any]:
    """Every row of every table: to prove that something wrote nothing."""
    out: dict[str, Any] = {}
    with store.engine.connect() as conn:
        for t in SQLModel.metadata.sorted_tables:
            out[t.name] = sorted(map(repr, conn.execute(select(t)).all()))
    return out


def test_first_apply_creates_version_1(store: Store) -> None:
    result = apply(store, [table("shop.public.orders", ("id", "integer"), ("total", "numeric"))])
    assert result.summary() == {"created": 1, "changed": 0, "unchanged": 0, "deleted": 0}
    with store.session() as s:
        (row,) = list_assets(s)
    assert row["uri"] == "postgres://db.internal:5432/shop.public.orders"
    assert row["version"] == 1 and row["deleted"] is False
    assert [f["name"] for f in row["fields"]] == ["id", "total"]
    assert len(row["fingerprint"]) == 64


def test_unchanged_reapply_writes_nothing(store: Store) -> None:
    specs = [table(f"shop.public.t{i}", ("id", "integer")) for i in range(5)]
    apply(store, specs, [SCOPE])
    before = snapshot(store)
    again = apply(store, [s.model_copy() for s in specs], [SCOPE])
    assert again.summary()["unchanged"] == 5 and not again.pending
    assert snapshot(store) == before


def test_changed_spec_gets_new_version_with_diff(store: Store) -> None:
    apply(store, [table("shop.public.orders", ("id", "integer"), ("note", "text"))])
    result = apply(store, [table("shop.public.orders", ("id", "bigint"), ("extra", "text"))])
    (change,) = result.pending
    assert (change.action, change.previous, change.version) == ("update", 1, 2)
    with store.session() as s:
        asset = resolve(s, "orders")
        versions = history(s, asset)
    assert [v["version"] for v in versions] == [1, 2]
    diff = versions[1]["diff"]
    assert diff["added"] == [{"name": "extra", "type": "text"}]
    assert diff["removed"] == [{"name": "note", "type": "text"}]
    assert diff["changed"][0]["change"] == "retyped" and diff["breaking"] is True


def test_missing_asset_is_deleted_and_comes_back_as_new_version(store: Store) -> None:
    a, b = table("shop.public.a", ("id", "integer")), table("shop.public.b", ("id", "integer"))
    other = table("other.public.c", ("id", "integer"))
    apply(store, [a, b, other], [SCOPE])
    result = apply(store, [a], [SCOPE])
    assert result.summary()["deleted"] == 1  # other.public.c is outside the scope
    with store.session() as s:
        assert resolve(s, "shop.public.b").deleted is True
        assert resolve(s, "other.public.c").deleted is False
        assert len(history(s, resolve(s, "shop.public.b"))) == 1  # history kept
    back = apply(store, [a, b], [SCOPE])
    (change,) = back.pending
    assert (change.action, change.version) == ("restore", 2)
    with store.session() as s:
        restored = resolve(s, "shop.public.b")
        assert restored.deleted is False and restored.current_version == 2
        assert history(s, restored)[1]["restored"] is True


def test_plan_writes_nothing(store: Store) -> None:
    apply(store, [table("shop.public.a", ("id", "integer"))], [SCOPE])
    before = snapshot(store)
    proposed = plan(
        store,
        [table("shop.public.a", ("id", "text")), table("shop.public.new", ("x", "int"))],
        [SCOPE],
    )
    assert {c.action for c in proposed.pending} == {"update", "create"}
    assert proposed.applied is False
    assert snapshot(store) == before


def test_two_paths_to_one_edge_make_one_edge(store: Store) -> None:
    """One edge reached twice (repeated, or through an alias of its source) is written once."""
    orders = table(
        "shop.public.orders", ("id", "integer"), aliases=[AssetKey("file", "/exports/orders")]
    )
    apply(store, [orders])

    def reads(name: str, field: str) -> EdgeSpec:
        return EdgeSpec(
            source_namespace=NS if name != "/exports/orders" else "file",
            source_name=name,
            kind="view_dependency",
            fields={field: [field]},
        )

    view = table(
        "shop.public.v",
        ("id", "integer"),
        ("total", "numeric"),
        kind="view",
        edges=[
            reads("shop.public.orders", "id"),
            reads("shop.public.orders", "id"),
            reads("/exports/orders", "total"),
        ],
    )
    result = apply(store, [view])
    assert result.summary()["created"] == 1
    with store.engine.connect() as conn:
        rows = conn.execute(select(Edge.source_id, Edge.kind, Edge.fields)).all()
    with store.session() as s:
        source = resolve(s, "shop.public.orders")
    assert [(r.source_id, r.kind, r.fields) for r in rows] == [
        (source.id, "view_dependency", {"id": ["id"], "total": ["total"]})
    ]
    # Applied again unchanged: nothing new; the edge is still one edge.
    assert apply(store, [view]).summary()["unchanged"] == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Edge)).scalar() == 1


def test_edges_and_unresolved_references(store: Store) -> None:
    view = table(
        "shop.public.v",
        ("id", "integer"),
        kind="view",
        edges=[
            EdgeSpec(
                source_namespace=NS,
                source_name="shop.public.orders",
                kind="view_dependency",
                fields={"id": ["id"]},
            )
        ],
    )
    apply(store, [view])
    with store.session() as s:
        orders = resolve(s, "shop.public.orders")
        assert orders.unresolved is True and orders.current_version == 0
        shown = show_asset(s, resolve(s, "shop.public.v"))
    assert shown["upstream"] == [{"uri": orders.uri, "kind": "view_dependency"}]
    # The reference is described later: the same asset, now version 1.
    apply(store, [table("shop.public.orders", ("id", "integer"))])
    with store.session() as s:
        described = resolve(s, "shop.public.orders")
        assert described.id == orders.id and described.unresolved is False
        assert described.current_version == 1
    # The view stops reading it: its edge goes with its new version.
    apply(store, [table("shop.public.v", ("id", "integer"), kind="view")])
    with store.session() as s:
        assert s.exec(select(func.count()).select_from(Edge)).one()[0] == 0


def test_aliases_name_one_asset(store: Store) -> None:
    spec = table(
        "shop.public.orders",
        ("id", "integer"),
        aliases=[AssetKey("hive://metastore:9083", "shop.orders")],
    )
    apply(store, [spec])
    with store.session() as s:
        assert resolve(s, "hive://metastore:9083/shop.orders").name == "shop.public.orders"
    # Described again under its alias: no second asset.
    apply(
        store,
        [
            AssetSpec(
                namespace="hive://metastore:9083",
                name="shop.orders",
                kind="table",
                fields=[FieldSpec(name="id", type="integer")],
            )
        ],
    )
    with store.session() as s:
        assert s.exec(select(func.count()).select_from(Asset)).one()[0] == 1


def test_references_resolve_by_unique_suffix(store: Store) -> None:
    apply(
        store,
        [
            table("shop.public.orders", ("id", "integer")),
            table("shop.sales.orders", ("id", "integer")),
            table("shop.public.users", ("id", "integer")),
        ],
    )
    with store.session() as s:
        assert resolve(s, "users").name == "shop.public.users"
        assert resolve(s, "public.orders").name == "shop.public.orders"
        assert resolve(s, f"{NS}/shop.sales.orders").name == "shop.sales.orders"
        with pytest.raises(Ambiguous) as err:
            resolve(s, "orders")
        assert "shop.public.orders" in str(err.value) and "shop.sales.orders" in str(err.value)
        with pytest.raises(NotFound):
            resolve(s, "rders")  # a suffix must end at a boundary
        with pytest.raises(NotFound):
            resolve(s, "%")


def test_diff_between_any_two_versions(store: Store) -> None:
    for cols in ([("a", "int")], [("a", "int"), ("b", "int")], [("b", "text")]):
        apply(store, [table("shop.public.t", *cols)])
    with store.session() as s:
        asset = resolve(s, "t")
        d = diff_versions(s, asset, 1, 3)
        assert d["removed"] == [{"name": "a", "type": "int"}]
        assert d["added"] == [{"name": "b", "type": "text"}]
        with pytest.raises(NotFound):
            diff_versions(s, asset, 1, 9)


def test_conflicting_duplicate_specs_write_nothing(store: Store) -> None:
    before = snapshot(store)
    with pytest.raises(InvalidInput):
        apply(
            store, [table("shop.public.a", ("id", "int")), table("shop.public.a", ("id", "text"))]
        )
    assert snapshot(store) == before


def test_failure_inside_the_transaction_rolls_everything_back(store: Store) -> None:
    before = snapshot(store)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.write() as conn:
        apply_in(conn, [table(f"shop.public.t{i}", ("id", "int")) for i in range(3)])
        raise Boom
    assert snapshot(store) == before


def test_a_definition_given_beside_its_spec_is_the_one_written(tmp_path: Any) -> None:
    """A caller that built a spec's definition (an event's schema) hands it beside a
    spec without fields: the catalog is the one the spec with its fields gives, row for
    row (versions, their fields, evidence, diffs), and the next change is a version."""
    first = [table("shop.public.a", ("id", "int"), ("name", "text"))]
    then = [table("shop.public.a", ("id", "bigint"), ("name", "text"))]

    def written(by_definition: bool) -> dict[str, Any]:
        store = Store(f"sqlite:///{tmp_path / f'{by_definition}.db'}")
        try:
            for specs in (first, then):
                given = {s.uri: s.definition() for s in specs} if by_definition else None
                bare = [s.model_copy(update={"fields": []}) for s in specs]
                with store.write() as conn:
                    apply_in(conn, bare if by_definition else specs, definitions=given)
            rows = snapshot(store)
        finally:
            store.dispose()
        # what differs by when it ran, not by what was written
        when = re.compile(r"datetime\.datetime\([^)]*\)")
        return {t: [when.sub("(a time)", r) for r in v] for t, v in rows.items()}

    by_spec, by_definition = written(False), written(True)
    assert len(by_spec["asset_version"]) == 2 and len(by_spec["asset_field"]) == 4
    assert by_definition == by_spec


def test_observations_update_without_a_new_version(store: Store) -> None:
    apply(store, [table("shop.public.a", ("id", "int"), observed={"rows": 10})])
    result = apply(store, [table("shop.public.a", ("id", "int"), observed={"rows": 99})])
    assert result.summary()["unchanged"] == 1
    with store.session() as s:
        asset = resolve(s, "a")
        assert asset.observed == {"rows": 99} and asset.current_version == 1
        assert s.exec(select(func.count()).select_from(AssetVersion)).one()[0] == 1


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
)
props = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=names,
    columns=st.lists(st.tuples(names, names), max_size=5, unique_by=lambda c: c[0]),
    properties=props,
)
def test_reapplying_an_unchanged_spec_never_bumps_the_version(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    columns: list[tuple[str, str]],
    properties: dict[str, Any],
) -> None:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('h') / 'c.db'}")
    spec = AssetSpec(
        namespace=NS,
        name=name,
        kind="table",
        fields=[FieldSpec(name=c, type=t) for c, t in columns],
        properties=properties,
    )
    apply(store, [spec])
    reordered = spec.model_copy(update={"properties": dict(reversed(list(properties.items())))})
    result = apply(store, [reordered])
    assert result.summary()["unchanged"] == 1
    with store.session() as s:
        assert resolve(s, f"{NS}/{name}").current_version == 1
    store.dispose()


# SQLite writers queue on BEGIN IMMEDIATE: the other writer could not commit in between.
@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_a_commit_between_two_reads_of_a_writer_makes_no_second_version(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two scans of one change at once: the second to commit restates the first's version.

    The other writer commits right after this one's first read (the current
    versions). Every later read of this writer must still see the catalog as
    it was at that first read, so it takes the same version number, conflicts
    and starts again, finding nothing to do: no version 3 restating version 2.
    """
    import threading

    import catalog.apply as applying

    name, before = "shop.public.orders", ("id", "integer")
    apply(store, [table(name, before)], [SCOPE], origin="scan")
    changed = [table(name, before, ("total", "numeric"))]
    real_load = applying._load_existing
    raced: list[Any] = []

    def load_then_let_the_other_commit(conn: Any, uris: Any) -> Any:
        found = real_load(conn, uris)
        if not raced:
            raced.append(None)
            other = threading.Thread(target=lambda: raced.append(commit_unlocked(changed)))
            other.start()
            other.join()
        return found

    def commit_unlocked(specs: list[AssetSpec]) -> Any:
        # A writer that does not wait for this one (scans wait for each other's
        # `PROJECTION_LOCK`; a writer outside steward does not): a plain transaction.
        with store.write() as conn:
            return applying.apply_in(conn, specs, [SCOPE], origin="scan")

    monkeypatch.setattr(applying, "_load_existing", load_then_let_the_other_commit)
    mine = apply(store, changed, [SCOPE], origin="scan")
    theirs = raced[1].summary()
    assert theirs["changed"] + mine.summary()["changed"] == 1
    with store.engine.connect() as conn:
        versions = conn.execute(select(AssetVersion.version).order_by(AssetVersion.version))
        assert [v for (v,) in versions] == [1, 2]


# SQLite writers queue on BEGIN IMMEDIATE: nothing runs beside a chunk there.
@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_a_scan_waits_for_a_chunk_being_projected(store: Store) -> None:
    """A scan's apply never runs beside an ingest's chunk on PostgreSQL: both read what
    they update (observations, current versions) and one would lose the other's."""
    import threading

    from catalog.db import PROJECTION_LOCK

    name = "shop.public.orders"
    done: list[Any] = []
    with store.engine.connect() as chunk:  # a chunk's transaction, holding the lock
        chunk.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (PROJECTION_LOCK,))
        scan = threading.Thread(
            target=lambda: done.append(apply(store, [table(name, ("id", "integer"))], [SCOPE]))
        )
        scan.start()
        waiting = 0
        for _ in range(600):  # until the scan's session waits for the lock (60 s at most)
            waiting = chunk.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).scalar_one()
            if waiting:
                break
            time.sleep(0.1)
        assert waiting == 1 and not done, "the scan ran beside the chunk"
        chunk.commit()  # the chunk ends: the scan goes on
    scan.join(timeout=60)
    assert done and done[0].summary()["created"] == 1
