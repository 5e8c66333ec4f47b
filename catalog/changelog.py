"""The change log that makes `check` incremental: triggers on the tables the rules read.

Every insert, update and delete of an asset, a version, an edge, a model
binding, a model in use, a profile, a query model or an index purpose adds a
row to `check_change`, whatever wrote it (apply, the OpenLineage ingester,
retention, a merge, SQL by hand). A trigger is the one place no writer can
forget. `lineage.incremental` claims the rows, checks what they can affect and
deletes the rows it claimed.

A change already pending is not logged twice: a unique index over the rows not
yet claimed (asset, what, former name and URI) and `INSERT OR IGNORE` (SQLite),
`ON CONFLICT DO NOTHING` (PostgreSQL) keep one row for any number of writes of
the same asset between two checks. A claimed row is out of that index, so a
write landing while a check runs adds a row of its own for the next check.

Runs and their datasets have no triggers (an ingest writes them for every
event): what the rules see of them is fingerprinted at each check instead
(`lineage.incremental.run_fingerprint`).

A row's `what` is `graph` when the change can alter the lineage graph (an
edge, a model binding, an asset added, deleted, restored or renamed), `asset`
when it is about the asset alone (a version, a sample, the model in use), or
`embedding` for the changes about no one asset.

A later migration that rebuilds one of these tables in SQLite's batch mode
drops its triggers: it must call `install_triggers` again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, func

#: table -> (the columns naming the assets it concerns, what the change is about)
LOGGED: dict[str, tuple[tuple[str, ...], str]] = {
    "asset": (("id",), "graph"),
    "asset_version": (("asset_id",), "asset"),
    "edge": (("source_id", "target_id"), "graph"),
    "model_binding": (("asset_id",), "graph"),
    "model_in_use": (("model_id",), "asset"),
    "profile": (("asset_id",), "asset"),
    "query_model": ((), "embedding"),
    "index_purpose": ((), "embedding"),
}
OPS = ("insert", "update", "delete")


#: What of an asset's row the lineage graph shows (an update of anything else is `asset`).
GRAPH_COLUMNS = ("uri", "name", "kind", "deleted")


def _values(table: str, row: str, op: str, dialect: str) -> list[str]:
    columns, what = LOGGED[table]
    if not columns:
        return [f"(0, '', '', '{what}')"]
    if table == "asset":
        if op != "update":
            return [f"({row}.id, {row}.name, {row}.uri, 'graph')"]
        # Its findings are under its former name and URI, if it was renamed.
        differ = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
        changed = " OR ".join(f"OLD.{c} {differ} NEW.{c}" for c in GRAPH_COLUMNS)
        return [f"(NEW.id, OLD.name, OLD.uri, CASE WHEN {changed} THEN 'graph' ELSE 'asset' END)"]
    return [f"({row}.{c}, '', '', '{what}')" for c in columns]


def _rows(table: str, op: str, dialect: str) -> list[str]:
    rows = {"insert": ["NEW"], "update": ["OLD", "NEW"], "delete": ["OLD"]}[op]
    if table == "asset" and op == "update":
        rows = ["NEW"]
    return [v for row in rows for v in _values(table, row, op, dialect)]


COLUMNS = "check_change (asset_id, name, uri, what) VALUES "
#: The one pending row per change: unique over the rows no check has claimed yet.
PENDING = "ux_check_change_pending"
#: Assets by exact name (an incremental check looks up the namesakes of what changed). On
#: PostgreSQL, of `md5(name)`: its b-tree entries cannot hold a name over ~2,700 bytes,
#: and for `name = ...` its planner picks the trigram index, slow on short names.
NAME_LOOKUP = "ix_asset_name_lookup"


def named(conn: Connection, name: Any, names: Iterable[str]) -> ColumnElement[bool]:
    """The condition `name IN names` on asset's `name` column, in the form its index
    serves."""
    if conn.dialect.name == "postgresql":
        digests = sorted({hashlib.md5(n.encode()).hexdigest() for n in names})
        return func.md5(name).in_(digests)
    return cast(ColumnElement[bool], name.in_(sorted(set(names))))


def install_triggers(conn: Connection) -> None:
    """Create the triggers and the name index (both dialects); idempotent."""
    postgresql = conn.dialect.name == "postgresql"
    key = "md5(name)" if postgresql else "name"
    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {NAME_LOOKUP} ON asset ({key})")
    # Of md5(...) on PostgreSQL: a b-tree entry cannot hold a name or URI over ~2,700
    # bytes. The triggers write 0 and '' for none (a unique index holds NULLs as distinct).
    pending = "asset_id, what, md5(name), md5(uri)" if postgresql else "asset_id, what, name, uri"
    conn.exec_driver_sql(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {PENDING} ON check_change ({pending}) "
        f"WHERE {'NOT claimed' if postgresql else 'claimed = 0'}"
    )
    if postgresql:
        for table in LOGGED:
            body = "\n".join(
                f"IF TG_OP = '{op.upper()}' THEN INSERT INTO {COLUMNS}"
                f"{', '.join(_rows(table, op, 'postgresql'))} ON CONFLICT DO NOTHING; END IF;"
                for op in OPS
            )
            conn.exec_driver_sql(
                f"CREATE OR REPLACE FUNCTION check_change_{table}() RETURNS trigger AS $$\n"
                f"BEGIN\n{body}\nRETURN NULL;\nEND $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS check_change_{table} ON {table}")
            conn.exec_driver_sql(
                f"CREATE TRIGGER check_change_{table} AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION check_change_{table}()"
            )
        return
    for table in LOGGED:
        for op in OPS:
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS check_change_{table}_{op} AFTER {op.upper()} "
                f"ON {table} BEGIN INSERT OR IGNORE INTO {COLUMNS}"
                f"{', '.join(_rows(table, op, 'sqlite'))}; END"
            )


def drop_triggers(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {NAME_LOOKUP}")
    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {PENDING}")
    for table in LOGGED:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS check_change_{table} ON {table}")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS check_change_{table}()")
        else:
            for op in OPS:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS check_change_{table}_{op}")
