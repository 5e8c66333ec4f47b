"""Fixtures of the lineage tests that run a real server or ingest against a catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import database_url, temporary_database


@pytest.fixture(params=["sqlite", "postgresql"])
def own_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new catalog of the test's own: a SQLite file, or a PostgreSQL database
    created for it (other processes write to it, so it is never shared)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    with temporary_database("steward_lineage") as name:
        yield database_url(name)
