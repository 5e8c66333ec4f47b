"""A database error nobody expected, during a scan or an ingest: one line, exit 2, no half write.

The error is a real one: the catalog database itself refuses every new
lineage edge (a trigger), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text
from sqlmodel import SQLModel

from catalog.cli import cli
from catalog.db import Store
from tests.conftest import FIXTURES
from tests.connectors.test_features import DEFINITIONS

EVENT = FIXTURES / "openlineage" / "wire" / "client-python__example_full_event.json"
REFUSAL = "edge writes are refused here"


@pytest.fixture
def refusing(store: Store) -> Iterator[Store]:
    """A catalog whose database itself refuses every new edge row (until the test ends)."""
    with store.write() as conn:
        if store.dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_edges BEFORE INSERT ON edge "
                    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION refuse_edges() RETURNS trigger "
                    f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_edges BEFORE INSERT ON edge "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_edges()"
                )
            )
    yield store
    with store.write() as conn:
        conn.execute(text("DROP TRIGGER refuse_edges" + (" ON edge" * (store.dialect != "sqlite"))))


def snapshot(store: Store, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in skip:
                out[table.name] = sorted(map(repr, conn.execute(select(table)).all()))
    return out


def steward(catalog: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog, *args])


def test_scan_that_the_database_refuses(refusing: Store, catalog_url: str, tmp_path: Path) -> None:
    store = refusing
    before = snapshot(store)
    features = tmp_path / "features.toml"
    features.write_text(DEFINITIONS)

    result = steward(catalog_url, "scan", str(features))

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: scan {features}")
    assert "writing edge" in line and REFUSAL in line
    assert "nothing of the scan was written" in line
    assert snapshot(store) == before


def test_ingest_that_the_database_refuses(refusing: Store, catalog_url: str) -> None:
    store = refusing
    before = snapshot(store)

    result = steward(catalog_url, "ingest", str(EVENT))

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: 1 events could not be written to the catalog")
    assert "writing edge" in last and REFUSAL in last
    # The event is kept raw, with why; of its projection nothing is written.
    after = snapshot(store, skip=("raw_event",))
    assert after == {k: v for k, v in before.items() if k != "raw_event"}
    with store.engine.connect() as conn:
        (status, error) = conn.execute(text("SELECT status, error FROM raw_event")).one()
    assert status == "rejected" and "writing edge" in error
