"""`steward report --focus`: the page holds the focus's neighbourhood, as the full report has it.

The focused page reads only the assets within `--depth` hops of the focus
(`reports.load.load_neighbourhood`); what it shows of each of them must be
what the report of the whole catalog shows, on both backends, cycles
included, and nothing of the rest of the catalog may be in it.
"""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks.bench_graph import populate
from catalog.apply import apply
from catalog.db import Store
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
from lineage.findings import check, record
from lineage.rules import Finding
from reports.context import build_context
from reports.load import load_neighbourhood
from reports.render import render_html, render_report
from reports.view import initial_view
from tests.reports.stack import MLFLOW, PG, QDRANT, build_stack
from tests.reports.test_report import Page

GEN = "gen://h:1"
COUNT = 90


def gen(i: int) -> str:
    return f"g{i:03d}"


def uri(name: str) -> str:
    return f"{GEN}/{name}"


def generated(seed: int, version: int) -> list[AssetSpec]:
    """A ring of `COUNT` tables (one long cycle) with random chords, short cycles and
    column lineage; version 2 changes a field of every tenth table."""
    rng = random.Random(seed)
    specs = []
    for i in range(COUNT):
        sources = {(i - 1) % COUNT} | {rng.randrange(COUNT) for _ in range(rng.randrange(3))}
        if i % 10 == 3:
            sources.add(i + 1)  # i -> i+1 -> i: a cycle of two
        edges = [
            EdgeSpec(
                source_namespace=GEN,
                source_name=gen(s),
                fields={"id": ["id"]} if s == (i - 1) % COUNT else {},
            )
            for s in sorted(sources - {i})
        ]
        if i == 5:
            edges.append(EdgeSpec(source_namespace=PG, source_name="shop.public.documents_clean"))
        fields = [FieldSpec(name="id", type="bigint"), FieldSpec(name="v", type="text")]
        if version == 2 and i % 10 == 0:
            fields[1] = FieldSpec(name="v", type="bigint")
        specs.append(
            AssetSpec(namespace=GEN, name=gen(i), kind="table", fields=fields, edges=edges)
        )
    return specs


def build(store: Store, tmp: Path) -> None:
    """The demo stack (runs, bindings, evidence, real findings) and a generated graph with
    cycles, checked; plus findings that name generated assets and put others at risk."""
    build_stack(store, tmp)
    apply(store, generated(1, 1), origin=f"scan {GEN}")
    apply(store, generated(1, 2), origin=f"scan {GEN}")
    check(store)
    found = [
        Finding(
            "test_rule",
            "warning",
            [uri(gen(10 * k)), uri(gen(10 * k + 5))],
            f"finding about {gen(10 * k)}",
            {"k": k},
            "Fix it.",
            key=str(k),
            at_risk=[
                {"uri": uri(gen(10 * k + 7)), "path": [uri(gen(10 * k)), uri(gen(10 * k + 7))]}
            ],
        )
        for k in range(COUNT // 10)
    ]
    with store.write() as conn:
        record(conn, found, ["test_rule"])


def around(data: dict[str, Any], focus: str, depth: int) -> set[str]:
    """The assets within `depth` hops of `focus` either way, by the full report's edges."""
    uris = [n[0] for n in data["nodes"]]
    succ: dict[int, set[int]] = {i: set() for i in range(len(uris))}
    pred: dict[int, set[int]] = {i: set() for i in range(len(uris))}
    for s, t, _ in data["edges"]:
        succ[s].add(t)
        pred[t].add(s)
    start = uris.index(focus)
    found = {start}
    for step in (succ, pred):
        hops = {start: 0}
        queue = deque([start])
        while queue:
            n = queue.popleft()
            if hops[n] == depth:
                continue
            for m in step[n]:
                if m not in hops:
                    hops[m] = hops[n] + 1
                    queue.append(m)
        found |= set(hops)
    return {uris[i] for i in found}


def names_any(finding: dict[str, Any], uris: set[str]) -> bool:
    return bool(set(finding["assets"]) & uris) or any(
        r["uri"] in uris for r in finding["at_risk"] or []
    )


def held(data: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """What a page's data says about the assets `keep`, by URI and finding id (not by
    the page's own numbering; display names are unique within a page, so not compared)."""
    uris = [n[0] for n in data["nodes"]]
    finding_ids = [f["id"] for f in data["findings"]]
    nodes, details = {}, {}
    for i, n in enumerate(data["nodes"]):
        if n[0] not in keep:
            continue
        nodes[n[0]] = [n[0], n[1], data["kinds"][n[2]], *n[3:7]]
        d = dict(data["details"][i])
        for key in ("findings", "risk", "related"):
            if key in d:
                d[key] = sorted(finding_ids[f] for f in d[key])
        if "fields" in d:
            d["fields"] = [
                [*f[:5], sorted([uris[j], sf] for j, sf in f[5] if uris[j] in keep)]
                for f in d["fields"]
            ]
        if "jobRuns" in d:
            d["jobRuns"] = [
                {
                    **r,
                    "inputs": [[uris[j], v] for j, v in r["inputs"] if uris[j] in keep],
                    "outputs": [[uris[j], v] for j, v in r["outputs"] if uris[j] in keep],
                }
                for r in d["jobRuns"]
            ]
        details[n[0]] = d
    edges = sorted(
        (uris[s], uris[t], data["edgeKinds"][k])
        for s, t, k in data["edges"]
        if uris[s] in keep and uris[t] in keep
    )
    same = ("id", "rule", "severity", "title", "assets", "evidence", "at_risk", "acknowledged")
    findings = {f["id"]: {k: f[k] for k in same} for f in data["findings"] if names_any(f, keep)}
    return {"nodes": nodes, "details": details, "edges": edges, "findings": findings}


FOCI = [
    (f"{QDRANT}/docs_chunks", 1),
    (f"{QDRANT}/docs_chunks", 2),
    (f"{PG}/shop.public.documents", 3),
    (f"{MLFLOW}/support-rag", 1),
    (f"{GEN}/{gen(13)}", 2),  # on the two-node cycle
    (f"{GEN}/{gen(0)}", 4),
    (f"{GEN}/{gen(5)}", 1),  # reads a table of the stack
]


def test_the_neighbourhood_is_what_the_full_report_holds(store: Store, tmp_path: Path) -> None:
    build(store, tmp_path)
    full = Page(render_report(store)).data()
    catalog = len(full["nodes"])
    for focus, depth in FOCI:
        page = Page(render_report(store, focus=focus, depth=depth))
        data = page.data()
        want = around(full, focus, depth)
        assert {n[0] for n in data["nodes"]} == want, focus
        assert len(want) < catalog
        assert data["nodes"][data["focus"]][0] == focus and data["depth"] == depth
        assert held(data, want) == held(full, want), (focus, depth)
        assert {f["id"] for f in data["findings"]} == {
            f["id"] for f in full["findings"] if names_any(f, want)
        }
        # The page draws the whole neighbourhood, and says what it is a part of.
        assert sorted(data["view"]) == list(range(len(want)))
        said = " ".join(" ".join(page.text).split())
        assert f"the {len(want)} assets within {depth} hop" in said
        assert f"out of {catalog} in the catalog" in said
        assert f"--depth {depth + 1}" in said
    # The test can fail: a neighbourhood taken one hop short is not the full report's.
    short = Page(render_report(store, focus=f"{GEN}/{gen(0)}", depth=1)).data()
    assert {n[0] for n in short["nodes"]} != around(full, f"{GEN}/{gen(0)}", 2)


def test_the_focus_reads_nothing_beyond_its_neighbourhood(store: Store) -> None:
    """A catalog of 4,000 assets: the page of one asset's neighbourhood holds that
    neighbourhood and the findings that name it, nothing else."""
    nodes = 4000
    populate(store, nodes, 3 * nodes, seed=3)
    bench = "bench://h:1/n{}".format
    inside, outside = bench(1234), bench(3999)
    with store.write() as conn:
        edges = conn.execute(text("SELECT source_id, target_id FROM edge")).all()
        record(
            conn,
            [
                Finding("test_rule", "error", [bench(n)], f"about n{n}", {}, "Fix it.", key=str(n))
                for n in range(0, nodes, 7)
            ],
            ["test_rule"],
        )
    succ: dict[int, set[int]] = {}
    pred: dict[int, set[int]] = {}
    for s, t in edges:
        succ.setdefault(s - 1, set()).add(t - 1)
        pred.setdefault(t - 1, set()).add(s - 1)
    want = {1234}
    for step in (succ, pred):
        frontier = {1234}
        for _ in range(2):
            frontier = {m for n in frontier for m in step.get(n, ())}
            want |= frontier
    assert 3999 not in want
    html = render_report(store, focus=inside, depth=2)
    data = Page(html).data()
    assert sorted(n[0] for n in data["nodes"]) == sorted(bench(n) for n in want)
    assert len(want) < nodes / 20
    assert sorted(f["assets"][0] for f in data["findings"]) == sorted(
        bench(n) for n in want if n % 7 == 0
    )
    assert outside not in html and bench(0) not in html
    assert f"out of {nodes} in the catalog" in " ".join(" ".join(Page(html).text).split())


def test_the_view_walks_each_way_on_its_own() -> None:
    """a -> b -> c -> a and b -> d, focused on a at depth 2: d is two hops downstream,
    though b is also upstream of a (the walk downstream goes on through b)."""
    succ = [[1], [2, 3], [0], []]
    pred = [[2], [0], [1], [1]]
    assert initial_view(4, succ, pred, [], [], focus=0, depth=2) == [0, 1, 2, 3]
    assert initial_view(4, succ, pred, [], [], focus=0, depth=1) == [0, 1, 2]


def test_a_neighbourhood_cut_by_the_node_limit_says_so(tmp_path: Path) -> None:
    """Whole hops up to the limit each way, and the page says where it stopped."""
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    hub = AssetSpec(namespace=GEN, name="hub", kind="table")
    readers = [
        AssetSpec(
            namespace=GEN,
            name=f"r{i:02d}",
            kind="view",
            edges=[EdgeSpec(source_namespace=GEN, source_name="hub" if i < 8 else f"r{i - 8:02d}")],
        )
        for i in range(16)
    ]
    apply(store, [hub, *readers])
    snap = load_neighbourhood(store, uri("hub"), depth=2, limit=10)
    # hop 1 (8 readers) fits in 10, hop 2 (8 more) would not: it is left out whole
    assert sorted(snap.assets) == sorted([uri("hub"), *(uri(f"r{i:02d}") for i in range(8))])
    assert snap.scope is not None and snap.scope.catalog == 17
    page = Page(render_html(build_context(snap, focus=uri("hub"), depth=2)))
    said = " ".join(" ".join(page.text).split())
    assert "stops short of 2 hops (downstream: node limit 10 reached)" in said
    whole = load_neighbourhood(store, uri("hub"), depth=2)
    assert len(whole.assets) == 17 and whole.scope is not None and whole.scope.cut is None
    store.dispose()
