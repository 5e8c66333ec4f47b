"""Crash safety: `steward ingest` and `steward serve` killed with SIGKILL, then run again.

- An ingest of 20,000 events (16 chunks of the default 2 MB) killed halfway,
  then the same command again, leaves the catalog a clean run leaves (the
  re-run logs the events the first run had stored as duplicates, and
  projects nothing twice).
- A server killed under load from several clients has every event it
  acknowledged after a restart; once the clients post everything again, each
  event is in the catalog exactly once.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.load import Server, Tally, World, digest, merged, run_clients, stored_digests
from tests.lineage.stored import (
    assert_acknowledged_stored,
    assert_each_event_once,
    counts,
    query,
    run_states,
    status_counts,
)

pytestmark = pytest.mark.slow

STEWARD = str(Path(sys.executable).parent / "steward")
#: Enough for the kill to land between chunks, with a reading process still alive:
#: 16 chunks of the default 2 MB (`steward ingest --chunk-size`).
EVENTS = 20_000


def ingest(db: Path, events: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [STEWARD, "-q", "--catalog", f"sqlite:///{db}", "ingest", "--json", str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def raw_count(db: Path) -> int:
    """Raw events committed so far, read without taking any write lock."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM raw_event").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def summary(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def assets(db: Path) -> set[tuple[Any, ...]]:
    url = f"sqlite:///{db}"
    sql = "SELECT uri, kind, current_version, fingerprint, deleted, unresolved FROM asset"
    return {tuple(row) for row in query(url, sql)}


def edges(db: Path) -> set[tuple[Any, ...]]:
    sql = (
        "SELECT s.uri, t.uri, e.kind, o.uri FROM edge e JOIN asset s ON s.id = e.source_id"
        " JOIN asset t ON t.id = e.target_id JOIN asset o ON o.id = e.origin_id"
    )
    return {tuple(row) for row in query(f"sqlite:///{db}", sql)}


def test_ingest_killed_halfway_then_again_equals_one_clean_run(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    assert World(seed=5).write_ndjson(events, EVENTS) == EVENTS
    crashed, clean = tmp_path / "crashed.db", tmp_path / "clean.db"

    clean_run = ingest(clean, events)  # meanwhile, on the other core
    first = ingest(crashed, events)
    deadline = time.monotonic() + 600  # a guard against a hang, not a speed goal
    while raw_count(crashed) < EVENTS // 2:
        assert first.poll() is None, "the ingest ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    # Its output pipes close once no process of it is left: its reading
    # process (forked) must end too, not linger holding them.
    first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    stored = raw_count(crashed)
    assert EVENTS // 2 <= stored < EVENTS  # whole chunks only: the one being written is gone

    again = summary(ingest(crashed, events))
    assert again["accepted"] == EVENTS - stored
    assert again["duplicates"] == stored  # logged again as duplicates: visible, not hidden
    assert again["rejected"] == 0
    once = summary(clean_run)
    assert once["accepted"] == EVENTS and once["duplicates"] == 0

    crashed_url, clean_url = f"sqlite:///{crashed}", f"sqlite:///{clean}"
    assert counts(crashed_url) == counts(clean_url)
    assert counts(clean_url)["accepted raw events"] == EVENTS
    assert status_counts(crashed_url) == {"accepted": EVENTS, "duplicate": stored}
    assert max(stored_digests(crashed_url).values()) == 1
    states = run_states(clean_url)
    assert len(states) == EVENTS // 2 and {s for _, s in states} == {"COMPLETE"}
    assert run_states(crashed_url) == states
    assert assets(crashed) == assets(clean)
    assert edges(crashed) == edges(clean)


CLIENTS = 4
EVENTS_PER_CLIENT = 750
#: Two clients post one event a request, two post batches of 10.
SIZES = [1, 10, 1, 10]


def load_until_killed(server: Server, parts: list[list[dict[str, Any]]], share: float) -> Tally:
    """Post from every client; kill the server (SIGKILL) once `share` of the events
    are acknowledged. Returns what the clients saw."""
    stop = threading.Event()
    live: list[Tally] = []
    done: list[Tally] = []
    posting = threading.Thread(
        target=lambda: done.extend(run_clients(server.base, parts, SIZES, stop=stop, live=live))
    )
    posting.start()
    total = sum(len(p) for p in parts)
    deadline = time.monotonic() + 600  # a guard against a hang, not a speed goal
    while sum(len(t.acked) for t in list(live)) < share * total:
        assert posting.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    stop.set()
    server.kill()
    posting.join(timeout=180)
    assert not posting.is_alive()
    return merged(done)


def test_server_killed_under_load_loses_no_acknowledged_event(
    own_catalog: str, tmp_path: Path
) -> None:
    world = World(seed=13)
    parts = [world.client_events(c, CLIENTS, EVENTS_PER_CLIENT) for c in range(CLIENTS)]
    events = {digest(e): e for part in parts for e in part}
    server = Server(own_catalog, log=tmp_path / "serve.log").start()
    try:
        first = load_until_killed(server, parts, 0.3)
        assert first.unexpected == [], first.unexpected[:5]
        assert 0 < len(first.acked) < len(events)  # killed under load, not after it

        server.start()  # the same catalog, the same port
        assert_acknowledged_stored(own_catalog, first.acked)
        before = stored_digests(own_catalog)

        # The clients post everything again: what was not acknowledged is retried.
        again = merged(run_clients(server.base, parts, SIZES))
    finally:
        server.stop()
    assert again.unexpected == [], again.unexpected[:5]
    assert again.transport_errors == 0
    assert len(again.acked) == len(events)
    for key, status in again.acked.items():
        assert status == ("duplicate" if key in before else "accepted")
    assert_each_event_once(own_catalog, events)
    assert status_counts(own_catalog) == {"accepted": len(events), "duplicate": len(before)}
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
