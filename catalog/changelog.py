"""The change log that makes `check` incremental: triggers on the tables the rules read.

Every insert, update and delete of an asset, a version, an edge, a model
binding, a model in use, a profile, a run (or its datasets), a query model
or an index purpose adds a row to `check_change`, whatever wrote it (apply,
the OpenLineage ingester, retention, a merge, SQL by hand). A trigger is the
one place no writer can forget. `lineage.incremental` reads the rows, checks
what they can affect and deletes the rows it read.

A later migration that rebuilds one of these tables in SQLite's batch mode
drops its triggers: it must call `install_triggers` again.
"""

from __future__ import annotations

from sqlalchemy import Connection

#: table -> (the columns naming the assets it concerns, what the change is about)
LOGGED: dict[str, tuple[tuple[str, ...], str]] = {
    "asset": (("id",), "asset"),
    "asset_version": (("asset_id",), "asset"),
    "edge": (("source_id", "target_id"), "asset"),
    "model_binding": (("asset_id",), "asset"),
    "model_in_use": (("model_id",), "asset"),
    "profile": (("asset_id",), "asset"),
    "query_model": ((), "embedding"),
    "index_purpose": ((), "embedding"),
    "run": ((), "run"),
    "run_dataset": ((), "run"),
}
OPS = ("insert", "update", "delete")


def _values(table: str, row: str) -> list[str]:
    columns, what = LOGGED[table]
    if not columns:
        return [f"(NULL, NULL, NULL, '{what}')"]
    if table == "asset":
        # A renamed or deleted asset: its findings are under its former name and URI.
        if row == "OLD":
            return [f"({row}.id, {row}.name, {row}.uri, 'asset')"]
        return [f"({row}.id, NULL, NULL, 'asset')"]
    return [f"({row}.{c}, NULL, NULL, '{what}')" for c in columns]


def _rows(table: str, op: str) -> list[str]:
    rows = {"insert": ["NEW"], "update": ["OLD", "NEW"], "delete": ["OLD"]}[op]
    return [v for row in rows for v in _values(table, row)]


INSERT = "INSERT INTO check_change (asset_id, name, uri, what) VALUES "


def install_triggers(conn: Connection) -> None:
    """Create the triggers (both dialects); idempotent."""
    if conn.dialect.name == "postgresql":
        for table in LOGGED:
            body = "\n".join(
                f"IF TG_OP = '{op.upper()}' THEN {INSERT}{', '.join(_rows(table, op))}; END IF;"
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
                f"ON {table} BEGIN {INSERT}{', '.join(_rows(table, op))}; END"
            )


def drop_triggers(conn: Connection) -> None:
    for table in LOGGED:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS check_change_{table} ON {table}")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS check_change_{table}()")
        else:
            for op in OPS:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS check_change_{table}_{op}")
