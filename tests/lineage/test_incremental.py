"""An incremental `check` finds what a full check finds, after any change, on both backends."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlmodel import Session

from catalog.acks import acknowledge
from catalog.apply import Scope, apply
from catalog.db import Store
from catalog.embeddings import bind, register_model, use_model
from catalog.models import CheckChange, Finding
from catalog.querying import assign_purpose, bind_queries
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
from lineage.facts import load_facts
from lineage.findings import run_check
from lineage.rules import run_rules

DB = "postgres://db:5432"
#: The same server under another spelling of its host.
LOOP = "postgres://127.0.0.1:5432"
#: A third spelling of it.
TWIN = "postgres://db9:5432"
QDRANT = "qdrant://q:6333"
FEAST = "feast://repo"
ML = "mlflow://ml"
TYPES = ("integer", "bigint", "text", "boolean")
INDEXES = ("docs", "faq")
T0 = datetime(2026, 11, 30, 8, tzinfo=UTC)


class World:
    """A seeded random catalog: tables, views reading them, indexes built from them,
    embedding models bound to the indexes, feature sets and models trained on them."""

    def __init__(self, store: Store, seed: int, tables: int = 8) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.tables: dict[str, dict[str, str]] = {
            f"t{i}": {"id": "integer", "a": "text", "b": "integer"} for i in range(tables)
        }
        self.dropped: set[str] = set()
        self.views: dict[str, list[tuple[str, list[str]]]] = {}
        self.revisions = ["1"]
        self.fs_version = 1
        self.twin_live = False

    # -- specs -----------------------------------------------------------------------

    def table(self, name: str) -> AssetSpec:
        return AssetSpec(
            namespace=DB,
            name=name,
            kind="table",
            fields=[FieldSpec(name=f, type=t) for f, t in self.tables[name].items()],
        )

    def view(self, name: str) -> AssetSpec:
        return AssetSpec(
            namespace=DB,
            name=name,
            kind="view",
            fields=[FieldSpec(name="x", type="text")],
            edges=[
                EdgeSpec(
                    source_namespace=QDRANT if src in INDEXES else DB,
                    source_name=src,
                    fields={"x": used} if used else {},
                )
                for src, used in self.views[name]
            ],
        )

    def index(self, name: str, source: str, dim: int = 8) -> AssetSpec:
        vector = {"vector": True, "dim": dim, "distance": "cosine"}
        return AssetSpec(
            namespace=QDRANT,
            name=name,
            kind="collection",
            fields=[FieldSpec(name="vector", type=f"vector({dim})", attributes=vector)],
            edges=[EdgeSpec(source_namespace=DB, source_name=source, kind="embedded_from")],
        )

    def feature_set(self) -> AssetSpec:
        fields = [FieldSpec(name="spend", type="double", attributes={"offline": "sum(a)"})]
        if self.fs_version > 1:
            fields.append(FieldSpec(name=f"f{self.fs_version}", type="double"))
        return AssetSpec(
            namespace=FEAST,
            name="users",
            kind="feature_set",
            fields=fields,
            edges=[EdgeSpec(source_namespace=DB, source_name="t0")],
        )

    def model(self) -> AssetSpec:
        """A registry's model: trained on the feature set (no edge says so), in run r1."""
        return AssetSpec(
            namespace=ML,
            name="churn",
            kind="model",
            properties={
                "trained_on": {f"{FEAST}/users": 1},
                "versions": [{"version": 1, "run_id": "r1"}],
                "latest_version": 1,
            },
        )

    def build(self) -> None:
        for i, name in enumerate(["v0", "v1", "v2", "v3"]):
            self.views[name] = [(f"t{i}", ["a"]), (f"t{i + 1}", [])]
        self.views["v4"] = [("v0", []), ("docs", [])]
        specs = [self.table(t) for t in self.tables]
        specs += [self.index("docs", "t1"), self.index("faq", "t2")]
        specs += [self.view(v) for v in self.views]
        specs += [self.feature_set(), self.model()]
        # An undescribed source, and the same name described under another host spelling.
        specs.append(
            AssetSpec(
                namespace=DB,
                name="w",
                kind="view",
                edges=[EdgeSpec(source_namespace="postgres://localhost:5432", source_name="ext")],
            )
        )
        specs.append(AssetSpec(namespace=LOOP, name="ext", kind="table"))
        apply(self.store, specs)
        register_model(self.store, "enc", "1", 8, "cosine")
        register_model(self.store, "enc", "2", 8, "cosine")
        self.revisions.append("2")
        use_model(self.store, "enc", "1")
        bind(self.store, f"{QDRANT}/docs", "enc@1")
        bind(self.store, f"{QDRANT}/faq", "enc@1")
        assign_purpose(self.store, f"{QDRANT}/faq", "search")

    # -- changes ---------------------------------------------------------------------------

    def live_tables(self) -> list[str]:
        return sorted(set(self.tables) - self.dropped)

    def retype(self) -> str:
        name = self.rng.choice(self.live_tables())
        field = self.rng.choice(["a", "b"])
        self.tables[name][field] = self.rng.choice(TYPES)
        apply(self.store, [self.table(name)])
        return f"retype {name}.{field}"

    def add_field(self) -> str:
        name = self.rng.choice(self.live_tables())
        self.tables[name][f"c{len(self.tables[name])}"] = "text"
        apply(self.store, [self.table(name)])
        return f"add a field to {name}"

    def remove_field(self) -> str:
        name = self.rng.choice(self.live_tables())
        if "a" in self.tables[name]:
            del self.tables[name]["a"]
        apply(self.store, [self.table(name)])
        return f"remove {name}.a"

    def new_view(self) -> str:
        """A view reading tables or views (errors upstream put more at risk)."""
        name = f"v{len(self.views)}"
        sources = self.rng.sample(sorted(self.tables) + sorted(self.views) + list(INDEXES), 2)
        self.views[name] = [(s, self.rng.choice([[], ["a"], ["b"]])) for s in sources]
        apply(self.store, [self.view(name)])
        return f"new view {name} reading {sources}"

    def rewire_view(self) -> str:
        name = self.rng.choice(sorted(self.views))
        others = [v for v in sorted(self.views) if v != name]
        self.views[name] = [(self.rng.choice(sorted(self.tables) + others), ["b"])]
        apply(self.store, [self.view(name)])
        return f"view {name} now reads {self.views[name]}"

    def drop_table(self) -> str:
        name = self.rng.choice(self.live_tables())
        self.dropped.add(name)
        self._scan_db()
        return f"drop {name}"

    def restore_table(self) -> str:
        if not self.dropped:
            return self.retype()
        name = self.rng.choice(sorted(self.dropped))
        self.dropped.discard(name)
        self._scan_db()
        return f"restore {name}"

    def _scan_db(self) -> None:
        """A full scan of the tables: what it no longer finds is deleted."""
        specs = [self.table(t) for t in self.live_tables()]
        apply(self.store, specs, scopes=[Scope(DB, kinds=("table",))])

    def new_revision(self) -> str:
        revision = str(len(self.revisions) + 1)
        self.revisions.append(revision)
        dim = self.rng.choice([8, 8, 16])
        register_model(self.store, "enc", revision, dim, "cosine")
        return f"register enc@{revision} (dim {dim})"

    def use_revision(self) -> str:
        revision = self.rng.choice(self.revisions)
        use_model(self.store, "enc", revision)
        return f"use enc@{revision}"

    def rebind(self) -> str:
        index = self.rng.choice(["docs", "faq"])
        revision = self.rng.choice(self.revisions)
        bind(self.store, f"{QDRANT}/{index}", f"enc@{revision}")
        return f"bind {index} to enc@{revision}"

    def reindex(self) -> str:
        index, source = self.rng.choice([("docs", "t1"), ("faq", "t2"), ("docs", "t3")])
        apply(self.store, [self.index(index, source, self.rng.choice([8, 16]))])
        return f"rebuild {index} from {source}"

    def feature_change(self) -> str:
        self.fs_version += 1
        apply(self.store, [self.feature_set()])
        return "a new version of the feature set"

    def purpose_model(self) -> str:
        """Which model queries the purpose: no asset is named, every index may change."""
        revision = self.rng.choice(self.revisions)
        bind_queries(self.store, "enc", revision, purpose="search")
        return f"queries of purpose search use enc@{revision}"

    def twin(self) -> str:
        """Describe (or drop) `ext` under a third spelling of the host."""
        scope = Scope(TWIN, kinds=("table",))
        self.twin_live = not self.twin_live
        specs = [AssetSpec(namespace=TWIN, name="ext", kind="table")] if self.twin_live else []
        apply(self.store, specs, scopes=[scope])
        return f"{'describe' if self.twin_live else 'drop'} {TWIN}/ext"

    def run(self) -> str:
        """Run r1 comes to be known, then is deleted, then restored, by hand in SQL."""
        stage = self.rng.choice(["active", "deleted"])
        facets = json.dumps({"mlflow_run": {"lifecycleStage": stage}})
        with self.store.write() as conn:
            job = conn.execute(text("SELECT min(id) FROM asset")).scalar()
            if conn.execute(text("SELECT 1 FROM run WHERE run_uuid = 'r1'")).first() is None:
                conn.execute(
                    text(
                        "INSERT INTO run (run_uuid, job_id, state, facets, created_at, "
                        "updated_at) VALUES ('r1', :job, 'COMPLETE', :facets, :now, :now)"
                    ),
                    {"job": job, "facets": facets, "now": T0},
                )
            else:
                conn.execute(
                    text("UPDATE run SET facets = :facets WHERE run_uuid = 'r1'"),
                    {"facets": facets},
                )
        return f"run r1 is {stage}"

    def ack(self) -> str:
        with self.store.engine.connect() as conn:
            ids = sorted(
                r[0]
                for r in conn.execute(
                    select(Finding.id).where(Finding.status == "open")  # type: ignore[arg-type]
                )
            )
        if not ids:
            return "nothing to acknowledge"
        chosen = self.rng.choice(ids)
        with self.store.write() as conn:
            acknowledge(conn, chosen, "known")
        return f"acknowledge {chosen}"

    def step(self) -> str:
        change = self.rng.choice(
            [
                self.retype,
                self.retype,
                self.add_field,
                self.remove_field,
                self.new_view,
                self.rewire_view,
                self.drop_table,
                self.restore_table,
                self.new_revision,
                self.use_revision,
                self.rebind,
                self.reindex,
                self.feature_change,
                self.feature_change,
                self.purpose_model,
                self.twin,
                self.run,
                self.ack,
            ]
        )
        return change()


def _canonical(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {r["id"]: json.dumps(r, sort_keys=True, default=str) for r in rows}


def full_findings(store: Store) -> dict[str, str]:
    """What a full check would find now, computed without recording anything."""
    with store.engine.connect() as conn, Session(bind=conn) as session:
        found = run_rules(load_facts(conn, session))
    return _canonical([_comparable(f.to_json()) for f in found])


def stored_findings(store: Store) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(Finding.__table__).where(text("status = 'open'"))).all()  # type: ignore[attr-defined]
    return _canonical(
        [
            _comparable(
                {
                    "id": r.id,
                    "rule": r.rule,
                    "severity": r.severity,
                    "title": r.title,
                    "assets": r.assets,
                    "evidence": r.evidence,
                    "remedy": r.remedy,
                    "at_risk": r.at_risk,
                    "at_risk_count": r.at_risk_count,
                }
            )
            for r in rows
        ]
    )


def _comparable(finding: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "rule", "severity", "title", "assets", "evidence", "remedy", "at_risk")
    keys += ("at_risk_count",)
    return json.loads(json.dumps({k: finding[k] for k in keys}, default=str))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_findings_equal_a_full_checks_after_every_change(
    store: Store, seed: int
) -> None:
    world = World(store, seed)
    world.build()
    first = run_check(store, incremental=True)
    assert not first.incremental and first.full_because is not None  # nothing to start from
    assert stored_findings(store) == full_findings(store)
    rules_seen: set[str] = set()
    for n in range(40):
        what = world.step()
        done = run_check(store, incremental=True)
        assert done.incremental, (n, what, done.full_because)
        stored = stored_findings(store)
        assert stored == full_findings(store), (n, what)
        assert _canonical([_comparable(f.to_json()) for f in done.findings]) == stored, (n, what)
        rules_seen |= {json.loads(v)["rule"] for v in stored.values()}
    # The walk went through the conditions the rules are about.
    assert {
        "breaking_schema_change",
        "unresolved_reference",
        "stale_embeddings",
        "feature_definition_skew",
        "untracked_lineage",
    } <= rules_seen


def test_incremental_check_looks_only_at_what_changed_and_depends_on_it(store: Store) -> None:
    world = World(store, 7, tables=60)
    world.build()
    full = run_check(store)
    assert not full.incremental and full.evaluated > 60
    world.tables["t30"]["a"] = "integer"
    apply(store, [world.table("t30")])
    done = run_check(store, incremental=True)
    assert done.incremental
    # t30 and what it is one edge from; nothing else.
    assert 1 <= done.evaluated <= 5
    assert stored_findings(store) == full_findings(store)
    again = run_check(store, incremental=True)
    assert again.incremental and again.evaluated == 0


def test_every_write_path_is_logged_even_by_hand(store: Store) -> None:
    world = World(store, 3)
    world.build()
    run_check(store)
    with store.engine.connect() as conn:
        assert conn.execute(select(CheckChange.id)).first() is None  # type: ignore[call-overload]
    with store.write() as conn:
        conn.execute(text("UPDATE asset SET unresolved = NOT unresolved WHERE name = 't5'"))
    done = run_check(store, incremental=True)
    assert done.incremental and done.evaluated >= 1
    assert stored_findings(store) == full_findings(store)


def test_other_settings_or_some_rules_mean_a_full_check(store: Store) -> None:
    from lineage.rules import Settings

    world = World(store, 4)
    world.build()
    run_check(store)
    strict = Settings(severities={"unresolved_reference": "error"})
    done = run_check(store, settings=strict, incremental=True)
    assert not done.incremental and done.full_because is not None
    assert "settings" in done.full_because
    run_check(store, rules=["breaking_schema_change"])
    done = run_check(store, incremental=True)
    assert not done.incremental
    assert stored_findings(store) == full_findings(store)


def test_the_cli_says_how_it_checked_and_refuses_what_it_cannot_do(store: Store) -> None:
    from click.testing import CliRunner

    from catalog.cli import cli

    World(store, 5).build()
    url = store.engine.url.render_as_string(hide_password=False)

    def steward(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False)

    first = steward("check", "--incremental", "--json", "--fail-on", "info")
    assert first.exit_code == 1, first.output
    assert "full check: no earlier check of every rule" in first.stderr
    then = steward("check", "--incremental", "--json", "--fail-on", "info")
    assert then.exit_code == 1
    assert "incremental: 0 changed or dependent asset(s) evaluated" in then.stderr
    by_id = lambda text: sorted(json.loads(text), key=lambda f: f["id"])  # noqa: E731
    assert by_id(then.stdout) == by_id(first.stdout)
    for extra in (["--rule", "stale_embeddings"], ["--min-coverage", "model=50"]):
        refused = steward("check", "--incremental", *extra)
        assert refused.exit_code == 2
        assert "--incremental runs every rule and computes no coverage" in refused.stderr


def test_an_error_puts_at_risk_what_is_added_far_below_it(store: Store) -> None:
    """A reader added three hops below a breaking change is at risk: the change is not
    re-evaluated (nothing near it changed), its `at_risk` is."""
    world = World(store, 6)
    world.views = {"v0": [("t0", ["a"])], "va": [("v0", [])], "vb": [("va", [])]}
    apply(store, [world.table("t0"), *(world.view(v) for v in world.views)])
    world.tables["t0"]["a"] = "integer"
    apply(store, [world.table("t0")])
    run_check(store)
    world.views["vc"] = [("vb", [])]
    apply(store, [world.view("vc")])
    done = run_check(store, incremental=True)
    assert done.incremental
    (breaking,) = [f for f in done.findings if f.rule == "breaking_schema_change"]
    assert [r["uri"] for r in breaking.at_risk] == [f"{DB}/va", f"{DB}/vb", f"{DB}/vc"]
    assert stored_findings(store) == full_findings(store)


def test_a_restored_reader_below_an_error_is_at_risk_again(store: Store) -> None:
    """A view dropped and restored: nothing about the error changed, what it reaches did
    (the view's edges were kept: only the view's row says so)."""
    world = World(store, 8)
    world.views = {"v0": [("t0", ["a"])], "vx": [("v0", [])]}
    apply(store, [world.table("t0"), *(world.view(v) for v in world.views)])
    world.tables["t0"]["a"] = "integer"
    apply(store, [world.table("t0")])
    run_check(store)
    flip = text("UPDATE asset SET deleted = :gone WHERE name = 'vx'")
    with store.write() as conn:  # vx is dropped, by a writer that leaves its edges be
        conn.execute(flip, {"gone": True})
    assert run_check(store, incremental=True).incremental
    assert stored_findings(store) == full_findings(store)
    with store.write() as conn:  # and back
        conn.execute(flip, {"gone": False})
    done = run_check(store, incremental=True)
    assert done.incremental
    (breaking,) = [f for f in done.findings if f.rule == "breaking_schema_change"]
    assert [r["uri"] for r in breaking.at_risk] == [f"{DB}/vx"]
    assert stored_findings(store) == full_findings(store)


def _pending(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT asset_id, what, name, uri, claimed FROM check_change"))
        return sorted(tuple(r) for r in rows)


def test_a_change_pending_is_logged_once_and_runs_not_at_all(store: Store) -> None:
    world = World(store, 9)
    world.build()
    run_check(store)
    flip = text("UPDATE asset SET unresolved = NOT unresolved WHERE name = 't5'")
    for _ in range(5):
        with store.write() as conn:
            conn.execute(flip)
    ((_, what, _name, uri, claimed),) = _pending(store)
    assert (what, uri, claimed) == ("asset", f"{DB}/t5", False)
    world.run()
    world.run()
    assert len(_pending(store)) == 1  # a run is fingerprinted by the check, not logged
    done = run_check(store, incremental=True)
    assert done.incremental and done.evaluated >= 2  # t5, and the model (its run changed)
    assert stored_findings(store) == full_findings(store)
    assert _pending(store) == []


def test_a_change_written_while_a_check_runs_is_left_for_the_next(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same change as one the check claimed, written after the check read the catalog:
    it is not folded into the claimed row (which the check deletes), it waits."""
    import lineage.findings as findings

    world = World(store, 10)
    world.build()
    run_check(store)
    world.tables["t1"]["a"] = "integer"
    apply(store, [world.table("t1")])
    read = findings.load_facts

    def read_then_write(*args: Any, **kwargs: Any) -> Any:
        facts = read(*args, **kwargs)
        world.tables["t1"]["a"] = "text"  # and back, after the check read it
        apply(store, [world.table("t1")])
        return facts

    monkeypatch.setattr(findings, "load_facts", read_then_write)
    assert run_check(store, incremental=True).incremental
    monkeypatch.setattr(findings, "load_facts", read)
    pending = _pending(store)
    assert pending and all(not r[4] for r in pending)
    with store.engine.connect() as conn:
        t1 = conn.execute(text("SELECT id FROM asset WHERE name = 't1'")).scalar()
    assert {r[0] for r in pending} == {t1}
    assert stored_findings(store) != full_findings(store)  # as of before the write
    done = run_check(store, incremental=True)
    assert done.incremental and done.evaluated >= 1
    assert stored_findings(store) == full_findings(store)


def test_a_check_waits_for_a_writer_whose_change_was_already_pending(store: Store) -> None:
    """A writer that has not committed yet, whose change was folded into a pending row:
    the check's claim waits for it, so the check reads its change."""
    import threading
    import time

    world = World(store, 11)
    world.build()
    run_check(store)
    flip = text("UPDATE asset SET deleted = NOT deleted WHERE name = 't1'")  # views read it
    with store.write() as conn:
        conn.execute(flip)
    done: list[Any] = []
    with store.write() as conn:
        conn.execute(flip)  # t1 back: folded into the pending row, not yet committed
        checker = threading.Thread(target=lambda: done.append(run_check(store, incremental=True)))
        checker.start()
        if store.dialect == "postgresql":
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            for _ in range(200):  # a fresh transaction each time: it reads a snapshot
                with store.engine.connect() as watch:
                    if watch.execute(waiting).scalar():
                        break  # else the check did not wait: it misses the change below
                time.sleep(0.05)
        else:
            time.sleep(0.5)  # the claim queues behind this transaction's write lock
    checker.join()
    assert done and done[0].incremental
    assert stored_findings(store) == full_findings(store)


def test_gc_empties_the_change_log_and_the_next_check_runs_in_full(store: Store) -> None:
    from click.testing import CliRunner

    from catalog.cli import cli

    world = World(store, 12)
    world.build()
    run_check(store)
    with store.write() as conn:
        conn.execute(text("UPDATE asset SET unresolved = NOT unresolved WHERE name = 't5'"))
    url = store.engine.url.render_as_string(hide_password=False)
    args = ["--catalog", url, "gc", "--keep-days", "30", "--json"]
    planned = CliRunner().invoke(cli, [*args, "--dry-run"], catch_exceptions=False)
    assert json.loads(planned.stdout)["check_changes"] == 1
    assert len(_pending(store)) == 1  # a dry run changes nothing
    gc = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert gc.exit_code == 0 and json.loads(gc.stdout)["check_changes"] == 1
    assert _pending(store) == []
    done = run_check(store, incremental=True)
    assert not done.incremental
    assert done.full_because == "steward gc emptied the change log since the last check"
    assert stored_findings(store) == full_findings(store)
    assert run_check(store, incremental=True).incremental


def test_a_gc_while_a_check_runs_leaves_the_next_check_full(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change logged after a check's claim, then dropped by a gc before the check ends:
    the check does not save its starting point over the gc's."""
    import lineage.findings as findings
    from lineage.retention import FORGOTTEN, collect

    world = World(store, 13)
    world.build()
    run_check(store)
    read = findings.load_facts

    def read_then_gc(*args: Any, **kwargs: Any) -> Any:
        facts = read(*args, **kwargs)
        world.tables["t1"]["a"] = "integer"  # a breaking change, after the claim
        apply(store, [world.table("t1")])
        collect(store, keep_bytes=1 << 40)
        return facts

    monkeypatch.setattr(findings, "load_facts", read_then_gc)
    assert run_check(store, incremental=True).incremental
    monkeypatch.setattr(findings, "load_facts", read)
    assert _pending(store) == []
    done = run_check(store, incremental=True)
    assert not done.incremental and done.full_because == FORGOTTEN
    assert stored_findings(store) == full_findings(store)
