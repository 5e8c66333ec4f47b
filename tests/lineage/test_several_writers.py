"""Several writers on one PostgreSQL catalog: each event accepted exactly once.

- Three `steward serve` processes on one catalog, clients spread over them
  (single and batch posts, the same events sent to two servers at once),
  one server killed with SIGKILL mid-run and restarted: every acknowledged
  event is stored once, nothing else is, no version number is taken twice,
  no 5xx.
- Two `steward ingest` of one file at once: each event accepted by one of them.
- A catalog written before the unique index, holding a digest accepted twice,
  upgrades: the first acceptance is kept, the others become duplicates.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from benchmarks.load import LoadClient, Server, ServerGone, Tally, World, digest, merged
from catalog.db import Store, _alembic_config
from lineage.ingest import Ingester
from tests.lineage.stored import (
    assert_acknowledged_stored,
    assert_each_event_once,
    query,
    status_counts,
)
from tests.pg import database_url, temporary_database

STEWARD = str(Path(sys.executable).parent / "steward")


@pytest.fixture
def pg_catalog() -> Iterator[str]:
    """A PostgreSQL catalog of the test's own (other processes write to it)."""
    with temporary_database("steward_writers") as name:
        yield database_url(name)


def post_all(
    client: LoadClient, events: list[dict[str, Any]], batch: int, failures: list[BaseException]
) -> None:
    try:
        client.post(events, batch)
    except ServerGone:
        pass
    except BaseException as err:  # reported by the test
        failures.append(err)


@pytest.mark.slow
def test_three_servers_one_catalog_each_event_once(pg_catalog: str, tmp_path: Path) -> None:
    world = World(seed=23, epoch_runs=20)  # schemas change while the servers write
    parts = [world.client_events(c, 3, 100) for c in range(3)]
    events = {digest(e): e for part in parts for e in part}
    logs = [tmp_path / f"serve-{i}.log" for i in range(3)]
    servers = [Server(pg_catalog, log=log) for log in logs]
    for server in servers:
        server.start()
    stop = threading.Event()
    # Each part goes to two servers at once: one by one to one, in batches to another.
    plan = [(0, 0, 1), (0, 1, 10), (1, 1, 1), (1, 2, 10), (2, 2, 1), (2, 0, 10)]
    clients = [LoadClient(servers[s].base, stop=stop) for _, s, _ in plan]
    failures: list[BaseException] = []
    threads = [
        threading.Thread(target=post_all, args=(client, parts[p], batch, failures))
        for client, (p, _, batch) in zip(clients, plan, strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while sum(len(c.tally.acked) for c in clients) < 0.3 * 2 * len(events):
            assert any(t.is_alive() for t in threads) and time.monotonic() < deadline
            time.sleep(0.01)
        stop.set()  # the clients of the killed server stop at their next failure
        servers[2].kill()
        for thread in threads:
            thread.join(timeout=180)
        first = merged(c.tally for c in clients)
        assert failures == []
        assert first.unexpected == [], first.unexpected[:5]
        killed = [c for c, (p, s, _) in zip(clients, plan, strict=True) if s == 2]
        assert any(len(c.tally.acked) < len(parts[0]) for c in killed)  # killed mid-run
        assert_acknowledged_stored(pg_catalog, first.acked)

        servers[2].start()  # the same catalog, the same port
        again = Tally()
        # Everything again, through each server: what was not acknowledged is retried.
        retry = [LoadClient(s.base) for s in servers]
        threads = [
            threading.Thread(target=post_all, args=(client, parts[i], 7, failures))
            for i, client in enumerate(retry)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
        again = merged(c.tally for c in retry)
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.stop()
    assert failures == []
    assert again.unexpected == [], again.unexpected[:5]
    assert set(first.statuses) | set(again.statuses) <= {200, 201}  # never a 5xx
    assert set(again.acked) == set(events)
    for key in first.acked:
        assert again.acked[key] == "duplicate"
    assert_each_event_once(pg_catalog, events)
    assert status_counts(pg_catalog)["accepted"] == len(events)
    for log in logs:
        assert "Traceback" not in log.read_text()


def test_two_ingests_of_one_file_at_once(pg_catalog: str, tmp_path: Path) -> None:
    world = World(seed=29, epoch_runs=10)
    events = list(world.events(range(150)))
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    Store(pg_catalog).dispose()  # created (migrated) before both start
    command = [STEWARD, "-q", "--catalog", pg_catalog, "ingest", "--json", str(path)]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    summaries = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()[-2000:]
        summaries.append(json.loads(out))
    assert sum(s["accepted"] for s in summaries) == len(events)
    assert sum(s["duplicates"] for s in summaries) == len(events)
    assert_each_event_once(pg_catalog, {digest(e): e for e in events})


def _event(n: int) -> dict[str, Any]:
    return next(iter(World(seed=31).events([n])))


def test_a_digest_accepted_twice_before_the_index_upgrades(
    own_catalog: str,
) -> None:
    event, other = _event(1), _event(2)
    old = Store(own_catalog, migrate=False)
    with old.write() as conn:
        command.upgrade(_alembic_config(conn), "0004")
        for body, status in (
            (event, "accepted"),
            (other, "accepted"),
            (event, "accepted"),
            (event, "rejected"),
            (event, "accepted"),
        ):
            conn.execute(
                text(
                    "INSERT INTO raw_event (digest, received_at, body, status, warnings)"
                    " VALUES (:digest, CURRENT_TIMESTAMP, :body, :status, '[]')"
                ),
                {"digest": digest(body), "body": json.dumps(body), "status": status},
            )
    old.dispose()

    store = Store(own_catalog)
    try:
        rows = query(own_catalog, "SELECT id, status, error FROM raw_event ORDER BY id")
        assert [r[1] for r in rows] == [
            "accepted",
            "accepted",
            "duplicate",
            "rejected",
            "duplicate",
        ]
        assert "migration 0007" in rows[2][2]
        # The index, not a check, refuses a second acceptance from now on.
        with pytest.raises(IntegrityError), store.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO raw_event (digest, received_at, body, status, warnings)"
                    " VALUES (:digest, CURRENT_TIMESTAMP, '{}', 'accepted', '[]')"
                ),
                {"digest": digest(event)},
            )
        results = Ingester(store).ingest([(json.dumps(event), event, None)])
        assert [r.status for r in results] == ["duplicate"]
    finally:
        store.dispose()
