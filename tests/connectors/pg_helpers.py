"""Helpers for the PostgreSQL connector tests: databases with content, scans, catalog reads."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlmodel import col, select

from catalog.apply import Plan, apply
from catalog.db import Store
from catalog.models import Asset, AssetVersion
from connectors.base import Scan
from connectors.registry import for_url
from tests.pg import PG_HOST, PG_PORT, PG_USER, database_url, temporary_database

NAMESPACE = f"postgres://{PG_HOST}:{PG_PORT}"


def dsn(database: str) -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={database}"


def execute(database: str, *statements: str) -> None:
    with psycopg.connect(dsn(database), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def load_sql_files(database: str, *files: Path) -> None:
    """Load SQL dumps with psql (they use COPY ... FROM stdin)."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed: it is needed to load the pagila dump")
    for path in files:
        command = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-p", str(PG_PORT)]
        subprocess.run(
            [*command, "-U", PG_USER, "-d", database, "-f", str(path)],
            check=True,
            capture_output=True,
        )


@contextmanager
def database(*statements: str, prefix: str = "steward_pgconn") -> Iterator[str]:
    """A fresh database with `statements` run in it; dropped afterwards."""
    with temporary_database(prefix) as name:
        execute(name, *statements)
        yield name


def scan(database: str, **options: object) -> Scan:
    return for_url(database_url(database, "postgres"), **options).scan()


def scan_apply(store: Store, database: str, **options: object) -> Plan:
    result = scan(database, **options)
    return apply(store, result.specs, result.scopes, origin=result.origin)


def by_short_name(result: Scan) -> dict[str, object]:
    """Specs by `SCHEMA.TABLE` (the name without its database)."""
    return {spec.name.split(".", 1)[1]: spec for spec in result.specs}


def version_count(store: Store) -> int:
    with store.session() as session:
        return len(session.exec(select(AssetVersion.id)).all())


def asset(store: Store, name: str) -> Asset:
    with store.session() as session:
        found = session.exec(select(Asset).where(col(Asset.name) == name)).one()
        return found


def versions(store: Store, name: str) -> list[AssetVersion]:
    with store.session() as session:
        return list(
            session.exec(
                select(AssetVersion)
                .join(Asset, col(Asset.id) == col(AssetVersion.asset_id))
                .where(col(Asset.name) == name)
                .order_by(col(AssetVersion.version))
            ).all()
        )
