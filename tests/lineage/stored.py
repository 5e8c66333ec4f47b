"""What a catalog holds after events were sent to it: counts and the exactly-once checks.

Used by the load and crash tests; reads through SQLAlchemy, so the same
checks run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text

from benchmarks.load import stored_digests
from catalog.db import Store
from catalog.models import RawBody

#: The tables compared between two catalogs, and what each count means.
COUNTS = {
    "assets": "SELECT count(*) FROM asset",
    "asset versions": "SELECT count(*) FROM asset_version",
    "fields": "SELECT count(*) FROM asset_field",
    "edges": "SELECT count(*) FROM edge",
    "aliases": "SELECT count(*) FROM alias",
    "runs": "SELECT count(*) FROM run",
    "run datasets": "SELECT count(*) FROM run_dataset",
    "accepted raw events": "SELECT count(*) FROM raw_event WHERE status = 'accepted'",
}


def query(url: str, sql: str) -> list[Any]:
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        store.dispose()


def raw_bodies(url: str) -> list[str]:
    """The raw log's bodies as text, in order: read through the column's type, which
    unpacks what a SQLite catalog stores compressed (its file's bytes would not show
    a password in a body)."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            sql = text("SELECT body FROM raw_event ORDER BY id").columns(body=RawBody())
            return list(conn.execute(sql).scalars())
    finally:
        store.dispose()


def counts(url: str) -> dict[str, int]:
    return {name: int(query(url, sql)[0][0]) for name, sql in COUNTS.items()}


def run_states(url: str) -> set[tuple[str, str]]:
    return {(row[0], row[1]) for row in query(url, "SELECT run_uuid, state FROM run")}


def duplicate_versions(url: str) -> list[Any]:
    """(asset_id, version) pairs held more than once, and assets whose current version
    is not the newest by the time it became true (a late, older event is a version
    of its own but never current)."""
    twice = query(
        url,
        "SELECT asset_id, version FROM asset_version GROUP BY asset_id, version"
        " HAVING count(*) > 1",
    )
    behind = query(
        url,
        "SELECT a.id, a.current_version, v.version FROM asset a"
        " JOIN asset_version cur ON cur.asset_id = a.id AND cur.version = a.current_version"
        " JOIN asset_version v ON v.asset_id = a.id AND v.valid_from > cur.valid_from",
    )
    return [*twice, *behind]


def assert_acknowledged_stored(url: str, acked: Iterable[str]) -> None:
    """Every acknowledged digest is in the raw log as accepted, exactly once."""
    accepted = stored_digests(url)
    missing = [d for d in acked if accepted[d] != 1]
    assert not missing, f"{len(missing)} acknowledged events not stored once, e.g. {missing[0]}"


def assert_each_event_once(url: str, events: dict[str, dict[str, Any]]) -> None:
    """The catalog holds exactly `events` (by digest), each projected once.

    Every event is accepted once in the raw log and nothing else is; runs are
    the events' runs, each in its final state; each run's inputs and outputs
    are linked once; each job's lineage edges are its datasets, once; no
    version number is taken twice.
    """
    accepted = stored_digests(url)
    assert set(accepted) == set(events), "accepted raw events differ from the events sent"
    assert max(accepted.values()) == 1, "an event is accepted twice"
    runs = {e["run"]["runId"] for e in events.values()}
    assert run_states(url) == {(run, "COMPLETE") for run in runs}
    unfinished = query(url, "SELECT count(*) FROM run WHERE started_at IS NULL OR ended_at IS NULL")
    assert unfinished[0][0] == 0
    links: set[tuple[str, ...]] = set()
    edges: set[tuple[str, ...]] = set()
    for event in events.values():
        job = (event["job"]["namespace"], event["job"]["name"])
        for direction in ("inputs", "outputs"):
            for d in event[direction]:
                links.add((event["run"]["runId"], d["namespace"], d["name"], direction))
                edges.add((*job, d["namespace"], d["name"], direction))
    twice = query(
        url,
        "SELECT run_id, asset_id, direction FROM run_dataset"
        " GROUP BY run_id, asset_id, direction HAVING count(*) > 1",
    )
    assert twice == []
    held = counts(url)
    assert held["run datasets"] == len(links)
    lineage = query(url, "SELECT count(*) FROM edge WHERE kind IN ('reads', 'writes')")
    assert lineage[0][0] == len(edges)
    assert duplicate_versions(url) == []


def status_counts(url: str) -> Counter[str]:
    return Counter({row[0]: row[1] for row in query(url, _STATUSES)})


_STATUSES = "SELECT status, count(*) FROM raw_event GROUP BY status"
