"""A write interrupted as its commit returns (Ctrl-C) raises the interrupt itself, on
either backend and in each kind of write transaction, and the catalog takes the next
write: nothing the store does on the way out raises over it or keeps a lock."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from catalog.db import Store

WRITES = {
    "plain": {},
    "unchecked (the ingester's)": {"checked": False},
    "snapshot (a scan's apply)": {"snapshot": True},
}


@pytest.mark.parametrize("kind", list(WRITES))
def test_an_interrupt_at_commit_is_what_the_writer_sees(
    store: Store, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = store.engine.dialect.do_commit
    armed = False

    def interrupted(dbapi_connection: Any) -> None:
        commit(dbapi_connection)
        if armed:  # the write's own commit (a snapshot write commits its lock first)
            raise KeyboardInterrupt

    monkeypatch.setattr(store.engine.dialect, "do_commit", interrupted)
    with pytest.raises(KeyboardInterrupt), store.write(**WRITES[kind]) as conn:
        conn.execute(
            text(
                "INSERT INTO check_state (id, settings, trained_on, checked_at)"
                " VALUES (1, '{}', '{}', CURRENT_TIMESTAMP)"
            )
        )
        armed = True
    monkeypatch.undo()
    # The next write is taken (no lock kept: the advisory lock of a snapshot write on
    # PostgreSQL, SQLite's write lock), and the interrupted one's commit stands.
    with store.write(**WRITES[kind]) as conn:
        conn.execute(text("UPDATE check_state SET runs = 'again' WHERE id = 1"))
        assert conn.execute(text("SELECT count(*) FROM check_state")).scalar_one() == 1
