"""Render the HTML report of 10,000- and 100,000-asset catalogs, and open them in Chromium.

Figures: render time, file size and time to interactive in headless
Chromium, each as a ratio to the baseline measured in the same run:
`json.dumps` of the same snapshot (the least any report of this data
costs). The catalog is written with bare executemany (assets with a
version and four fields each, 50 open findings with what they put at
risk); the browser figure is the page's own `performance.now()` mark once
the first graph is drawn and every handler set.

    python -m benchmarks report [--nodes N [N ...]] [--edges-per-node K] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bench_graph import populate
from benchmarks.common import report, timed
from catalog.db import Store
from reports.context import build_context
from reports.load import load_snapshot
from reports.render import render_html, render_report

KINDS = ("table", "view", "collection", "feature_set", "model", "job", "dataset")
FINDINGS = 50


def enrich(store: Store, nodes: int, seed: int = 0) -> None:
    """Kinds, one version and four fields per asset, and open findings."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None)
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        cur.executemany(
            "UPDATE asset SET kind = ? WHERE id = ?",
            [(KINDS[i % len(KINDS)], i + 1) for i in range(nodes)],
        )
        cur.executemany(
            "INSERT INTO asset_version (id, asset_id, version, fingerprint, definition, diff,"
            " breaking, restored, origin, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (i + 1, i + 1, 1, "0" * 64, '{"properties": {}}', "{}", False, False, "bench", now)
                for i in range(nodes)
            ],
        )
        cur.executemany(
            "INSERT INTO asset_field (version_id, asset_id, position, name, type, nullable,"
            " attributes) VALUES (?,?,?,?,?,?,?)",
            [
                (i + 1, i + 1, p, name, kind, True, "{}")
                for i in range(nodes)
                for p, (name, kind) in enumerate(
                    [("id", "bigint"), ("name", "text"), ("value", "double"), ("ts", "timestamp")]
                )
            ],
        )
        rules = ("stale_embeddings", "feature_value_skew", "breaking_schema_change")
        rows = []
        for k in range(FINDINGS):
            target = rng.randrange(nodes)
            risk = [
                {
                    "uri": f"bench://h:1/n{r}",
                    "path": [f"bench://h:1/n{target}", f"bench://h:1/n{r}"],
                }
                for r in sorted(rng.sample(range(nodes), 5))
            ]
            rows.append(
                (
                    f"{k:016x}",
                    rules[k % 3],
                    ("error", "warning", "error")[k % 3],
                    "open",
                    f"finding {k} on n{target}",
                    json.dumps([f"bench://h:1/n{target}"]),
                    json.dumps({"distance": 0.3 + k / 100}),
                    "Fix it.",
                    json.dumps(risk),
                    now,
                    now,
                )
            )
        cur.executemany(
            "INSERT INTO finding (id, rule, severity, status, title, assets, evidence, remedy,"
            " at_risk, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        cur.execute("COMMIT")
    finally:
        raw.close()


def browser_figures(path: Path) -> tuple[float, float, int, list[str]] | None:
    try:
        from tests.reports.browser import Browser, chromium
    except ImportError:  # installed without the tests
        return None
    if chromium() is None:
        return None
    with Browser() as browser:
        page = browser.load(path, settle=0.2)
        interactive = float(page.eval("document.documentElement.dataset.interactiveMs"))
        nodes = int(page.eval("document.querySelectorAll('#graph .node').length"))
        # Using it: a search over every asset, then expanding a node and redrawing.
        used = page.eval(
            "(() => { const t0 = performance.now(); const found = steward.search('n12');"
            " const t1 = performance.now(); steward.show(found[0]); steward.expand(found[0]);"
            " const t2 = performance.now();"
            " return [t1 - t0, t2 - t1, steward.visible().length]; })()"
        )
        print(
            f"in the page: search {used[0]:.0f} ms; show + expand + redraw {used[1]:.0f} ms "
            f"({used[2]} nodes drawn)",
            flush=True,
        )
        return interactive / 1000, page.load_seconds, nodes, page.errors


def measure(nodes: int, edges: int, browser: bool) -> None:
    """Every figure for one catalog size, as ratios to `json.dumps` of the same snapshot."""
    print(f"-- {nodes:,} assets, {edges:,} edges", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'report.db'}")
        populate(store, nodes, edges)
        enrich(store, nodes)
        loaded, snap = timed(lambda: load_snapshot(store))
        # (query bindings are keyed by tuples: not JSON, and empty here)
        plain = {k: v for k, v in vars(snap).items() if k != "query_bindings"}
        baseline, dumped = timed(lambda: json.dumps(plain))
        built, context = timed(lambda: build_context(snap))
        rendered, _ = timed(lambda: render_html(context))
        total, page = timed(lambda: render_report(store))
        store.dispose()
        size = len(page.encode("utf-8"))
        report(f"baseline: json.dumps of the snapshot ({len(dumped) / 1e6:.1f} MB)", baseline)
        report("load the snapshot from the catalog", loaded, baseline)
        report("build the context (names, view, JSON)", built, baseline)
        report("render the template", rendered, baseline)
        report(
            f"render_report, {nodes:,} assets / {edges:,} edges",
            total,
            baseline,
            note=f"{size / 1e6:.2f} MB ({size / len(dumped):.2f}x the snapshot JSON), "
            f"{context['shown']} nodes drawn",
        )
        if not browser:
            return
        path = Path(tmp) / "report.html"
        path.write_text(page, encoding="utf-8")
        figures = browser_figures(path)
        if figures is None:
            print("chromium not installed: no browser figures", flush=True)
            return
        interactive, load, drawn, errors = figures
        report(
            "headless Chromium: interactive (page's own mark)",
            interactive,
            baseline,
            note=f"load event after {load:.2f} s ({load / baseline:.2f}x baseline); "
            f"{drawn} SVG nodes; {len(errors)} script errors",
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks report")
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--edges-per-node", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    for nodes in args.nodes:
        measure(nodes, nodes * args.edges_per_node, not args.no_browser)
