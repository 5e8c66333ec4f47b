"""The real PostgreSQL on 127.0.0.1:5432, and databases made for one test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG_HOST = os.environ.get("STEWARD_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("STEWARD_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("STEWARD_TEST_PG_USER", "postgres")
ADMIN_DSN = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres connect_timeout=5"


def postgres_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(ADMIN_DSN):
            return None
    except psycopg.Error as err:
        return f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable: {err}"


def require_postgres() -> None:
    """Skip when PostgreSQL is missing; on CI (CI=true) that is a failure, not a skip."""
    reason = postgres_available()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def database_url(name: str, driver: str = "postgresql") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


@contextmanager
def temporary_database(prefix: str = "steward_test") -> Iterator[str]:
    """Create a database of its own, yield its name, drop it afterwards."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
