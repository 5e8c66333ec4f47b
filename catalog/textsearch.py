"""The search index of asset names: substring search without reading the whole table.

`steward assets`' and the APIs' `q` match a substring of an asset's name (or
URI) case-insensitively, as a SQL `LIKE '%text%'`. Without an index that is a
scan of every asset. The index is the database's own trigram index:

- SQLite: an FTS5 table with the `trigram` tokenizer over `asset.name` and
  `asset.uri` (`asset_search`, external content, kept by triggers on
  `asset`). A `LIKE` pattern's literal runs of three or more characters are
  looked up there; the rows found are then checked with the `LIKE` itself, so
  the answer is exactly the `LIKE`'s. Only the first `INDEXED_CHARS`
  characters of a value are indexed (a two-megabyte name would take seconds
  to index): rows whose URI is longer are always checked (a partial index
  finds them).
- PostgreSQL: `pg_trgm` GIN indexes on `asset.name` and `asset.uri`, which
  the planner uses for `ILIKE '%text%'` by itself. Without the extension
  (a role that may not create it) the migration goes on without them.

The index of a namespace's assets in name order (`name_order`) lives here
too. These objects are made by migrations 0005 and 0008, outside the table models
(`UNMODELLED` names them, so the comparison of models and migrations leaves
them out). A later migration that rebuilds `asset` in SQLite's batch mode
drops its triggers: it must run `install_sqlite` again.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, Integer, column, func, literal_column, text
from sqlalchemy.exc import DBAPIError

from catalog.changelog import NAME_LOOKUP, PENDING

log = logging.getLogger(__name__)

#: Characters of a name or URI that the SQLite index holds; longer values are scanned.
INDEXED_CHARS = 1024
#: Shortest literal run the trigram index can look up.
TRIGRAM = 3
FTS = "asset_search"
LONG_INDEX = "ix_asset_long_uri"
#: SQLite: pages of one namespace's assets in name order (Marquez's lists).
NAME_INDEX = "ix_asset_namespace_name"
#: PostgreSQL's b-tree entries cannot hold a name over about 2,700 bytes (and names
#: have no length limit), so its index holds the first `NAME_PREFIX` characters of
#: the name (migration 0008); `name_order` sorts by them, then by the whole name.
PG_NAME_INDEX = "ix_asset_namespace_name_prefix"
#: 64 characters (at most 256 bytes) beside a namespace (at most 2,048 bytes, see
#: `catalog.identity`) and a kind (at most 64 characters) fit one index entry.
#: The index's expression holds the number: changing it takes a migration.
NAME_PREFIX = 64
TRIGGERS = ("asset_search_insert", "asset_search_delete", "asset_search_update")
PG_INDEXES = ("ix_asset_name_trgm", "ix_asset_uri_trgm")
#: What the migration makes beside the table models (FTS5 makes the shadow tables).
UNMODELLED = frozenset(
    {
        FTS,
        *(f"{FTS}_{shadow}" for shadow in ("data", "idx", "docsize", "config", "content")),
        LONG_INDEX,
        NAME_INDEX,
        PG_NAME_INDEX,
        *TRIGGERS,
        *PG_INDEXES,
        NAME_LOOKUP,
        PENDING,
    }
)

_CUT = f"substr({{row}}.name, 1, {INDEXED_CHARS}), substr({{row}}.uri, 1, {INDEXED_CHARS})"
# kind and deleted too: a page of a namespace and its count are read from the index alone
_NAME_INDEX = f"CREATE INDEX IF NOT EXISTS {NAME_INDEX} ON asset (namespace, name, kind, deleted)"
_SQLITE = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS} USING fts5("
    "name, uri, content='asset', content_rowid='id', tokenize='trigram')",
    f"CREATE INDEX IF NOT EXISTS {LONG_INDEX} ON asset (id) WHERE length(uri) > {INDEXED_CHARS}",
    f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[0]} AFTER INSERT ON asset BEGIN "
    f"INSERT INTO {FTS} (rowid, name, uri) VALUES (new.id, {_CUT.format(row='new')}); END",
    f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[1]} AFTER DELETE ON asset BEGIN "
    f"INSERT INTO {FTS} ({FTS}, rowid, name, uri) "
    f"VALUES ('delete', old.id, {_CUT.format(row='old')}); END",
    f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[2]} AFTER UPDATE OF name, uri ON asset BEGIN "
    f"INSERT INTO {FTS} ({FTS}, rowid, name, uri) "
    f"VALUES ('delete', old.id, {_CUT.format(row='old')}); "
    f"INSERT INTO {FTS} (rowid, name, uri) VALUES (new.id, {_CUT.format(row='new')}); END",
]


def install_sqlite(conn: Connection) -> None:
    """Make the FTS5 index, its triggers, the long-URI and name indexes; fill the index.

    A SQLite built without FTS5 gets the name index only, and a warning: search
    then reads every name, as `matching` does when the index is missing."""
    conn.exec_driver_sql(_NAME_INDEX)
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(_SQLITE[0])
    except DBAPIError as err:  # "no such module: fts5": go on without it
        log.warning("no search index: this SQLite has no FTS5 (%s)", str(err).splitlines()[0])
        return
    for statement in _SQLITE[1:]:
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql(f"INSERT INTO {FTS} ({FTS}) VALUES ('delete-all')")
    conn.exec_driver_sql(
        f"INSERT INTO {FTS} (rowid, name, uri) SELECT id, {_CUT.format(row='asset')} FROM asset"
    )


def install_postgresql(conn: Connection) -> bool:
    """Make the trigram indexes; False (and a warning) when pg_trgm cannot be had."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as err:  # not allowed, not installed: go on without the index
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        log.warning("no search index: pg_trgm cannot be created here (%s)", first)
        return False
    for name, field in zip(PG_INDEXES, ("name", "uri"), strict=True):
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {name} ON asset USING gin ({field} gin_trgm_ops)"
        )
    return True


def install_postgresql_name_index(conn: Connection) -> None:
    """The index of PostgreSQL's pages of a namespace's assets in name order.

    Byte order ("C"): a name's first characters then order it as the whole name
    does, which a linguistic collation does not promise. It is SQLite's order too.
    Kind and deleted are in it so that a page's filter is checked in the index
    before a row is read. (No index-only scans: PostgreSQL's planner does not
    take an expression of `name` for the column.)
    """
    conn.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {PG_NAME_INDEX} ON asset "
        f'(namespace, left(name, {NAME_PREFIX}) COLLATE "C", kind, deleted)'
    )


def name_order(conn: Connection, names: Any, namespaces: Any) -> list[Any]:
    """ORDER BY terms for assets by name, then namespace, through the name index.

    SQLite: the columns (its index holds whole names, in byte order). PostgreSQL:
    the indexed prefix of the name first, then the whole name and namespace, all in
    byte order: the same order as SQLite's, and the index gives it a prefix at a
    time (an incremental sort within names that share their first characters).
    """
    if conn.dialect.name == "sqlite":
        return [names, namespaces]
    return [
        # the length as a literal: the index's expression is `left(name, 64)`
        func.left(names, literal_column(str(NAME_PREFIX))).collate("C"),
        names.collate("C"),
        namespaces.collate("C"),
    ]


def uninstall(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        for trigger in TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {LONG_INDEX}")
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {NAME_INDEX}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS}")
    else:
        for name in PG_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def literal_runs(pattern: str, escape: str | None) -> list[str]:
    """The runs of literal characters of a LIKE pattern (between its wildcards)."""
    runs, current, escaped = [], "", False
    for char in pattern:
        if escaped:
            current, escaped = current + char, False
        elif escape is not None and char == escape:
            escaped = True
        elif char in "%_":
            runs.append(current)
            current = ""
        else:
            current += char
    runs.append(current)
    return [r for r in runs if r]


def matching(
    conn: Connection, ids: Any, values: Any, field: str, pattern: str, escape: str | None = None
) -> Any:
    """A WHERE clause: `column LIKE pattern`, case-insensitive, through the index if it can.

    `ids` is the statement's asset id column, `values` its name or URI column
    and `field` which of the two (`name`, `uri`).
    """
    if conn.dialect.name != "sqlite":
        return values.ilike(pattern, escape=escape)
    # SQLite's LIKE ignores (ASCII) case already; lower() would cost a call a row.
    like = values.like(pattern, escape=escape)
    # SQLite's LIKE reads a pattern up to its first NUL, and FTS5 takes a NUL in a
    # phrase for the end of the query ("unterminated string"): the runs are the
    # pattern's up to there.
    read = pattern.split("\x00", 1)[0]
    runs = [r for r in literal_runs(read, escape) if len(r) >= TRIGRAM]
    if not runs or not _has_index(conn):
        return like
    # Each run as an FTS5 phrase of its trigrams, in the one column (quotes doubled).
    query = " AND ".join(f'{field} : "{r.replace(chr(34), chr(34) * 2)}"' for r in runs)
    found = (
        text(
            f"SELECT rowid AS id FROM {FTS} WHERE {FTS} MATCH :search_query "
            f"UNION ALL SELECT id FROM asset WHERE length(uri) > {INDEXED_CHARS}"
        )
        .bindparams(search_query=query)
        .columns(column("id", Integer))
    )
    return ids.in_(found) & like


def _has_index(conn: Connection) -> bool:
    cache = conn.info.setdefault("steward_search_index", {})
    if "present" not in cache:
        row = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS,)
        ).first()
        cache["present"] = row is not None
    return bool(cache["present"])
