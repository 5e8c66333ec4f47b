"""The change log that makes `check` incremental: triggers on the tables the rules read.

Every insert, update and delete of an asset, a version, an edge, a model
binding, a model in use, a profile, a run (or its datasets), a query model
or an index purpose adds a row to `check_change`, whatever wrote it (apply,
the OpenLineage ingester, retention, a merge, SQL by hand). A trigger is the
one place no writer can forget. `lineage.incremental` reads the rows, checks
what they can affect and deletes the rows it read.

A row's `what` is `graph` when the change can alter the lineage graph (an
edge, a model binding, an asset added, deleted, restored or renamed), `asset`
when it is about the asset alone (a version, a sample, the model in use), or
`run` / `embedding` for the changes about no one asset.

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
    "run": ((), "run"),
    "run_dataset": ((), "run"),
}
OPS = ("insert", "update", "delete")


#: What of an asset's row the lineage graph shows (an update of anything else is `asset`).
GRAPH_COLUMNS = ("uri", "name", "kind", "deleted")


def _values(table: str, row: str, op: str, dialect: str) -> list[str]:
    columns, what = LOGGED[table]
    if not columns:
        return [f"(NULL, NULL, NULL, '{what}')"]
    if table == "asset":
        if op != "update":
            return [f"({row}.id, {row}.name, {row}.uri, 'graph')"]
        # Its findings are under its former name and URI, if it was renamed.
        differ = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
        changed = " OR ".join(f"OLD.{c} {differ} NEW.{c}" for c in GRAPH_COLUMNS)
        return [f"(NEW.id, OLD.name, OLD.uri, CASE WHEN {changed} THEN 'graph' ELSE 'asset' END)"]
    return [f"({row}.{c}, NULL, NULL, '{what}')" for c in columns]


def _rows(table: str, op: str, dialect: str) -> list[str]:
    rows = {"insert": ["NEW"], "update": ["OLD", "NEW"], "delete": ["OLD"]}[op]
    if table == "asset" and op == "update":
        rows = ["NEW"]
    return [v for row in rows for v in _values(table, row, op, dialect)]


INSERT = "INSERT INTO check_change (asset_id, name, uri, what) VALUES "
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
    key = "md5(name)" if conn.dialect.name == "postgresql" else "name"
    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {NAME_LOOKUP} ON asset ({key})")
    if conn.dialect.name == "postgresql":
        for table in LOGGED:
            body = "\n".join(
                f"IF TG_OP = '{op.upper()}' THEN "
                f"{INSERT}{', '.join(_rows(table, op, 'postgresql'))}; END IF;"
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
                f"ON {table} BEGIN {INSERT}{', '.join(_rows(table, op, 'sqlite'))}; END"
            )


def drop_triggers(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {NAME_LOOKUP}")
    for table in LOGGED:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS check_change_{table} ON {table}")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS check_change_{table}()")
        else:
            for op in OPS:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS check_change_{table}_{op}")
