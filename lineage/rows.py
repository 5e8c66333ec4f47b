"""The hot tables written row by row in bulk: JSON serialised once, straight to the driver."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Column,
    MetaData,
    Table,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

from catalog.db import db_time
from catalog.models import RawEvent, Run, RunDataset

__all__ = ["RAW_W", "RUN_DATASET_W", "RUN_W", "db_time", "dumps"]


class JSONText(TypeDecorator[str]):
    """A JSON column written with values that already are JSON text."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


def _write_table(table: Table) -> Table:
    """A model's table again, with its JSON columns taking ready JSON text."""
    columns = [
        Column(c.name, JSONText if isinstance(c.type, JSON) else c.type, primary_key=c.primary_key)
        for c in table.columns
    ]
    return Table(table.name, _WRITE, *columns)


#: The hot tables again, with JSON columns as plain text: rows are written with
#: JSON serialised once by orjson instead of per value by the JSON type.
_WRITE = MetaData()
RUN_W = _write_table(Run.__table__)  # type: ignore[attr-defined]
RUN_DATASET_W = _write_table(RunDataset.__table__)  # type: ignore[attr-defined]
RAW_W = _write_table(RawEvent.__table__)  # type: ignore[attr-defined]


def dumps(value: Any) -> str:
    """JSON text for a JSON column written through the tables above."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        import json

        try:
            return json.dumps(value, ensure_ascii=False)
        except RecursionError:  # repr() would recurse as deep: say what it was instead
            return json.dumps("(a value nested too deeply to be written)")
