"""JSON columns are written by `catalog.db.json_text` (orjson) and read back as written."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select, text

from catalog.db import Store

VALUES: list[Any] = [
    {"name": "é ✓ \u2028 \x01", "nested": {"list": [1, 2.5, None, True, "x"]}},
    {"big": 2**70, "negative": -(2**63)},  # over 64 bits: the standard library writes it
    {1: "an integer key", "2": "a text key"},
    [],
    "text",
]


def _round_trip(store: Store) -> tuple[list[Any], Any, list[Any]]:
    meta = MetaData()
    table = Table("json_trip", meta, Column("id", Integer, primary_key=True), Column("j", JSON))
    with store.write() as conn:
        meta.create_all(conn)
        conn.execute(insert(table), [{"id": n, "j": v} for n, v in enumerate(VALUES)])
        conn.execute(insert(table), [{"id": 99, "j": {"mean": math.nan}}])
        back = [conn.execute(select(table.c.j).where(table.c.id == n)).scalar() for n in range(5)]
        nan = conn.execute(select(table.c.j).where(table.c.id == 99)).scalar()
        stored = [r[0] for r in conn.execute(text("SELECT j FROM json_trip ORDER BY id"))]
        meta.drop_all(conn)
    return back, nan, stored


def _expected() -> list[Any]:
    keyed = {"1": "an integer key", "2": "a text key"}  # JSON keys are text, as before
    return [VALUES[0], VALUES[1], keyed, [], "text"]


def test_json_columns_read_back_as_written_on_sqlite(store: Store) -> None:
    back, nan, stored = _round_trip(store)
    assert back == _expected()
    assert type(back[1]["big"]) is int  # not a float: a definition read back is the same
    # NaN has no JSON spelling: written as null, which SQLite's JSON functions can read.
    assert nan == {"mean": None}
    assert all('": ' not in s for s in stored[:1])  # orjson's compact text


def test_json_columns_read_back_as_written_on_postgresql(pg_catalog_database: str) -> None:
    """PostgreSQL refuses `NaN` in JSON: it is written as null, not refused."""
    store = Store(pg_catalog_database)
    try:
        back, nan, _ = _round_trip(store)
    finally:
        store.dispose()
    assert back == _expected()
    assert type(back[1]["big"]) is int
    assert nan == {"mean": None}
