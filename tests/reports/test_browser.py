"""The report in a real headless Chromium (Debian's `chromium` package), from a file:// URL.

Skipped with the reason when Chromium is missing, except on CI (`CI` set),
where a missing browser fails the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from catalog.apply import apply
from catalog.db import Store
from reports.context import build_context
from reports.render import render_html, render_report
from tests.reports.browser import Browser, Page, chromium, foreign_requests, in_ci
from tests.reports.catalogs import dbt_catalog, pagila_catalog
from tests.reports.stack import HOSTILE, PG, build_stack
from tests.reports.test_focus import generated
from tests.reports.test_report import synthetic


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if chromium() is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    with Browser() as opened:
        yield opened


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Page:
    tmp = tmp_path_factory.mktemp("browser")
    store = Store(f"sqlite:///{tmp / 'catalog.db'}")
    build_stack(store, tmp, hostile=True)
    path = tmp / "report.html"
    path.write_text(render_report(store), encoding="utf-8")
    store.dispose()
    return browser.load(path)


def test_renders_the_graph_with_no_error_no_request_no_alert(demo_page: Page) -> None:
    assert demo_page.errors == []
    assert foreign_requests(demo_page) == []
    assert demo_page.eval("window.__dialogs") == []
    assert demo_page.eval("document.querySelectorAll('#graph .node').length") >= 9
    assert demo_page.eval("document.querySelectorAll('#graph .edge').length") >= 8
    assert demo_page.eval("document.documentElement.dataset.interactiveMs") is not None
    assert demo_page.eval("document.querySelectorAll('img').length") == 0


def test_hostile_names_show_as_text(demo_page: Page) -> None:
    names = demo_page.eval(
        "Array.from(document.querySelectorAll('#graph .node title')).map(t => t.textContent)"
    )
    assert any(HOSTILE[0] in n for n in names) and any(HOSTILE[1] in n for n in names)
    # Open the details of a hostile asset: its field and property are text in the panel.
    index = demo_page.eval(
        f"steward.search({json.dumps(HOSTILE[0][:8])}).length && "
        f"steward.visible().find(i => document.querySelector("
        f"'.node[data-i=\"' + i + '\"] title').textContent.endsWith({json.dumps(HOSTILE[0])}))"
    )
    demo_page.eval(f"steward.select({index})")
    assert HOSTILE[0] in demo_page.eval("document.getElementById('selection').textContent")
    demo_page.eval("document.querySelector('#selection a.primary').click()")
    text = demo_page.eval("document.getElementById('asset-view').textContent")
    assert HOSTILE[0] in text and HOSTILE[1] in text
    assert demo_page.eval("document.querySelectorAll('img, #asset-view script').length") == 0
    demo_page.eval("location.hash = '#lineage'")
    assert demo_page.eval("window.__dialogs") == []


#: Go back or forward in the page's history and wait until the page has followed.
MOVE = "new Promise(r => { addEventListener('hashchange', r, {once: true}); history.STEP(); })"


def test_search_select_expand_filter_and_routes(demo_page: Page, browser: Browser) -> None:
    found = demo_page.eval("steward.search('docs_chunks')")
    assert len(found) == 1
    before = len(demo_page.eval("steward.visible()"))
    demo_page.eval(f"steward.show({found[0]})")
    bar = demo_page.eval("document.getElementById('selection').innerText")
    assert "docs_chunks" in bar and "Open asset page" in bar
    # The asset's page, from the selection bar: provenance, the run that wrote it, downstream.
    demo_page.eval("document.querySelector('#selection a.primary').click()")
    assert demo_page.eval("location.hash").startswith("#asset/")
    page = demo_page.eval("document.getElementById('asset-view').innerText")
    assert demo_page.eval("document.getElementById('lineage').offsetParent") is None
    assert "all-MiniLM-L6-v2@1" in page and "stale" in page and "support-rag" in page
    assert "embed_documents" in page and "Embedded with" in page
    # Another asset's page by its link; its diff of v2; back and forward move between them.
    documents = quote(f"{PG}/shop.public.documents", safe="")
    demo_page.eval(f"location.hash = '#asset/{documents}'")
    text = demo_page.eval("document.getElementById('asset-view').textContent")
    assert "- lang  text  [breaking]" in text and "v2" in text
    demo_page.eval(MOVE.replace("STEP", "back"))
    assert "docs_chunks" in demo_page.eval("document.querySelector('#asset-view h1').textContent")
    demo_page.eval(MOVE.replace("STEP", "forward"))
    assert demo_page.eval("document.querySelector('#asset-view h1').textContent") == "documents"
    demo_page.eval("location.hash = '#lineage'")
    assert demo_page.eval("document.getElementById('asset-view').hidden") is True
    demo_page.eval(f"steward.expand({found[0]})")
    assert len(demo_page.eval("steward.visible()")) >= before
    # An asset link from the findings table is a route to the asset's page.
    demo_page.eval(
        'document.querySelector(\'.ftable a[href^="#asset/"][title$="user_activity"]\').click()'
    )
    assert "user_activity" in demo_page.eval("document.querySelector('#asset-view h1').textContent")
    demo_page.eval("location.hash = '#findings'")
    shown = demo_page.eval(
        "(() => { const s = document.getElementById('filter-severity');"
        " s.value = 'warning'; s.dispatchEvent(new Event('change'));"
        " return Array.from(document.querySelectorAll('tr.frow')).filter(r => !r.hidden)"
        ".map(r => r.dataset.severity); })()"
    )
    assert shown and set(shown) == {"warning"}
    page_events = Page(url=demo_page.url)
    browser.collect(page_events)
    assert page_events.errors == [] and foreign_requests(page_events) == []


def test_a_link_to_an_asset_opens_its_page(tmp_path: Path, browser: Browser) -> None:
    """`report.html#asset/URI` (a bookmark, a link from chat) opens on that asset's page."""
    snap = synthetic(600, 1200, seed=2)
    path = tmp_path / "big.html"
    path.write_text(render_html(build_context(snap)), encoding="utf-8")
    page = browser.load(path, settle=0.1, fragment="asset/" + quote("bench://h:1/n00599", safe=""))
    assert page.errors == []
    assert page.eval("document.querySelector('#asset-view h1').textContent") == "n00599"
    assert page.eval("document.getElementById('asset-view').hidden") is False
    page.eval("history.pushState(null, '', '#lineage');")
    page.eval("dispatchEvent(new HashChangeEvent('hashchange'))")
    assert page.eval("document.querySelector('.node.selected').dataset.i") == "599"
    # An asset the catalog no longer has: said so, not a blank page.
    page.eval("location.hash = '#asset/' + encodeURIComponent('bench://h:1/gone')")
    assert page.eval("document.querySelector('#asset-view h1').textContent") == (
        "No such asset in this report"
    )
    assert "bench://h:1/gone" in page.eval("document.getElementById('asset-view').textContent")


def test_a_broken_page_is_caught(tmp_path: Path, browser: Browser) -> None:
    """The harness can fail: a script error, a network request and an alert are all seen."""
    path = tmp_path / "broken.html"
    path.write_text(
        "<!doctype html><title>x</title>"
        '<img src="http://127.0.0.1:9/pixel.png">'
        "<script>alert('hi'); console.error('bad'); throw new Error('boom');</script>",
        encoding="utf-8",
    )
    page = browser.load(path, settle=0.3)
    assert any("boom" in e for e in page.errors)
    assert any("bad" in e for e in page.errors)
    assert foreign_requests(page) == ["http://127.0.0.1:9/pixel.png"]
    assert page.eval("window.__dialogs") == ["alert:hi"]


# -- real-shaped catalogs: pagila scanned, a dbt-style chain, the demo ------------------------

#: What a reader would see wrong in the graph, measured in the page (an empty list is good).
GRAPH_PROBLEMS = """(() => {
  const problems = [];
  const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
    && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const nodes = Array.from(document.querySelectorAll('#graph .node'));
  const label = g => g.querySelector('text.name').textContent + ' / '
    + g.querySelector('text.meta').textContent;
  const labels = nodes.map(label);
  const boxes = () => nodes.map(g => g.querySelector('rect.box').getBoundingClientRect());
  const seen = new Set();
  labels.forEach(l => { if (seen.has(l)) { problems.push('two nodes read ' + l); } seen.add(l); });
  let drawn = boxes();
  nodes.forEach((g, i) => {
    const text = g.querySelector('text.name').getBoundingClientRect();
    const own = drawn[i];
    if (text.left < own.left || text.right > own.right) {
      problems.push('label overflows ' + labels[i]);
    }
    drawn.forEach((b, j) => {
      if (j !== i && hit(text, b)) { problems.push(labels[i] + ' over ' + labels[j]); }
    });
  });
  const legend = document.getElementById('legend').getBoundingClientRect();
  drawn.forEach((b, i) => { if (hit(legend, b)) { problems.push('legend over ' + labels[i]); } });
  document.querySelector('[data-action=fit]').click();
  const wrap = document.getElementById('graph-wrap').getBoundingClientRect();
  if (wrap.height > innerHeight) { problems.push('the graph is taller than the window'); }
  const fitted = boxes();
  fitted.forEach((b, i) => {
    if (b.left < wrap.left || b.right > wrap.right || b.top < wrap.top || b.bottom > wrap.bottom) {
      problems.push('outside the graph after Fit: ' + labels[i]);
    }
  });
  // The drawing fills its box: across it or down it, not a small island in the middle.
  const span = (lo, hi) => Math.max(...fitted.map(hi)) - Math.min(...fitted.map(lo));
  const across = span(b => b.left, b => b.right) / wrap.width;
  const down = span(b => b.top, b => b.bottom) / wrap.height;
  if (Math.max(across, down) < 0.8) { problems.push('the drawing fills ' + across + ' x ' + down); }
  const name = nodes.length ? nodes[0].querySelector('text.name').getBoundingClientRect() : null;
  return {problems: problems, nodes: nodes.length, text: name ? name.height : 0,
          labels: nodes.map(g => g.querySelector('text.name').textContent)};
})()"""


@pytest.fixture(scope="module")
def real_reports(tmp_path_factory: pytest.TempPathFactory, demo_page: Page) -> dict[str, Path]:
    """The report of each catalog, as a file."""
    tmp = tmp_path_factory.mktemp("catalogs")
    out = {"demo": Path(demo_page.url.removeprefix("file://"))}
    dbt = Store(f"sqlite:///{tmp / 'dbt.db'}")
    dbt_catalog(dbt, tmp)
    out["dbt"] = tmp / "dbt.html"
    out["dbt"].write_text(render_report(dbt), encoding="utf-8")
    dbt.dispose()
    pagila = Store(f"sqlite:///{tmp / 'pagila.db'}")
    with pagila_catalog(pagila):
        out["pagila"] = tmp / "pagila.html"
        out["pagila"].write_text(render_report(pagila), encoding="utf-8")
    pagila.dispose()
    return out


@pytest.mark.parametrize(
    ("catalog", "expected"),
    [
        ("pagila", {"film_list", "payment_p2022_01", "rental_by_category"}),
        ("dbt", {"analytics.customers", "analytics_dev.customers", "customer_revenue"}),
        ("demo", {"documents", "docs_chunks", "all-MiniLM-L6-v2"}),
    ],
)
def test_the_graph_reads_well(
    catalog: str, expected: set[str], real_reports: dict[str, Path], browser: Browser
) -> None:
    page = browser.load(real_reports[catalog], settle=0.2)
    assert page.errors == [] and foreign_requests(page) == []
    found = page.eval(GRAPH_PROBLEMS)
    assert found["problems"] == [] and found["nodes"] >= 9
    assert expected <= set(found["labels"])  # named by the end of their names, not the start
    assert found["text"] >= 11  # node names are read at 11 px or more once fitted


@pytest.mark.parametrize(
    ("catalog", "uri", "kind", "shown"),
    [
        ("pagila", "film_list", "view", ["Fields (8)", "Defined over", "film_category"]),
        (
            "dbt",
            "analytics.customers",
            "dataset",
            ["At risk because of", "stg_customers.email", "Runs that read or wrote it"],
        ),
        ("dbt", "customer_ltv", "job", ["Recent runs", "FAIL", 'column "ltv" is of type']),
    ],
)
def test_the_asset_page_by_url(
    catalog: str,
    uri: str,
    kind: str,
    shown: list[str],
    real_reports: dict[str, Path],
    browser: Browser,
) -> None:
    data = json.loads(
        re.search(  # type: ignore[union-attr]
            r'<script type="application/json" id="steward-data">(.*?)</script>',
            real_reports[catalog].read_text(encoding="utf-8"),
            flags=re.S,
        ).group(1)
    )
    [node] = [n for n in data["nodes"] if n[7] == uri and data["kinds"][n[2]] == kind]
    route = "asset/" + quote(node[0], safe="")
    page = browser.load(real_reports[catalog], settle=0.1, fragment=route)
    assert page.errors == []
    text = page.eval("document.getElementById('asset-view').textContent")
    assert page.eval("document.querySelector('#asset-view h1').textContent") == uri
    assert node[0] in text
    for piece in shown:
        assert piece in text, piece


def test_a_focused_report_says_what_it_holds(tmp_path: Path, browser: Browser) -> None:
    """`--focus`: the page draws the neighbourhood, says it is a part of the catalog and
    how to see more; search reaches only what it holds."""
    store = Store(f"sqlite:///{tmp_path / 'catalog.db'}")
    build_stack(store, tmp_path)
    apply(store, generated(1, 1), origin="scan gen://h:1")  # 90 more tables, away from it
    path = tmp_path / "focused.html"
    path.write_text(render_report(store, focus="docs_chunks", depth=1), encoding="utf-8")
    data = json.loads(
        re.search(  # type: ignore[union-attr]
            r'<script type="application/json" id="steward-data">(.*?)</script>',
            path.read_text(encoding="utf-8"),
            flags=re.S,
        ).group(1)
    )
    store.dispose()
    page = browser.load(path, settle=0.2)
    assert page.errors == [] and foreign_requests(page) == []
    held = len(data["nodes"])
    assert 3 <= held < 20
    # Every asset it holds is drawn, the focus selected.
    assert page.eval("document.querySelectorAll('#graph .node').length") == held
    assert "docs_chunks" in page.eval("document.getElementById('selection').innerText")
    note = page.eval("document.getElementById('scope-note').innerText")
    assert "A focused report" in note and f"the {held} assets within 1 hop of it" in note
    catalog = re.search(r"out of (\d+) in the catalog", note)
    assert catalog is not None and int(catalog.group(1)) > held + 80
    assert "steward report --focus" in note and "--depth 2" in note
    visible = page.eval(
        "(() => { const r = document.getElementById('scope-note').getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight && r.width > 300; })()"
    )
    assert visible  # at the top of the page, not below the fold
    page.screenshot(tmp_path / "focused.png", 1400, 900)
    assert (tmp_path / "focused.png").stat().st_size > 10_000
    # What it does not hold is not in it: search finds only the neighbourhood.
    assert page.eval("steward.search('g042')") == []
    assert len(page.eval("steward.search('documents_clean')")) == 1
