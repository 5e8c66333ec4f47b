"""Read connections: on PostgreSQL no transaction round trips, on SQLite one state."""

from __future__ import annotations

from sqlalchemy import Connection, insert, text

from catalog import reads
from catalog.db import Store

SAME_TRANSACTION = text("SELECT statement_timestamp() = transaction_timestamp()")


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM asset")).scalar_one())


def test_reads_see_a_commit_made_meanwhile_on_postgresql_only(store: Store) -> None:
    with store.reading() as conn:
        assert _count(conn) == 0
        with store.write() as writer:
            writer.execute(
                insert(reads.ASSET).values(
                    key_hash="k", namespace="ns", name="n", uri="ns/n", kind="table", observed={}
                )
            )
        # PostgreSQL: each statement sees the latest commit (as READ COMMITTED does);
        # SQLite: the read transaction sees the state it began with
        assert _count(conn) == (1 if store.dialect == "postgresql" else 0)


def test_postgresql_reads_open_no_transaction_and_the_pool_is_restored(store: Store) -> None:
    if store.dialect != "postgresql":
        return
    with store.reading() as conn:
        conn.execute(text("SELECT pg_sleep(0.01)"))
        # outside a transaction each statement is a transaction of its own
        assert conn.execute(SAME_TRANSACTION).scalar_one() is True
    with store.engine.connect() as conn:  # the pooled connection, back in transactions
        conn.execute(text("SELECT pg_sleep(0.01)"))
        assert conn.execute(SAME_TRANSACTION).scalar_one() is False
