"""The lineage graph over the catalog, and `steward lineage`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from unittest.mock import patch

import networkx
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.identity import AssetKey
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
from lineage.below import Below
from lineage.graph import LineageGraph, Node

NS = "postgres://db:5432"


def chain_catalog(store: Store, length: int = 6) -> None:
    """t0 <- t1 <- ... : each table reads the one before, field `id` from `id`."""
    specs = [
        AssetSpec(
            namespace=NS,
            name="d.s.t0",
            kind="table",
            fields=[FieldSpec(name="id", type="int")],
            aliases=[AssetKey("hive://meta:9083", "t0")],
        )
    ]
    for i in range(1, length):
        specs.append(
            AssetSpec(
                namespace=NS,
                name=f"d.s.t{i}",
                kind="view",
                fields=[FieldSpec(name="id", type="int")],
                edges=[
                    EdgeSpec(
                        source_namespace=NS,
                        source_name=f"d.s.t{i - 1}",
                        kind="view_dependency",
                        fields={"id": ["id"]},
                    )
                ],
            )
        )
    apply(store, specs)


def graph_of(store: Store) -> LineageGraph:
    with store.engine.connect() as conn:
        return LineageGraph.from_connection(conn)


def test_walks_with_depth_and_partial(store: Store) -> None:
    chain_catalog(store)
    graph = graph_of(store)
    assert len(graph) == 6 and graph.edge_count == 5
    down = graph.downstream(f"{NS}/d.s.t0")
    assert [(n.uri.rsplit(".", 1)[1], d) for n, d in down.nodes] == [
        ("t1", 1),
        ("t2", 2),
        ("t3", 3),
        ("t4", 4),
        ("t5", 5),
    ]
    assert down.partial is False
    cut = graph.downstream(f"{NS}/d.s.t0", depth=2)
    assert [n.uri.rsplit(".", 1)[1] for n, _ in cut.nodes] == ["t1", "t2"]
    assert cut.partial is True and "depth" in (cut.reason or "")
    up = graph.upstream(f"{NS}/d.s.t3", depth=5)
    assert [n.uri.rsplit(".", 1)[1] for n, _ in up.nodes] == ["t2", "t1", "t0"]
    assert up.partial is False
    assert up.edges[0].fields == {"id": ["id"]}
    # An alias names the same node.
    assert graph.downstream("hive://meta:9083/t0", depth=1).nodes[0][0].uri == f"{NS}/d.s.t1"


def test_path_and_at_risk_paths() -> None:
    graph = LineageGraph()
    for name in "abcde":
        graph.add_node(Node(name, "dataset", 1, False, False))
    for s, t in ("ab", "bc", "cd", "ae"):
        graph.add_edge(s, t, "reads")
    assert graph.path("a", "d") == ["a", "b", "c", "d"]
    assert graph.path("d", "a") is None
    paths = graph.paths_downstream(["b"])
    assert paths == {"c": ["b", "c"], "d": ["b", "c", "d"]}


def test_edges_of_several_kinds_between_two_assets() -> None:
    """One pair, several kinds: each edge is kept with its own fields, a second
    `add_edge` of a kind merges its fields, and paths see the pair once."""
    graph = LineageGraph()
    for name in "abc":
        graph.add_node(Node(name, "dataset", 1, False, False))
    graph.add_edge("a", "b", "reads")
    graph.add_edge("a", "b", "column_lineage", {"x": ["y"]})
    graph.add_edge("a", "b", "column_lineage", {"z": ["w"]})
    graph.add_edge("a", "b", "reads")
    graph.add_edge("c", "b", "reads", {"q": ["r"]})
    graph.add_edge("c", "b", "reads", {"s": ["t"]})
    assert graph.edge_count == 3
    into = [(e.source, e.kind, e.fields) for e in graph.edges_into("b")]
    assert into == [
        ("a", "column_lineage", {"x": ["y"], "z": ["w"]}),
        ("a", "reads", {}),
        ("c", "reads", {"q": ["r"], "s": ["t"]}),
    ]
    assert [(e.kind, e.fields) for e in graph.edges_into("b", "reads")] == [
        ("reads", {}),
        ("reads", {"q": ["r"], "s": ["t"]}),
    ]
    assert [(e.target, e.kind) for e in graph.edges_out_of("a")] == [
        ("b", "column_lineage"),
        ("b", "reads"),
    ]
    walk = graph.upstream("b")
    assert [n.uri for n, _ in walk.nodes] == ["a", "c"] and len(walk.edges) == 3
    assert graph.paths_downstream(["a"]) == {"b": ["a", "b"]}


def test_time_budget_cuts_the_walk() -> None:
    graph = LineageGraph()
    for i in range(2000):
        graph.add_node(Node(str(i), "dataset", 1, False, False))
        if i:
            graph.add_edge(str(i - 1), str(i), "reads")
    walk = graph.downstream("0", budget=1e-9)
    assert walk.partial is True and "time budget" in (walk.reason or "")


def test_lineage_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = Store(url)
    chain_catalog(store, 4)
    store.dispose()
    runner = CliRunner()
    out = runner.invoke(cli, ["--catalog", url, "lineage", "downstream", "t1", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [n["uri"] for n in data["nodes"]] == [f"{NS}/d.s.t2", f"{NS}/d.s.t3"]
    text = runner.invoke(
        cli, ["--catalog", url, "lineage", "upstream", "t3", "--depth", "1", "--fields"]
    )
    assert text.exit_code == 0
    assert f"{NS}/d.s.t2" in text.stdout and f"{NS}/d.s.t3.id <- {NS}/d.s.t2.id" in text.stdout
    assert "partial: depth limit 1 reached" in text.stderr
    path = runner.invoke(cli, ["--catalog", url, "lineage", "path", "t0", "t3"])
    assert path.stdout.strip() == " -> ".join(f"{NS}/d.s.t{i}" for i in range(4))
    none = runner.invoke(cli, ["--catalog", url, "lineage", "path", "t3", "t0"])
    assert none.exit_code == 2 and "no lineage path" in none.stderr
    missing = runner.invoke(cli, ["--catalog", url, "lineage", "upstream", "nope"])
    assert missing.exit_code == 2 and "no asset matches" in missing.stderr


@st.composite
def graphs_and_groups(draw: st.DrawFn) -> tuple[LineageGraph, list[tuple[list[str], list[str]]]]:
    """A graph of up to 14 nodes whose edges may run anywhere (cycles and self-loops
    included), some nodes alone, and start sets that may name nodes twice, name no
    node, or skip one another."""
    size = draw(st.integers(1, 14))
    names = [f"n{i:02d}" for i in range(size)]
    graph = LineageGraph()
    for name in names:
        graph.add_node(Node(name, "dataset", 1, False, False))
    pairs = st.tuples(st.sampled_from(names), st.sampled_from(names))
    for source, target in draw(st.lists(pairs, max_size=40)):
        graph.add_edge(source, target, draw(st.sampled_from(["reads", "derives"])))
    some = st.lists(st.sampled_from([*names, "elsewhere"]), max_size=4)
    return graph, draw(st.lists(st.tuples(some, some), min_size=1, max_size=9))


@settings(max_examples=300, deadline=None)
@given(graphs_and_groups(), st.sampled_from([1, 2, 256]))
def test_downstream_counts_and_the_nearest_match_a_walk_of_each_start_set(
    case: tuple[LineageGraph, list[tuple[list[str], list[str]]]], bits: int
) -> None:
    """Counted together, `bits` start sets at a time, each set's count is what networkx
    finds below it alone; its nearest are the closest of them, each with a shortest
    path of the graph's edges from one of its starts."""
    graph, groups = case
    nx_graph = networkx.DiGraph()
    nx_graph.add_nodes_from(n.uri for n in graph.nodes())
    nx_graph.add_edges_from(
        (e.source, e.target) for n in graph.nodes() for e in graph.edges_out_of(n.uri)
    )
    with patch("lineage.below.COUNT_BITS", bits):
        counts = graph.downstream_counts(groups)
    # Over 64 sets: masks of more than one word.
    times = 65 // len(groups) + 1
    assert graph.downstream_counts(groups * times) == counts * times
    for (uris, skip), count in zip(groups, counts, strict=True):
        starts = {u for u in uris if u in nx_graph}
        hops = networkx.multi_source_dijkstra_path_length(nx_graph, starts) if starts else {}
        below = {u: d for u, d in hops.items() if u not in starts and u not in skip}
        assert count == len(below)
        nearest = graph.nearest(uris, 3, skip=skip)
        assert [u for u, _ in nearest] == sorted(below, key=lambda u: (below[u], u))[:3]
        for uri, path in nearest:
            assert path[0] in starts and path[-1] == uri and len(path) == below[uri] + 1
            assert all(nx_graph.has_edge(a, b) for a, b in itertools.pairwise(path))
    # The same answers from the arrays an incremental check counts on.
    below = Below.from_edges(nx_graph.nodes, nx_graph.edges)
    with patch("lineage.below.COUNT_BITS", bits):
        assert below.downstream_counts(groups) == counts
    for uris, skip in groups:
        assert below.nearest(uris, 3, skip) == graph.nearest(uris, 3, skip)
