"""`catalog.db.among` and `rows_among`: rows whose id is one of many, on either backend."""

from __future__ import annotations

from sqlalchemy import Connection, column, select, table, text

from catalog.db import Store, among, plain_rows, rows_among

NUMBERS = table("numbers", column("id"), column("label"))


def _numbers(conn: Connection, count: int) -> None:
    conn.execute(text("CREATE TEMPORARY TABLE numbers (id INTEGER PRIMARY KEY, label TEXT)"))
    conn.execute(
        text("INSERT INTO numbers VALUES (:id, :label)"),
        [{"id": i, "label": f"n{i}"} for i in range(1, count + 1)],
    )


def test_the_rows_of_many_ids_each_once(store: Store) -> None:
    """More ids than one SQLite statement takes, repeats and ids of no row among them."""
    wanted = [*range(3, 2500, 2), 7, 7, 99_999]
    with store.write() as conn:
        _numbers(conn, 3000)
        query = select(NUMBERS.c.id, NUMBERS.c.label)
        rows = sorted(tuple(r) for r in rows_among(conn, query, NUMBERS.c.id, wanted))
        plain = sorted(plain_rows(conn, query, NUMBERS.c.id, wanted))
        none = list(rows_among(conn, query, NUMBERS.c.id, []))
    expected = [(i, f"n{i}") for i in range(3, 2500, 2)]
    assert rows == expected and plain == expected and none == []


def test_postgresql_gets_the_ids_as_one_array_parameter(pg_catalog_database: str) -> None:
    """The ids reach PostgreSQL as one parameter typed as an array, not as text cast in
    the statement: psycopg prepares a statement run often, PostgreSQL may then plan
    it once for any parameter, and such a plan parsed the cast text again for every
    row it read (an incremental check at 100,000 assets took 14 s instead of 0.35 s).
    Asked for with generic plans only, the rows are still right."""
    store = Store(pg_catalog_database)
    try:
        with store.write() as conn:
            _numbers(conn, 3000)
            conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            where = among(conn, NUMBERS.c.id, range(1, 3001, 3))[0]
            compiled = select(NUMBERS.c.id).where(where).compile(conn)
            driver = conn.connection.driver_connection
            assert driver is not None
            typed = [
                driver.execute("SELECT pg_typeof(%s)::text", [value]).fetchone()
                for value in compiled.params.values()
            ]
            # More runs than psycopg's threshold for preparing a statement.
            found = [
                sorted(r[0] for r in conn.execute(select(NUMBERS.c.id).where(where)))
                for _ in range(8)
            ]
            conn.execute(text("DROP TABLE numbers"))
    finally:
        store.dispose()
    assert "CAST" not in str(compiled).upper() and typed == [("bigint[]",)]
    assert found == [list(range(1, 3001, 3))] * 8
