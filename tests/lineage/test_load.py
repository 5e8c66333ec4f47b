"""`steward serve` under load: 8 concurrent producers, every acknowledged event stored once.

A real `steward serve` subprocess on a SQLite catalog and on a PostgreSQL
catalog (a database of its own); 8 client threads post 2,000 events each,
half of them one event a request, half through the batch endpoint. Then the
catalog is read back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.load import Server, World, merged, run_clients
from tests.lineage.stored import assert_each_event_once, status_counts

pytestmark = pytest.mark.slow

CLIENTS = 8
EVENTS_PER_CLIENT = 2000  # the throughput figure is `python -m benchmarks load`'s
BATCH = 50


def test_concurrent_clients_every_acknowledged_event_is_stored_once(
    own_catalog: str, tmp_path: Path
) -> None:
    world = World(seed=11)
    parts = [world.client_events(c, CLIENTS, EVENTS_PER_CLIENT) for c in range(CLIENTS)]
    sizes = [1 if c % 2 == 0 else BATCH for c in range(CLIENTS)]
    with Server(own_catalog, log=tmp_path / "serve.log") as server:
        tally = merged(run_clients(server.base, parts, sizes))

    assert tally.unexpected == [], tally.unexpected[:5]
    assert tally.transport_errors == 0
    # Only successes, and 503s (retried after Retry-After) if the own_catalog was busy:
    # never a 500, and never "database is locked" (checked on every response).
    assert set(tally.statuses) <= {200, 201, 503}, tally.statuses
    assert tally.statuses[201] == (CLIENTS // 2) * EVENTS_PER_CLIENT
    assert len(tally.sent) == CLIENTS * EVENTS_PER_CLIENT
    assert len(tally.acked) == len(tally.sent)
    assert set(tally.acked.values()) == {"accepted"}

    assert "Traceback" not in (tmp_path / "serve.log").read_text()
    assert_each_event_once(own_catalog, tally.sent)
    assert status_counts(own_catalog) == {"accepted": CLIENTS * EVENTS_PER_CLIENT}
