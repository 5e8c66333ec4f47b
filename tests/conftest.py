"""Shared fixtures: a catalog on each backend (SQLite file, real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from catalog.db import Store
from tests.pg import database_url, temporary_database

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def pg_catalog_database() -> Iterator[str]:
    """One PostgreSQL database for the catalog tests of this session."""
    with temporary_database("steward_catalog") as name:
        yield database_url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty catalog URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    url = request.getfixturevalue("pg_catalog_database")
    store = Store(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with store.write() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    store.dispose()
    yield url


@pytest.fixture
def store(catalog_url: str) -> Iterator[Store]:
    opened = Store(catalog_url)
    yield opened
    opened.dispose()
