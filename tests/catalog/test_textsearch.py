"""The search index answers exactly what `LIKE` answers, without scanning the assets."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert, select, update

from catalog import reads, textsearch
from catalog.db import Store
from catalog.identity import asset_uri
from catalog.models import key_hash
from tests.pg import database_url, temporary_database

ALPHABET = "abcé_%\"'.É/:x"
ASSET = reads.ASSET


def _names(count: int) -> list[tuple[str, str]]:
    rng = random.Random(3)
    out = []
    for i in range(count):
        name = "".join(rng.choices(ALPHABET, k=rng.randrange(1, 12))) + f".t{i}"
        out.append((f"ns{i % 3}://h", name))
    long = "".join(rng.choices(ALPHABET, k=textsearch.INDEXED_CHARS + 50))
    out.append(("ns0://h", long + "tail_end"))  # a match past what the index holds
    return out


def _rows(keys: list[tuple[str, str]], start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "key_hash": key_hash(asset_uri(ns, name)),
            "namespace": ns,
            "name": name,
            "uri": asset_uri(ns, name),
            "kind": "table",
            "observed": {},
        }
        for ns, name in keys[start:]
    ]


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('search') / 'c.db'}")
    with store.write() as conn:
        conn.execute(insert(ASSET), _rows(_names(150)))
    yield store
    store.dispose()


def _ids(conn: Connection, clause: object) -> list[int]:
    return sorted(conn.execute(select(ASSET.c.id).where(clause)).scalars())  # type: ignore[arg-type]


def _compare(conn: Connection, field: str, pattern: str, escape: str | None) -> list[int]:
    column = ASSET.c[field]
    indexed = _ids(conn, textsearch.matching(conn, ASSET.c.id, column, field, pattern, escape))
    like = column.like if conn.dialect.name == "sqlite" else column.ilike
    plain = _ids(conn, like(pattern, escape=escape))
    assert indexed == plain, (field, pattern)
    return indexed


@settings(max_examples=150, deadline=None)
@given(
    # NUL: SQLite's LIKE reads a pattern up to it, and FTS5 refused it in a phrase.
    needle=st.text(alphabet=ALPHABET + "\\t0123456789\x00", min_size=0, max_size=8),
    field=st.sampled_from(["name", "uri"]),
    escaped=st.booleans(),
)
def test_the_index_finds_what_like_finds(
    sqlite_store: Store, needle: str, field: str, escaped: bool
) -> None:
    with sqlite_store.engine.connect() as conn:
        if escaped:  # steward's own search: the text literally
            literal = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            _compare(conn, field, f"%{literal}%", "\\")
        else:  # Marquez's search: `%` and `_` in the text are wildcards
            _compare(conn, field, f"%{needle}%", None)


def test_a_nul_in_the_text_sought_is_what_like_makes_of_it(sqlite_store: Store) -> None:
    """A NUL (a client's `q=%00...`) made the index's query fail: a 503 for a search."""
    with sqlite_store.engine.connect() as conn:
        _compare(conn, "name", "%.t1\x00abc%", "\\")
        _compare(conn, "uri", "%abc\x00def%", None)


def test_a_name_longer_than_the_index_holds_is_still_found(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as conn:
        assert len(_compare(conn, "name", "%tail\\_end%", "\\")) == 1
        assert len(_compare(conn, "uri", "%ns1://h/%", None)) == 50


def test_renamed_and_deleted_assets_follow(sqlite_store: Store) -> None:
    with sqlite_store.write() as conn:
        first = conn.execute(select(ASSET.c.id).order_by(ASSET.c.id).limit(2)).scalars().all()
        renamed = {"name": "renamed_zq", "uri": "n/renamed_zq"}
        conn.execute(update(ASSET).where(ASSET.c.id == first[0]).values(**renamed))
        conn.execute(delete(ASSET).where(ASSET.c.id == first[1]))
        conn.execute(insert(ASSET), _rows([("ns9://h", "fresh_zq")]))
    with sqlite_store.engine.connect() as conn:
        found = _compare(conn, "name", "%_zq%", None)
        names = conn.execute(select(ASSET.c.name).where(ASSET.c.id.in_(found))).scalars()
        assert sorted(names) == ["fresh_zq", "renamed_zq"]
        assert _compare(conn, "name", "%renamed%", None) == [first[0]]
        assert _compare(conn, "uri", "%n/renamed%", None) == [first[0]]


def test_sqlite_search_reads_the_index_not_the_table(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as conn:
        clause = textsearch.matching(conn, ASSET.c.id, ASSET.c.name, "name", "%abc%")
        compiled = select(ASSET.c.id).where(clause).compile(conn)
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())
        ).all()
    steps = [row[-1] for row in plan]
    assert any("VIRTUAL TABLE INDEX" in step for step in steps), steps
    table_scans = [s for s in steps if s.split()[:2] == ["SCAN", "asset"]]
    assert table_scans == [f"SCAN asset USING INDEX {textsearch.LONG_INDEX}"], steps


def test_postgresql_has_trigram_indexes_the_planner_uses() -> None:
    with temporary_database("steward_search") as name:
        store = Store(database_url(name))
        try:
            with store.write() as conn:
                conn.execute(insert(ASSET), _rows(_names(20)))
            with store.engine.connect() as conn:
                conn.exec_driver_sql("SET enable_seqscan = off")
                for field, index in zip(("name", "uri"), textsearch.PG_INDEXES, strict=True):
                    plan = conn.exec_driver_sql(
                        f"EXPLAIN SELECT id FROM asset WHERE {field} ILIKE '%%abc%%'"
                    ).all()
                    assert index in " ".join(r[0] for r in plan)
                _compare(conn, "name", "%a_c%", None)
        finally:
            store.dispose()


def test_without_the_index_search_still_answers(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A SQLite without FTS5 (or the index dropped): the same answers, by reading every name."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('bare') / 'c.db'}")
    try:
        with store.write() as conn:
            textsearch.uninstall(conn)
            conn.execute(insert(ASSET), _rows(_names(30)))
        with store.engine.connect() as conn:
            assert _compare(conn, "name", "%.t1%", None)
            clause = textsearch.matching(conn, ASSET.c.id, ASSET.c.name, "name", "%abc%")
            assert textsearch.FTS not in str(clause.compile(conn))
    finally:
        store.dispose()
