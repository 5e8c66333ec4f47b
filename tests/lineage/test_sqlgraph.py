"""Lineage walks by recursive SQL give the in-memory graph's answers, on both backends."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update
from sqlmodel import SQLModel

from catalog.cli import cli
from catalog.db import Store
from catalog.errors import NotFound
from catalog.models import key_hash
from lineage.graph import ALIAS, ASSET, BINDING, EDGE, LineageGraph, Walk
from lineage.marquez import around
from lineage.sqlgraph import SqlGraph
from tests.lineage.test_graph import chain_catalog
from tests.pg import database_url, temporary_database

NS = "test://h:1"
KINDS = ["dataset", "job", "embedding_model"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """One catalog per backend for the module; each example empties it first."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path_factory.mktemp('sqlgraph') / 'c.db'}")
        yield store
        store.dispose()
        return
    with temporary_database("steward_sqlgraph") as name:
        store = Store(database_url(name))
        yield store
        store.dispose()


@dataclass
class Catalog:
    """A generated lineage graph: node i is `test://h:1/n{i}`."""

    nodes: list[tuple[str, bool, bool]]  # kind, deleted, unresolved
    edges: list[
        tuple[int, int, str, int, dict[str, list[str]]]
    ]  # source, target, kind, origin, fields
    aliases: list[int]
    bindings: list[tuple[int, int]]  # asset, model


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    n = draw(st.integers(1, 12))
    nodes = [
        (
            draw(st.sampled_from(KINDS)),
            draw(st.booleans().map(lambda b: b and draw(st.integers(0, 4)) == 0)),
            draw(st.booleans()),
        )
        for _ in range(n)
    ]
    index = st.integers(0, n - 1)
    fields = st.dictionaries(
        st.sampled_from("abc"), st.lists(st.sampled_from("xyz"), max_size=2), max_size=2
    )
    edges = draw(
        st.lists(
            st.tuples(
                index, index, st.sampled_from(["reads", "writes", "column_lineage"]), index, fields
            ),
            max_size=3 * n,
            unique_by=lambda e: (e[0], e[1], e[2], e[3]),
        )
    )
    aliases = draw(st.lists(index, max_size=3, unique=True))
    bindings = draw(st.lists(st.tuples(index, index), max_size=3, unique=True))
    return Catalog(nodes, edges, aliases, bindings)


def uri(i: int) -> str:
    return f"{NS}/n{i}"


def write(store: Store, cat: Catalog) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.write() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name in ("edge", "alias", "model_binding", "asset"):
                conn.execute(delete(table))
        conn.execute(
            ASSET.insert(),
            [
                {
                    "id": i + 1,
                    "key_hash": key_hash(uri(i)),
                    "namespace": NS,
                    "name": f"n{i}",
                    "uri": uri(i),
                    "kind": kind,
                    "current_version": i % 3,
                    "deleted": deleted,
                    "unresolved": unresolved,
                    "observed": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i, (kind, deleted, unresolved) in enumerate(cat.nodes)
            ],
        )
        rows: list[dict[str, Any]] = [
            {
                "source_id": s + 1,
                "target_id": t + 1,
                "kind": kind,
                "origin_id": origin + 1,
                "fields": fields,
                "transformations": {"a": {"x": [{"type": "DIRECT"}]}} if origin % 2 else None,
                "created_at": now,
            }
            for s, t, kind, origin, fields in cat.edges
        ]
        if rows:
            conn.execute(EDGE.insert(), rows)
        if cat.aliases:
            conn.execute(
                ALIAS.insert(),
                [
                    {
                        "asset_id": i + 1,
                        "key_hash": key_hash(f"alias://h:1/a{i}"),
                        "namespace": "alias://h:1",
                        "name": f"a{i}",
                        "uri": f"alias://h:1/a{i}",
                        "created_at": now,
                    }
                    for i in cat.aliases
                ],
            )
        if cat.bindings:
            conn.execute(
                BINDING.insert(),
                [
                    {
                        "asset_id": a + 1,
                        "part": "",
                        "model": f"n{m}",
                        "revision": "r1",
                        "origin": "manual",
                        "share": 1.0,
                        "created_at": now,
                    }
                    for a, m in cat.bindings
                ],
            )


def answer(call: Any) -> Any:
    """A walk's JSON (fields and all), a path, or the error it raised."""
    try:
        found = call()
    except NotFound as err:
        return ("NotFound", str(err))
    return found.to_json(with_fields=True) if isinstance(found, Walk) else found


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cat=catalogs(), data=st.data())
def test_sql_walks_equal_the_graphs(shared_store: Store, cat: Catalog, data: st.DataObject) -> None:
    write(shared_store, cat)
    n = len(cat.nodes)
    starts = [uri(i) for i in range(n)] + [f"alias://h:1/a{i}" for i in cat.aliases]
    with shared_store.engine.connect() as conn:
        graph = LineageGraph.from_connection(conn)
        sql = SqlGraph(conn)
        for start in starts:
            for direction in ("upstream", "downstream"):
                for depth in (None, 1, 2, 3):
                    limit = data.draw(st.sampled_from([None, 1, 2, 4]), label="limit")
                    expected = answer(lambda: graph._walk(start, direction, depth, None, limit))  # noqa: B023
                    got = answer(lambda: sql._walk(start, direction, depth, None, limit))  # noqa: B023
                    assert got == expected, (start, direction, depth, limit)
        for a in starts:
            for b in starts:
                assert answer(lambda: sql.path(a, b)) == answer(lambda: graph.path(a, b)), (a, b)  # noqa: B023


def test_a_cycle_ends_and_the_limit_keeps_whole_hops(shared_store: Store) -> None:
    """a -> b -> c -> a, and c -> d, e: a walk without a depth limit stops; the
    limit of 3 nodes keeps the first two hops, not part of the third."""
    edges = [(0, 1), (1, 2), (2, 0), (2, 3), (2, 4)]
    cat = Catalog(
        [("dataset", False, False)] * 5,
        [(s, t, "reads", t, {}) for s, t in edges],
        [],
        [],
    )
    write(shared_store, cat)
    with shared_store.engine.connect() as conn:
        sql = SqlGraph(conn)
        down = sql.downstream(uri(0))
        assert [(node.uri, d) for node, d in down.nodes] == [
            (uri(1), 1),
            (uri(2), 2),
            (uri(3), 3),
            (uri(4), 3),
        ]
        assert down.partial is False and len(down.edges) == 5
        cut = sql.downstream(uri(0), limit=3)
        assert [node.uri for node, _ in cut.nodes] == [uri(1), uri(2)]
        assert cut.partial and cut.reason == "node limit 3 reached"
        assert sql.upstream(uri(0), depth=1).reason == "depth limit 1 reached"
        assert sql.path(uri(1), uri(0)) == [uri(1), uri(2), uri(0)]
        assert sql.path(uri(3), uri(0)) is None
        late = sql.downstream(uri(0), budget=1e-9)
        assert late.partial and late.reason == "time budget of 1e-09 s reached"
        # The connection is still usable after a walk ran out of time.
        assert len(sql.downstream(uri(0)).nodes) == 4


def test_lineage_cli_limit_and_deleted_assets(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = Store(url)
    chain_catalog(store, 5)
    with store.write() as conn:
        conn.execute(update(ASSET).where(ASSET.c.name == "d.s.t3").values(deleted=True))
    store.dispose()
    runner = CliRunner()
    out = runner.invoke(cli, ["--catalog", url, "lineage", "downstream", "t0", "--json"])
    assert out.exit_code == 0, out.output
    # The deleted t3 ends the chain: t4 is reached only through it.
    assert [n["uri"].rsplit(".", 1)[1] for n in json.loads(out.stdout)["nodes"]] == ["t1", "t2"]
    cut = runner.invoke(cli, ["--catalog", url, "lineage", "downstream", "t0", "--limit", "1"])
    assert cut.exit_code == 0 and "partial: node limit 1 reached" in cut.stderr
    gone = runner.invoke(cli, ["--catalog", url, "lineage", "upstream", "t3"])
    assert gone.exit_code == 2 and "no live asset" in gone.stderr
    assert "Traceback" not in gone.output
    none = runner.invoke(cli, ["--catalog", url, "lineage", "path", "t0", "t4"])
    assert none.exit_code == 2 and "no lineage path" in none.stderr


def marquez_reference(
    cat: Catalog, start: int, depth: int
) -> tuple[dict[int, int], set[tuple[int, int]]]:
    """Hops and edges of Marquez's lineage graph around `start`, from every row in memory:
    lineage edges either way, deleted assets included, no field-level edges."""
    pairs = {(s + 1, t + 1) for s, t, kind, _, _ in cat.edges if kind != "column_lineage"}
    hops = {start: 0}
    level = [start]
    for hop in range(1, depth + 1):
        reached = {b for a, b in pairs if a in level} | {a for a, b in pairs if b in level}
        level = sorted(reached - set(hops))
        hops.update(dict.fromkeys(level, hop))
    edges = {(a, b) for a, b in pairs if a in hops and b in hops and min(hops[a], hops[b]) < depth}
    return hops, edges


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cat=catalogs(), depth=st.integers(0, 4), max_nodes=st.integers(1, 6))
def test_marquez_lineage_equals_the_graphs(
    shared_store: Store, cat: Catalog, depth: int, max_nodes: int
) -> None:
    write(shared_store, cat)
    with shared_store.engine.connect() as conn:
        for start in range(1, len(cat.nodes) + 1):
            hops, edges = marquez_reference(cat, start, depth)
            nodes, found_edges, truncated = around(conn, start, depth, max_nodes)
            assert truncated == (len(hops) > max_nodes)
            if not truncated:
                assert (nodes, found_edges) == (set(hops), edges)
                continue
            # The nearest hops first: every node left out is at least as far as any kept.
            assert len(nodes) == max_nodes and start in nodes
            assert max(hops[i] for i in nodes) <= min(hops[i] for i in set(hops) - nodes)
            assert found_edges == {(a, b) for a, b in edges if a in nodes and b in nodes}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cat=catalogs())
def test_the_graphs_walks_equal_networkx(shared_store: Store, cat: Catalog) -> None:
    """The in-memory graph is hand-written (plain adjacency maps, for its memory at a million
    assets): its walks and paths are held to networkx's on the same generated catalogs.
    Deleted assets are left out, aliases stand for their asset, and an embedding model
    feeds the indexes bound to it."""
    write(shared_store, cat)
    live = [i for i, (_, deleted, _) in enumerate(cat.nodes) if not deleted]
    reference = nx.DiGraph()
    reference.add_nodes_from(uri(i) for i in live)
    reference.add_edges_from(
        (uri(s), uri(t)) for s, t, *_ in cat.edges if s in live and t in live and s != t
    )
    reference.add_edges_from(
        (uri(m), uri(a))
        for a, m in cat.bindings
        if a in live and m in live and cat.nodes[m][0] == "embedding_model" and a != m
    )
    names = {uri(i): uri(i) for i in live} | {
        f"alias://h:1/a{i}": uri(i) for i in cat.aliases if i in live
    }
    with shared_store.engine.connect() as conn:
        graph = LineageGraph.from_connection(conn)
    for name, start in names.items():
        for direction, walk in (("downstream", graph.downstream), ("upstream", graph.upstream)):
            seen = reference if direction == "downstream" else reference.reverse()
            for depth in (None, 1, 2):
                found = {node.uri: hop for node, hop in walk(name, depth).nodes}
                expected = nx.single_source_shortest_path_length(seen, start, cutoff=depth)
                assert found == {u: h for u, h in expected.items() if u != start}, (
                    name,
                    direction,
                    depth,
                )
        for other, target in names.items():
            path = graph.path(name, other)
            if not nx.has_path(reference, start, target):
                assert path is None, (name, other)
                continue
            assert path is not None, (name, other)
            assert len(path) - 1 == nx.shortest_path_length(reference, start, target)
            assert all(reference.has_edge(a, b) for a, b in itertools.pairwise(path))
