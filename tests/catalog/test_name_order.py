"""Pages of a namespace's assets come in whole-name byte order, through an index.

PostgreSQL's index holds the first `NAME_PREFIX` characters of a name (a
b-tree entry cannot hold a long name): the pages must still be ordered by the
whole name, long names and names sharing their first characters included.
"""

from __future__ import annotations

import random
from typing import Any

from alembic import command
from sqlalchemy import Connection, event, insert, text

from catalog import reads, textsearch
from catalog.db import Store, _alembic_config, head_revision
from catalog.identity import asset_uri
from catalog.models import key_hash
from tests.pg import database_url, temporary_database

NS = "postgres://db:5432"
PREFIX = textsearch.NAME_PREFIX


def _names() -> list[str]:
    rng = random.Random(8)
    shared = "warehouse.analytics." + "x" * (PREFIX - 20)  # exactly the indexed characters
    names = [f"{shared}{tail}" for tail in ("b", "a", "", "a.é", "A", "ab", "Ж", " z")]
    names += [shared[:-1] + c for c in "yzé"]  # differ at the last indexed character
    # over 2,700 bytes of characters that do not compress: no b-tree entry holds them
    wide = "".join(chr(rng.randrange(0x400, 0x4FF)) for _ in range(1500))
    names += [wide, wide + "0", wide[:PREFIX] + "-", "é", "e", "E", "Éclair", "z", "🙂", "ä" * 70]
    names += [f"t{rng.randrange(10**6)}.{i}" for i in range(40)]
    return names


def _row(namespace: str, name: str, kind: str = "table", deleted: bool = False) -> dict[str, Any]:
    uri = asset_uri(namespace, name)
    return {
        "key_hash": key_hash(uri + ("#job" if kind == "job" else "")),
        "namespace": namespace,
        "name": name,
        "uri": uri,
        "kind": kind,
        "deleted": deleted,
        "observed": {},
    }


def _fill(conn: Connection, names: list[str]) -> None:
    rows = [_row(NS, n) for n in names]
    # what the page leaves out: another namespace, jobs, deleted datasets
    rows += [_row("postgres://other:5432", n) for n in names[:5]]
    rows += [_row(NS, "a.job", kind="job"), _row(NS, "0.gone", deleted=True)]
    conn.execute(insert(reads.ASSET), rows)


def _pages(store: Store, size: int) -> tuple[list[str], set[int]]:
    got: list[str] = []
    totals = set()
    with store.engine.connect() as conn:
        for offset in range(0, 200, size):
            rows, total = reads.assets_page(
                conn, jobs=False, namespace=NS, limit=size, offset=offset
            )
            got += [r.name for r in rows]
            totals.add(total)
    return got, totals


def test_pages_follow_whole_names_in_byte_order(store: Store) -> None:
    names = _names()
    with store.write() as conn:
        _fill(conn, names)
    for size in (1, 7, 100):
        got, totals = _pages(store, size)
        assert got == sorted(names)  # Python's str order is code point (UTF-8 byte) order
        assert totals == {len(names)}


def _page_plan(conn: Connection, offset: int) -> str:
    """PostgreSQL's plan for the statement `assets_page` sends for a page."""
    sent: list[tuple[str, Any]] = []

    def keep(_c: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        words = " ".join(statement.split())
        if words.startswith("SELECT asset.id FROM asset") and "ORDER BY" in words:
            sent.append((statement, params))

    event.listen(conn, "before_cursor_execute", keep)
    try:
        reads.assets_page(conn, jobs=False, namespace=NS, limit=10, offset=offset)
    finally:
        event.remove(conn, "before_cursor_execute", keep)
    assert len(sent) == 1, sent
    statement, params = sent[0]
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute("EXPLAIN " + statement, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_postgresql_pages_read_the_name_index() -> None:
    with temporary_database("steward_nameorder") as name:
        store = Store(database_url(name))
        try:
            names = _names() + [f"bulk.{i:05d}" for i in range(3000)]
            with store.write() as conn:
                _fill(conn, names)
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE asset")
            with store.engine.connect() as conn:
                plan = _page_plan(conn, offset=20)
            assert textsearch.PG_NAME_INDEX in plan, plan
            assert "Incremental Sort" in plan, plan  # whole names sorted a prefix at a time
        finally:
            store.dispose()


def test_a_postgresql_catalog_of_0007_gets_the_index_and_keeps_long_names() -> None:
    """0007 -> head adds the index over rows already there, long names included;
    names no index entry could hold are written after it too; downgrade drops it."""
    names = _names()
    with temporary_database("steward_nameorder") as name:
        url = database_url(name)
        old = Store(url, migrate=False)
        with old.write() as conn:
            command.upgrade(_alembic_config(conn), "0007")
            _fill(conn, names[: len(names) // 2])
        old.dispose()
        store = Store(url)
        try:
            assert store.current_revision() == head_revision()
            with store.write() as conn:
                conn.execute(insert(reads.ASSET), [_row(NS, n) for n in names[len(names) // 2 :]])
            got, _ = _pages(store, 9)
            assert got == sorted(names)
            query = text("SELECT indexname FROM pg_indexes WHERE tablename = 'asset'")
            with store.engine.connect() as conn:
                assert textsearch.PG_NAME_INDEX in set(conn.execute(query).scalars())
            with store.write() as conn:
                command.downgrade(_alembic_config(conn), "0007")
            with store.engine.connect() as conn:
                assert textsearch.PG_NAME_INDEX not in set(conn.execute(query).scalars())
        finally:
            store.dispose()
