"""`steward gc`: the raw log kept to a period or a size, exactly-once kept, --rebuild refused."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from benchmarks.load import World, digest
from catalog.cli import cli
from catalog.db import Store, db_time
from catalog.models import utcnow
from catalog.reads import raw_events
from lineage.ingest import Ingester
from tests.lineage.stored import counts, query

OLD_RUNS = range(0, 12)  # 24 events received "ten days ago"
NEW_RUNS = range(12, 20)  # 16 events received now


def invoke(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["-q", "--catalog", url, *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def documents(events: list[dict[str, Any]]) -> list[tuple[str, Any, str | None]]:
    return [(json.dumps(e), e, None) for e in events]


@pytest.fixture
def aged(catalog_url: str) -> dict[str, list[dict[str, Any]]]:
    """A catalog holding old events (with a duplicate and a rejected one) and new ones."""
    world = World(seed=41, epoch_runs=6)
    old, new = list(world.events(OLD_RUNS)), list(world.events(NEW_RUNS))
    store = Store(catalog_url)
    ingester = Ingester(store)
    ingester.ingest(documents(old) + documents(old[:1]) + [("{", {"eventType": 1}, "bad")])
    with store.write() as conn:
        then = db_time(conn, utcnow() - timedelta(days=10))
        conn.execute(text("UPDATE raw_event SET received_at = :at"), {"at": then})
    ingester.ingest(documents(new))
    store.dispose()
    return {"old": old, "new": new}


def raw(url: str) -> list[Any]:
    return query(url, "SELECT digest, status, body FROM raw_event ORDER BY id")


def test_gc_keeps_a_period_and_every_digest(
    catalog_url: str, aged: dict[str, list[dict[str, Any]]]
) -> None:
    before = counts(catalog_url)
    code, out, _ = invoke(catalog_url, "gc", "--keep-days", "5", "--dry-run", "--json")
    assert code == 0
    planned = json.loads(out)
    assert raw(catalog_url)[0][2] != ""  # a dry run changes nothing

    code, out, _ = invoke(catalog_url, "gc", "--keep-days", "5", "--json")
    assert code == 0
    done = json.loads(out)
    assert {**planned, "dry_run": False} == done
    assert done["bodies"] == len(aged["old"])
    assert done["deleted"] == 2  # the duplicate and the rejected event
    assert done["kept"] == len(aged["new"])

    rows = raw(catalog_url)
    old = {digest(e) for e in aged["old"]}
    assert {r[0] for r in rows if r[2] == ""} == old
    assert all(r[1] == "accepted" for r in rows)
    assert {r[0] for r in rows if r[2] != ""} == {digest(e) for e in aged["new"]}
    assert counts(catalog_url) == before  # projections untouched
    store = Store(catalog_url)
    with store.engine.connect() as conn:  # Marquez's events API lists the events kept
        listed, total = raw_events(
            conn, before=None, after=None, ascending=True, limit=1000, offset=0
        )
    store.dispose()
    assert total == len(aged["new"])
    assert [json.loads(r.body) for r in listed] == aged["new"]

    # Each event is still accepted once: an old event sent again is a duplicate.
    store = Store(catalog_url)
    try:
        again = Ingester(store).ingest(documents(aged["old"][:3]))
        assert [r.status for r in again] == ["duplicate"] * 3
    finally:
        store.dispose()

    # A rebuild would lose what the collected events projected: refused, nothing changed.
    code, _, err = invoke(catalog_url, "ingest", "--rebuild")
    assert code == 2
    assert f"no longer holds {len(aged['old'])} accepted events" in err
    assert counts(catalog_url) == before


def test_gc_keeps_a_size(catalog_url: str, aged: dict[str, list[dict[str, Any]]]) -> None:
    # Sizes are the bodies' as stored: the text's bytes on PostgreSQL, packed on SQLite.
    bodies = [r[2] if isinstance(r[2], bytes) else r[2].encode("utf-8") for r in raw(catalog_url)]
    newest = 5
    keep = sum(len(b) for b in bodies[-newest:])
    code, out, _ = invoke(catalog_url, "gc", "--keep-size", f"{keep}B", "--vacuum", "--json")
    assert code == 0
    done = json.loads(out)
    assert done["kept"] == newest
    assert done["kept_bytes"] == keep
    assert done["freed_bytes"] == sum(len(b) for b in bodies[:-newest])
    assert [r[2] != "" for r in raw(catalog_url)][-newest - 1 :] == [False] + [True] * newest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--keep-days N or --keep-size SIZE"),
        (("--keep-size", "lots"), "--keep-size 'lots' is not a size"),
        (("--keep-days", "0"), "--keep-days"),
    ],
)
def test_gc_refuses_what_it_cannot_read(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, out, err = invoke(f"sqlite:///{tmp_path / 'c.db'}", "gc", *args)
    assert code == 2
    assert out == ""
    assert message in err
