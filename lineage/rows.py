"""The hot tables written row by row in bulk: JSON serialised once, straight to the driver."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

from catalog.models import (
    UTCDateTime,
)


class JSONText(TypeDecorator[str]):
    """A JSON column written with values that already are JSON text."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


#: The hot tables again, with JSON columns as plain text: rows are written with
#: JSON serialised once by orjson instead of per value by the JSON type.
_WRITE = MetaData()
RUN_W = Table(
    "run",
    _WRITE,
    Column("id", Integer, primary_key=True),
    Column("run_uuid", String),
    Column("job_id", Integer),
    Column("state", String),
    Column("state_time", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("parent_run_uuid", String),
    Column("facets", JSONText),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
)
RUN_DATASET_W = Table(
    "run_dataset",
    _WRITE,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer),
    Column("asset_id", Integer),
    Column("version_id", Integer),
    Column("direction", String),
    Column("facets", JSONText),
)
RAW_W = Table(
    "raw_event",
    _WRITE,
    Column("id", Integer, primary_key=True),
    Column("digest", String),
    Column("received_at", UTCDateTime),
    Column("body", Text),
    Column("status", String),
    Column("error", Text),
    Column("warnings", JSONText),
    Column("source", Text),
)


def insert_rows(
    conn: Connection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    json_columns: frozenset[str] = frozenset(),
) -> None:
    """`executemany` straight to the driver: no per-value type processing.

    Values must be ready for the driver: JSON as text, timestamps through
    `db_time`. Only for the hot, append-only tables.
    """
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    values = ", ".join(
        f"CAST({mark} AS JSON)" if postgres and c in json_columns else mark for c in columns
    )
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})", rows)


def db_time(conn: Connection, value: datetime) -> Any:
    """A timestamp as the catalog stores it (naive UTC; SQLite: SQLAlchemy's text form)."""
    naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if conn.dialect.name == "sqlite":
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f")
    return naive


def dumps(value: Any) -> str:
    """JSON text for a JSON column written through the tables above."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        import json

        try:
            return json.dumps(value, ensure_ascii=False)
        except RecursionError:
            return json.dumps(repr(value))
