"""The raw log's bodies: packed (zstd) in a SQLite catalog, text in PostgreSQL, and read
back as the text received whichever way they were written or are read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import zstandard
from fastapi.testclient import TestClient
from sqlalchemy import text

from catalog.db import Store
from lineage.ingest import Ingester
from lineage.openlineage import loads
from lineage.server import create_app
from tests.conftest import FIXTURES

OL = FIXTURES / "openlineage"
#: Events dbt wrote through `dbt-ol` (12 lines), read from a file by the reading process.
DBT = OL / "normalized/openlineage/expected/dbt/postgres_seed_ol_events.jsonl"
#: Events from Marquez's own test fixtures, ingested as the server does.
MARQUEZ = [OL / "marquez/open_lineage" / n for n in ("event_full.json", "event_large.json")]
TOKEN = "t" * 32


def stored(store: Store) -> list[Any]:
    """The bodies exactly as the database holds them, in order (no type processing)."""
    with store.engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT body FROM raw_event ORDER BY id").scalars())


def test_bodies_are_packed_on_sqlite_and_read_back_as_received(catalog_url: str) -> None:
    sent = [line for line in DBT.read_text().splitlines() if line.strip()]
    sent += [json.dumps(json.loads(p.read_text())) for p in MARQUEZ]
    store = Store(catalog_url)
    try:
        ingester = Ingester(store)
        assert ingester.ingest_path(str(DBT)).accepted == 12
        results = ingester.ingest([(body, loads(body), "post") for body in sent[12:]])
        assert [r.status for r in results] == ["accepted"] * len(MARQUEZ)

        held = stored(store)
        if store.dialect == "sqlite":
            assert all(isinstance(b, bytes) for b in held)
            assert [zstandard.decompress(b).decode("utf-8") for b in held] == sent
            assert sum(map(len, held)) * 3 < sum(len(s.encode()) for s in sent)
        else:
            assert held == sent  # PostgreSQL compresses them itself

        # Marquez's events API (the Marquez UI's events page) gives them back as sent.
        client = TestClient(create_app(store, token=TOKEN))
        page = client.get(
            "/api/v1/events/lineage",
            params={"limit": 100, "sortDirection": "asc"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert page.status_code == 200, page.text
        assert page.json()["events"] == [json.loads(s) for s in sent]
    finally:
        store.dispose()


def test_a_rebuild_reads_packed_bodies_and_packs_what_it_masks_again(tmp_path: Path) -> None:
    """A body an older release stored as text, with a password in it: the rebuild masks it
    and writes it packed; the packed bodies replay to the same projections."""
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        ingester = Ingester(store)
        assert ingester.ingest_path(str(DBT)).accepted == 12
        event = json.loads(DBT.read_text().splitlines()[0])
        event["run"]["runId"] = "01890a4b-0000-7000-8000-000000000001"
        event["job"]["namespace"] = "postgres://loader:s3cr3t@db:5432"
        old = json.dumps(event)
        with store.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO raw_event (digest, received_at, body, status, warnings)"
                    " VALUES ('0', '2024-01-01 00:00:00.000000', :body, 'accepted', '[]')"
                ),
                {"body": old},
            )
        before = _projections(store)

        summary = Ingester(store).rebuild()
        assert summary.accepted == 13
        held = stored(store)
        assert all(isinstance(b, bytes) for b in held)
        rewritten = zstandard.decompress(held[-1]).decode("utf-8")
        assert "s3cr3t" not in rewritten and "loader:***@db" in rewritten
        assert _projections(store)["runs"] == before["runs"] + 1
        assert _projections(store)["edges"] == before["edges"]
    finally:
        store.dispose()


def _projections(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            "runs": conn.exec_driver_sql("SELECT count(*) FROM run").scalar_one(),
            "edges": conn.exec_driver_sql("SELECT count(*) FROM edge").scalar_one(),
        }
