"""The report in a real headless Chromium (Debian's `chromium` package), from a file:// URL.

Skipped with the reason when Chromium is missing, except on CI (`CI` set),
where a missing browser fails the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import quote

import pytest

from catalog.db import Store
from reports import layout
from reports.context import build_context
from reports.render import render_html, render_report
from tests.reports.browser import Browser, Page, chromium, foreign_requests, in_ci
from tests.reports.stack import HOSTILE, build_stack
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


def test_the_page_redraws_what_python_drew(demo_page: Page) -> None:
    """The script's first drawing is the server's SVG: same nodes, places, classes, labels."""
    html = Path(demo_page.url.removeprefix("file://")).read_text(encoding="utf-8")
    drawn = re.findall(
        r'<g class="(node [^"]*)" data-i="(\d+)" transform="([^"]*)" tabindex="0">\s*'
        r"<title>.*?</title>.*?<text class=\"name\" x=\"16\" y=\"20\">(.*?)</text>",
        html,
        flags=re.S,
    )
    server = sorted((int(i), css, move, unescape(name)) for css, i, move, name in drawn)
    live = demo_page.eval(
        "Array.from(document.querySelectorAll('#graph .node')).map(g => [Number(g.dataset.i),"
        " g.getAttribute('class'), g.getAttribute('transform'),"
        " g.querySelector('text.name').textContent])"
    )
    assert server and sorted(tuple(x) for x in live) == server


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
    text = demo_page.eval("document.getElementById('details').textContent")
    assert HOSTILE[0] in text and HOSTILE[1] in text
    assert demo_page.eval("document.querySelectorAll('img, #details script').length") == 0
    assert demo_page.eval("window.__dialogs") == []


def test_search_select_expand_filter_and_routes(demo_page: Page, browser: Browser) -> None:
    found = demo_page.eval("steward.search('docs_chunks')")
    assert len(found) == 1
    before = len(demo_page.eval("steward.visible()"))
    demo_page.eval(f"steward.show({found[0]})")
    assert "docs_chunks" in demo_page.eval("document.getElementById('details').textContent")
    assert "all-MiniLM-L6-v2@1" in demo_page.eval("document.getElementById('details').innerText")
    assert demo_page.eval("location.hash").startswith("#asset:")
    details = demo_page.eval("document.getElementById('details').innerText")
    assert "rag.embed_documents" in details and "wrote" in details  # the run that wrote it
    assert "stale" in details and "support-rag" in details  # provenance, downstream
    documents = demo_page.eval("steward.search('shop.public.documents')[0]")
    demo_page.eval(f"steward.show({documents})")
    details = demo_page.eval("document.getElementById('details').textContent")
    assert "- lang  text  [breaking]" in details and "v2" in details  # the diff of v2
    demo_page.eval(f"steward.expand({found[0]})")
    assert len(demo_page.eval("steward.visible()")) >= before
    # An asset link from the findings table is a route to the asset.
    demo_page.eval(
        'document.querySelector(\'.ftable a[href^="#asset:"][title$="user_activity"]\').click()'
    )
    assert "user_activity" in demo_page.eval("document.querySelector('#details h3').textContent")
    shown = demo_page.eval(
        "(() => { const s = document.getElementById('filter-severity');"
        " s.value = 'warning'; s.dispatchEvent(new Event('change'));"
        " return Array.from(document.querySelectorAll('tr.frow')).filter(r => !r.hidden)"
        ".map(r => r.dataset.severity); })()"
    )
    assert shown and set(shown) == {"warning"}
    page = Page(url=demo_page.url)
    browser.collect(page)
    assert page.errors == [] and foreign_requests(page) == []


def test_a_link_to_an_asset_opens_on_it(tmp_path: Path, browser: Browser) -> None:
    """`report.html#asset:URI` (a bookmark, a link from chat) opens with that asset selected."""
    snap = synthetic(600, 1200, seed=2)
    path = tmp_path / "big.html"
    path.write_text(render_html(build_context(snap)), encoding="utf-8")
    page = browser.load(path, settle=0.1, fragment="asset:" + quote("bench://h:1/n00599", safe=""))
    assert page.errors == []
    assert page.eval("document.querySelector('#details h3').textContent") == "n00599"
    assert page.eval("document.querySelector('.node.selected').dataset.i") == "599"


def test_layout_in_the_page_matches_python(tmp_path: Path, browser: Browser) -> None:
    snap = synthetic(400, 700, seed=5)  # random edges: cycles included
    context = build_context(snap)
    path = tmp_path / "synthetic.html"
    path.write_text(render_html(context), encoding="utf-8")
    page = browser.load(path, settle=0.1)
    assert page.errors == []
    data = json.loads(context["data"])
    edges = [(s, t) for s, t, _ in data["edges"]]
    for ids in (data["view"], list(range(0, 400, 3))):
        expected = layout.layered(ids, edges)
        got = page.eval(f"steward.layout({json.dumps(ids)})")
        assert {int(k): tuple(v) for k, v in got["pos"].items()} == expected.pos
        assert (got["width"], got["height"]) == (expected.width, expected.height)


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
