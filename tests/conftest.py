"""Shared fixtures: a catalog on each backend (SQLite file, real PostgreSQL)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from catalog.db import Store
from tests.pg import database_url, temporary_database

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "external"

# A user who clones the repository has nothing beside it: no test may read a
# file from a sibling of the checkout (the environments Python runs from aside).
_BESIDE = str(REPO.parent) + os.sep
_ALLOWED = tuple(
    str(Path(p).resolve()) + os.sep for p in {REPO, sys.prefix, sys.base_prefix, sys.exec_prefix}
)
OUTSIDE_READS: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not isinstance(args[0], str | Path):
        return
    path = os.path.abspath(args[0])
    if path.startswith(_BESIDE) and not path.startswith(_ALLOWED):
        OUTSIDE_READS.append(path)


sys.addaudithook(_audit)


#: The test files that take longest, longest first: the ones that build an
#: environment of their own on a fresh machine (`tests/venvs.py`), then by
#: their time on CI. `pytest -n 2` hands out whole files (`--dist loadfile`
#: in pyproject.toml) in the order collected, so a long file started last
#: cannot keep one process busy while the other has nothing left to run.
LONGEST_FIRST = (
    "tests/lineage/test_dbt.py",
    "tests/connectors/test_mlflow_versions.py",
    "tests/connectors/test_pgvector_layouts.py",
    "tests/test_demo.py",
    "tests/lineage/test_load.py",
    "tests/lineage/test_hostile.py",
    "tests/test_credentials.py",
    "tests/connectors/test_scan_concurrency.py",
    "tests/test_tooling.py",
    "tests/lineage/test_crash.py",
    "tests/connectors/test_feast_quickstart.py",
    "tests/lineage/test_soak.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files in `LONGEST_FIRST` order, then the other files with a `slow` test, then
    the rest; a file's tests stay together and in their order."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def key(item: pytest.Item) -> int:
        name = item.path.relative_to(REPO).as_posix()
        if name in rank:
            return rank[name]
        return len(rank) + (0 if item.path in slow_files else 1)

    items.sort(key=key)  # stable: collection order within each rank


@pytest.fixture(autouse=True)
def _nothing_read_beside_the_checkout() -> Iterator[None]:
    """Fails the test that opened a file beside the repository (``../shared`` say)."""
    OUTSIDE_READS.clear()
    yield
    assert not OUTSIDE_READS, f"read outside the repository: {OUTSIDE_READS[:3]}"


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
