"""What an error puts at risk is counted in full and listed in part: the nearest
`AT_RISK_SHOWN` assets with their paths, the same in a full and an incremental check."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select, text

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.models import Finding
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
from lineage.findings import run_check
from lineage.rules import AT_RISK_SHOWN
from tests.lineage.test_incremental import full_findings, stored_findings

DB = "postgres://db:5432"
#: Views two hops below the changed table: more than an `at_risk` list holds.
WIDE = AT_RISK_SHOWN + 10


def table(kind: str) -> AssetSpec:
    fields = [FieldSpec(name="id", type="integer"), FieldSpec(name="a", type=kind)]
    return AssetSpec(namespace=DB, name="t", kind="table", fields=fields)


def view(name: str, source: str, used: list[str] | None = None) -> AssetSpec:
    edge = EdgeSpec(source_namespace=DB, source_name=source, fields={"x": used} if used else {})
    fields = [FieldSpec(name="x", type="text")]
    return AssetSpec(namespace=DB, name=name, kind="view", fields=fields, edges=[edge])


def wide(store: Store) -> None:
    """t -> r (reads t.a) -> w00..w59, then t.a retyped: a breaking change of t."""
    readers = [view(f"w{i:02}", "r") for i in range(WIDE)]
    apply(store, [table("text"), view("r", "t", ["a"]), *readers])
    apply(store, [table("integer")])


def breaking(findings: list[Any]) -> Any:
    (found,) = [f for f in findings if f.rule == "breaking_schema_change"]
    return found


def stored_row(store: Store) -> Any:
    with store.engine.connect() as conn:
        rows = conn.execute(select(Finding.__table__)).all()  # type: ignore[attr-defined]
    (row,) = [r for r in rows if r.rule == "breaking_schema_change"]
    return row


def test_a_full_check_counts_every_asset_at_risk_and_lists_the_nearest(store: Store) -> None:
    wide(store)
    found = breaking(run_check(store).findings)
    assert found.assets == [f"{DB}/t", f"{DB}/r"]  # the table and the reader of `a`
    assert found.at_risk_count == WIDE
    assert len(found.at_risk) == AT_RISK_SHOWN
    assert [r["uri"] for r in found.at_risk] == [f"{DB}/w{i:02}" for i in range(AT_RISK_SHOWN)]
    assert found.at_risk[0]["path"] == [f"{DB}/t", f"{DB}/r", f"{DB}/w00"]
    row = stored_row(store)  # the stored row holds the bounded list and the count
    assert (row.at_risk_count, row.at_risk) == (WIDE, found.at_risk)
    assert found.to_json()["at_risk_count"] == WIDE


def test_the_nearest_come_first_whatever_their_names(store: Store) -> None:
    """A reader one hop below the change comes before those two hops below, though its
    name sorts after theirs."""
    wide(store)
    apply(store, [view("zz", "t")])
    found = breaking(run_check(store).findings)
    assert found.at_risk_count == WIDE + 1
    assert [r["uri"] for r in found.at_risk[:2]] == [f"{DB}/zz", f"{DB}/w00"]
    assert found.at_risk[0]["path"] == [f"{DB}/t", f"{DB}/zz"]


def test_a_change_below_an_error_beyond_its_list_is_seen_by_an_incremental_check(
    store: Store,
) -> None:
    """w59 -> c1 -> c2 are at risk but not listed (nor is anything next to them): a
    reader added below c2, then c1 dropped, change what the error puts at risk, and the
    incremental check finds what a full one does."""
    wide(store)
    last = f"w{WIDE - 1:02}"
    apply(store, [view("c1", last), view("c2", "c1")])
    run_check(store)
    apply(store, [view("deep", "c2")])
    done = run_check(store, incremental=True)
    assert done.incremental
    assert breaking(done.findings).at_risk_count == WIDE + 3
    assert stored_findings(store) == full_findings(store)
    with store.write() as conn:  # c1 is dropped, by a writer that leaves its edges be
        conn.execute(text("UPDATE asset SET deleted = true WHERE name = 'c1'"))
    done = run_check(store, incremental=True)
    assert done.incremental
    assert breaking(done.findings).at_risk_count == WIDE  # c1 and what only it fed
    assert stored_findings(store) == full_findings(store)


def test_an_incremental_check_away_from_the_error_keeps_its_count(store: Store) -> None:
    wide(store)
    run_check(store)
    apply(store, [AssetSpec(namespace=DB, name="elsewhere", kind="table")])
    done = run_check(store, incremental=True)
    assert done.incremental
    found = breaking(done.findings)
    assert (found.at_risk_count, len(found.at_risk)) == (WIDE, AT_RISK_SHOWN)
    assert stored_findings(store) == full_findings(store)


def test_text_and_json_say_how_many_are_at_risk(store: Store) -> None:
    wide(store)
    url = store.engine.url.render_as_string(hide_password=False)

    def steward(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False)

    shown = steward("check")
    assert shown.exit_code == 1
    listed = ", ".join(f"{DB}/w{i:02}" for i in range(5))
    assert f"puts at risk {listed} and {WIDE - 5} more" in shown.stderr
    (as_json,) = [f for f in json.loads(steward("check", "--json").stdout) if f["at_risk"]]
    assert as_json["at_risk_count"] == WIDE
    assert len(as_json["at_risk"]) == AT_RISK_SHOWN
    (listed_json,) = [f for f in json.loads(steward("findings", "--json").stdout) if f["at_risk"]]
    assert listed_json["at_risk_count"] == WIDE
    assert listed_json["at_risk"] == as_json["at_risk"]
