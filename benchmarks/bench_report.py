"""Render the HTML report of 10,000- and 100,000-asset catalogs, and open them in Chromium.

Figures: render time, file size and time to interactive in headless
Chromium, each as a ratio to the baseline measured in the same run:
`json.dumps` of the same snapshot (the least any report of this data
costs). The catalog is written with bare executemany (assets with a
version and four fields each, 50 open findings with what they put at
risk); the browser figure is the page's own `performance.now()` mark once
the first graph is drawn and every handler set.

A focused report (`steward report --focus ASSET`, the default depth of 1)
is measured on the same catalog, in process and as the CLI in a subprocess
(wall time and peak RSS), against its own baseline: the focus's
neighbourhood (the assets one hop away either way, their current version
and fields) read by one SQL query. `--focus-only` skips the full report.

    python -m benchmarks report [--nodes N [N ...]] [--edges-per-node K] [--no-browser]
                                [--focus-only] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from benchmarks.bench_graph import populate
from benchmarks.bench_scale import steward
from benchmarks.common import report, scratch_catalog, timed
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
    postgres = store.engine.dialect.name == "postgresql"
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()

        def many(sql: str, rows: list[tuple[Any, ...]]) -> None:
            cur.executemany(sql.replace("?", "%s") if postgres else sql, rows)

        if not postgres:
            cur.execute("BEGIN")
        many(
            "UPDATE asset SET kind = ? WHERE id = ?",
            [(KINDS[i % len(KINDS)], i + 1) for i in range(nodes)],
        )
        many(
            "INSERT INTO asset_version (id, asset_id, version, fingerprint, definition, diff,"
            " breaking, restored, origin, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (i + 1, i + 1, 1, "0" * 64, '{"properties": {}}', "{}", False, False, "bench", now)
                for i in range(nodes)
            ],
        )
        many(
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
        many(
            "INSERT INTO finding (id, rule, severity, status, title, assets, evidence, remedy,"
            " at_risk, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        if postgres:
            raw.commit()
        else:
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


#: The focus's neighbourhood (`:depth` hops either way), its current versions and
#: fields: the least a focused report reads.
NEIGHBOURHOOD = text(
    """
    WITH RECURSIVE up(id, hop) AS (
        SELECT CAST(:id AS INTEGER), 0
        UNION SELECT e.source_id, up.hop + 1 FROM up JOIN edge e ON e.target_id = up.id
        WHERE up.hop < :depth
    ), down(id, hop) AS (
        SELECT CAST(:id AS INTEGER), 0
        UNION SELECT e.target_id, down.hop + 1 FROM down JOIN edge e ON e.source_id = down.id
        WHERE down.hop < :depth
    ), near(id) AS (SELECT id FROM up UNION SELECT id FROM down)
    SELECT a.uri, a.kind, v.version, v.definition, v.diff, f.name, f.type
    FROM near JOIN asset a ON a.id = near.id AND NOT a.deleted
    JOIN asset_version v ON v.asset_id = a.id
    LEFT JOIN asset_field f ON f.version_id = v.id
    """
)
FOCUS_DEPTHS = (1, 3)


def _all(conn: Connection, params: dict[str, int]) -> list[Any]:
    return list(conn.execute(NEIGHBOURHOOD, params).all())


def measure_focus(store: Store, nodes: int, timeout: float = 3600) -> None:
    """`steward report --focus`, in process and as the CLI, against the neighbourhood in SQL."""
    focus = nodes // 2 + 1  # a middle layer: upstream and downstream both
    uri = f"bench://h:1/n{focus - 1}"
    render_report(store, focus=uri)  # once first: the template is compiled once a process
    for depth in FOCUS_DEPTHS:
        params = {"id": focus, "depth": depth}
        with store.engine.connect() as conn:
            baseline, rows = timed(partial(_all, conn, params))
        assets = len({r.uri for r in rows})
        report(
            f"focus depth {depth}: baseline neighbourhood in SQL",
            baseline,
            note=f"{len(rows)} rows, {assets} assets",
        )
        seconds, page = timed(partial(render_report, store, focus=uri, depth=depth))
        data = json.loads(page.split('id="steward-data">', 1)[1].split("</script>", 1)[0])
        report(
            f"render_report(focus, depth {depth}), {nodes:,} assets",
            seconds,
            baseline,
            note=f"{len(page) / 1e3:,.0f} KB, {len(data['nodes'])} assets in it",
        )
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "focused.html"
            args = ["report", "--focus", uri, "--depth", str(depth), "-o", str(out)]
            run = steward(store.url, args, timeout)
            size = out.stat().st_size if out.exists() else 0
            report(
                f"`steward report --focus ASSET --depth {depth}` (CLI)",
                run.seconds,
                baseline,
                note=f"{run.note}; {size / 1e3:,.0f} KB of HTML",
            )
    with store.engine.connect() as conn:
        counted, live = timed(
            lambda: conn.execute(text("SELECT count(*) FROM asset WHERE NOT deleted")).scalar()
        )
    report("of which: counting the catalog's assets", counted, note=f"{live:,} (the page's M)")
    started = steward(store.url, ["report", "--help"], timeout)
    report("CLI start-up alone (`steward report --help`)", started.seconds, note=started.note)


def measure(
    nodes: int, edges: int, browser: bool, full: bool = True, backend: str = "sqlite"
) -> None:
    """Every figure for one catalog size, as ratios to `json.dumps` of the same snapshot;
    and the focused report's, as ratios to its neighbourhood in SQL."""
    print(f"-- {nodes:,} assets, {edges:,} edges ({backend})", flush=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_catalog(backend, Path(tmp), "report") as store,
    ):
        populate(store, nodes, edges)
        enrich(store, nodes)
        measure_focus(store, nodes)
        if not full:
            return
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
    parser.add_argument(
        "--focus-only", action="store_true", help="Only the focused report's figures."
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    for nodes in args.nodes:
        measure(
            nodes,
            nodes * args.edges_per_node,
            not args.no_browser,
            not args.focus_only,
            args.backend,
        )
